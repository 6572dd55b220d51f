"""`parkcard report tickets|passages|refusals`: the park's tickets and gates by product, gate, hour and reason."""

import csv
import datetime
import sys
import time

import click

from parkcard.cli.common import UserError, in_store, table
from parkcard.domain import park_time
from parkcard.money import format_cents
from parkcard.services import occupancy, park, tickets

_CSV = click.option("--csv", "as_csv", is_flag=True, help="CSV on standard output (amounts in cents), for a "
                                                          "spreadsheet")
_DAY = click.option("--day", "day_text", default=None, help="the park day, YYYY-MM-DD [default: today]")


@click.group()
def report():
    """Reports on tickets and gates (park days on the park's clock: `parkcard park timezone`)."""


def _out(as_csv, headers, rows, csv_rows=None):
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(headers)
        out.writerows(csv_rows if csv_rows is not None else rows)
    else:
        table(headers, rows)


@report.command("tickets")
@_CSV
@click.pass_obj
def report_tickets(obj, as_csv):
    """Tickets sold and used by product, and the entries left on the count cards sold."""
    async def read(s, actor):
        return await tickets.report(s, actor), await park.currency(s, actor)
    lines, currency = in_store(obj, read)
    headers = ("product", "name", "sold", "revenue", "entries made", "entries left", "unlimited tickets")
    _out(as_csv, headers,
         [(x.product_id, x.name, x.sold, format_cents(x.revenue_cents, currency), x.entered, x.entries_left,
           x.unlimited) for x in lines],
         [(x.product_id, x.name, x.sold, x.revenue_cents, x.entered, x.entries_left, x.unlimited) for x in lines])


def _day(text, tz):
    """A park day from YYYY-MM-DD, or today's on the park's clock."""
    if text is None:
        return park_time.day_of_date(datetime.datetime.fromtimestamp(time.time(), tz).date())
    try:
        return park_time.day_of_date(datetime.date.fromisoformat(text))
    except ValueError:
        raise UserError("--day is a date YYYY-MM-DD, e.g. 2026-07-01, got %r" % text) from None


def _day_report(obj, day_text):
    async def read(s, actor):
        tz = await park.zone_of(s)
        return await occupancy.day_report(s, actor, _day(day_text, tz)), tz
    return in_store(obj, read)


@report.command("passages")
@_DAY
@_CSV
@click.pass_obj
def report_passages(obj, day_text, as_csv):
    """Entries, exits and refusals per gate and hour of one park day (from its daily reset to the next)."""
    got, tz = _day_report(obj, day_text)
    if not as_csv:
        click.echo("park day %s: %s to %s" % (park_time.date_of_day(got.day), park_time.local_text(tz, got.start_s),
                                               park_time.local_text(tz, got.end_s)))
    _out(as_csv, ("gate", "hour", "entries", "exits", "refusals"),
         [(tid, park_time.local_text(tz, hour), e, x, r) for tid, hour, e, x, r in got.per_hour])


@report.command("refusals")
@_DAY
@_CSV
@click.pass_obj
def report_refusals(obj, day_text, as_csv):
    """Gate refusals of one park day by reason, in the order a gate checks them."""
    got, _tz = _day_report(obj, day_text)
    _out(as_csv, ("reason", "refusals"), got.refusals)
