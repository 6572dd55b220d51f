"""`parkcard staff add|list|card`: a merchant's staff members and their staff cards, written at a desk."""

import click

from parkcard.bounds import MERCHANT_ID, TERMINAL_ID, BoundParam, NameParam
from parkcard.cli.card import _OP_ID, _WAIT, _run_at_desk
from parkcard.cli.common import in_store, table, utc
from parkcard.services import staff as staff_service


@click.group("staff")
def staff_group():
    """Staff of the booths: the members whose staff cards open and close shifts."""


@staff_group.command("add")
@click.option("--name", type=NameParam(), required=True)
@click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.pass_obj
def staff_add(obj, name, merchant_id):
    """Add a staff member to a merchant; `staff card` then writes their staff card at a desk."""
    member = in_store(obj, lambda s, actor: staff_service.add(s, actor, name, merchant_id))
    click.echo("staff %d %s of merchant %d: issue the staff card with `parkcard staff card %d --desk N`"
               % (member.id, member.name, merchant_id, member.id))


@staff_group.command("list")
@click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), default=None, help="one merchant's staff")
@click.pass_obj
def staff_list(obj, merchant_id):
    """Every staff member: id, name, merchant, staff card."""
    rows = in_store(obj, lambda s, actor: staff_service.listing(s, actor, merchant_id))
    table(("id", "name", "merchant", "staff card", "added", "by"),
          [(m.id, m.name, m.merchant_id, m.card_no or "none", utc(m.created_at), m.created_by) for m in rows])


@staff_group.command("require-shift")
@click.option("--terminal", "terminal_id", type=BoundParam(TERMINAL_ID), required=True, help="the booth")
@click.option("--off", is_flag=True, help="take sales with no shift open again")
@click.pass_obj
def staff_require_shift(obj, terminal_id, off):
    """Make a booth refuse sales while no staff shift is open (sent with its config)."""
    before, after = in_store(obj, lambda s, actor: staff_service.require_shift(s, actor, terminal_id, not off))
    said = "refuses sales with no shift open" if after else "takes sales with no shift open"
    if before == after:
        click.echo("terminal %d already %s: nothing changed" % (terminal_id, said))
        return
    click.echo("terminal %d %s from its next config (sent at its next sync)" % (terminal_id, said))


@staff_group.command("card")
@click.argument("staff_id", type=click.IntRange(1))
@click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), required=True,
              help="the desk terminal the stock card lies on")
@_OP_ID
@_WAIT
@click.pass_obj
def staff_card(obj, staff_id, desk_terminal_id, op_id, wait_s):
    """Issue the stock card on the desk as STAFF_ID's staff card (no value on it)."""
    request, done, _currency = _run_at_desk(obj, "staff_card", desk_terminal_id, op_id, wait_s, staff_id=staff_id)
    click.echo("staff card %d issued to staff %d: tap it on a booth of its merchant to open a shift [operation %s]"
               % (done["card_no"], staff_id, request.op_id))
