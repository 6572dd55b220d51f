"""The park's time zone and its days: pure, no I/O (SPEC.md §3.11, §5.8).

A park day starts when the park's wall clock first reaches its daily reset
(local midnight by default), whatever the DST rules do to that hour. A gate
computes it offline from three numbers the hub sends in its config (the UTC
offset now, the instant it next changes and the offset after:
protocol.ticket.park_day); the hub computes every park day, ticket date and
reset instant with that same function, fed from zoneinfo, so a gate and the
hub never disagree on which day a passage belongs to.
"""

import datetime
import zoneinfo

from protocol import card, ticket as t

from parkcard.domain.explained import Explained

DEFAULT_TIME_ZONE = "UTC"
CHANGE_HORIZON_DAYS = 400    # how far ahead the next offset change is looked for: past it, "no change known"
# The zone is read this long before the instant asked about, so that a change just before it is seen as one:
# zones change their offset at most twice a year, never twice within two days.
LOOKBACK_S = 2 * card.SECONDS_PER_DAY


class TimeZoneError(Explained):
    """Not an IANA time zone name this machine knows."""


def zone(name):
    """The ZoneInfo of an IANA name; TimeZoneError with what to give instead."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise TimeZoneError("%(name)r is not a time zone this machine knows: give an IANA name such as "
                            "Asia/Shanghai, Europe/Berlin or UTC", name=name) from None


def offset_s(tz, time_s):
    """The zone's UTC offset in seconds at an epoch time."""
    return int(datetime.datetime.fromtimestamp(time_s, tz).utcoffset().total_seconds())


def zone_fields(tz, at_s):
    """(utc_offset_s, next_change_s, next_offset_s) of the zone at at_s, as a gate's config carries them.

    next_change_s is the first second with another offset within CHANGE_HORIZON_DAYS, 0 (and the same offset)
    when there is none: found day by day, then to the second by halving."""
    now = offset_s(tz, at_s)
    step_s = card.SECONDS_PER_DAY
    low = at_s
    for _ in range(CHANGE_HORIZON_DAYS):
        high = low + step_s
        if offset_s(tz, high) != now:
            while high - low > 1:        # offset(low) == now != offset(high)
                mid = (low + high) // 2
                if offset_s(tz, mid) == now:
                    low = mid
                else:
                    high = mid
            return now, high, offset_s(tz, high)
        low = high
    return now, 0, now


def park_day(tz, reset_s, time_s):
    """The park day (days since epoch) of an epoch time, exactly as a gate configured now computes it."""
    return t.park_day(time_s, reset_s, *zone_fields(tz, time_s - LOOKBACK_S))


def day_start_s(tz, reset_s, day):
    """The first epoch second of park day `day` (its reset instant)."""
    guess = day * card.SECONDS_PER_DAY + reset_s - offset_s(tz, day * card.SECONDS_PER_DAY)
    fields = zone_fields(tz, guess - LOOKBACK_S)
    low, high = guess - card.SECONDS_PER_DAY, guess + card.SECONDS_PER_DAY   # park_day(low) < day <= park_day(high)
    while high - low > 1:
        mid = (low + high) // 2
        if t.park_day(mid, reset_s, *fields) >= day:
            high = mid
        else:
            low = mid
    return high


def day_bounds(tz, reset_s, day):
    """[start, end) epoch seconds of a park day: 23, 24 or 25 hours long."""
    return day_start_s(tz, reset_s, day), day_start_s(tz, reset_s, day + 1)


def day_of_date(date):
    """The park day number of a calendar date (days since 1970-01-01)."""
    return (date - datetime.date(1970, 1, 1)).days


def date_of_day(day):
    """The calendar date of a park day number."""
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=day)


def local_text(tz, time_s, fmt="%Y-%m-%d %H:%M %Z"):
    """An epoch time as the park's wall clock shows it."""
    return datetime.datetime.fromtimestamp(time_s, tz).strftime(fmt)


def due_resets(area_resets_s, last_resets, tz, now_s):
    """{area: reset instant} of the areas whose nightly reset is due and not yet recorded.

    area_resets_s: {area: its daily reset, seconds after local midnight}; last_resets: {area: epoch s of its
    last recorded reset}. An area is due once the current park day has begun (its reset instant ≤ now) and its
    last reset is older than that instant; a hub that was down at the reset catches up with that same instant."""
    due = {}
    for area, reset_s in sorted(area_resets_s.items()):
        at_s = day_start_s(tz, reset_s, park_day(tz, reset_s, now_s))
        if last_resets.get(area, -1) < at_s <= now_s:
            due[area] = at_s
    return due
