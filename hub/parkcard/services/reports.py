"""Reports for finance: sales per terminal, top-ups and bonus per day, the desk's day, what the park owes (its
liabilities); booth sales by merchant, terminal, item, category or day, and discounts by tier with who bore them."""

import csv
import io
from typing import NamedTuple

from protocol import record as R
from protocol import sale_line as SL

from parkcard.domain import accounts, park_time, sales_report
from parkcard.domain.cents import whole
from parkcard.money import major_units
from parkcard.services import park
from parkcard.services.errors import Refusal
from parkcard.services.items import entries_of
from parkcard.services.privileges import REPORTS, SETTLEMENT_READ, ServiceError, requires
from parkcard.services.sales import checked_period


@requires(SETTLEMENT_READ)
async def sales_by_terminal(store, actor, start_s, end_s):
    """[TerminalSales] of applied sales and refunds in [start_s, end_s); a merchant login gets its own only."""
    checked_period(start_s, end_s)
    return await store.sales_by_terminal(int(start_s), int(end_s), actor.merchant_id)


@requires(REPORTS)
async def top_ups_by_day(store, actor, start_s, end_s, offset_s=0):
    """[TopUpDay] of applied top-ups and issues in [start_s, end_s), in days of the park's UTC offset offset_s."""
    checked_period(start_s, end_s)
    return await store.top_ups_by_day(int(start_s), int(end_s), int(offset_s))


@requires(REPORTS)
async def liabilities(store, actor):
    """Liabilities: what the park owes now (card funds, holds, deposits, pending credits, merchants)."""
    return await store.liabilities()


DESK_GROUPS = ("operator", "desk")


@requires(REPORTS)
async def desk_day(store, actor, day, by="operator"):
    """(DeskDay: the park day's bounds, [DeskDayLine] of the desk operations posted in it per operator or desk).

    day: a park day (days since epoch, parkcard.domain.park_time), from the park's daily reset on its clock to
    the next, as its gates and tickets count it."""
    if by not in DESK_GROUPS:
        raise ServiceError("a desk report is by %(groups)s, not %(by)r", groups=" or ".join(DESK_GROUPS), by=by)
    whole(day, "a park day (days since 1970-01-01)", ServiceError, 0)
    start_s, end_s = park_time.day_bounds(await park.zone_of(store), await park.daily_reset_s(store), day)
    return DeskDay(day, start_s, end_s), await store.desk_day(start_s, end_s, by)


class DeskDay(NamedTuple):
    """The park day a desk report covers: its number and [start_s, end_s) epoch seconds (23 to 25 hours)."""

    day: int
    start_s: int
    end_s: int


@requires(REPORTS)
async def bonus_purses(store, actor):
    """The bonus held in every card's bonus purse, where the ledger keeps one (cents; part of what cards hold)."""
    return await store.prefix_balance(accounts.BONUS_PREFIX)


@requires(SETTLEMENT_READ)
async def booth_sales(store, actor, by, start_s, end_s, offset_s=0):
    """[domain.sales_report.SalesRow] of the booth sales in [start_s, end_s) grouped `by`; a merchant login gets
    its own only. Days are the park's (UTC offset offset_s)."""
    checked_period(start_s, end_s)
    if by not in sales_report.BY:
        raise Refusal("out_of_range", "report sales by one of %(groups)s, not %(by)r",
                      groups=", ".join(sales_report.BY), by=by)
    rows = await store.booth_records(int(start_s), int(end_s), actor.merchant_id)
    categories, names = await _items_named(store, rows) if by in ("item", "category") else ({}, {})
    return sales_report.sales(rows, by, categories, names, int(offset_s))


@requires(SETTLEMENT_READ)
async def discounts_given(store, actor, start_s, end_s):
    """[domain.sales_report.DiscountRow] of the discounts the booth sales in [start_s, end_s) gave, by tier."""
    checked_period(start_s, end_s)
    return sales_report.discounts_by_tier(await store.booth_records(int(start_s), int(end_s), actor.merchant_id))


async def _items_named(store, rows):
    """({(merchant, list version, code): category}, {same: name}) of the items the sale lines among rows name."""
    categories, names = {}, {}
    wanted = set()
    for row in rows:
        if row.kind == R.KIND_SALE_LINE:
            wanted.add((row.merchant_id, SL.line_fields(R.Record.decode(row.raw))[3]))
    for merchant_id, version in sorted(wanted):
        for item in entries_of(await store.price_list(merchant_id, version) if version else None):
            categories[(merchant_id, version, item.code)] = item.category
            names[(merchant_id, version, item.code)] = item.name
    return categories, names


SALES_CSV_COLUMNS = ("key", "name", "sales", "quantity", "currency", "list", "discount", "paid", "refunds",
                     "list_cents", "discount_cents", "paid_cents", "refunds_cents")
DISCOUNTS_CSV_COLUMNS = ("tier", "sales", "currency", "discount", "park_bore", "merchants_bore", "discount_cents",
                         "park_bore_cents", "merchants_bore_cents")


def sales_csv(rows, currency):
    """SalesRow rows as CSV text: amounts in the park's currency and in cents."""
    return _csv(SALES_CSV_COLUMNS, [
        dict(key=r.key, name=r.name, sales=r.sales, quantity=r.quantity, currency=currency,
             **_money(currency, list=r.list_cents, discount=r.discount_cents, paid=r.paid_cents,
                      refunds=r.refunds_cents)) for r in rows])


def discounts_csv(rows, currency):
    """DiscountRow rows as CSV text."""
    return _csv(DISCOUNTS_CSV_COLUMNS, [
        dict(tier=r.tier, sales=r.sales, currency=currency,
             **_money(currency, discount=r.discount_cents, park_bore=r.park_cents, merchants_bore=r.merchant_cents))
        for r in rows])


def table_csv(columns, rows):
    """Rows (tuples in the order of columns) as CSV text under columns."""
    return _csv(columns, [dict(zip(columns, row)) for row in rows])


def _money(currency, **cents):
    """{name: major units, name_cents: cents} of each amount."""
    out = {}
    for name, value in cents.items():
        out[name] = major_units(value, currency)
        out[name + "_cents"] = value
    return out


def _csv(columns, lines):
    """Dicts as CSV text under columns."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(lines)
    return out.getvalue()
