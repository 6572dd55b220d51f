"""Reports for finance: sales per terminal, top-ups and bonus per day, and what the park owes (its liabilities)."""

from parkcard.services.privileges import REPORTS, SETTLEMENT_READ, requires
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
