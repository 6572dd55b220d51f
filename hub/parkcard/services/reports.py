"""Reports for finance: sales per terminal, top-ups and bonus per day, the desk's day, what the park owes."""

from parkcard.domain import accounts
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
DAY_S = 86400


@requires(REPORTS)
async def desk_day(store, actor, day_start_s, by="operator"):
    """[DeskDayLine] of the desk operations posted on the UTC day starting day_start_s, per operator or desk."""
    if by not in DESK_GROUPS:
        raise ServiceError("a desk report is by %s, not %r" % (" or ".join(DESK_GROUPS), by))
    if not isinstance(day_start_s, int) or day_start_s % DAY_S:
        raise ServiceError("a desk report covers one UTC day: give its first second (a multiple of %d)" % DAY_S)
    return await store.desk_day(day_start_s, day_start_s + DAY_S, by)


@requires(REPORTS)
async def bonus_purses(store, actor):
    """The bonus held in every card's bonus purse, where the ledger keeps one (cents; part of what cards hold)."""
    return await store.prefix_balance(accounts.BONUS_PREFIX)
