"""`parkcard gate set|list`, `parkcard occupancy [--watch]`, `parkcard gate reset`, `parkcard gate check`."""

import csv
import sys
import time

import click

from parkcard.cli.common import UserError, in_store, table
from parkcard.domain import park_time, tickets as rules
from parkcard.services import gates, occupancy as occ, park

WATCH_EVERY_S = 5


@click.group()
def gate():
    """Gate terminals: direction, area, re-entry rule, daily reset and the ticket products they accept."""


@gate.command("set")
@click.option("--terminal", "terminal_id", type=int, required=True)
@click.option("--direction", type=click.Choice(sorted(gates.DIRECTIONS_BY_NAME)), required=True)
@click.option("--area", type=int, default=0, show_default=True, help="0: the whole park")
@click.option("--reentry", type=click.Choice(sorted(gates.REENTRY_BY_NAME)), default="after-exit", show_default=True)
@click.option("--reentry-min", type=int, default=0, show_default=True, help="minutes, for --reentry after-minutes")
@click.option("--reset", "reset_hhmm", default="00:00", show_default=True,
              help="daily reset, HH:MM on the park's clock (`parkcard park timezone`)")
@click.option("--product", "products", type=int, multiple=True, required=True, help="a ticket product id (repeat)")
@click.pass_obj
def gate_set(obj, terminal_id, direction, area, reentry, reentry_min, reset_hhmm, products):
    """Configure a gate; it takes the new config at its next sync (at once through a running hub)."""
    reset_s = _seconds_of_day(reset_hhmm)
    version = in_store(obj, lambda s, actor: gates.configure(s, actor, terminal_id, direction, area, reentry,
                                                             reentry_min, reset_s, products))
    click.echo("gate %d: %s, area %d, re-entry %s, reset %s park time, products %s (gate config version %d)"
               % (terminal_id, direction, area, reentry, reset_hhmm, ", ".join(map(str, sorted(set(products)))),
                  version))


@gate.command("list")
@click.pass_obj
def gate_list(obj):
    """Every gate's config."""
    rows = in_store(obj, gates.listing)
    table(("terminal", "direction", "area", "re-entry", "reset (park time)", "products", "version"),
          [(g.terminal_id, rules.DIRECTION_NAMES[g.direction], g.area or "park",
            rules.REENTRY_NAMES[g.reentry] + (" %d min" % g.reentry_min if g.reentry_min else ""),
            "%02d:%02d" % divmod(g.reset_s // 60, 60), ", ".join(map(str, g.products)), g.version) for g in rows])


@gate.command("reset")
@click.option("--area", "areas", type=int, multiple=True, required=True, help="an area to reset (repeat)")
@click.pass_obj
def gate_reset(obj, areas):
    """The nightly reset: the areas' occupancy counts again from now (everyone counts as gone)."""
    now = int(time.time())

    async def reset(s, actor):
        await occ.reset(s, actor, areas, now)
        return await park.zone_of(s)
    tz = in_store(obj, reset)
    click.echo("areas %s: occupancy counts again from %s" % (", ".join(map(str, sorted(set(areas)))),
                                                              park_time.local_text(tz, now)))


@gate.command("check")
@click.pass_obj
def gate_check(obj):
    """Check that occupancy counts exactly the applied passage records' own bytes and every timed exit's charge is
    booked; exit 1 when not. Passages still uncertain are counted, not problems."""
    report = in_store(obj, occ.check)
    for problem in report.problems:
        click.echo(problem)
    click.echo("%d passage records, %s" % (report.records, "occupancy agrees" if report.ok else
                                           "%d problems" % len(report.problems)))
    if report.uncertain:
        click.echo("%d passages uncertain: counted once their card's next passage at any gate settles them "
                   "(SPEC.md §4.17)" % report.uncertain)
    if not report.ok:
        sys.exit(1)


@click.command("occupancy")
@click.option("--watch", is_flag=True, help="show it again every %d s until interrupted" % WATCH_EVERY_S)
@click.option("--csv", "as_csv", is_flag=True, help="CSV: area, inside, last reset")
@click.option("--hours", type=int, default=0, help="also passages per gate and hour, and refusals, for this long")
@click.pass_obj
def occupancy(obj, watch, as_csv, hours):
    """Who is inside, per area and for the park (entries − exits since each area's reset)."""
    while True:
        _show(obj, as_csv, hours)
        if not watch:
            return
        time.sleep(WATCH_EVERY_S)


def _show(obj, as_csv, hours):
    since = int(time.time()) - hours * 3600

    async def read(s, actor):
        return (await occ.occupancy(s, actor), hours and await occ.passages_per_hour(s, actor, since),
                hours and await occ.refusals(s, actor, since), await park.zone_of(s))
    now, per_hour, refused, tz = in_store(obj, read)
    areas = sorted(set(now.areas) | set(now.resets))
    rows = [(area if area else "park gates", now.areas.get(area, 0),
             park_time.local_text(tz, now.resets[area]) if area in now.resets else "never") for area in areas]
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(("area", "inside", "last reset"))
        out.writerows(rows)
        return
    table(("area", "inside", "last reset"), rows + [("total", now.total, "")])
    if hours:
        table(("gate", "hour (park time)", "entries", "exits", "refusals"),
              [(tid, park_time.local_text(tz, hour), e, x, r) for tid, hour, e, x, r in per_hour])
        table(("refusal", "count"), refused)


def _seconds_of_day(hhmm):
    try:
        hours, minutes = (int(p) for p in hhmm.split(":"))
    except ValueError:
        raise UserError("--reset is HH:MM, e.g. 04:30") from None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise UserError("--reset is HH:MM between 00:00 and 23:59")
    return hours * 3600 + minutes * 60
