"""PostgresStore's blacklist, admin card, alarm, audit, park and settlement methods (a mixin).

Only the methods whose SQL differs from SQLite's are here; the rest are SQLite's own (store.PORTABLE_METHODS).
"""

import asyncio

from parkcard.storage import _SETTLEMENT_ROW, SETTLEMENT_COLUMNS, NotIssued, PeriodOverlap, _settlement_totals
from parkcard.store.postgres.audit_rows import PgAuditRows

# The records a close takes, one row each: (id, kind, amount, commission, payout, late); $1 merchant,
# $2 start, $3 end. Commission is what the park kept, payout what the merchant's account gained.
_TAKEN = (
    "SELECT r.id, r.kind, r.amount_cents, "
    "COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "          AND e.account='park:commission'), 0)::bigint, "
    "COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "          AND e.account='merchant:' || $1::bigint), 0)::bigint, "
    "NOT (r.time_s>=$2 AND r.time_s<$3) "
    "FROM records r JOIN terminals m ON m.id = r.terminal_id JOIN ledger_tx t ON t.record_id = r.id "
    "WHERE m.merchant_id=$1 AND r.status='applied' AND r.kind IN (1, 3) "
    "AND NOT EXISTS (SELECT 1 FROM settlement_records x WHERE x.record_id = r.id) "
    "AND ((r.time_s>=$2 AND r.time_s<$3) OR EXISTS (SELECT 1 FROM settlements s "
    "     WHERE s.merchant_id=$1 AND r.time_s>=s.period_start AND r.time_s<s.period_end)) "
    "ORDER BY r.id")

# Tables count() may name (it formats the name into SQL).
COUNTED_TABLES = frozenset(("records", "ledger_tx", "ledger_entries", "cards", "quarantine", "conflicts", "alarms",
                            "attempts", "blacklist", "blacklist_versions", "settlements", "settlement_records",
                            "terminals", "merchants", "admin_cards", "card_counters", "terminal_commands",
                            "card_write_requests", "refunds", "terminal_gaps", "accounts", "parks"))


class LedgerMethods:
    """The second half of PostgresStore's public methods; needs write, fetchall, fetchone, _value."""

    # -- blacklist
    async def blacklist_change(self, card_no, reason, add=True, issued_only=False, audit=None):
        """Add (or remove) a card under a new blacklist version; return the version or None if unchanged.

        issued_only: refuse (NotIssued) to add a card this park never issued (no row in cards).
        """
        def run(tx):
            if not add:
                return tx.blacklist_remove(card_no, reason)
            if issued_only and not tx.blacklisted(card_no) and not tx.card_exists(card_no):
                raise NotIssued("card %d was never issued here" % card_no)
            return tx.blacklist_add(card_no, reason)
        return await self.write(run, audit)

    # -- admin system cards
    async def add_admin_card(self, uid, desk, issued_by, first, last, audit=None):
        """Record a new pending admin card under the next number in [first, last]; return it (ValueError when full)."""
        def run(tx):
            tx.conn.execute("LOCK TABLE admin_cards IN SHARE ROW EXCLUSIVE MODE")   # numbered by one writer at a time
            card_no = max(first, (tx.conn.fetchval("SELECT MAX(card_no) FROM admin_cards") or 0) + 1)
            if card_no > last:
                raise ValueError("admin card numbers %d..%d are all used" % (first, last))
            tx.conn.execute("INSERT INTO admin_cards(card_no, uid, desk, issued_by, issued_at, state) "
                            "VALUES ($1,$2,$3,$4,$5,'pending')", card_no, bytes(uid), int(desk), issued_by, tx.now)
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

    async def count(self, table, where="1", params=()):
        """Return COUNT(*) of a table (a fixed name of this store; where may use ? placeholders)."""
        if table not in COUNTED_TABLES:
            raise ValueError("no table %r in this store" % table)
        return (await self.fetchone("SELECT COUNT(*) FROM %s WHERE %s" % (table, "TRUE" if where == "1" else where),
                                    params))[0]

    # -- audit (ledger check)
    async def audit_scan(self, fn):
        """Run fn(PgAuditRows) in a thread of its own and return its result: the auditor streams rows there."""
        return await asyncio.to_thread(fn, PgAuditRows(self._loop, self._readers))

    async def card_balances(self):
        """Return [(card_no, shadow_balance_cents, ledger_sum, counters_known, first_counter, last_counter, status)]."""
        return await self.fetchall(
            "SELECT c.card_no, c.shadow_balance_cents, "
            "COALESCE((SELECT SUM(amount_cents) FROM ledger_entries WHERE account='card:' || c.card_no), 0)::bigint, "
            "(SELECT COUNT(*) FROM card_counters k WHERE k.card_no=c.card_no), "
            "(SELECT MIN(counter) FROM card_counters k WHERE k.card_no=c.card_no), c.last_counter, c.status "
            "FROM cards c ORDER BY c.card_no")

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
    async def unsettled(self, merchant_id, start_s, end_s):
        """Return the totals dict of what closing [start, end) would take now (see close_settlement)."""
        return _settlement_totals(await self.fetchall(_TAKEN, (merchant_id, start_s, end_s)))

    async def close_settlements(self, merchant_ids, start_s, end_s, audit=None):
        """Close the merchants' period in one transaction (all or none); return [(row, newly_closed)].

        The same contract as SQLite's Storage.close_settlements: PeriodOverlap when the period
        overlaps another closed period of a merchant, ValueError when a merchant does not exist.
        """
        def close_one(tx, merchant_id):
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
            rows = tx.conn.fetch(_TAKEN, merchant_id, start_s, end_s)
            t = _settlement_totals(rows)
            settlement_id = tx.conn.fetchval(
                "INSERT INTO settlements(merchant_id, period_start, period_end, currency, sales_cents, "
                "refunds_cents, commission_cents, payout_cents, records, late_records, closed_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id",
                merchant_id, start_s, end_s, currency, t["sales_cents"], t["refunds_cents"], t["commission_cents"],
                t["payout_cents"], t["records"], t["late_records"], tx.now)
            # The record is the primary key: a record already paid makes the whole close fail.
            tx.conn.run_all([("INSERT INTO settlement_records(record_id, settlement_id) VALUES ($1,$2)",
                              [(r[0], settlement_id) for r in rows])] if rows else [])
            return settlement_id, dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s,
                                       currency=currency, **t)

        # audit([details of each newly closed period]) -> entries, appended in the closing transaction.
        closed = await self.write(lambda tx: [close_one(tx, m) for m in merchant_ids],
                                  audit and (lambda res: audit([new for _, new in res if new])))
        out = []
        for settlement_id, new in closed:
            row = await self.fetchone(_SETTLEMENT_ROW + "WHERE s.id=$1", (settlement_id,))
            out.append((dict(zip(SETTLEMENT_COLUMNS, row)), new is not None))
        return out
