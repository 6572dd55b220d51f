"""`parkcard report ...`: the desk's day and the park's liabilities; tickets and gates by product, gate, hour and
reason; booth staff and shifts (SPEC.md §4.14)."""

import csv
import datetime
import sys
import time

import click

from parkcard.cli.common import UserError, in_store, table, utc, when
from parkcard.domain import park_time
from parkcard.money import format_cents
from parkcard.services import occupancy, park, reports, staff_reports, tickets
from parkcard.services.sales import DAY_S

_CSV = click.option("--csv", "as_csv", is_flag=True, help="CSV on standard output (amounts in cents), for a "
                                                          "spreadsheet")
_DAY = click.option("--day", "day_text", default=None, help="the park day, YYYY-MM-DD [default: today]")


@click.group()
def report():
    """Reports over the records the hub holds (park days on the park's clock: `parkcard park timezone`)."""


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


def _emit(headers, rows, as_csv):
    """Print rows as an aligned table, or as CSV (cents as integers) when as_csv."""
    _out(as_csv, headers, rows)


def _money(cents, currency, as_csv):
    return cents if as_csv else format_cents(cents, currency)


@report.command("sales")
@click.option("--by", "by", type=click.Choice(["staff", "shift"]), required=True)
@click.option("--from", "start", required=True, help="period start (epoch seconds or ISO date, UTC), included")
@click.option("--to", "end", required=True, help="period end, excluded")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout, amounts in cents")
@click.pass_obj
def report_sales(obj, by, start, end, as_csv):
    """Booth sales per staff member or per shift (shifts opened in the period)."""
    start_s, end_s = when(start, "--from"), when(end, "--to")
    staff_sales(obj, by, start_s, end_s, as_csv)


def staff_sales(obj, by, start_s, end_s, as_csv):
    """`report sales --by staff|shift`."""
    async def fetch(storage, actor):
        currency = await storage.park_currency()
        if by == "staff":
            return currency, await staff_reports.sales_by_staff(storage, actor, start_s, end_s)
        return currency, await staff_reports.sales_by_shift(storage, actor, start_s, end_s)
    currency, rows = in_store(obj, fetch)
    m = lambda cents: _money(cents, currency, as_csv)     # noqa: E731
    if by == "staff":
        _emit(("staff", "name", "merchant", "staff card", "shifts", "sales", "sales total", "reversals",
               "reversals total", "net"),
              [(r.staff_id or "", r.name, r.merchant_id or "", r.staff_no or "", r.shifts, r.totals.sales,
                m(r.totals.sales_cents), r.totals.reversals, m(r.totals.reversals_cents), m(r.totals.net_cents()))
               for r in rows], as_csv)
        return
    _emit(("terminal", "opened seq", "staff card", "name", "opened", "closed", "sales", "sales total", "reversals",
           "reversals total", "net"),
          [(s.terminal_id, s.open_seq, s.staff_no, name, utc(s.opened_s), utc(s.closed_s) or "open", s.hub.sales,
            m(s.hub.sales_cents), s.hub.reversals, m(s.hub.reversals_cents), m(s.hub.net_cents()))
           for name, s in rows], as_csv)


