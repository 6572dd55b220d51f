"""The park day of an epoch time, from the park's UTC offset and its next change (SPEC.md §3.11, §5.8, §5.11).

Its own small module: a gate (protocol/ticket.py) and a booth (terminal/shift.py) count park days offline by
it, and a booth has no heap for the ticket code.
"""

from protocol.card import day_of

UTC_OFFSET_MAX_S = 18 * 3600      # no zone is further from UTC


def park_day(time_s, reset_s, utc_offset_s=0, next_change_s=0, next_offset_s=0):
    """The park day (days since epoch) of an epoch time in a zone given as a gate's config gives it (SPEC.md §3.11).

    The day turns when the local wall clock first reaches reset_s after midnight. Past the offset's change the
    day never goes back (an autumn hour that repeats the reset time does not reopen yesterday), and a reset
    time a spring change skips turns the day at the change."""
    if next_change_s and time_s >= next_change_s:
        before = day_of(next_change_s - 1 + utc_offset_s - reset_s)
        return max(before, day_of(time_s + next_offset_s - reset_s))
    return day_of(time_s + utc_offset_s - reset_s)


def zone_ok(offset_s, change_s, next_offset_s):
    """True when a UTC offset, its next change and the offset after it are in range (SPEC.md §5.8)."""
    return (-UTC_OFFSET_MAX_S <= offset_s <= UTC_OFFSET_MAX_S and -UTC_OFFSET_MAX_S <= next_offset_s <= UTC_OFFSET_MAX_S
            and 0 <= change_s <= 0xFFFFFFFF and (change_s or next_offset_s == offset_s))
