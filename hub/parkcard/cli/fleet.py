"""`parkcard terminals`, `alarms` and `quarantine`: what the fleet reports and what ingest refused."""

import asyncio
import time

import click

from protocol import frames

from parkcard.cli.common import HubNotice, acting, age, in_store, run, table, with_storage
from parkcard.ingest import fleet
from parkcard.services import monitoring
from parkcard.services import terminals as terminal_service

WATCH_INTERVAL_S = 1.0


@click.command()
@click.option("--watch", is_flag=True, help="redraw the table every second until Ctrl-C")
@click.pass_obj
def terminals(obj, watch):
    """Fleet table: online state, last seen (any frame), reported versions and health, backlog, lock state."""
    if not watch:
        _fleet_table(in_store(obj, terminal_service.fleet))
        return

    async def redraw(storage):
        actor = await acting(obj, storage, HubNotice(obj.db))
        while True:
            rows = await terminal_service.fleet(storage, actor)
            click.clear()       # in place on a terminal (nothing when the output is not one)
            _fleet_table(rows)
            await asyncio.sleep(WATCH_INTERVAL_S)

    try:
        run(with_storage(obj.db, redraw))
    except KeyboardInterrupt:
        pass    # Ctrl-C is how a watch ends


def _fleet_table(rows):
    now = time.time()
    table(("id", "name", "role", "merchant", "online", "last seen", "firmware", "cfg", "bl", "queue",
           "oldest unsynced", "heap", "uptime", "acked seq", "locked", "authorised"),
          [(t.id, t.name, frames.ROLE_NAMES.get(t.role, t.role), t.merchant_id,
            "yes" if fleet.online(t, now) else "no", age(t.last_seen), t.firmware,
            t.status_config_version, t.status_blacklist_version, t.queue_depth,
            None if t.oldest_unsynced_age_s is None else "%ds" % t.oldest_unsynced_age_s,
            t.free_heap or None,    # 0: not measured (a terminal on CPython has no gc.mem_free)
            None if t.uptime_s is None else _duration(t.uptime_s), t.acked_upto,
            "yes" if t.locked else "no", _authorised(t)) for t in rows])


def _duration(seconds):
    if seconds < 120:
        return "%ds" % seconds
    return "%dmin" % (seconds // 60) if seconds < 7200 else "%dh" % (seconds // 3600)


def _authorised(row):
    """The hub's decision, and the terminal's own report where it differs (e.g. a lock not yet received)."""
    hub = "yes" if row.authorised else "no"
    reported = row.status_authorised
    if reported is None or bool(reported) == bool(row.authorised):
        return hub
    return "%s (terminal: %s)" % (hub, "yes" if reported else "no")


def _listing(name, doc, read, headers, row):
    """A command that prints what the read service read(storage, actor) returns, one row(r) per line under headers."""
    @click.command(name, help=doc)
    @click.pass_obj
    def listing(obj):
        table(headers, [row(r) for r in in_store(obj, read)])
    return listing


alarms = _listing("alarms", "Alarms raised by ingest (clones, chain breaks, conflicts).", monitoring.alarms,
                  ("id", "kind", "card", "terminal", "seq", "when", "detail"),
                  lambda r: (r[0], r[1], r[2], r[3], r[4], age(r[6]), r[5]))
quarantine = _listing("quarantine", "Frames and records refused by ingest, with their reasons.",
                      monitoring.quarantine, ("id", "topic", "terminal", "reason", "bytes", "when", "detail"),
                      lambda r: (r[0], r[1], r[2], r[3], r[6], age(r[5]), r[4]))
