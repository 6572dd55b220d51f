"""Park settings: the park's currency and opening hours, and the record of its secrets being created."""

from parkcard.domain.fleet_alerts import OpeningHoursError, checked_hours
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


@requires(PARK_READ)
async def opening_hours(store, actor, park_id=1):
    """The park's (opens_min, closes_min) after local midnight, or None when none are set."""
    return await store.park_opening_hours(park_id)


@requires(PARK_ADMIN)
async def set_opening_hours(store, actor, opens_min, closes_min, park_id=1):
    """Set the park's opening hours (minutes after local midnight; None, None clears them); True if changed."""
    if (opens_min, closes_min) != (None, None):
        try:
            opens_min, closes_min = checked_hours(opens_min, closes_min)
        except OpeningHoursError as exc:
            raise ServiceError("%s: nothing changed" % exc) from None
    return await store.set_park_opening_hours(park_id, opens_min, closes_min, audit=audited(
        actor.name, "park.opening_hours", park_id=park_id, opens_min=opens_min, closes_min=closes_min))
