"""Booth sales reports, pure: the stored records of a period added up by merchant, terminal, day, item or
category, and the discounts given by tier with who bore them (SPEC.md §4.11, §7.5). Integer cents.

Sales and refunds come from the debit and refund records; items and categories from the sale lines of the
applied sales (a line pairs with its sale as the hub's repricing pairs it: parkcard.domain.repricing.lines_of).
"""

from typing import NamedTuple

from protocol import record as R
from protocol import sale_line as SL

from parkcard.domain.explained import Explained
from parkcard.domain.repricing import lines_of

BY = ("merchant", "terminal", "item", "category", "day")
SECONDS_PER_DAY = 86400


class SalesRow(NamedTuple):
    """One group of a sales report: for items and categories, the lines' quantity and list amount."""

    key: object             # merchant id, terminal id, item code, category or day (days since the epoch)
    name: str
    sales: int              # sales (debits), or for items and categories the sales holding them
    quantity: int           # items sold (item and category reports; 0 for the others)
    list_cents: int         # at list price: sales' amount + discount, or the lines' amount
    discount_cents: int     # taken off the list price (for lines: the line discounts only, SPEC.md §7.3)
    paid_cents: int         # what the cards paid (item and category: list - line discounts)
    refunds_cents: int      # refunded (merchant, terminal and day reports)


class DiscountRow(NamedTuple):
    """Discounts given to one tier's cards, and who bore them."""

    tier: int
    sales: int
    discount_cents: int
    park_cents: int         # paid by the park (park:discounts), net of what refunds took back
    merchant_cents: int     # borne by the merchants


def _decoded(rows):
    """[(row, Record)] of BoothRecord rows."""
    return [(row, R.Record.decode(row.raw)) for row in rows]


def _sales_with_lines(decoded):
    """[(row, sale Record, its lines or None)] of the applied debits."""
    by_terminal = {}
    for row, rec in decoded:
        by_terminal.setdefault(row.terminal_id, {})[rec.seq] = rec
    return [(row, rec, lines_of(rec, by_terminal[row.terminal_id])) for row, rec in decoded
            if rec.kind == R.KIND_DEBIT]


def _day(time_s, offset_s):
    """The park's day (days since the epoch in its time zone) of a UTC time."""
    return (time_s + offset_s) // SECONDS_PER_DAY


def sales(rows, by, categories=None, item_names=None, offset_s=0):
    """[SalesRow] of BoothRecord rows grouped `by` (BY): money groups by amount paid, best first; items and
    categories by quantity, best sellers first.

    categories: {(merchant_id, list_version, code): category} of the items the lines name; item_names the same
    keys to names (the newest name wins for a code sold under several)."""
    if by not in BY:
        raise Explained("report by one of %(choices)s, not %(by)r", choices=", ".join(BY), by=by)
    decoded = _decoded(rows)
    groups = {}

    def add(key, name, sales_n=0, quantity=0, list_cents=0, discount=0, paid=0, refunds=0):
        g = groups.get(key)
        if g is None:
            g = groups[key] = [name, 0, 0, 0, 0, 0, 0, set()]
        g[1] += quantity
        g[2] += list_cents
        g[3] += discount
        g[4] += paid
        g[5] += refunds
        if sales_n:
            g[7].add(sales_n)
    if by in ("item", "category"):
        for row, sale, lines in _sales_with_lines(decoded):
            for line in lines or ():
                list_version = SL.line_fields(line)[3]
                ident = (row.merchant_id, list_version, line.item)
                key = line.item if by == "item" else (categories or {}).get(ident, 0)
                name = ((item_names or {}).get(ident, "item %d" % line.item) if by == "item"
                        else "category %d" % key)
                add(key, name, (row.terminal_id, sale.seq), line.quantity, line.amount_cents, line.discount_cents,
                    line.amount_cents - line.discount_cents)
    else:
        for row, rec in decoded:
            if rec.kind not in (R.KIND_DEBIT, R.KIND_REFUND):
                continue
            key, name = {"merchant": (row.merchant_id, row.merchant_name),
                         "terminal": (row.terminal_id, row.terminal_name),
                         "day": (_day(rec.time_s, offset_s), "")}[by]
            if rec.kind == R.KIND_DEBIT:
                add(key, name, (row.terminal_id, rec.seq), 0, rec.amount_cents + rec.discount_cents,
                    rec.discount_cents, rec.amount_cents)
            else:
                add(key, name, refunds=rec.amount_cents)
    out = [SalesRow(key, g[0], len(g[7]), g[1], g[2], g[3], g[4], g[5]) for key, g in groups.items()]
    if by == "day":
        return sorted(out)
    best = (lambda r: (-r.quantity, -r.list_cents, r.key)) if by in ("item", "category") else (
        lambda r: (-r.paid_cents, r.key))
    return sorted(out, key=best)


def discounts_by_tier(rows):
    """[DiscountRow] by tier of the applied sales' discounts: the tier the sale's lines name (the card's at the
    sale), else the card's tier at the hub; the park's part from park:discounts, refunds' takebacks included."""
    decoded = _decoded(rows)
    tiers = {}
    tier_of_sale = {}
    for row, sale, lines in _sales_with_lines(decoded):
        tier = SL.line_fields(lines[0])[0] if lines else (row.card_tier or 0)
        tier_of_sale[(row.terminal_id, sale.seq)] = tier
        t = tiers.setdefault(tier, [0, 0, 0])
        if sale.discount_cents:
            t[0] += 1
        t[1] += sale.discount_cents
        t[2] += row.park_discount_cents
    for row, rec in decoded:
        if rec.kind == R.KIND_REFUND and row.park_discount_cents:
            tier = tier_of_sale.get((row.terminal_id, rec.ref_seq), row.card_tier or 0)
            tiers.setdefault(tier, [0, 0, 0])[2] += row.park_discount_cents     # negative: taken back
    return [DiscountRow(tier, n, given, park, given - park) for tier, (n, given, park) in sorted(tiers.items())
            if given or park]
