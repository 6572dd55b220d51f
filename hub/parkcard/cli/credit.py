"""`parkcard credit [grant|cancel]`: value for a card that is not here, landing at its next tap on any terminal."""

import click

from parkcard.bounds import CARD_NO, CREDIT_NO, TERMINAL_ID, BoundParam
from parkcard.cli.common import HubNotice, UserError, in_store, table, utc
from parkcard.domain import accounts
from parkcard.money import format_cents, parse_amount
from parkcard.services import credits as credit_service

_SOURCES = {"cash": accounts.CASH, "api": accounts.API_PAYMENTS}


@click.group(invoke_without_command=True)
@click.option("--card", "card_no", type=BoundParam(CARD_NO), help="only this card's credits")
@click.pass_context
def credit(ctx, card_no):
    """Pending credits, delivered and cancelled ones included; grant and cancel."""
    if ctx.invoked_subcommand is not None:
        return

    async def listing(store, actor):
        return await store.park_currency(), await credit_service.pending_credits(store, actor, card_no)

    currency, rows = in_store(ctx.obj, listing)
    table(("card", "credit", "amount", "state", "granted", "by", "source", "delivered by", "reason"),
          [(c.card_no, c.credit_no, format_cents(c.amount_cents, currency), c.state, utc(c.granted_at), c.granted_by,
            c.source, "term-%d seq %d" % (c.delivered_terminal, c.delivered_seq) if c.delivered_seq else "",
            c.reason) for c in rows])


@credit.command("grant")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.argument("amount")
@click.option("--reason", required=True, help="what it is for (a top-up paid elsewhere, a replacement's hold)")
@click.option("--source", default="cash", show_default=True,
              help="what funds it: cash (taken at this desk), api (paid through the API) or hold:<card number>")
@click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), default=None,
              help="the desk where it is paid in cash: the grant is part of that desk's open shift")
@click.pass_obj
def credit_grant(obj, card_no, amount, reason, source, desk_terminal_id):
    """Grant AMOUNT (in the park's currency, e.g. 12.50) to a card; it lands at the card's next tap."""
    source = _SOURCES.get(source, source)
    notice = HubNotice(obj.db)

    async def grant(store, actor):
        currency = await store.park_currency()
        try:
            cents = parse_amount(amount, currency)
        except ValueError as exc:
            raise UserError("%s; nothing was granted" % exc) from None
        return currency, await credit_service.grant_credit(store, actor, card_no, cents, reason, source,
                                                           desk_terminal_id)

    currency, granted = in_store(obj, grant, notice=notice)
    click.echo("credit %d of card %d: %s, lands at the card's next tap on any terminal; %s" % (
        granted.credit_no, card_no, format_cents(granted.amount_cents, currency),
        "the running hub sends it to every online terminal now" if notice.hub_told
        else "no hub is running: terminals get it when `parkcard up` runs and they connect"))


@credit.command("cancel")
@click.argument("card_no", type=BoundParam(CARD_NO))
@click.argument("credit_no", type=BoundParam(CREDIT_NO))
@click.pass_obj
def credit_cancel(obj, card_no, credit_no):
    """Cancel a credit no terminal has yet; its value goes back to where it came from."""
    async def cancel(store, actor):
        return await store.park_currency(), await credit_service.cancel_credit(store, actor, card_no, credit_no)

    currency, cents = in_store(obj, cancel)
    click.echo("credit %d of card %d cancelled: %s back to its source" % (credit_no, card_no,
                                                                          format_cents(cents, currency)))