@report.command("reconcile")
@click.option("--day", required=True, help="the UTC day (ISO date, e.g. 2026-07-01)")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout, amounts in cents")
@click.pass_obj
def report_reconcile(obj, day, as_csv):
    """Each booth's own shift totals (its closing shift records) against the sale records the hub holds."""
    day_s = when(day, "--day") // DAY_S * DAY_S

    async def fetch(storage, actor):
        return await storage.park_currency(), await staff_reports.reconcile(storage, actor, day_s)
    currency, result = in_store(obj, fetch)
    m = lambda cents: _money(cents, currency, as_csv)     # noqa: E731
    rows = []
    for s in result.shifts:
        t = s.terminal
        rows.append((s.terminal_id, s.open_seq, s.staff_no,
                     "%d / %s" % (t.sales, m(t.sales_cents)) if t else "not closed",
                     "%d / %s" % (s.hub.sales, m(s.hub.sales_cents)),
                     "%d / %s" % (t.reversals, m(t.reversals_cents)) if t else "not closed",
                     "%d / %s" % (s.hub.reversals, m(s.hub.reversals_cents)),
                     "ok" if t is not None and t == s.hub else "DIFFERENT"))
    _emit(("terminal", "opened seq", "staff card", "terminal sales", "hub sales", "terminal reversals",
           "hub reversals", "result"), rows, as_csv)
    if as_csv:
        return
    for d in result.differences:
        if d.what == "not_closed":
            click.echo("terminal %d shift of seq %d (staff card %d): not closed; the hub holds %d sales, %s"
                       % (d.terminal_id, d.open_seq, d.staff_no, d.hub_count, m(d.hub_cents)))
        else:
            click.echo("terminal %d shift of seq %d (staff card %d): %s differ: terminal %d / %s, hub %d / %s"
                       % (d.terminal_id, d.open_seq, d.staff_no, d.what, d.terminal_count, m(d.terminal_cents),
                          d.hub_count, m(d.hub_cents)))
    for terminal_id, t in sorted(result.unshifted.items()):
        click.echo("terminal %d: %d sales (%s) with no shift open" % (terminal_id, t.sales, m(t.sales_cents)))
    click.echo("%d shift(s), %d difference(s)" % (len(result.shifts), len(result.differences)))


_CSV_FIELDS = ("day", "group", "kind", "count", "amount_cents", "bonus_cents", "deposit_cents")


def _day_start(text):
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise UserError("--day %r is not a date like 2026-07-01" % text) from None
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp())


def _write_csv(path, header, rows):
    """The rows under header in a CSV file (amounts in cents); UserError when it cannot be written."""
    try:
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (path, exc.strerror)) from None


@report.command("desk")
@click.option("--day", required=True, help="the UTC day, e.g. 2026-07-01")
@click.option("--by", type=click.Choice(reports.DESK_GROUPS), default="operator", show_default=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="also write the rows to this CSV file (amounts in cents)")
@click.pass_obj
def report_desk(obj, day, by, csv_path):
    """Issues, top-ups, refunds, returns and losses posted at the desks on DAY: counts and amounts."""
    start_s = _day_start(day)

    async def reading(store, actor):
        return await reports.desk_day(store, actor, start_s, by), await store.park_currency()
    lines, currency = in_store(obj, reading)
    if csv_path:
        _write_csv(csv_path, _CSV_FIELDS, [(day,) + tuple(line) for line in lines])
    if not lines:
        click.echo("no desk operation was posted on %s (UTC)" % day)
        return
    table((by, "kind", "count", "amount", "bonus", "deposits"), [
        (line.group, line.kind, line.count, format_cents(line.amount_cents, currency),
         format_cents(line.bonus_cents, currency), format_cents(line.deposit_cents, currency)) for line in lines])


@report.command("liabilities")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="also write them to this CSV file (amounts in cents)")
@click.pass_obj
def report_liabilities(obj, csv_path):
    """What the park owes now: customer funds on cards and their bonus purses, deposits, pending credits."""
    async def reading(store, actor):
        return (await reports.liabilities(store, actor), await reports.bonus_purses(store, actor),
                await store.park_currency())
    owed, bonus_cents, currency = in_store(obj, reading)
    rows = [("customer funds on cards", owed.cards_cents), ("bonus purses of cards", bonus_cents),
            ("replaced cards' holds", owed.holds_cents), ("deposits held", owed.deposits_cents),
            ("pending credits", owed.pending_credits_cents), ("owed to merchants", owed.merchants_cents)]
    if csv_path:
        _write_csv(csv_path, ("liability", "amount_cents"), rows)
    table(("liability", "amount"), [(name, format_cents(cents, currency)) for name, cents in rows])
