"""Merchant settlement per period [start, end) of record time (epoch seconds).

sales = DEBIT amounts, refunds = REFUND amounts, commission = what the park
kept (park:commission entries, refunds give theirs back), payout = what the
merchant's account gained (sales - refunds - commission). Closing is final
and idempotent: a closed (merchant, start, end) returns the stored row and
writes nothing. Records arriving after the close for that period are not in
it (they count for the period that contains them only if it is still open).
"""

import csv

from parkcard.storage import SETTLEMENT_COLUMNS


class SettlementError(ValueError):
    """A settlement request that cannot be done."""


async def preview(storage, merchant_id, start_s, end_s):
    """Return the totals of an open period as a dict, without closing it."""
    if end_s <= start_s:
        raise SettlementError("the period end must be after its start")
    sales, refunds, commission, payout, records = await storage.merchant_period(merchant_id, start_s, end_s)
    return dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s, sales_cents=sales,
                refunds_cents=refunds, commission_cents=commission, payout_cents=payout, records=records,
                closed_at=None)


async def close(storage, merchant_id, start_s, end_s):
    """Close a merchant's period (or return it as already closed); return (row, newly_closed)."""
    existing = await storage.settlement(merchant_id, start_s, end_s)
    if existing is not None:
        return existing, False
    totals = await preview(storage, merchant_id, start_s, end_s)
    row = await storage.close_settlement(merchant_id, start_s, end_s, [totals[c] for c in SETTLEMENT_COLUMNS[3:8]])
    return row, True


def write_csv(path, rows):
    """Write settlement rows (dicts) as CSV with cents as integers."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(SETTLEMENT_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
