"""Settlement queries every backend runs as written: what a close takes, and a closed period's row."""

from protocol import record as R

from parkcard.domain import accounts
from parkcard.domain.lifecycle import RecordStatus
from parkcard.store.rows import Settlement, SettlementTotals

PARK_BEARS = "park"     # merchants.discount_bearer when the park pays the merchant's discounts (store/booth.py)

# The kinds a settlement pays: a booth's sales, and its refunds and reversals that give sales back.
SETTLED_KINDS = (R.KIND_DEBIT, R.KIND_REFUND, R.KIND_REVERSAL)

# The records a close takes, one row each: (id, kind, amount, commission, payout, late, raw, park
# discount, legacy park-borne). Commission is what the park kept (its commission account's entries), payout what the
# merchant's account gained, the park's discount what park:discounts paid it for the record (SPEC.md
# §7.5: booked when the record was applied, by the bearer then); the raw record holds what a sale took off
# the list price (its discount, SPEC.md §4.2). A record applied before park:discounts entries existed
# (discount_postings, migration 27) is legacy park-borne when its merchant's bearer at the close is the park:
# its discount is paid with the payout, as settlements did then. The sums are cast because PostgreSQL's SUM
# of BIGINT is NUMERIC.
TAKEN = (
    "SELECT r.id, r.kind, r.amount_cents, "
    "CAST(COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "               AND e.account=:commission_account), 0) AS BIGINT), "
    "CAST(COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "               AND e.account=:merchant_account), 0) AS BIGINT), "
    "NOT (r.time_s>=:start AND r.time_s<:end), r.raw, "
    "CAST(COALESCE((SELECT -SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "               AND e.account=:discounts_account), 0) AS BIGINT), "
    "CASE WHEN t.id < (SELECT first_tx FROM discount_postings) AND b.discount_bearer = :park THEN 1 ELSE 0 END "
    "FROM records r JOIN terminals m ON m.id = r.terminal_id JOIN ledger_tx t ON t.record_id = r.id "
    "JOIN merchants b ON b.id = m.merchant_id "
    "WHERE m.merchant_id=:merchant AND r.status=:applied AND r.kind IN (:sale, :refund, :reversal) "
    "AND NOT EXISTS (SELECT 1 FROM settlement_records x WHERE x.record_id = r.id) "
    "AND ((r.time_s>=:start AND r.time_s<:end) OR EXISTS (SELECT 1 FROM settlements s "
    "     WHERE s.merchant_id=:merchant AND r.time_s>=s.period_start AND r.time_s<s.period_end)) "
    "ORDER BY r.id")

SETTLEMENT_ROW = (
    "SELECT s.id, s.merchant_id, m.name, s.currency, s.period_start, s.period_end, s.sales_cents, s.refunds_cents, "
    "s.commission_cents, s.payout_cents, s.records, s.late_records, s.discounts_cents, s.park_discounts_cents, "
    "s.closed_at "
    "FROM settlements s JOIN merchants m ON m.id = s.merchant_id ")


def taken_params(merchant_id, start_s, end_s):
    """The parameters of TAKEN for one merchant's period."""
    return {"merchant": merchant_id, "start": start_s, "end": end_s, "applied": RecordStatus.APPLIED,
            "sale": R.KIND_DEBIT, "refund": R.KIND_REFUND, "reversal": R.KIND_REVERSAL,
            "commission_account": accounts.COMMISSION,
            "merchant_account": accounts.merchant_account(merchant_id),
            "discounts_account": accounts.DISCOUNTS, "park": PARK_BEARS}


def totals(rows):
    """Sum the rows of TAKEN into the totals of a settlement: the payout is what the merchant's account
    gained, sales - refunds - commission + the park's part of the discounts (net of what refunds took
    back), so a merchant that bears its discounts is paid sales at list price - commission - those
    discounts (README: Settlement, SPEC.md §7.5)."""
    discounts = legacy = 0
    for r in rows:
        if r[1] == R.KIND_DEBIT:
            discount = R.Record.decode(bytes(r[6])).discount_cents
            discounts += discount
            legacy += discount if r[8] else 0
    park_discounts = sum(r[7] for r in rows) + legacy
    return SettlementTotals(sales_cents=sum(r[2] for r in rows if r[1] == R.KIND_DEBIT),
                            refunds_cents=sum(r[2] for r in rows if r[1] in (R.KIND_REFUND, R.KIND_REVERSAL)),
                            commission_cents=sum(r[3] for r in rows),
                            payout_cents=sum(r[4] for r in rows) + legacy,
                            records=len(rows), late_records=sum(1 for r in rows if r[5]),
                            discounts_cents=discounts, park_discounts_cents=park_discounts)

