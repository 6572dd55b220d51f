"""`parkcard report ...`: the desk's day and the park's liabilities; tickets and gates by product, gate, hour and
reason; booth sales by merchant, terminal, item, category, day, staff or shift, and the discounts given (SPEC.md
§4.14, §7.5)."""

import csv
import datetime
import io
import time

import click

from parkcard.cli.common import UserError, in_store, options, table, utc, when
from parkcard.domain import park_time
from parkcard.domain.sales_report import BY
from parkcard.money import format_cents
from parkcard.security.files import write_export
from parkcard.services import occupancy, park, reports, staff_reports, tickets
from parkcard.services.sales import DAY_S

STAFF_BY = ("staff", "shift")     # report sales by the booths' own staff shifts (SPEC.md §4.14)
# Every report writes its CSV one way: `--csv FILE` beside the table shown (never over an earlier file unless
# --force), or `--csv -` for the CSV alone on standard output (a pipe into a spreadsheet tool).
_csv = options(click.option("--csv", "csv_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
                            help="also write the report to this CSV file (amounts in cents); - for the CSV alone on "
                                 "standard output"),
               click.option("--force", is_flag=True, help="overwrite the --csv file if it exists"))
_DAY = click.option("--day", "day_text", default=None, help="the park day, YYYY-MM-DD [default: today]")


@click.group()
def report():
    """Reports over the records the hub holds (park days on the park's clock: `parkcard park timezone`)."""


def _to_stdout(csv_path):
    """True when the report's CSV alone goes to standard output (`--csv -`): nothing else is printed."""
    return csv_path == "-"


def _finish(csv_path, force, show, csv_text):
    """Show the report (show()) and write its CSV to csv_path when given; `--csv -`: only the CSV, on stdout."""
    if _to_stdout(csv_path):
        click.echo(csv_text, nl=False)
        return
    show()
    if csv_path:
        _export(csv_path, csv_text, force)


def _report(csv_path, force, headers, rows, csv_rows=None):
    """A report as a table (rows) and as CSV (csv_rows, amounts in cents; rows when None)."""
    _finish(csv_path, force, lambda: table(headers, rows), _csv_text(headers, rows if csv_rows is None else csv_rows))


