"""`parkcard ticket product add|list`, `parkcard ticket list`."""

import click

from protocol.ticket import TYPE_TIMED

from parkcard.cli.common import in_store, table, utc
from parkcard.domain import tickets as rules
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
@click.option("--interval-price-cents", type=int, default=0, show_default=True, help="timed: price per interval")
@click.option("--price-cents", type=int, default=0, show_default=True, help="the ticket's price at the desk")
@click.pass_obj
def product_add(obj, name, type_name, area, valid_days, entries, day_limit, included_min, interval_min,
                interval_price_cents, price_cents):
    """Create a ticket product; its id is the product number gates accept."""
    pid = in_store(obj, lambda s, actor: tickets.add_product(
        s, actor, name, type_name, area, valid_days, entries, day_limit, included_min, interval_min,
        interval_price_cents, price_cents), create=True)
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


@ticket.command("list")
@click.option("--card", "card_no", type=int, default=None, help="only this card's tickets")
@click.pass_obj
def ticket_list(obj, card_no):
    """Tickets sold: serial, product, card, validity and whether the desk wrote the card."""
    rows = in_store(obj, lambda s, actor: tickets.tickets(s, actor, card_no))
    table(("serial", "product", "card", "from day", "to day", "entries", "state", "sold", "by"),
          [(x.serial, x.product_id, x.card_no, x.from_day or "-", x.to_day or "-", x.entries, x.state,
            utc(x.sold_at), x.sold_by) for x in rows])
