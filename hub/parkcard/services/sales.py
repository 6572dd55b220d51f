"""Sales per day and per merchant, for the settlement page's chart; a merchant login sees its own only."""

from parkcard.services.errors import Refusal
from parkcard.services.privileges import SETTLEMENT_READ, requires

DAY_S = 86400
SALES_DAYS_MAX = 366        # one chart covers at most a year


@requires(SETTLEMENT_READ)
async def by_day(store, actor, start_s, end_s, offset_s=0):
    """[SalesDay] of applied sales and refunds in [start_s, end_s), in days of the park's UTC offset offset_s.

    An actor of a merchant login (actor.merchant_id) gets its own merchant's rows only.
    """
    checked_period(start_s, end_s)
    return await store.sales_by_day(int(start_s), int(end_s), int(offset_s), actor.merchant_id)


def checked_period(start_s, end_s):
    """Refusal(invalid_period) unless [start_s, end_s) runs forwards and covers at most SALES_DAYS_MAX days."""
    if not 0 <= start_s < end_s or end_s - start_s > SALES_DAYS_MAX * DAY_S:
        raise Refusal("invalid_period", "a sales period runs forwards and covers 1 to %(most)d days",
                      most=SALES_DAYS_MAX)
