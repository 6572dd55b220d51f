"""PostgresStore's admin card, alarm, audit, park and settlement methods (a mixin).

Only the methods whose SQL differs from SQLite's are here; the rest are both backends' own
(parkcard.store.reads.SharedMethods).
"""

import asyncio

from parkcard.domain.lifecycle import AdminCardState
from parkcard.store import settlement as S
from parkcard.store.errors import PeriodOverlap
from parkcard.store.postgres.audit_rows import PgAuditRows
from parkcard.store.postgres.sql import numbered


class LedgerMethods:
    """The second half of PostgresStore's public methods; needs write, _one and its readers."""

    # -- admin system cards
    async def add_admin_card(self, uid, desk, issued_by, first, last, audit=None):
        """Record a new pending admin card under the next number in [first, last]; return it (ValueError when full)."""
        def run(tx):
            tx.conn.execute("LOCK TABLE admin_cards IN SHARE ROW EXCLUSIVE MODE")   # numbered by one writer at a time
            card_no = max(first, (tx.conn.fetchval("SELECT MAX(card_no) FROM admin_cards") or 0) + 1)
            if card_no > last:
                raise ValueError("admin card numbers %d..%d are all used" % (first, last))
            tx.conn.execute("INSERT INTO admin_cards(card_no, uid, desk, issued_by, issued_at, state) "
                            "VALUES ($1,$2,$3,$4,$5,$6)", card_no, bytes(uid), int(desk), issued_by, tx.now,
                            AdminCardState.PENDING)
            return card_no
        return await self.write(run, audit)

    async def revoke_admin_card(self, card_no, reason, audit=None):
        """Revoke an admin card; return True if revoked now, False if it already was; ValueError if unknown."""
        def run(tx):
            row = tx.conn.fetchrow("SELECT revoked_at FROM admin_cards WHERE card_no=$1 FOR UPDATE", card_no)
            if row is None:
                raise ValueError("admin card %d does not exist" % card_no)
            if row[0] is not None:
                return False
            tx.conn.execute("UPDATE admin_cards SET revoked_at=$1, reason=$2 WHERE card_no=$3", tx.now, reason,
                            card_no)
            return True
        return await self.write(run, audit)

    # -- listings
    async def add_alarm_once(self, kind, detail, card_no=None, terminal_id=None):
        """Raise an alarm unless the same one (kind, card, terminal, detail) is already listed; return True if new."""
        def run(tx):
            if tx.conn.fetchval("SELECT 1 FROM alarms WHERE kind=$1 AND card_no IS NOT DISTINCT FROM $2::bigint "
                                "AND terminal_id IS NOT DISTINCT FROM $3::bigint AND detail=$4",
                                kind, card_no, terminal_id, detail) is not None:
                return False
            tx.add_alarm(kind, card_no, terminal_id, None, detail)
            return True
        return await self.write(run)

    # -- audit (ledger check)
    async def audit_scan(self, fn):
        """Run fn(PgAuditRows) in a thread of its own and return its result: the auditor streams rows there."""
        return await asyncio.to_thread(fn, PgAuditRows(self._loop, self._readers))

    # -- park
    async def set_park_currency(self, park_id, currency, audit=None):
        """Set the park's currency (creating the park); ValueError once the park has taken money in another."""
        def run(tx):
            tx.conn.execute("INSERT INTO parks(id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", park_id,
                            "park %d" % park_id)
            current = tx.conn.fetchval("SELECT currency FROM parks WHERE id=$1 FOR UPDATE", park_id)
            if current == currency:
                return False
            # Stored amounts carry no currency: changing it would relabel money already taken.
            taken = tx.conn.fetchval("SELECT COUNT(*) FROM records r JOIN terminals t ON t.id = r.terminal_id "
                                     "JOIN merchants m ON m.id = t.merchant_id WHERE m.park_id=$1", park_id)
            if taken:
                raise ValueError("park %d already holds %d records in %s: its currency cannot change"
                                 % (park_id, taken, current))
            tx.conn.execute("UPDATE parks SET currency=$1 WHERE id=$2", currency, park_id)
            return True
        return await self.write(run, audit)

    # -- settlement
    def _close_one(self, tx, merchant_id, start_s, end_s):
        """Close one merchant's period inside a write: (settlement id, audit details or None if it was closed)."""
        # Serialised per merchant with any other process's close (the overlap trigger takes the same lock).
        tx.conn.execute("SELECT pg_advisory_xact_lock(hashtext('parkcard.settlements'), $1::integer)",
                        merchant_id)
        same = tx.conn.fetchval("SELECT id FROM settlements WHERE merchant_id=$1 AND period_start=$2 "
                                "AND period_end=$3", merchant_id, start_s, end_s)
        if same is not None:
            return same, None
        clash = tx.conn.fetchrow("SELECT m.name, s.period_start, s.period_end FROM settlements s "
                                 "JOIN merchants m ON m.id = s.merchant_id WHERE s.merchant_id=$1 "
                                 "AND s.period_start<$2 AND $3<s.period_end ORDER BY s.period_start LIMIT 1",
                                 merchant_id, end_s, start_s)
        if clash is not None:
            raise PeriodOverlap(merchant_id, *clash)
        currency = tx.conn.fetchval("SELECT p.currency FROM merchants m JOIN parks p ON p.id = m.park_id "
                                    "WHERE m.id=$1", merchant_id)
        if currency is None:
            raise ValueError("merchant %d does not exist" % merchant_id)
        taken, args = numbered(S.TAKEN, S.taken_params(merchant_id, start_s, end_s))
        rows = tx.conn.fetch(taken, *args)
        t = S.totals(rows)
        settlement_id = tx.conn.fetchval(
            "INSERT INTO settlements(merchant_id, period_start, period_end, currency, sales_cents, "
            "refunds_cents, commission_cents, payout_cents, records, late_records, discounts_cents, "
            "park_discounts_cents, closed_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING id",
            merchant_id, start_s, end_s, currency, *t, tx.now)
        # The record is the primary key: a record already paid makes the whole close fail.
        tx.conn.run_all([("INSERT INTO settlement_records(record_id, settlement_id) VALUES ($1,$2)",
                          [(r[0], settlement_id) for r in rows])] if rows else [])
        return settlement_id, dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s,
                                   currency=currency, **t._asdict())
