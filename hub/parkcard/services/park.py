"""Park settings: the park's currency, time zone and opening hours, and the record of its secrets being created."""

from parkcard.domain import park_time
from parkcard.domain.fleet_alerts import OpeningHoursError, checked_hours
from parkcard.money import CurrencyError, currency_code
from parkcard.services.privileges import PARK_ADMIN, PARK_READ, ServiceError, requires
from parkcard.store import audited
from parkcard.transport import notify


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


@requires(PARK_READ)
async def time_zone(store, actor, park_id=1):
    """The park's IANA time zone name (UTC until it is set)."""
    return await store.park_time_zone(park_id) or park_time.DEFAULT_TIME_ZONE


@requires(PARK_ADMIN)
async def set_time_zone(store, actor, name, park_id=1):
    """Set the park's IANA time zone (its days, tickets' dates and gates' resets follow it); return (name, changed).

    Every gate takes the new zone with its config: the config version a gate is sent moves with the zone."""
    try:
        park_time.zone(name)
    except park_time.TimeZoneError as exc:
        raise ServiceError("%s: nothing changed" % exc) from None
    changed = await store.set_park_time_zone(park_id, name, audit=audited(
        actor.name, "park.time_zone", park_id=park_id, time_zone=name))
    if changed:
        await actor.told(notify.TERMINALS)
    return name, changed


async def zone_of(store, park_id=1):
    """The park's ZoneInfo (for the services that count park days; no privilege: it reveals nothing)."""
    return park_time.zone(await store.park_time_zone(park_id) or park_time.DEFAULT_TIME_ZONE)


async def daily_reset_s(store):
    """The park's daily reset, seconds after local midnight: its gates' (the earliest, when they differ; local
    midnight without gates)."""
    return min((g.reset_s for g in await store.gates()), default=0)


async def today(store, time_s, park_id=1):
    """The park day of time_s (days since epoch) as its gates count it (the park's zone and daily reset)."""
    return park_time.park_day(await zone_of(store, park_id), await daily_reset_s(store), int(time_s))
