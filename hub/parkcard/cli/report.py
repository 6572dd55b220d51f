"""`parkcard report desk|liabilities`: the desk's day per operator or desk, and what the park owes now."""

import csv
import datetime

import click

from parkcard.cli.common import UserError, in_store, table
from parkcard.money import format_cents
from parkcard.services import reports

_CSV_FIELDS = ("day", "group", "kind", "count", "amount_cents", "bonus_cents", "deposit_cents")


@click.group("report")
def report_group():
    """Reports of the desk and of the park's liabilities."""


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


@report_group.command("desk")
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


@report_group.command("liabilities")
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
