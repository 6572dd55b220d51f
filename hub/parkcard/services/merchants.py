"""Merchants (booth owners): create one, change its name or commission."""

from parkcard.services.inputs import checked
from parkcard.services.errors import Refusal
from parkcard.services.privileges import MERCHANTS, MERCHANTS_READ, requires
from parkcard.store import audited
from parkcard.transport import notify


@requires(MERCHANTS)
async def add(store, actor, merchant_id, name, commission_bps, park_id=1):
    """Create a merchant (commission in basis points); return False if it exists with these very values.

    ServiceError for an input out of range or an id taken by another merchant (see change).
    """
    name = checked(merchant_id=merchant_id, commission_bps=commission_bps, park_id=park_id, name=name)
    try:
        return await store.add_merchant(merchant_id, name, commission_bps, park_id, audit=audited(
            actor.name, "merchant.add", merchant_id=merchant_id, name=name, commission_bps=commission_bps,
            park_id=park_id))
    except ValueError as exc:
        raise Refusal("merchant_exists", "%(problem)s: nothing changed; to change it: parkcard merchant set --id "
                                         "%(merchant)d [--name NAME] [--commission-bps N]", problem=exc,
                      merchant=merchant_id) from None


@requires(MERCHANTS)
async def change(store, actor, merchant_id, name=None, commission_bps=None):
    """Change a merchant's name and/or commission; return ((name, bps) before, after).

    The running hub reloads the merchant's terminals: the new rate applies to the next record ingested.
    """
    name = checked(merchant_id=merchant_id, commission_bps=commission_bps, name=name)
    try:
        before, after = await store.update_merchant(merchant_id, name, commission_bps, audit=audited(
            actor.name, "merchant.set", when=lambda ba: ba[0] != ba[1], merchant_id=merchant_id,
            extra=_change_detail))
    except ValueError as exc:
        raise Refusal("merchant_not_found", "%(problem)s (see `parkcard merchant list`; create it with `parkcard "
                                            "merchant add`)", problem=exc) from None
    if before != after:
        await actor.told(notify.TERMINALS)
    return before, after


@requires(MERCHANTS_READ)
async def listing(store, actor):
    """Every merchant with its terminals ([MerchantListing]), by id."""
    return await store.merchant_list()


def _change_detail(before_after):
    """The audit details of a merchant change: the new and the old values."""
    before, after = before_after
    return dict(name=after[0], commission_bps=after[1], was_name=before[0], was_commission_bps=before[1])
