"""The close of a settlement inside a SQLite write; its queries are the backend-neutral parkcard.store.settlement."""

from parkcard.store.errors import PeriodOverlap
from parkcard.store.settlement import TAKEN, taken_params, totals


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
        "refunds_cents, commission_cents, payout_cents, records, late_records, discounts_cents, "
        "park_discounts_cents, closed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
        (merchant_id, start_s, end_s, park[0], *t, tx.now)).fetchone()[0]
    # The record is the primary key: a record already paid makes the whole close fail.
    conn.executemany("INSERT INTO settlement_records(record_id, settlement_id) VALUES (?,?)",
                     [(r[0], settlement_id) for r in rows])
    return settlement_id, dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s, currency=park[0],
                               **t._asdict())
