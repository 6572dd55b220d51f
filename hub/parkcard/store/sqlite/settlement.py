"""Settlement queries of the SQLite store: what a close takes, and the close itself inside a write."""

from protocol import record as R

from parkcard.domain import accounts
from parkcard.store.errors import PeriodOverlap
from parkcard.domain.lifecycle import RecordStatus
from parkcard.store.rows import Settlement, SettlementTotals

# The kinds a settlement pays: a booth's sales, and its refunds that give sales back.
SETTLED_KINDS = (R.KIND_DEBIT, R.KIND_REFUND)

# The records a close takes, one row each: (id, kind, amount, commission, payout, late). Commission is
# what the park kept (its commission account's entries), payout what the merchant's account gained.
TAKEN = (
    "SELECT r.id, r.kind, r.amount_cents, "
    "COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "          AND e.account=:commission_account), 0), "
    "COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "          AND e.account=:merchant_account), 0), "
    "NOT (r.time_s>=:start AND r.time_s<:end) "
    "FROM records r JOIN terminals m ON m.id = r.terminal_id JOIN ledger_tx t ON t.record_id = r.id "
    "WHERE m.merchant_id=:merchant AND r.status=:applied AND r.kind IN (:sale, :refund) "
    "AND NOT EXISTS (SELECT 1 FROM settlement_records x WHERE x.record_id = r.id) "
    "AND ((r.time_s>=:start AND r.time_s<:end) OR EXISTS (SELECT 1 FROM settlements s "
    "     WHERE s.merchant_id=:merchant AND r.time_s>=s.period_start AND r.time_s<s.period_end)) "
    "ORDER BY r.id")

SETTLEMENT_ROW = (
    "SELECT s.id, s.merchant_id, m.name, s.currency, s.period_start, s.period_end, s.sales_cents, s.refunds_cents, "
    "s.commission_cents, s.payout_cents, s.records, s.late_records, s.closed_at "
    "FROM settlements s JOIN merchants m ON m.id = s.merchant_id ")


def taken_params(merchant_id, start_s, end_s):
    """The parameters of TAKEN for one merchant's period."""
    return {"merchant": merchant_id, "start": start_s, "end": end_s, "applied": RecordStatus.APPLIED,
            "sale": R.KIND_DEBIT, "refund": R.KIND_REFUND, "commission_account": accounts.COMMISSION,
            "merchant_account": accounts.merchant_account(merchant_id)}


def totals(rows):
    """Sum the rows of TAKEN into the totals of a settlement."""
    return SettlementTotals(sales_cents=sum(r[2] for r in rows if r[1] == R.KIND_DEBIT),
                            refunds_cents=sum(r[2] for r in rows if r[1] == R.KIND_REFUND),
                            commission_cents=sum(r[3] for r in rows), payout_cents=sum(r[4] for r in rows),
                            records=len(rows), late_records=sum(1 for r in rows if r[5]))


def close_one(tx, merchant_id, start_s, end_s):
    """Close one merchant's period inside a write; return (settlement id, audit details or None if it was closed)."""
    conn = tx.conn
    same = conn.execute("SELECT id FROM settlements WHERE merchant_id=? AND period_start=? AND period_end=?",
                        (merchant_id, start_s, end_s)).fetchone()
    if same is not None:
        return same[0], None
    clash = conn.execute("SELECT m.name, s.period_start, s.period_end FROM settlements s "
                         "JOIN merchants m ON m.id = s.merchant_id WHERE s.merchant_id=? "
                         "AND s.period_start<? AND ?<s.period_end ORDER BY s.period_start LIMIT 1",
                         (merchant_id, end_s, start_s)).fetchone()
    if clash is not None:
        raise PeriodOverlap(merchant_id, *clash)
    park = conn.execute("SELECT p.currency FROM merchants m JOIN parks p ON p.id = m.park_id WHERE m.id=?",
                        (merchant_id,)).fetchone()
    if park is None:
        raise ValueError("merchant %d does not exist" % merchant_id)
    rows = conn.execute(TAKEN, taken_params(merchant_id, start_s, end_s)).fetchall()
    t = totals(rows)
    settlement_id = conn.execute(
        "INSERT INTO settlements(merchant_id, period_start, period_end, currency, sales_cents, "
        "refunds_cents, commission_cents, payout_cents, records, late_records, closed_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
        (merchant_id, start_s, end_s, park[0], *t, tx.now)).fetchone()[0]
    # The record is the primary key: a record already paid makes the whole close fail.
    conn.executemany("INSERT INTO settlement_records(record_id, settlement_id) VALUES (?,?)",
                     [(r[0], settlement_id) for r in rows])
    return settlement_id, dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s, currency=park[0],
                               **t._asdict())


def settlement_row(row):
    """A Settlement from a SETTLEMENT_ROW row (None stays None)."""
    return Settlement(*row) if row else None