@report.command("tickets")
@_csv
@click.pass_obj
def report_tickets(obj, csv_path, force):
    """Tickets sold and used by product, and the entries left on the count cards sold."""
    async def read(s, actor):
        return await tickets.report(s, actor), await park.currency(s, actor)
    lines, currency = in_store(obj, read)
    headers = ("product", "name", "sold", "revenue", "entries made", "entries left", "unlimited tickets")
    _report(csv_path, force, headers,
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


def _day_report(name):
    """A `report NAME [--day D] [--csv FILE]` over one park day's gate passages: fn(occupancy.DayReport, tz, csv_path,
    force) shows it."""
    def command(fn):
        @report.command(name, help=fn.__doc__)
        @_DAY
        @_csv
        @click.pass_obj
        def run(obj, day_text, csv_path, force):
            async def read(s, actor):
                tz = await park.zone_of(s)
                return await occupancy.day_report(s, actor, _day(day_text, tz)), tz
            fn(*in_store(obj, read), csv_path, force)
        return run
    return command


@_day_report("passages")
def report_passages(got, tz, csv_path, force):
    """Entries, exits and refusals per gate and hour of one park day (from its daily reset to the next)."""
    if not _to_stdout(csv_path):
        click.echo("park day %s: %s to %s" % (park_time.date_of_day(got.day), park_time.local_text(tz, got.start_s),
                                               park_time.local_text(tz, got.end_s)))
    _report(csv_path, force, ("gate", "hour", "entries", "exits", "refusals"),
            [(tid, park_time.local_text(tz, hour), e, x, r) for tid, hour, e, x, r in got.per_hour])


@_day_report("refusals")
def report_refusals(got, _tz, csv_path, force):
    """Gate refusals of one park day by reason, in the order a gate checks them."""
    _report(csv_path, force, ("reason", "refusals"), got.refusals)


def _money(cents, currency, as_csv):
    return cents if as_csv else format_cents(cents, currency)


def staff_sales(obj, by, start_s, end_s, as_csv):
    """(headers, rows) of `report sales --by staff|shift`: amounts in the park's currency, or cents when as_csv."""
    async def fetch(storage, actor):
        currency = await storage.park_currency()
        if by == "staff":
            return currency, await staff_reports.sales_by_staff(storage, actor, start_s, end_s)
        return currency, await staff_reports.sales_by_shift(storage, actor, start_s, end_s)
    currency, rows = in_store(obj, fetch)
    m = lambda cents: _money(cents, currency, as_csv)     # noqa: E731
    if by == "staff":
        return (("staff", "name", "merchant", "staff card", "shifts", "sales", "sales total", "reversals",
                 "reversals total", "net"),
                [(r.staff_id or "", r.name, r.merchant_id or "", r.staff_no or "", r.shifts, r.totals.sales,
                  m(r.totals.sales_cents), r.totals.reversals, m(r.totals.reversals_cents), m(r.totals.net_cents()))
                 for r in rows])
    return (("terminal", "opened seq", "staff card", "name", "opened", "closed", "sales", "sales total", "reversals",
             "reversals total", "net"),
            [(s.terminal_id, s.open_seq, s.staff_no, name, utc(s.opened_s), utc(s.closed_s) or "open", s.hub.sales,
              m(s.hub.sales_cents), s.hub.reversals, m(s.hub.reversals_cents), m(s.hub.net_cents()))
             for name, s in rows])


@report.command("reconcile")
@click.option("--day", required=True, help="the UTC day (ISO date, e.g. 2026-07-01)")
@_csv
@click.pass_obj
def report_reconcile(obj, day, csv_path, force):
    """Each booth's own shift totals (its closing shift records) against the sale records the hub holds."""
    day_s = when(day, "--day") // DAY_S * DAY_S

    async def fetch(storage, actor):
        return await storage.park_currency(), await staff_reports.reconcile(storage, actor, day_s)
    currency, result = in_store(obj, fetch)

    def rows(as_csv):
        m = lambda cents: _money(cents, currency, as_csv)     # noqa: E731
        out = []
        for s in result.shifts:
            t = s.terminal
            out.append((s.terminal_id, s.open_seq, s.staff_no,
                        "%d / %s" % (t.sales, m(t.sales_cents)) if t else "not closed",
                        "%d / %s" % (s.hub.sales, m(s.hub.sales_cents)),
                        "%d / %s" % (t.reversals, m(t.reversals_cents)) if t else "not closed",
                        "%d / %s" % (s.hub.reversals, m(s.hub.reversals_cents)),
                        "ok" if t is not None and t == s.hub else "DIFFERENT"))
        return out
    _report(csv_path, force, ("terminal", "opened seq", "staff card", "terminal sales", "hub sales",
                              "terminal reversals", "hub reversals", "result"), rows(False), rows(True))
    if _to_stdout(csv_path):
        return
    m = lambda cents: _money(cents, currency, False)     # noqa: E731
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


_DESK_CSV = ("day", "group", "kind", "count", "amount_cents", "bonus_cents", "deposit_cents")


@report.command("desk")
@click.option("--day", "day_text", default=None,
              help="the park day, YYYY-MM-DD, on the park's clock from its daily reset [default: today]")
@click.option("--by", type=click.Choice(reports.DESK_GROUPS), default="operator", show_default=True)
@_csv
@click.pass_obj
def report_desk(obj, day_text, by, csv_path, force):
    """Issues, top-ups, refunds, returns and losses posted at the desks on a park day: counts and amounts."""
    async def reading(store, actor):
        tz = await park.zone_of(store)
        return await reports.desk_day(store, actor, _day(day_text, tz), by), await store.park_currency(), tz
    (day, lines), currency, tz = in_store(obj, reading)
    date = park_time.date_of_day(day.day).isoformat()

    def show():
        click.echo("park day %s: %s to %s" % (date, park_time.local_text(tz, day.start_s),
                                               park_time.local_text(tz, day.end_s)))
        if not lines:
            click.echo("no desk operation was posted on %s" % date)
            return
        table((by, "kind", "count", "amount", "bonus", "deposits"), [
            (line.group, line.kind, line.count, format_cents(line.amount_cents, currency),
             format_cents(line.bonus_cents, currency), format_cents(line.deposit_cents, currency)) for line in lines])
    _finish(csv_path, force, show, _csv_text(_DESK_CSV, [(date,) + tuple(line) for line in lines]))


@report.command("liabilities")
@_csv
@click.pass_obj
def report_liabilities(obj, csv_path, force):
    """What the park owes now: customer funds on cards and their bonus purses, deposits, pending credits."""
    async def reading(store, actor):
        return (await reports.liabilities(store, actor), await reports.bonus_purses(store, actor),
                await store.park_currency())
    owed, bonus_cents, currency = in_store(obj, reading)
    rows = [("customer funds on cards", owed.cards_cents), ("bonus purses of cards", bonus_cents),
            ("replaced cards' holds", owed.holds_cents), ("deposits held", owed.deposits_cents),
            ("pending credits", owed.pending_credits_cents), ("owed to merchants", owed.merchants_cents)]
    _finish(csv_path, force, lambda: table(("liability", "amount"), [(name, format_cents(cents, currency))
                                                                      for name, cents in rows]),
            _csv_text(("liability", "amount_cents"), rows))


_period = options(click.option("--from", "start", default=None,
                               help="period start (epoch seconds or ISO date, UTC), included; at most 366 days before "
                                    "--to [default: a day before --to]"),
                  click.option("--to", "end", default=None, help="period end, excluded [default: now]"), _csv)


def _times(start, end):
    """(start_s, end_s) of --from and --to."""
    end_s = when(end, "--to") if end is not None else int(time.time()) + 1
    start_s = when(start, "--from") if start is not None else end_s - 86400
    if end_s <= start_s:
        raise UserError("--to must be after --from")
    return start_s, end_s


def _csv_text(headers, rows):
    """CSV text of rows under headers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def _export(csv_path, text, force):
    """Write a report's CSV, never over an earlier one unless --force."""
    try:
        write_export(csv_path, text.encode(), force)
    except FileExistsError:
        raise UserError("%s already exists: pass --force to overwrite it, or another --csv" % csv_path) from None
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (csv_path, exc.strerror or exc)) from None
    click.echo("written to %s" % csv_path)


