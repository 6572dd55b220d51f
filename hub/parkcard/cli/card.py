"""`parkcard card stock|issue|top-up|refund|return|wipe|show|pending`: the front desk, carried out by the running hub
at a desk terminal.

Each operation is queued under an operation id the cashier gives (or the
command makes and prints): running the same command again with `--op-id` is
the same operation, never a second charge (parkcard.services.desk).
"""

import asyncio
import json
import secrets
import time

import click

from parkcard.bounds import CARD_NO, TERMINAL_ID, BoundParam
from parkcard.cli.common import UserError, amount_cents, in_store, table, utc
from parkcard.domain import accounts
from parkcard.money import format_cents
from parkcard.services import park
from parkcard.services.desk import requests

DESK_REQUEST_POLL_S = 0.2       # how often the command looks for the running hub's answer


@click.group("card")
def card_group():
    """Visitor cards at the front desk: issue, top up, look up."""


def _run_at_desk(obj, kind, desk_terminal_id, op_id, wait_s, **amounts):
    """Queue the operation, wait for the running hub's result; return (DeskRequest, its result, currency)."""
    op_id = op_id or "%s-%s" % (kind.replace("_", "-"), secrets.token_hex(4))

    async def queued(storage, actor):
        currency = await storage.park_currency()
        params = {k: amount_cents(v, currency, k.replace("_cents", "").replace("_", " ")) if k.endswith("_cents") else v
                  for k, v in amounts.items()}
        request = await requests.queue(storage, actor, kind, desk_terminal_id, op_id, **params)
        click.echo("operation %s: put the card on desk terminal %d; waiting up to %d s for the running hub "
                   "(`parkcard up`)" % (op_id, desk_terminal_id, wait_s))
        deadline = time.monotonic() + wait_s
        while request.state in (requests.QUEUED, requests.STARTED) and time.monotonic() < deadline:
            await asyncio.sleep(DESK_REQUEST_POLL_S)
            request = await storage.desk_request(op_id)
        return request, currency

    request, currency = in_store(obj, queued)
    if request.state == requests.REFUSED:
        raise UserError(request.result)
    if request.state != requests.DONE:
        raise UserError("no answer within %d s: is `parkcard up` running and desk terminal %d online? Run the same "
                        "command with --op-id %s: it is the same operation, never charged twice"
                        % (wait_s, desk_terminal_id, op_id))
    return request, json.loads(request.result), currency


_DESK = click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), required=True,
                     help="the desk terminal the card lies on")
_OP_ID = click.option("--op-id", default=None, help="the operation's id: give the same one to retry it (default: new)")
_PAY = click.option("--pay", default="cash", show_default=True,
                    help="how the holder pays: cash (into the drawer) or another method the park takes (card, mobile)")
_WAIT = click.option("--wait", "wait_s", default=90, show_default=True, type=click.IntRange(1, 3600),
                     help="seconds to wait for the card")


@card_group.command("top-up")
@click.argument("amount")
@_DESK
@_PAY
@_OP_ID
@_WAIT
@click.pass_obj
def card_top_up(obj, amount, desk_terminal_id, pay, op_id, wait_s):
    """Top up the card on the desk with AMOUNT paid (e.g. 50 or 12.50); the card's tier adds its bonus."""
    request, done, currency = _run_at_desk(obj, "top_up", desk_terminal_id, op_id, wait_s, cash_cents=amount, pay=pay)
    click.echo("card %d topped up by %s (bonus %s): balance %s [operation %s]" % (
        done["card_no"], format_cents(done["amount_cents"], currency), format_cents(done["bonus_cents"], currency),
        format_cents(done["balance_cents"], currency), request.op_id))


@card_group.command("issue")
@click.option("--load", "load", default="0", show_default=True, help="first load paid, e.g. 100 or 99.50")
@click.option("--type", "card_type", type=click.Choice(sorted(park.CARD_TYPES)), default="temporary",
              show_default=True, help="the card type: its deposit is the park's (`parkcard park deposit`)")
@click.option("--tier", type=click.IntRange(0, 15), default=0, show_default=True,
              help="the tier's code (`parkcard tier list`)")
@_DESK
@_PAY
@_OP_ID
@_WAIT
@click.pass_obj
def card_issue(obj, load, card_type, tier, desk_terminal_id, pay, op_id, wait_s):
    """Issue the stock card on the desk with a first load; the deposit of its card type is taken."""
    request, done, currency = _run_at_desk(obj, "issue", desk_terminal_id, op_id, wait_s, cash_cents=load,
                                           card_type=card_type, tier=tier, pay=pay)
    click.echo("card %d issued: balance %s (bonus %s), deposit %s [operation %s]" % (
        done["card_no"], format_cents(done["balance_cents"], currency), format_cents(done["bonus_cents"], currency),
        format_cents(done["deposit_cents"], currency), request.op_id))


