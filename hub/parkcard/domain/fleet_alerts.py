"""Alerts of the live fleet: what a technician should look at on a terminal, from its last status. Pure rules.

- offline while the park is open (its opening hours, minutes after local midnight; a range may cross midnight);
- a lagging queue: many records not yet uploaded, or the oldest waiting long;
- a sequence gap: the terminal counts fewer records waiting than the hub lacks after the seqs it acknowledged,
  so records between were lost before they reached the hub;
- conflicts: records of the terminal whose (terminal, seq) another record held (ingest raised them as alarms);
- clock skew: the time the terminal put on its last status frame (SPEC.md §5.2 header time_s) differs from the
  hub's when the frame came by more than CLOCK_SKEW_MAX_S; its records' times are then not to be trusted;
- a reboot loop: the boot counter of its status frames (SPEC.md §5.3 `boot`) went up REBOOT_LOOP_BOOTS times or
  more within REBOOT_LOOP_WINDOW_S: it crashes or loses power over and over.
"""

from parkcard.domain.explained import Explained

OFFLINE_OPEN = "offline_open"
LAGGING = "lagging"
SEQ_GAP = "seq_gap"
CONFLICT = "conflict"
CLOCK_SKEW = "clock_skew"
REBOOT_LOOP = "reboot_loop"
ALERTS = (OFFLINE_OPEN, LAGGING, SEQ_GAP, CONFLICT, CLOCK_SKEW, REBOOT_LOOP)

QUEUE_LAG_RECORDS = 500          # a booth's busy hour offline; more waiting is worth a look
QUEUE_LAG_AGE_S = 30 * 60        # the oldest record waiting half an hour
MINUTES_PER_DAY = 24 * 60
CLOCK_SKEW_MAX_S = 120           # a status is in flight for seconds; minutes apart is a clock that is wrong
REBOOT_LOOP_BOOTS = 3            # boots counted after the first of a window
REBOOT_LOOP_WINDOW_S = 15 * 60


class OpeningHoursError(Explained):
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


def clock_skew_s(terminal_time_s, hub_time_s):
    """How far ahead (positive) or behind the terminal's clock was when its frame came, in whole seconds."""
    return int(terminal_time_s) - int(hub_time_s)


def boot_window(window, boot, now_s):
    """The boot window after a status of boot counter `boot` at now_s: (started_at, first boot counter).

    window is the stored one, (None, None) when none: a window older than REBOOT_LOOP_WINDOW_S, or a counter
    that went back (a terminal wiped), starts a new one at this status.
    """
    started_at, first = window
    if started_at is None or first is None or now_s - started_at > REBOOT_LOOP_WINDOW_S or boot < first:
        return now_s, boot
    return started_at, first


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
    if row.clock_skew_s is not None and abs(row.clock_skew_s) > CLOCK_SKEW_MAX_S:
        found.append(CLOCK_SKEW)
    if (row.boot_window_first is not None and row.status_boot is not None
            and row.status_boot - row.boot_window_first >= REBOOT_LOOP_BOOTS):
        found.append(REBOOT_LOOP)
    return found
