"""The hub's second pricing of a booth sale (SPEC.md §4.11): the basket its sale line records describe,
priced with protocol.pricing from the price list and discount rules versions the lines name. Pure: the
caller brings the records, the list's items and the rules.
"""

from typing import NamedTuple, Optional

from protocol import pricing
from protocol import record as R
from protocol import sale_line as SL

LINES_BELOW = pricing.LINES_MAX     # a sale's lines take at most this many seqs just below it


class Repricing(NamedTuple):
    """A sale priced again: the terminal's figures, the hub's, and what differs (None: they agree)."""

    terminal_id: int
    seq: int
    card_no: int
    list_version: int
    rules_version: int
    tier: int
    paid_cents: int             # what the card paid (the debit's amount): the sale stands at this
    discount_cents: int         # the terminal's discount
    hub_pay_cents: Optional[int]    # None when the hub cannot price it (an item not in the list version)
    hub_discount_cents: Optional[int]
    difference: Optional[str]


def lines_of(sale, below):
    """The sale line records of the debit `sale`, in basket order, from {seq: Record} of the seqs below it;
    None when its basket is not whole there (no lines: a keyed amount, or lines of no sale)."""
    first = below.get(sale.seq - 1)
    if first is None or first.kind != R.KIND_SALE_LINE:
        return None
    count = SL.line_fields(first)[2]
    lines = []
    for seq in range(sale.seq - count, sale.seq):
        line = below.get(seq)
        if line is None or line.kind != R.KIND_SALE_LINE or not line.quantity or SL.sale_seq_of(line) != sale.seq \
                or line.card_no != sale.card_no or line.card_counter != sale.card_counter:
            return None
        lines.append(line)
    return lines


def reprice(sale, lines, items, free_allowed, rules):
    """Price the sale's lines again: items {code: protocol.price_list.Item} of the list version the lines
    name, free_allowed that list's flag, rules the protocol.pricing.Discounts of the rules version named."""
    tier, _index, _count, list_version, rules_version = SL.line_fields(lines[0])
    basket = []
    problem = None
    for line in lines:
        if line.item == pricing.FREE_AMOUNT:
            basket.append((pricing.FREE_AMOUNT, 0, 1, line.amount_cents))
            continue
        item = items.get(line.item)
        if item is None:
            problem = "item %d is not in price list version %d" % (line.item, list_version)
            break
        basket.append((item.code, item.category, line.quantity, item.price_cents))
    hub_pay = hub_discount = None
    if problem is None:
        try:
            priced = pricing.price_basket(rules, tier, basket, free_allowed)
        except pricing.Refused as exc:
            problem = "the hub refuses the basket: %s" % exc
        else:
            hub_pay, hub_discount = priced.pay_cents, priced.discount_cents
            if (hub_pay, hub_discount) != (sale.amount_cents, sale.discount_cents):
                problem = "terminal charged %d cents with %d off, list %d and rules %d give %d with %d off" % (
                    sale.amount_cents, sale.discount_cents, list_version, rules_version, hub_pay, hub_discount)
            elif priced.line_discounts != [line.discount_cents for line in lines]:
                problem = "line discounts %s, list %d and rules %d give %s" % (
                    [line.discount_cents for line in lines], list_version, rules_version, priced.line_discounts)
    return Repricing(sale.terminal_id, sale.seq, sale.card_no, list_version, rules_version, tier, sale.amount_cents,
                     sale.discount_cents, hub_pay, hub_discount,
                     None if problem is None else "term-%d seq %d: %s" % (sale.terminal_id, sale.seq, problem))
