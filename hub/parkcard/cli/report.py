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
        try:
            with open(csv_path, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(_CSV_FIELDS)
                writer.writerows((day,) + tuple(line) for line in lines)
        except OSError as exc:
            raise UserError("cannot write %s: %s" % (csv_path, exc.strerror)) from None
    if not lines:
        click.echo("no desk operation was posted on %s (UTC)" % day)
        return
    table((by, "kind", "count", "amount", "bonus", "deposits"), [
        (line.group, line.kind, line.count, format_cents(line.amount_cents, currency),
         format_cents(line.bonus_cents, currency), format_cents(line.deposit_cents, currency)) for line in lines])


@report_group.command("liabilities")
@click.pass_obj
def report_liabilities(obj):
    """What the park owes now: customer funds on cards and their bonus purses, deposits, pending credits."""
    async def reading(store, actor):
        return (await reports.liabilities(store, actor), await reports.bonus_purses(store, actor),
                await store.park_currency())
    owed, bonus_cents, currency = in_store(obj, reading)
    table(("liability", "amount"), [
        ("customer funds on cards", format_cents(owed.cards_cents, currency)),
        ("bonus purses of cards", format_cents(bonus_cents, currency)),
        ("replaced cards' holds", format_cents(owed.holds_cents, currency)),
        ("deposits held", format_cents(owed.deposits_cents, currency)),
        ("pending credits", format_cents(owed.pending_credits_cents, currency)),
        ("owed to merchants", format_cents(owed.merchants_cents, currency)),
    ])
