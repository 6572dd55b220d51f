"""`parkcard report sales|discounts`: booth sales by merchant, terminal, item, category or day, and the
discounts given by tier with who bore them (SPEC.md §7.5)."""

import datetime
import time

import click

from parkcard.cli.common import UserError, in_store, table, when
from parkcard.domain.sales_report import BY
from parkcard.money import format_cents
from parkcard.security.files import write_export
from parkcard.services import reports

_PERIOD = (click.option("--from", "start", default=None,
                        help="period start (epoch seconds or ISO date, UTC), included; at most 366 days before "
                             "--to [default: a day before --to]"),
           click.option("--to", "end", default=None, help="period end, excluded [default: now]"),
           click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="also write the report to this CSV"),
           click.option("--force", is_flag=True, help="overwrite the --csv file if it exists"))


def _period(fn):
    for option in reversed(_PERIOD):
        fn = option(fn)
    return fn


def _times(start, end):
    """(start_s, end_s) of --from and --to."""
    end_s = when(end, "--to") if end is not None else int(time.time()) + 1
    start_s = when(start, "--from") if start is not None else end_s - 86400
    if end_s <= start_s:
        raise UserError("--to must be after --from")
    return start_s, end_s


def _export(csv_path, text, force):
    """Write a report's CSV, never over an earlier one unless --force."""
    try:
        write_export(csv_path, text.encode(), force)
    except FileExistsError:
        raise UserError("%s already exists: pass --force to overwrite it, or another --csv" % csv_path) from None
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (csv_path, exc.strerror or exc)) from None
    click.echo("written to %s" % csv_path)


@click.group()
def report():
    """Reports on booth sales and discounts."""


@report.command("sales")
@click.option("--by", type=click.Choice(BY), required=True, help="how to group the sales")
@_period
@click.pass_obj
def report_sales(obj, by, start, end, csv_path, force):
    """Booth sales in a period: best sellers first for items and categories (from the sale lines)."""
    start_s, end_s = _times(start, end)

    async def read(s, actor):
        return await reports.booth_sales(s, actor, by, start_s, end_s), await s.park_currency()
    rows, currency = in_store(obj, read)

    def money(cents):
        return format_cents(cents, currency)
    label = (lambda r: datetime.date.fromordinal(datetime.date(1970, 1, 1).toordinal() + r.key).isoformat()) \
        if by == "day" else (lambda r: "%s %s" % (r.key, r.name))
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
    if csv_path:
        _export(csv_path, reports.sales_csv(rows, currency), force)


@report.command("discounts")
@_period
@click.pass_obj
def report_discounts(obj, start, end, csv_path, force):
    """Discounts the booth sales gave in a period, by card tier, and who bore them."""
    start_s, end_s = _times(start, end)

    async def read(s, actor):
        return await reports.discounts_given(s, actor, start_s, end_s), await s.park_currency()
    rows, currency = in_store(obj, read)
    table(("tier", "sales", "discounts", "park bore", "merchants bore"),
          [(r.tier, r.sales, format_cents(r.discount_cents, currency), format_cents(r.park_cents, currency),
            format_cents(r.merchant_cents, currency)) for r in rows])
    if not rows:
        click.echo("no discounts given from %s to %s" % (start or "a day before", end or "now"))
    if csv_path:
        _export(csv_path, reports.discounts_csv(rows, currency), force)
