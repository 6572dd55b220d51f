"""Park settings: currency, time zone, opening hours, card deposits, refund rules, offline rules, how long
operators' web sessions last, and the record of its secrets."""

from protocol import hub_frames
from protocol.card import BALANCE_MAX_CENTS

from parkcard.domain.explained import Cents
from parkcard.domain import park_time
from parkcard.domain.fleet_alerts import OpeningHoursError, checked_hours
from parkcard.domain.refund_rules import RefundRules, RefundRulesError
from parkcard.domain.replacement import ReplacementError, ReplacementSettings
from parkcard.money import CurrencyError, currency_code
from parkcard.services.privileges import PARK_ADMIN, PARK_READ, ServiceError, requires
from parkcard.store import audited
from parkcard.store.rows import SessionLimits
from parkcard.transport import notify


@requires(PARK_ADMIN)
async def set_currency(store, actor, park_id, currency):
    """Set the park's currency (ISO 4217) before it takes money; return (code, changed)."""
    try:
        code = currency_code(currency)
    except CurrencyError as exc:
        raise ServiceError.of(exc) from None
    try:
        changed = await store.set_park_currency(park_id, code, audit=audited(
            actor.name, "park.currency", park_id=park_id, currency=code))
    except ValueError as exc:
        raise ServiceError.of(exc) from None
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
            raise ServiceError("%(problem)s: nothing changed", problem=exc) from None
    return await store.set_park_opening_hours(park_id, opens_min, closes_min, audit=audited(
        actor.name, "park.opening_hours", park_id=park_id, opens_min=opens_min, closes_min=closes_min))


@requires(PARK_READ)
async def time_zone(store, actor, park_id=1):
    """The park's IANA time zone name (UTC until it is set)."""
    return await store.park_time_zone(park_id) or park_time.DEFAULT_TIME_ZONE


@requires(PARK_ADMIN)
async def set_time_zone(store, actor, name, park_id=1):
    """Set the park's IANA time zone (its days, tickets' dates and gates' resets follow it); return (name, changed).

    Every gate takes the new zone with its config: the config version a gate is sent moves with the zone; every
    booth takes it with its staff list."""
    try:
        park_time.zone(name)
    except park_time.TimeZoneError as exc:
        raise ServiceError("%(problem)s: nothing changed", problem=exc) from None
    changed = await store.set_park_time_zone(park_id, name, audit=audited(
        actor.name, "park.time_zone", park_id=park_id, time_zone=name))
    if changed:
        await actor.told(notify.TERMINALS, notify.STAFF)     # booths count their day by it too (SPEC.md §5.11)
    return name, changed


SESSION_IDLE_MIN_S = 5 * 60         # shorter, and an operator is logged out while reading a page
SESSION_MAX_MAX_S = 7 * 86400       # longer, and a lost or shared browser stays logged in for days


async def session_limits(store, park_id=1):
    """The park's SessionLimits (no privilege: the login page states them to whoever opens it)."""
    return await store.park_session_limits(park_id)


