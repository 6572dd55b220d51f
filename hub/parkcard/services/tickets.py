"""Ticket products and sales: a product is park configuration; a sale builds the ticket blocks for one card.

A sale is recorded pending with its serial (the card's ticket info serial),
its blocks are built with the park keys (protocol.ticket.sale_blocks) and a
desk terminal writes them over T_CARD_WRITE (parkcard.app.Hub.sell_ticket_at_desk);
settle() then says whether the card was written. A written ticket's price is
paid in cash at the desk and booked desk:cash -> park:ticket_revenue in the
transaction that marks it written (ledger.ticket_sale); a refused or failed
write takes no money. The CLI queues a sale (request_sale) that the running
hub claims, as it does admin card issues. A card holds one ticket: one whose
ticket expired or is used up gets the new one written over it (SPEC.md §3.12),
one with a ticket still valid (unless replace is asked) or being written is
refused before anything is recorded.
"""

import time
from dataclasses import dataclass
from typing import Optional

from protocol import card, frames, ticket as t

from parkcard.domain import park_time, tickets as rules
from parkcard.services import park, shifts
from parkcard.services.errors import Refusal
from parkcard.services.privileges import CARD_QUERY, REPORTS, TICKET_SELL, TICKETS, ServiceError, requires
from parkcard.store import audited
from parkcard.store.shifts import NoOpenShift, ShiftOfAnother
from parkcard.store.tickets import TICKET_FAILED, TICKET_WRITTEN
from parkcard.transport import notify


@dataclass(frozen=True)
class TicketSale:
    """A ticket to write onto a card: its serial and {block: 16 bytes} of sector 3 (SPEC.md §3.8)."""

    serial: int
    card_no: int
    uid: bytes
    product_id: int
    from_day: int
    to_day: int
    blocks: dict                    # a first sale: sector 3 as a desk's card write makes it (SPEC.md §5.7)
    replaces: Optional[int] = None  # a rewrite: the serial of the ticket it overwrites (SPEC.md §3.12) ...
    rewrite: tuple = ()             # ... [(block, 16 bytes)] in write order, with sector 3's key B
    key_b: bytes = b""


def _rule(type_name, area, valid_days, entries, day_limit, included_min, interval_min, interval_price_cents,
          price_cents):
    ticket_type = rules.TYPES_BY_NAME.get(type_name)
    if ticket_type is None:
        raise Refusal("ticket_type", "unknown ticket type %(name)r: one of %(types)s", name=type_name,
                      types=", ".join(rules.TYPES_BY_NAME))
    try:
        rule = rules.ProductRule(ticket_type, int(area), int(valid_days), int(entries), int(day_limit),
                                 int(included_min), int(interval_min), int(interval_price_cents), int(price_cents))
    except (TypeError, ValueError):
        raise Refusal("ticket_product", "every number of a ticket product is a whole number") from None
    problem = rules.product_problem(rule)
    if problem:
        raise Refusal("ticket_product", "%(problem)s: nothing was created", problem=problem)
    return rule


@requires(TICKETS)
async def add_product(store, actor, name, type_name, area=0, valid_days=0, entries=0, day_limit=0, included_min=0,
                      interval_min=0, interval_price_cents=0, price_cents=0):
    """Create a ticket product; return its id (the product number on cards and gates)."""
    name = (name or "").strip()
    if not name:
        raise Refusal("ticket_product", "a ticket product needs a name")
    rule = _rule(type_name, area, valid_days, entries, day_limit, included_min, interval_min, interval_price_cents,
                 price_cents)
    try:
        return await store.add_ticket_product(name, rule, audit=audited(
            actor.name, "ticket.product_add", when=lambda _: True, extra=lambda pid: dict(product_id=pid), name=name,
            **rule._asdict()))
    except ValueError as exc:
        raise Refusal("ticket_product_exists", "%(problem)s: pick another name (see `parkcard ticket product list`)",
                      problem=exc) from None


@requires(CARD_QUERY)
async def products(store, actor):
    """Every ticket product ([TicketProduct]), by id."""
    return await store.ticket_products()


