"""`parkcard ticket product add|list`, `parkcard ticket sell`, `parkcard ticket list`."""

import asyncio
import time

import click

from protocol.ticket import TYPE_TIMED

from parkcard.bounds import CARD_NO, TERMINAL_ID, BoundParam
from parkcard.cli.common import UserError, amount_cents, in_park_currency, in_store, table, utc
from parkcard.domain import park_time, tickets as rules
from parkcard.money import format_cents
from parkcard.services import park, tickets


@click.group()
def ticket():
    """Tickets: the park's ticket products and the tickets sold onto cards."""


@ticket.group("product")
def product():
    """Ticket products (park configuration)."""


@product.command("add")
@click.option("--name", required=True)
@click.option("--type", "type_name", type=click.Choice(sorted(rules.TYPES_BY_NAME)), required=True)
@click.option("--area", type=int, default=0, show_default=True, help="0: every area")
@click.option("--days", "valid_days", type=int, default=0, show_default=True,
              help="days valid from the sale (day, multi-day, period); 0: no date limit")
@click.option("--entries", type=int, default=0, show_default=True, help="entries (count card); 0: unlimited")
@click.option("--day-limit", type=int, default=0, show_default=True, help="entries a day; 0: no limit")
@click.option("--included-min", type=int, default=0, show_default=True, help="timed: minutes included")
@click.option("--interval-min", type=int, default=0, show_default=True, help="timed: minutes per started interval")
@click.option("--interval-price", default="0", show_default=True,
              help="timed: price per started interval in the park's currency, e.g. 5 or 2.50")
@click.option("--price", default="0", show_default=True, help="the ticket's price at the desk, e.g. 120 or 99.50")
@click.pass_obj
def product_add(obj, name, type_name, area, valid_days, entries, day_limit, included_min, interval_min,
                interval_price, price):
    """Create a ticket product; its id is the product number gates accept."""
    pid, _currency = in_park_currency(obj, lambda s, actor, currency: tickets.add_product(
        s, actor, name, type_name, area, valid_days, entries, day_limit, included_min, interval_min,
        amount_cents(interval_price, currency, "--interval-price"), amount_cents(price, currency, "--price")),
        create=True)
    click.echo("ticket product %d %s (%s)" % (pid, name, type_name))


@product.command("list")
@click.pass_obj
def product_list(obj):
    """Every ticket product, with tickets written and entries made."""
    async def read(s, actor):
        return (await tickets.products(s, actor), dict((p, (n, e)) for p, n, e in await s.tickets_by_product()),
                await park.currency(s, actor))
    rows, used, currency = in_store(obj, read)
    table(("id", "name", "type", "area", "days", "entries", "day limit", "timed", "price", "sold", "entered"),
          [(p.id, p.name, rules.TYPE_NAMES[p.type], p.area or "all", p.valid_days or "-", p.entries or "unlimited",
            p.day_limit or "-", ("%d min free, %s per %d min" % (p.included_min, format_cents(
                p.interval_price_cents, currency), p.interval_min)) if p.type == TYPE_TIMED else "-",
            format_cents(p.price_cents, currency), *used.get(p.id, (0, 0))) for p in rows])


SALE_POLL_S = 0.5       # how often `ticket sell` looks for the running hub's answer


@ticket.command("sell")
@click.option("--card", "card_no", type=BoundParam(CARD_NO), required=True, help="the issued card to sell onto")
@click.option("--product", "product_id", type=int, required=True, help="the ticket product id")
@click.option("--desk", "desk_terminal_id", type=BoundParam(TERMINAL_ID), required=True,
              help="the desk terminal that writes the card")
@click.option("--from", "from_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="the ticket's first park day, YYYY-MM-DD (default: today)")
@click.option("--wait", "wait_s", default=90, show_default=True, type=click.IntRange(1, 3600),
              help="seconds to wait for the card to be written")
@click.option("--replace", is_flag=True,
              help="overwrite the card's ticket even while it is still valid (an expired or used-up one always is)")
@click.pass_obj
def ticket_sell(obj, card_no, product_id, desk_terminal_id, from_date, wait_s, replace):
    """Sell a ticket onto a card: the running hub has the desk terminal write it while the card lies there."""
    start_day = park_time.day_of_date(from_date.date()) if from_date is not None else None

    async def sell(storage, actor):
        request_id = await tickets.request_sale(storage, actor, desk_terminal_id, product_id, card_no, start_day,
                                                replace)
        click.echo("present card %d to desk terminal %d; waiting up to %d s for the running hub (`parkcard up`)"
                   % (card_no, desk_terminal_id, wait_s))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            answer = await storage.ticket_sale_request(request_id)
            if answer.finished_at is not None:
                return answer
            await asyncio.sleep(SALE_POLL_S)
        # Nobody waits any more: a sale the hub has not started must not be written later behind the
        # operator's back; one it started ends with the desk's answer (see `parkcard ticket list`).
        if await tickets.cancel_request(storage, actor, request_id):
            raise UserError("no answer within %d s: the sale is cancelled and nothing was recorded; is `parkcard up` "
                            "running? Then run this again" % wait_s)
        answer = await storage.ticket_sale_request(request_id)
        if answer.finished_at is None:
            raise UserError("desk terminal %d has not written card %d within %d s: the hub still waits for it; "
                            "`parkcard ticket list --card %d` shows whether the ticket was written (pending, "
                            "written or failed)" % (desk_terminal_id, card_no, wait_s, card_no))
        return answer

    async def sell_and_price(storage, actor):
        answer = await sell(storage, actor)
        sold = {x.serial: x for x in await tickets.tickets(storage, actor, card_no)}.get(answer.serial)
        return answer, sold, await park.currency(storage, actor)

    answer, sold, currency = in_store(obj, sell_and_price)
    if answer.error:
        raise UserError(answer.error)
    price = "take %s in cash" % format_cents(sold.price_cents, currency) if sold.price_cents else "free: nothing to take"
    click.echo("ticket %d (product %d) written onto card %d at desk terminal %d: %s"
               % (answer.serial, product_id, card_no, desk_terminal_id, price))


@ticket.command("list")
@click.option("--card", "card_no", type=int, default=None, help="only this card's tickets")
@click.pass_obj
def ticket_list(obj, card_no):
    """Tickets sold: serial, product, card, validity and whether the desk wrote the card."""
    rows = in_store(obj, lambda s, actor: tickets.tickets(s, actor, card_no))
    table(("serial", "product", "card", "from day", "to day", "entries", "state", "sold", "by"),
          [(x.serial, x.product_id, x.card_no, x.from_day or "-", x.to_day or "-", x.entries, x.state,
            utc(x.sold_at), x.sold_by) for x in rows])