@requires(PARK_ADMIN)
async def set_session_limits(store, actor, idle_s=None, max_s=None, park_id=1):
    """Set how long an operator's web session lasts: idle_s without use, max_s after the login at the latest (what
    is not given stays); return (SessionLimits, changed)."""
    now = await store.park_session_limits(park_id)
    limits = SessionLimits(now.idle_s if idle_s is None else idle_s, now.max_s if max_s is None else max_s)
    for value in limits:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ServiceError("session limits are whole seconds, not %(value)r: nothing changed", value=value)
    if not SESSION_IDLE_MIN_S <= limits.idle_s <= limits.max_s <= SESSION_MAX_MAX_S:
        raise ServiceError("a session may stay idle %(idle_min)d minutes or more, and at most as long as it may last, "
                           "which is at most %(days)d days (asked: idle %(idle)d min, at most %(most)d min): nothing "
                           "changed", idle_min=SESSION_IDLE_MIN_S // 60, days=SESSION_MAX_MAX_S // 86400,
                           idle=limits.idle_s // 60, most=limits.max_s // 60)
    changed = await store.set_park_session_limits(park_id, limits, audit=audited(
        actor.name, "park.session_limits", park_id=park_id, idle_s=limits.idle_s, max_s=limits.max_s))
    return limits, changed


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
# The card types the desk issues, each with its deposit (SPEC.md §4.12): a setting of the park.
CARD_TYPES = {"member": "deposit_member_cents", "temporary": "deposit_temporary_cents"}
DEPOSIT_UNIT_CENTS, DEPOSIT_MAX_CENTS = 100, 25500      # the card info holds it in units of 100 cents (§3.3)


def _card_type(card_type):
    if card_type not in CARD_TYPES:
        raise ServiceError("card type %(card_type)r is none of the park's: %(card_types)s", card_type=card_type,
                           card_types=", ".join(CARD_TYPES))
    return CARD_TYPES[card_type]


@requires(PARK_READ)
async def desk_settings(store, actor, park_id=1):
    """The park's rows.DeskSettings: the deposit of each card type and the refund rules."""
    return await store.desk_settings(park_id)


async def deposit_of(store, card_type, park_id=1):
    """The deposit the desk takes for a card of card_type (member or temporary)."""
    return getattr(await store.desk_settings(park_id), _card_type(card_type))


@requires(PARK_ADMIN)
async def set_card_deposit(store, actor, card_type, deposit_cents, park_id=1):
    """Set the deposit of a card type (whole 100 cents, at most 25500); return the new rows.DeskSettings."""
    column = _card_type(card_type)
    if (not isinstance(deposit_cents, int) or isinstance(deposit_cents, bool) or deposit_cents % DEPOSIT_UNIT_CENTS
            or not 0 <= deposit_cents <= DEPOSIT_MAX_CENTS):
        raise ServiceError("a deposit is whole units of %(unit)s from 0 to %(most)s (the card holds it, SPEC.md "
                           "§3.3), not %(deposit)r: nothing changed", unit=Cents(DEPOSIT_UNIT_CENTS),
                           most=Cents(DEPOSIT_MAX_CENTS),
                           deposit=deposit_cents)
    return await store.set_desk_settings(park_id, audit=audited(
        actor.name, "park.deposit", park_id=park_id, card_type=card_type, deposit_cents=deposit_cents),
        **{column: deposit_cents})


@requires(PARK_ADMIN)
async def set_refund_rules(store, actor, minimum_cents, fee_bps, fee_fixed_cents, park_id=1):
    """Set the park's refund rules (parkcard.domain.refund_rules); return the new rows.DeskSettings."""
    try:
        rules = RefundRules(minimum_cents, fee_bps, fee_fixed_cents)
    except RefundRulesError as exc:
        raise ServiceError("%(problem)s: nothing changed", problem=exc) from None
    if rules.minimum_cents > BALANCE_MAX_CENTS:
        raise ServiceError("the minimum refund is at most what a card holds, %(most)s: nothing changed",
                           most=Cents(BALANCE_MAX_CENTS))
    if rules.fee_fixed_cents > BALANCE_MAX_CENTS:
        raise ServiceError("the fixed fee is at most what a card holds, %(most)s: nothing changed",
                           most=Cents(BALANCE_MAX_CENTS))
    return await store.set_desk_settings(park_id, audit=audited(
        actor.name, "park.refund_rules", park_id=park_id, minimum_cents=rules.minimum_cents, fee_bps=rules.fee_bps,
        fee_fixed_cents=rules.fee_fixed_cents), refund_minimum_cents=rules.minimum_cents,
        refund_fee_bps=rules.fee_bps, refund_fee_fixed_cents=rules.fee_fixed_cents)


def replacement_settings_of(settings):
    """The parkcard.domain.replacement.ReplacementSettings of the park's rows.DeskSettings."""
    return ReplacementSettings(offline_window_s=settings.offline_window_s,
                               daily_cap_cents=settings.offline_daily_cap_cents,
                               release_after_s=settings.hold_release_s or None)


async def replacement_settings(store, park_id=1):
    """The park's ReplacementSettings: what a replacement holds back and when it releases it (SPEC.md §4.13)."""
    return replacement_settings_of(await store.desk_settings(park_id))


@requires(PARK_ADMIN)
async def set_offline_rules(store, actor, offline_window_s, daily_cap_cents, hold_release_s=0, park_id=1):
    """Set how long a terminal serves offline, a card's daily cap, and the hold release delay (0: the window);
    return the new rows.DeskSettings. Every terminal takes the rules with its next config (the version moves)."""
    try:
        rules = ReplacementSettings(offline_window_s, daily_cap_cents, hold_release_s or None)
    except ReplacementError as exc:
        raise ServiceError("%(problem)s: nothing changed", problem=exc) from None
    if rules.offline_window_s > hub_frames.OFFLINE_S_MAX:
        raise ServiceError("a terminal serves offline for at most %(most)d s (a week, SPEC.md §5.3), not %(asked)d: "
                           "nothing changed", most=hub_frames.OFFLINE_S_MAX, asked=rules.offline_window_s)
    if rules.daily_cap_cents > BALANCE_MAX_CENTS:
        raise ServiceError("the daily cap is at most what a card holds, %(most)s: nothing changed",
                           most=Cents(BALANCE_MAX_CENTS))
    before = await store.desk_settings(park_id)
    after = await store.set_park_offline_rules(rules.offline_window_s, rules.daily_cap_cents, hold_release_s, park_id,
                                          audit=audited(actor.name, "park.offline_rules", park_id=park_id,
                                                        when=lambda s: s.offline_rules_version
                                                        != before.offline_rules_version,
                                                        offline_window_s=rules.offline_window_s,
                                                        daily_cap_cents=rules.daily_cap_cents,
                                                        hold_release_s=hold_release_s))
    if after.offline_rules_version != before.offline_rules_version:
        await actor.told(notify.RULES, notify.TERMINALS)
    return after
