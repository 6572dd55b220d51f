"""The park's refund rules: what a desk refund or a card return pays out, or why it refuses. Pure, integer cents.

A refund (退款) pays back part of a card's cash purse; a return (退卡) closes
the card and pays its whole cash purse and its deposit. Both follow these
rules (park configuration, RefundRules):

- the bonus is never refunded: the refundable balance is the cash purse
  (parkcard.domain.purses, cash spent first);
- a refund takes at least `minimum_cents` off the card; a return has no
  minimum (the card is closing: whatever cash is left is the holder's);
- the fee is `fee_fixed_cents` plus `fee_bps` basis points of the amount
  taken off the card, the percent part rounded DOWN to the cent (the holder
  never pays a fraction of a cent); a fee never exceeds the amount it is
  charged on; the deposit carries no fee.

Refusals name the rule (RefundRefused.reason) in this order of precedence:
not_whole_cents, not_positive, nothing_refundable, below_minimum,
over_refundable, fee_exceeds_amount.
"""

import dataclasses

from parkcard.domain import purses
from parkcard.domain.cents import whole
from parkcard.domain.explained import Cents, Explained

BPS_MAX = 10000

NOT_WHOLE_CENTS = "not_whole_cents"
NOT_POSITIVE = "not_positive"
NOTHING_REFUNDABLE = "nothing_refundable"
BELOW_MINIMUM = "below_minimum"
OVER_REFUNDABLE = "over_refundable"
FEE_EXCEEDS_AMOUNT = "fee_exceeds_amount"


class RefundRulesError(Explained):
    """Refund rules that cannot be used; the message says which value and what is allowed."""


class RefundRefused(Explained):
    """A refund the rules refuse; `reason` is a stable code, the message says what to do."""

    def __init__(self, reason, detail, **values):
        """reason: one of this module's refusal codes; detail and values: the sentence for the cashier."""
        super().__init__(detail, **values)
        self.reason = reason




@dataclasses.dataclass(frozen=True)
class RefundRules:
    """The park's refund settings: minimum refund, fee in basis points plus a fixed fee."""

    minimum_cents: int = 0
    fee_bps: int = 0
    fee_fixed_cents: int = 0

    def __post_init__(self):
        """Validate every setting (whole cents; the percent 0 to 100 %)."""
        whole(self.minimum_cents, "the minimum refund (cents)", RefundRulesError)
        whole(self.fee_bps, "the refund fee in basis points (100 = 1 %)", RefundRulesError, 0, BPS_MAX)
        whole(self.fee_fixed_cents, "the fixed refund fee (cents)", RefundRulesError)

    def fee_cents(self, amount_cents):
        """The fee on amount_cents taken off a card: fixed part plus percent part rounded down."""
        if amount_cents <= 0:
            return 0
        return self.fee_fixed_cents + amount_cents * self.fee_bps // BPS_MAX


@dataclasses.dataclass(frozen=True)
class RefundQuote:
    """A refund the rules allow: taken off the card, kept as the fee, paid to the holder."""

    amount_cents: int
    fee_cents: int

    @property
    def paid_cents(self):
        """What the holder is paid: the amount less the fee."""
        return self.amount_cents - self.fee_cents


@dataclasses.dataclass(frozen=True)
class ReturnQuote:
    """A card return: the cash balance (less the fee) and the deposit paid out, the bonus back to the park."""

    balance_cents: int
    fee_cents: int
    deposit_cents: int
    bonus_to_park_cents: int

    @property
    def paid_cents(self):
        """What the holder is paid: cash balance less fee, plus the deposit."""
        return self.balance_cents - self.fee_cents + self.deposit_cents


def _fee_within(rules, amount_cents):
    """The fee on amount_cents, or RefundRefused when the fee would eat more than the amount."""
    fee = rules.fee_cents(amount_cents)
    if fee > amount_cents:
        raise RefundRefused(FEE_EXCEEDS_AMOUNT, "the refund fee of %(fee)s is more than the %(cents)s "
                            "refunded: refund a larger amount", fee=Cents(fee), cents=Cents(amount_cents))
    return fee


def quote_refund(rules, purse, amount_cents):
    """The refund of amount_cents off a card with `purse`, or RefundRefused with the first rule it breaks."""
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise RefundRefused(NOT_WHOLE_CENTS, "a refund is a whole number of cents, not %(cents)r", cents=amount_cents)
    if amount_cents <= 0:
        raise RefundRefused(NOT_POSITIVE, "a refund is a positive amount of cents, not %(cents)d", cents=amount_cents)
    refundable = purses.refundable_cents(purse)
    if refundable == 0:
        raise RefundRefused(NOTHING_REFUNDABLE, "the card has no refundable cash (bonus %(bonus)s is never "
                            "refunded)", bonus=Cents(purse.bonus_cents))
    if amount_cents < rules.minimum_cents:
        raise RefundRefused(BELOW_MINIMUM, "the smallest refund is %(minimum)s, not %(cents)s: refund more, or "
                            "return the card", minimum=Cents(rules.minimum_cents), cents=Cents(amount_cents))
    if amount_cents > refundable:
        raise RefundRefused(OVER_REFUNDABLE, "%(cents)s is over the refundable %(refundable)s (bonus "
                            "%(bonus)s is never refunded): refund at most %(refundable)s", cents=Cents(amount_cents),
                            refundable=Cents(refundable), bonus=Cents(purse.bonus_cents))
    return RefundQuote(amount_cents, _fee_within(rules, amount_cents))


def quote_return(rules, purse, deposit_cents):
    """What returning a card with `purse` and deposit_cents pays: no minimum; a fee never over the balance."""
    if not isinstance(deposit_cents, int) or isinstance(deposit_cents, bool) or deposit_cents < 0:
        raise RefundRefused(NOT_WHOLE_CENTS, "a deposit is whole non-negative cents, not %(cents)r",
                            cents=deposit_cents)
    closing = purses.close(purse)
    # A return closes the card: a fee larger than the cash left takes the cash, never the deposit.
    fee = min(rules.fee_cents(closing.paid_out_cents), closing.paid_out_cents)
    return ReturnQuote(closing.paid_out_cents, fee, deposit_cents, closing.bonus_to_park_cents)
