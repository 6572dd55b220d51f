"""Range checks of service inputs by name (parkcard.bounds), raised as ServiceError."""

from parkcard import bounds
from parkcard.services.errors import Refusal

_BOUNDS = {"card_no": bounds.CARD_NO, "terminal_id": bounds.TERMINAL_ID, "merchant_id": bounds.MERCHANT_ID,
           "park_id": bounds.PARK_ID, "fixed_price_cents": bounds.FIXED_PRICE_CENTS,
           "commission_bps": bounds.COMMISSION_BPS, "amount_cents": bounds.CREDIT_CENTS,
           "credit_no": bounds.CREDIT_NO}


def checked(name=None, **values):
    """Range-check values by name; return the stripped name (None without one). ServiceError if out of range."""
    try:
        for key, value in values.items():
            if value is not None:
                _BOUNDS[key].check(value)
        return None if name is None else bounds.check_name(name)
    except bounds.BoundError as exc:
        raise Refusal.of(exc, "out_of_range") from None
