"""`parkcard shift open|show|close|report`: a cashier's shift at a desk, from the counted float to the Z report."""

import click

from parkcard.bounds import TERMINAL_ID, BoundParam
from parkcard.cli.common import amount_cents, in_park_currency, in_store, table
from parkcard.domain import park_time
from parkcard.money import format_cents
from parkcard.services import park, shifts

_DESK = click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), required=True,
                     help="the desk terminal of the drawer")


@click.group("shift")
def shift_group():
    """Cashier shifts: open with the float, every desk operation in the shift, close with the Z report."""


@shift_group.command("open")
@_DESK
@click.option("--float", "float_amount", required=True, help="the cash counted into the drawer, e.g. 500.00")
@click.pass_obj
def shift_open(obj, desk_terminal_id, float_amount):
    """Open a shift at the desk with the float counted into its drawer."""
    shift, currency = in_park_currency(obj, lambda store, actor, currency: shifts.open_shift(
        store, actor, desk_terminal_id, amount_cents(float_amount, currency, "the float")))
    click.echo("shift %d open at desk %d by %s with a float of %s" % (
        shift.shift_no, shift.desk_terminal_id, shift.opened_by, format_cents(shift.float_cents, currency)))


@shift_group.command("show")
@click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), default=None, help="only this desk")
@click.pass_obj
def shift_show(obj, desk_terminal_id):
    """The open shifts: who opened them, the float, operations so far and the cash the drawer should hold."""
    async def showing(store, actor):
        return (await shifts.open_shifts(store, actor, desk_terminal_id), await store.park_currency(),
                await park.zone_of(store))
    rows, currency, tz = in_store(obj, showing)
    if not rows:
        click.echo("no shift is open%s: open one with `parkcard shift open --desk N --float AMOUNT`"
                   % ("" if desk_terminal_id is None else " at desk %d" % desk_terminal_id))
        return
    table(("shift", "desk", "opened by", "since", "float", "operations", "pending", "cash expected"), [
        (now.shift.shift_no, now.shift.desk_terminal_id, now.shift.opened_by,
         park_time.local_text(tz, now.shift.opened_at),
         format_cents(now.shift.float_cents, currency), len(now.figures.ops), now.pending,
         format_cents(now.figures.cash_expected_cents, currency)) for now in rows])


@shift_group.command("close")
@_DESK
@click.option("--counted", required=True, help="the cash counted in the drawer now, e.g. 1234.50")
@click.pass_obj
def shift_close(obj, desk_terminal_id, counted):
    """Close the desk's shift with the cash counted: the difference is posted and the Z report printed."""
    async def closing(store, actor):
        currency = await store.park_currency()
        counted_cents = amount_cents(counted, currency, "the count")
        z_no, _z = await shifts.close_shift(store, actor, desk_terminal_id, counted_cents)
        return await shifts.z_report(store, actor, z_no), currency, await park.zone_of(store)
    (stored, shift, z), currency, tz = in_store(obj, closing)
    _print_z(stored, shift, z, currency, tz)


@shift_group.command("report")
@click.argument("z_no", type=click.IntRange(1))
@click.pass_obj
def shift_report(obj, z_no):
    """Print Z report Z_NO again, exactly as it was made at the shift's close."""
    async def reading(store, actor):
        return await shifts.z_report(store, actor, z_no), await store.park_currency(), await park.zone_of(store)
    (stored, shift, z), currency, tz = in_store(obj, reading)
    _print_z(stored, shift, z, currency, tz)


def _print_z(stored, shift, z, currency, tz):
    """The Z report as the cashier and finance read it, its times on the park's clock."""
    money = lambda cents: format_cents(cents, currency)     # noqa: E731
    click.echo("Z report %d: shift %d at desk %d, opened by %s at %s, closed by %s at %s" % (
        stored.z_no, shift.shift_no, shift.desk_terminal_id, shift.opened_by, park_time.local_text(tz, shift.opened_at),
        shift.closed_by, park_time.local_text(tz, shift.closed_at)))
    lines = [("float", "", money(z.float_cents)), ("issues", z.issues, "")]
    lines += [("  loads paid by %s" % method, total.count, money(total.cents)) for method, total in z.issue_loads]
    lines += [("top-ups", sum(t.count for _m, t in z.top_ups), "")]
    lines += [("  paid by %s" % method, total.count, money(total.cents)) for method, total in z.top_ups]
    lines += [("tickets sold", z.tickets, money(z.tickets_cents)),
              ("credits granted", z.credits, money(z.credits_cents)),
              ("bonus given", "", money(z.bonus_given_cents)),
              ("refunds paid", z.refunds, money(z.refunds_paid_cents)),
              ("returns paid", z.returns, money(z.returns_paid_cents)),
              ("lost cards replaced", z.replacements, ""),
              ("fees kept", "", money(z.fees_cents)),
              ("bonus back to the park", "", money(z.bonus_back_cents)),
              ("deposits in", "", money(z.deposits_in_cents)),
              ("deposits out", "", money(z.deposits_out_cents)),
              ("cash expected", "", money(z.cash_expected_cents)),
              ("cash counted", "", money(z.cash_counted_cents)),
              ("over (+) / short (-)", "", money(z.difference_cents))]
    table(("", "count", "amount"), lines)