async def _product(store, product_id):
    found = await store.ticket_products(product_id)
    if not found:
        raise Refusal("ticket_product_not_found", "no ticket product %(product)r (see `parkcard ticket product list`)",
                      product=product_id)
    return found[0]


async def _card_for_a_ticket(store, card_no, replace, today):
    """(the card's row, the written ticket the sale will replace or None); Refusal unless the card is issued and
    holds no ticket, or only one that expired or is used up, or replace is asked (SPEC.md §3.12).

    A ticket being written (pending) is never replaced: its desk's answer is awaited first."""
    row = await store.card(card_no)
    if row is None or row.uid is None:
        raise Refusal("card_not_found", "card %(card)d is not issued: issue it at the desk first", card=card_no)
    held = [x for x in await store.tickets(card_no) if x.state != TICKET_FAILED]
    if not held:
        return row, None
    last = held[-1]
    if last.state != TICKET_WRITTEN:
        raise Refusal("card_holds_ticket", "card %(card)d has ticket %(serial)d (product %(product)d) being written at "
                                           "a desk now: wait for that sale to end (`parkcard ticket list --card "
                                           "%(card)d`), then sell again", card=card_no, serial=last.serial,
                      product=last.product_id)
    entered = {u.serial: u.entered for u in await store.ticket_uses(card_no)}.get(last.serial, 0)
    over = rules.ticket_over(last.to_day, last.entries, entered, today)
    if over is None and not replace:
        raise _still_valid(card_no, last, entered)
    return row, last


def _still_valid(card_no, last, entered):
    """The refusal of a sale onto a card whose ticket last is still valid: until when, with how many entries left."""
    values = dict(card=card_no, serial=last.serial, product=last.product_id, left=last.entries - entered,
                  until=park_time.date_of_day(last.to_day) if last.to_day else None)
    limited = last.entries != t.ENTRIES_UNLIMITED
    if last.to_day and limited:
        return Refusal("card_holds_ticket", "card %(card)d holds ticket %(serial)d (product %(product)d), still valid "
                                            "until %(until)s, %(left)d entries left: selling another onto it would "
                                            "overwrite it; sell with --replace to do so, or onto another card",
                       **values)
    if last.to_day:
        return Refusal("card_holds_ticket", "card %(card)d holds ticket %(serial)d (product %(product)d), still valid "
                                            "until %(until)s: selling another onto it would overwrite it; sell with "
                                            "--replace to do so, or onto another card", **values)
    if limited:
        return Refusal("card_holds_ticket", "card %(card)d holds ticket %(serial)d (product %(product)d), still "
                                            "valid, %(left)d entries left: selling another onto it would overwrite it; "
                                            "sell with --replace to do so, or onto another card", **values)
    return Refusal("card_holds_ticket", "card %(card)d holds ticket %(serial)d (product %(product)d), still valid: "
                                        "selling another onto it would overwrite it; sell with --replace to do so, or "
                                        "onto another card", **values)


@requires(TICKET_SELL)
async def request_sale(store, actor, desk_terminal_id, product_id, card_no, start_day=None, replace=False):
    """Queue a ticket sale for the running hub at a desk terminal; return the request id.

    Checked now so the operator hears of a mistake at once: the terminal is a registered desk, the
    product exists, the card is issued and holds no ticket still valid unless replace (the hub checks again
    when it sells)."""
    rows = await store.terminals(desk_terminal_id)
    if not rows or rows[0].role != frames.ROLE_DESK:
        raise Refusal("not_a_desk", "terminal %(terminal)d is not a registered desk terminal: tickets are written at a "
                                    "desk (see `parkcard terminals`)", terminal=desk_terminal_id)
    await shifts.check_own_shift(store, actor, desk_terminal_id)
    await _product(store, product_id)
    await _card_for_a_ticket(store, card_no, replace, await park.today(store, time.time()))
    request_id = await store.request_ticket_sale(desk_terminal_id, product_id, card_no, start_day, actor.name,
                                                 audit=audited(actor.name, "ticket.sale_requested",
                                                               when=lambda _: True,
                                                               extra=lambda rid: dict(request_id=rid),
                                                               desk_terminal_id=desk_terminal_id,
                                                               product_id=product_id, card_no=card_no,
                                                               replace=bool(replace), roles=list(actor.roles)),
                                                 replace=replace, roles=actor.roles)
    await actor.told(notify.TICKET_SALES)
    return request_id


