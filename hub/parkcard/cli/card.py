"""`parkcard card stock|issue|top-up|refund|return|wipe|show|pending|lost|found|replace`: the front desk, carried out
by the running hub at a desk terminal (a loss and its un-report are kept at once, no card needed).

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
from parkcard.cli.common import HubNotice, UserError, amount_cents, in_store, options, table, utc
from parkcard.domain import accounts
from parkcard.money import format_cents
from parkcard.services import losses, park
from parkcard.services.desk import requests
from parkcard.services.members import tier_code
from parkcard.services.tiers import park_tiers
from parkcard.services.privileges import ServiceError

DESK_REQUEST_POLL_S = 0.2       # how often the command looks for the running hub's answer


# A hurried "-5" is an amount the command refuses as one, not an unknown option.
_AMOUNT_FIRST = {"ignore_unknown_options": True}


@click.group("card")
def card_group():
    """Visitor cards at the front desk: issue, top up, look up."""


def _tier(obj, text):
    """The park's tier code of a tier's code or name (`parkcard tier list`); UserError naming the park's tiers."""
    table = in_store(obj, lambda storage, actor: park_tiers(storage))
    try:
        return tier_code(text, table)
    except ServiceError as exc:
        raise UserError(str(exc)) from None


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

# Every command carried out at a desk ends with these, in this order (--pay where the holder pays).
_AT_DESK = options(_DESK, _OP_ID, _WAIT, click.pass_obj)
_PAID_AT_DESK = options(_DESK, _PAY, _OP_ID, _WAIT, click.pass_obj)


@card_group.command("top-up", context_settings=_AMOUNT_FIRST)
@click.argument("amount")
@_PAID_AT_DESK
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
@click.option("--tier", default=None, help="the tier's name or code (`parkcard tier list`) [default: the member's, "
                                           "else standard]")
@click.option("--member", "member_no", type=int, default=None, help="the member the card is issued to")
@_PAID_AT_DESK
def card_issue(obj, load, card_type, tier, member_no, desk_terminal_id, pay, op_id, wait_s):
    """Issue the stock card on the desk with a first load (for a member with --member); the deposit of its card
    type is taken."""
    options = {} if member_no is None else {"member_no": member_no}
    if tier is not None or member_no is None:
        options["tier"] = _tier(obj, tier or "0")
    request, done, currency = _run_at_desk(obj, "issue", desk_terminal_id, op_id, wait_s, cash_cents=load,
                                           card_type=card_type, pay=pay, **options)
    click.echo("card %d issued: balance %s (bonus %s), deposit %s [operation %s]" % (
        done["card_no"], format_cents(done["balance_cents"], currency), format_cents(done["bonus_cents"], currency),
        format_cents(done["deposit_cents"], currency), request.op_id))


@card_group.command("refund", context_settings=_AMOUNT_FIRST)
@click.argument("amount")
@_AT_DESK
def card_refund(obj, amount, desk_terminal_id, op_id, wait_s):
    """Pay back AMOUNT of the cash on the card on the desk (退款), less the park's fee; the bonus stays."""
    request, done, currency = _run_at_desk(obj, "refund", desk_terminal_id, op_id, wait_s, amount_cents=amount)
    click.echo("card %d: %s off the card, fee %s: pay the holder %s; balance %s [operation %s]" % (
        done["card_no"], format_cents(done["amount_cents"], currency), format_cents(done["fee_cents"], currency),
        format_cents(done["paid_cents"], currency), format_cents(done["balance_cents"], currency), request.op_id))


@card_group.command("return")
@_AT_DESK
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
@_AT_DESK
def card_wipe(obj, desk_terminal_id, op_id, wait_s):
    """Put the returned card on the desk back to stock (blank, keys kept): it can be issued again."""
    request, _done, _currency = _run_at_desk(obj, "wipe", desk_terminal_id, op_id, wait_s)
    click.echo("the card on desk %d is stock again: issue it with `parkcard card issue --desk %d` [operation %s]"
               % (desk_terminal_id, desk_terminal_id, request.op_id))


@card_group.command("write-tier")
@_AT_DESK
def card_write_tier(obj, desk_terminal_id, op_id, wait_s):
    """Write the member's tier onto the card on the desk (its booth discounts follow it); no value moves."""
    request, done, _currency = _run_at_desk(obj, "tier", desk_terminal_id, op_id, wait_s)
    click.echo("card %d on desk %d carries its member's tier now [operation %s]" % (
        done["card_no"], desk_terminal_id, request.op_id))


