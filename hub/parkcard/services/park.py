"""Park settings: the park's currency, and the record of its secrets being created."""

from parkcard.money import CurrencyError, currency_code
from parkcard.services.privileges import PARK_ADMIN, PARK_READ, ServiceError, requires
from parkcard.store import audited


@requires(PARK_ADMIN)
async def set_currency(store, actor, park_id, currency):
    """Set the park's currency (ISO 4217) before it takes money; return (code, changed)."""
    try:
        code = currency_code(currency)
    except CurrencyError as exc:
        raise ServiceError(str(exc)) from None
    try:
        changed = await store.set_park_currency(park_id, code, audit=audited(
            actor.name, "park.currency", park_id=park_id, currency=code))
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    return code, changed


@requires(PARK_ADMIN)
async def initialised(store, actor, created):
    """Record that `parkcard init` created the park's secrets and PKI files named in created."""
    await store.audit(actor.name, "park.init", created=list(created))


@requires(PARK_READ)
async def currency(store, actor, park_id=1):
    """The park's ISO 4217 currency code (CNY until it is set)."""
    return await store.park_currency(park_id)