@card_group.command("refund")
@click.argument("amount")
@_DESK
@_OP_ID
@_WAIT
@click.pass_obj
def card_refund(obj, amount, desk_terminal_id, op_id, wait_s):
    """Pay back AMOUNT of the cash on the card on the desk (退款), less the park's fee; the bonus stays."""
    request, done, currency = _run_at_desk(obj, "refund", desk_terminal_id, op_id, wait_s, amount_cents=amount)
    click.echo("card %d: %s off the card, fee %s: pay the holder %s; balance %s [operation %s]" % (
        done["card_no"], format_cents(done["amount_cents"], currency), format_cents(done["fee_cents"], currency),
        format_cents(done["paid_cents"], currency), format_cents(done["balance_cents"], currency), request.op_id))


@card_group.command("return")
@_DESK
@_OP_ID
@_WAIT
@click.pass_obj
def card_return(obj, desk_terminal_id, op_id, wait_s):
    """Take back the card on the desk (退卡): its cash less the fee and its deposit paid, its bonus to the park."""
    request, done, currency = _run_at_desk(obj, "return", desk_terminal_id, op_id, wait_s)
    click.echo("card %d returned: cash %s, fee %s, deposit %s: pay the holder %s; bonus %s back to the park "
               "[operation %s]" % (
                   done["card_no"], format_cents(done["amount_cents"] - done["bonus_cents"], currency),
                   format_cents(done["fee_cents"], currency), format_cents(done["deposit_cents"], currency),
                   format_cents(done["paid_cents"], currency), format_cents(done["bonus_cents"], currency),
                   request.op_id))


@card_group.command("wipe")
@_DESK
@_OP_ID
@_WAIT
@click.pass_obj
def card_wipe(obj, desk_terminal_id, op_id, wait_s):
    """Put the returned card on the desk back to stock (blank, keys kept): it can be issued again."""
    request, _done, _currency = _run_at_desk(obj, "wipe", desk_terminal_id, op_id, wait_s)
    click.echo("the card on desk %d is stock again: issue it with `parkcard card issue --desk %d` [operation %s]"
               % (desk_terminal_id, desk_terminal_id, request.op_id))


@card_group.command("stock")
@click.option("--uid", "uid_hex", required=True, help="the blank card's UID, 8 or 14 hex digits")
@_DESK
@_OP_ID
@_WAIT
@click.pass_obj
def card_stock(obj, uid_hex, desk_terminal_id, op_id, wait_s):
    """Make the blank card on the desk card stock: its keys and trailer written, nothing loaded."""
    request, _done, _currency = _run_at_desk(obj, "stock", desk_terminal_id, op_id, wait_s, uid_hex=uid_hex)
    click.echo("card %s is stock of desk %d: issue it with `parkcard card issue --desk %d` [operation %s]" % (
        uid_hex.lower(), desk_terminal_id, desk_terminal_id, request.op_id))


@card_group.command("show")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.pass_obj
def card_show(obj, card_no):
    """A card as the hub knows it: status, tier, deposit, balance in the ledger (cash and bonus), its desk
    operations."""
    async def show(storage, actor):
        card = await storage.card(card_no)
        if card is None:
            raise UserError("card %d is unknown at this hub: check the number on the card" % card_no)
        return (card, await storage.account_balance(accounts.card_account(card_no)),
                await storage.account_balance(accounts.bonus_account(card_no)), await storage.park_currency(),
                [op for op in await storage.desk_operations() if op.card_no == card_no])
    card, balance, bonus, currency, ops = in_store(obj, show)
    click.echo("card %d: %s, tier %d, deposit %s, balance %s (cash %s, bonus %s)" % (
        card.card_no, card.status, card.tier, format_cents(card.deposit_cents, currency),
        format_cents(balance, currency), format_cents(balance - bonus, currency), format_cents(bonus, currency)))
    if ops:
        click.echo(table(("operation", "kind", "state", "amount", "when"), [
            (op.op_id, op.kind, op.state, format_cents(op.amount_cents, currency), utc(op.created_at)) for op in ops]))


@card_group.command("pending")
@click.pass_obj
def card_pending(obj):
    """Desk operations kept as pending: retry each with its --op-id and the card on its desk."""
    async def pending(storage, actor):
        return await storage.desk_operations("pending"), await storage.park_currency()
    ops, currency = in_store(obj, pending)
    if not ops:
        click.echo("no desk operation is pending")
        return
    click.echo(table(("operation", "kind", "card", "desk", "amount", "since"), [
        (op.op_id, op.kind, op.card_no, op.desk_terminal_id, format_cents(op.amount_cents, currency),
         utc(op.created_at)) for op in ops]))