@card_group.command("stock")
@click.option("--uid", "uid_hex", required=True, help="the blank card's UID, 8 or 14 hex digits")
@_AT_DESK
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
                [op for op in await storage.desk_operations() if op.card_no == card_no],
                await storage.card_member(card_no), await storage.card_loss(card_no),
                await storage.replacement(old_card_no=card_no), await storage.replacement(new_card_no=card_no),
                await storage.tiers_on_cards([card_no]))
    card, balance, bonus, currency, ops, member_no, loss, replaced_by, replacing, on_card = in_store(obj, show)
    click.echo("card %d: %s, tier %d, deposit %s, balance %s (cash %s, bonus %s)%s" % (
        card.card_no, card.status, card.tier, format_cents(card.deposit_cents, currency),
        format_cents(balance, currency), format_cents(balance - bonus, currency), format_cents(bonus, currency),
        "" if member_no is None else ", member %d" % member_no))
    if card_no in on_card:
        click.echo("the card itself still holds tier %d: tier %d is written onto it at its next top-up or refund at a "
                   "desk, or now with `parkcard card write-tier --desk N` (booths give the card's tier's discounts)"
                   % (on_card[card_no], card.tier))
    if loss is not None:
        click.echo("reported %s %s (%s) by %s" % (loss.state if loss.state != "replaced" else "lost, replaced,",
                                                  utc(loss.reported_at), loss.reason, loss.reported_by))
    for row, side in ((replaced_by, "replaced by card %d"), (replacing, "replaces card %d")):
        if row is not None:
            click.echo("%s: %s moved, hold %s (late debits %s covered, %s lost), %s" % (
                side % (row.new_card_no if row is replaced_by else row.old_card_no),
                format_cents(row.moved_cents, currency), format_cents(row.hold_cents, currency),
                format_cents(row.covered_cents, currency), format_cents(row.loss_cents, currency),
                "%s released" % format_cents(row.released_cents, currency) if row.released
                else "released by %s at the latest" % utc(row.release_at_s)))
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


@card_group.command("lost")
@click.argument("card_no", type=BoundParam(CARD_NO), required=False)
@click.option("--member", "member_no", type=int, default=None, help="the member whose card is lost (their one card "
                                                                    "in use)")
@click.option("--reason", default="lost", show_default=True, help="why: lost, stolen ...")
@click.pass_obj
def card_lost(obj, card_no, member_no, reason):
    """Report a card lost (挂失): blacklisted at once, pushed to every online terminal; replace it with `card replace`."""
    notice = HubNotice(obj.db)
    loss = in_store(obj, lambda s, actor: losses.report(s, actor, reason, card_no=card_no, member_no=member_no),
                    notice=notice)
    click.echo("card %d reported lost (blacklist version %d); %s. Replace it with `parkcard card replace %d --desk N`, "
               "or un-report it with `parkcard card found %d`" % (
                   loss.card_no, loss.blacklist_version, "the running hub pushes it to every online terminal now"
                   if notice.hub_told else "terminals get it when `parkcard up` runs", loss.card_no, loss.card_no))


@card_group.command("found")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.option("--reason", default="found by its holder", show_default=True)
@click.pass_obj
def card_found(obj, card_no, reason):
    """Un-report a lost card (解挂) that was not replaced: it serves again once terminals have the blacklist."""
    in_store(obj, lambda s, actor: losses.unreport(s, actor, card_no, reason))
    click.echo("card %d is no longer reported lost: off the blacklist" % card_no)


@card_group.command("replace")
@click.argument("lost_card_no", type=BoundParam(CARD_NO))
@_AT_DESK
def card_replace(obj, lost_card_no, desk_terminal_id, op_id, wait_s):
    """Replace a lost card (补卡) with the stock card on the desk: its balance moves, minus a hold for the lost card's
    late offline debits, released onto the new card when no terminal can still hold any."""
    request, done, currency = _run_at_desk(obj, "replace", desk_terminal_id, op_id, wait_s,
                                           lost_card_no=lost_card_no)

    async def hold(storage, actor):
        return await storage.replacement(old_card_no=lost_card_no)
    row = in_store(obj, hold)
    click.echo("card %d replaces card %d: balance %s moved; %s held for its late offline debits, released onto "
               "card %d by %s at the latest [operation %s]" % (
                   done["card_no"], lost_card_no, format_cents(done["balance_cents"], currency),
                   format_cents(row.hold_cents, currency), done["card_no"], utc(row.release_at_s), request.op_id))

