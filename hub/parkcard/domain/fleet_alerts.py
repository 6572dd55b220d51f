"""Alerts of the live fleet: what a technician should look at on a terminal, from its last status. Pure rules.

- offline while the park is open (its opening hours, minutes after local midnight; a range may cross midnight);
- a lagging queue: many records not yet uploaded, or the oldest waiting long;
- a sequence gap: the terminal counts fewer records waiting than the hub lacks after the seqs it acknowledged,
  so records between were lost before they reached the hub;
- conflicts: records of the terminal whose (terminal, seq) another record held (ingest raised them as alarms).
"""

OFFLINE_OPEN = "offline_open"
LAGGING = "lagging"
SEQ_GAP = "seq_gap"
CONFLICT = "conflict"
ALERTS = (OFFLINE_OPEN, LAGGING, SEQ_GAP, CONFLICT)

QUEUE_LAG_RECORDS = 500          # a booth's busy hour offline; more waiting is worth a look
QUEUE_LAG_AGE_S = 30 * 60        # the oldest record waiting half an hour
MINUTES_PER_DAY = 24 * 60


class OpeningHoursError(ValueError):
    """Opening hours that cannot be used; the message says what is allowed."""


def checked_hours(opens_min, closes_min):
    """(opens_min, closes_min) when both are minutes of a day and differ; OpeningHoursError otherwise."""
    for value in (opens_min, closes_min):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MINUTES_PER_DAY:
            raise OpeningHoursError("opening hours are times of day from 00:00 to 23:59")
    if opens_min == closes_min:
        raise OpeningHoursError("the park opens and closes at different times")
    return opens_min, closes_min


def is_open(hours, minute):
    """True when minute (after local midnight) is inside the opening hours (None: never said to be open)."""
    if hours is None:
        return False
    opens, closes = hours
    return opens <= minute < closes if opens < closes else minute >= opens or minute < closes


def alerts(row, online, park_open, conflicts):
    """The alerts (in ALERTS' order) of a terminals row: online now or not, the park open now, its conflicts."""
    found = []
    if park_open and not online:
        found.append(OFFLINE_OPEN)
    if (row.queue_depth or 0) >= QUEUE_LAG_RECORDS or (row.oldest_unsynced_age_s or 0) >= QUEUE_LAG_AGE_S:
        found.append(LAGGING)
    if row.last_seq is not None and row.queue_depth is not None and row.last_seq - row.queue_depth > row.acked_upto:
        found.append(SEQ_GAP)
    if conflicts:
        found.append(CONFLICT)
    return found