@report.command("sales")
@click.option("--by", type=click.Choice(BY + STAFF_BY), required=True, help="how to group the sales")
@_period
@click.pass_obj
def report_sales(obj, by, start, end, csv_path, force):
    """Booth sales in a period: best sellers first for items and categories (from the sale lines)."""
    start_s, end_s = _times(start, end)
    if by in STAFF_BY:
        headers, rows = staff_sales(obj, by, start_s, end_s, False)
        _report(csv_path, force, headers, rows, staff_sales(obj, by, start_s, end_s, True)[1])
        return

    async def read(s, actor):
        return await reports.booth_sales(s, actor, by, start_s, end_s), await s.park_currency()
    rows, currency = in_store(obj, read)

    def money(cents):
        return format_cents(cents, currency)
    label = (lambda r: datetime.date.fromordinal(datetime.date(1970, 1, 1).toordinal() + r.key).isoformat()) \
        if by == "day" else (lambda r: "%s %s" % (r.key, r.name))

    def show():
        if by in ("item", "category"):
            table((by, "sales", "quantity", "list", "line discounts", "paid"),
                  [(label(r), r.sales, r.quantity, money(r.list_cents), money(r.discount_cents), money(r.paid_cents))
                   for r in rows])
        else:
            table((by, "sales", "list", "discounts", "paid", "refunds"),
                  [(label(r), r.sales, money(r.list_cents), money(r.discount_cents), money(r.paid_cents),
                    money(r.refunds_cents)) for r in rows])
        if not rows:
            click.echo("no booth sales from %s to %s" % (start or "a day before", end or "now"))
    _finish(csv_path, force, show, reports.sales_csv(rows, currency))


@report.command("discounts")
@_period
@click.pass_obj
def report_discounts(obj, start, end, csv_path, force):
    """Discounts the booth sales gave in a period, by card tier, and who bore them."""
    start_s, end_s = _times(start, end)

    async def read(s, actor):
        return await reports.discounts_given(s, actor, start_s, end_s), await s.park_currency()
    rows, currency = in_store(obj, read)

    def show():
        table(("tier", "sales", "discounts", "park bore", "merchants bore"),
              [(r.tier, r.sales, format_cents(r.discount_cents, currency), format_cents(r.park_cents, currency),
                format_cents(r.merchant_cents, currency)) for r in rows])
        if not rows:
            click.echo("no discounts given from %s to %s" % (start or "a day before", end or "now"))
    _finish(csv_path, force, show, reports.discounts_csv(rows, currency))
