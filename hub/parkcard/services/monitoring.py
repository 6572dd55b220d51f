"""What ingest flagged and refused, for people and third parties: alarms, the quarantine, the fleet's alerts."""

import datetime
from collections import Counter

from parkcard.domain import fleet_alerts as alert_rules
from parkcard.ingest import fleet
from parkcard.services.privileges import FLEET_READ, requires


@requires(FLEET_READ)
async def alarms(store, actor):
    """Every alarm raised (clones, chain breaks, conflicts, storage outages), by id."""
    return await store.alarms()


@requires(FLEET_READ)
async def quarantine(store, actor):
    """Every frame and record ingest refused, with its reason, by id."""
    return await store.quarantined()


@requires(FLEET_READ)
async def quarantine_summary(store, actor):
    """{reason: count} of the quarantine, and its newest entry's time (None when empty)."""
    rows = await store.quarantined()
    return dict(Counter(str(r.reason) for r in rows)), max((r.at for r in rows), default=None)


@requires(FLEET_READ)
async def fleet_gauges(store, actor, now_s):
    """What /metrics reads of the store: terminals registered and online, backlog per terminal, alarms and
    quarantine counts (a dict)."""
    rows = await store.terminals()
    return dict(registered=len(rows), online=sum(fleet.online(t, now_s) for t in rows),
                backlog=[(t.id, t.queue_depth or 0, t.oldest_unsynced_age_s or 0) for t in rows],
                alarms=dict(Counter(a.kind for a in await store.alarms())),
                quarantine=dict(Counter(str(q.reason) for q in await store.quarantined())))


@requires(FLEET_READ)
async def fleet_alerts(store, actor, now_s, zone, terminals=None, alarms=None):
    """{terminal_id: [alert]} of every terminal (parkcard.domain.fleet_alerts), the park's hours read in zone.

    terminals, alarms: the rows the caller has just read (the live page's), else they are read here.
    """
    hours = await store.park_opening_hours()
    local = datetime.datetime.fromtimestamp(now_s, zone)
    park_open = alert_rules.is_open(hours, local.hour * 60 + local.minute)
    alarms = await store.alarms() if alarms is None else alarms
    conflicts = Counter(a.terminal_id for a in alarms if a.kind == alert_rules.CONFLICT)
    return {t.id: alert_rules.alerts(t, fleet.online(t, now_s), park_open, conflicts[t.id])
            for t in (await store.terminals() if terminals is None else terminals)}
