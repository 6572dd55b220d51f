"""Terminal status frames (retained, parkcard/term-<id>/status) -> the terminals table.

Ordering (SPEC.md §5.3): by the status's boot counter, not the frame counter
(terminals send status with counter 0: the last will is composed at connect
time and published later). A status of an older boot never overrides a newer
boot; within the current boot an offline status (online=0, the last will)
always applies, and an online one applies unless its uptime_s is below the
last online report's (uptime never goes back within a boot).
"""

import logging
from collections import Counter

from protocol import frames, hub_frames
from protocol.errors import ProtocolError

from parkcard.domain import fleet_alerts
from parkcard.ingest.registry import Rejected

log = logging.getLogger("parkcard.ingest.fleet")

# A terminal sends a frame at least every frames.STATUS_INTERVAL_S while connected: silent for two
# intervals, it missed a report and counts as offline even if no last will came (a clean
# DISCONNECT sends none, and the broker may be down).
SILENT_OFFLINE_S = 2 * frames.STATUS_INTERVAL_S


def online(row, now_s):
    """True when a terminals row says online (no last will since) and it was heard from within SILENT_OFFLINE_S."""
    return bool(row.online) and row.last_seen is not None and now_s - row.last_seen <= SILENT_OFFLINE_S


def supersedes(status, boot, uptime_s):
    """True when a status replaces the stored (boot, uptime_s of the last online report)."""
    if boot is None or status.boot > boot:
        return True
    if status.boot < boot:
        return False
    return status.online == 0 or uptime_s is None or status.uptime_s >= uptime_s


class Fleet:
    """Applies status frames; one transaction per batch."""

    def __init__(self, storage, registry):
        self.storage = storage
        self.registry = registry
        self.stats = Counter()

    async def apply(self, messages):
        """Verify and apply [(topic, payload)] from parkcard/+/status; return the number applied."""
        staged = {}
        windows = {}        # terminal id -> its boot window after this batch
        quarantined = []

        def run(tx):
            for topic, payload in messages:
                if not payload:
                    continue  # a cleared retained message
                try:
                    state, frame = self.registry.verify(topic, payload, "status")
                    if frame.type != frames.T_STATUS:
                        raise Rejected("unexpected_type", "frame type 0x%02x on a status topic" % frame.type,
                                       state.id)
                    status = hub_frames.parse_status(frame.body)
                except (Rejected, ProtocolError) as exc:
                    tid = getattr(exc, "terminal_id", None)
                    tx.add_quarantine(payload, topic, tid, exc.reason, str(exc))
                    quarantined.append((exc.reason, tid))
                    continue
                boot, uptime_s = staged.get(state.id, (state.status_boot, state.status_uptime_s))
                if not supersedes(status, boot, uptime_s):
                    self.stats["status_stale"] += 1
                    continue
                if not status.online:   # the last will: only the fact that it went away
                    kept = uptime_s if status.boot == boot else None
                    staged[state.id] = (status.boot, kept)
                    tx.update_terminal(state.id, status_boot=status.boot, status_counter=kept, online=0,
                                       status_at=tx.now)
                    continue
                staged[state.id] = (status.boot, status.uptime_s)
                started_at, first = fleet_alerts.boot_window(windows.get(state.id, state.boot_window), status.boot,
                                                             tx.now)
                windows[state.id] = (started_at, first)
                tx.update_terminal(
                    state.id, clock_skew_s=fleet_alerts.clock_skew_s(frame.time_s, tx.now), boot_window_at=started_at,
                    boot_window_first=first)
                tx.update_terminal(
                    state.id, status_boot=status.boot, status_counter=status.uptime_s, online=status.online,
                    firmware=status.firmware.decode("ascii", "replace"), status_role=status.role,
                    status_config_version=status.config_version, status_blacklist_version=status.blacklist_version,
                    queue_depth=status.queue_depth, oldest_unsynced_age_s=status.oldest_unsynced_age_s,
                    free_heap=status.free_heap, uptime_s=status.uptime_s, last_seq=status.last_seq,
                    status_authorised=status.authorised, status_at=tx.now, last_seen=tx.now)
            return len(staged)

        applied = await self.storage.write(run)
        for tid, (boot, uptime_s) in staged.items():
            state = self.registry.get(tid)
            state.status_boot, state.status_uptime_s = boot, uptime_s
            state.boot_window = windows.get(tid, state.boot_window)
        for reason, tid in quarantined:
            self.stats["quarantined." + reason] += 1
            log.warning("event=quarantine topic=status reason=%s terminal=%s", reason, tid)
        self.stats["status_applied"] += applied
        return applied