@requires(TICKET_SELL)
async def cancel_request(store, actor, request_id):
    """Withdraw a queued sale the hub has not started; return False when it started or ended meanwhile."""
    return await store.cancel_ticket_sale(request_id)


async def finish_request(store, request_id, serial=None, error=None):
    """Record how the running hub's sale of a queued request ended (the requester reads it)."""
    await store.finish_ticket_sale(request_id, serial, error)


@requires(TICKET_SELL)
async def sell(store, actor, park_keys, product_id, card_no, start_day, replace=False, desk_terminal_id=None):
    """Record a ticket of product_id sold onto card card_no from park day start_day; return its TicketSale.

    The card must be issued (its UID known) and hold no ticket still valid unless replace. The ticket is
    pending until settle(); its blocks need the park keys (the running hub's). Sold at desk_terminal_id, it is
    part of that desk's open shift (refused when none is open)."""
    if park_keys is None or getattr(park_keys, "master_b", None) is None:
        raise ServiceError("this hub has no park keys: tickets are sold by the running hub (parkcard hub)")
    product = await _product(store, product_id)
    row, replaced = await _card_for_a_ticket(store, card_no, replace, await park.today(store, time.time()))
    rule = rules.ProductRule(*product[2:])
    from_day, to_day = rules.ticket_days(rule, start_day)
    entries = rules.ticket_entries(rule)
    try:
        serial = await store.add_ticket(product.id, card_no, row.uid, from_day, to_day, entries, product.price_cents,
                                        actor.name, audit=audited(
                                            actor.name, "ticket.sell", when=lambda _: True,
                                            extra=lambda s: dict(serial=s), roles=list(actor.roles),
                                            product_id=product.id, card_no=card_no,
                                            from_day=from_day, to_day=to_day,
                                            replaces=replaced.serial if replaced else None),
                                        desk_terminal_id=desk_terminal_id, shift_owner=shifts.shift_owner(actor))
    except NoOpenShift:
        raise shifts.no_shift(desk_terminal_id) from None
    except ShiftOfAnother as exc:
        raise ServiceError.of(exc) from None
    if serial > t.SERIAL_MAX:
        raise ServiceError("ticket serial %(serial)d is over the card's 24 bits: the park has sold every serial",
                           serial=serial)
    keys = card.CardKeys(park_keys, row.uid)
    info = rules.ticket_info(product.id, rule, serial, start_day)
    if replaced is None:
        return TicketSale(serial, card_no, bytes(row.uid), product.id, from_day, to_day,
                          t.sale_blocks(keys, info, entries))
    return TicketSale(serial, card_no, bytes(row.uid), product.id, from_day, to_day, {}, replaced.serial,
                      t.rewrite_blocks(keys, info, entries), keys.key_b(t.TICKET_SECTOR))


@requires(TICKET_SELL)
async def settle(store, actor, serial, written):
    """Mark a pending ticket written (the desk reported it) or failed; False when it was not pending."""
    return await store.settle_ticket(serial, written, audit=audited(
        actor.name, "ticket.written" if written else "ticket.failed", serial=serial))


@requires(CARD_QUERY)
async def tickets(store, actor, card_no=None):
    """The tickets sold ([Ticket]), or only card_no's, by serial."""
    return await store.tickets(card_no)


@requires(REPORTS)
async def report(store, actor):
    """The tickets report ([parkcard.domain.tickets.TicketReportLine]): sold and used by product, entries left."""
    return rules.ticket_report(await store.ticket_products(), await store.ticket_uses())
