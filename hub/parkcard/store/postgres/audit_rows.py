"""The ledger check's reads on PostgreSQL: AuditRows' methods, called from the check's thread."""

from parkcard.domain.lifecycle import ALARM_CLONE
from parkcard.store import interface
from parkcard.store.errors import schema_problem
from parkcard.store.replacements import AUDIT_COVERS, AUDIT_REPLACEMENTS
from parkcard.store.shifts import PAID_BY_POSTINGS, Z_POSTINGS
from parkcard.store.postgres.migrate import latest_version

STREAM_CHUNK_ROWS = 2000    # rows a streaming read holds at once (records, ledger entries)


class PgAuditRows(interface.AuditRows):
    """The reads of the ledger check (parkcard.audit), over the store's reader pool; large ones stream."""

    def __init__(self, loop, pool):
        self.loop = loop
        self.pool = pool

    def _fetch(self, sql, *args):
        async def run():
            async with self.pool.acquire() as conn:
                return [tuple(r) for r in await conn.fetch(sql, *args)]
        return self.loop.wait(run())

    def _stream(self, sql):
        """Yield the rows of sql as tuples, STREAM_CHUNK_ROWS at a time, from a cursor of its own connection."""
        conn = self.loop.wait(self.pool.acquire())
        tr = conn.transaction(readonly=True)
        try:
            self.loop.wait(tr.start())
            cursor = self.loop.wait(conn.cursor(sql))
            while True:
                rows = self.loop.wait(cursor.fetch(STREAM_CHUNK_ROWS))
                if not rows:
                    break
                for row in rows:
                    yield tuple(row)
        finally:
            self.loop.wait(tr.rollback())
            self.loop.wait(self.pool.release(conn))

    def schema_version(self):
        """Return the schema version (parkcard_schema; -1 when the table is missing)."""
        return self._fetch("SELECT CASE WHEN to_regclass('parkcard_schema') IS NULL THEN -1 ELSE "
                           "(SELECT COALESCE(MAX(version), -1) FROM parkcard_schema) END")[0][0]

    def schema_problem(self):
        """Return why this hub cannot read the database's schema version, or None."""
        return schema_problem(self.schema_version(), latest_version())

    def integrity_check(self, max_errors=20):
        """Return ["ok"]: the server verifies its own pages as it reads them (checksums when initdb -k)."""
        return ["ok"]

    def terminals(self):
        """Return {terminal_id: (merchant_id, commission_bps now, key, acked_upto)}."""
        return {r[0]: tuple(r[1:]) for r in self._fetch(
            "SELECT t.id, t.merchant_id, m.commission_bps, t.key, t.acked_upto FROM terminals t "
            "LEFT JOIN merchants m ON m.id = t.merchant_id")}

    def records(self):
        """Yield (id, terminal_id, seq, raw, kind, card_no, counter, amount, balance_after, time_s, status) by id."""
        yield from self._stream(
            "SELECT id, terminal_id, seq, raw, kind, card_no, card_counter, amount_cents, balance_after_cents, "
            "time_s, status FROM records ORDER BY id")

    def ledger_entries(self):
        """Yield (record_id, tx_id, account, amount_cents) of every ledger entry, by record then transaction."""
        yield from self._stream(
            "SELECT t.record_id, t.id, e.account, e.amount_cents FROM ledger_tx t "
            "JOIN ledger_entries e ON e.tx_id = t.id ORDER BY t.record_id NULLS FIRST, t.id, e.id")

    def entries_without_tx(self):
        """Return [(entry id, tx_id, account, amount_cents)] of entries whose transaction row is missing."""
        return self._fetch("SELECT e.id, e.tx_id, e.account, e.amount_cents FROM ledger_entries e "
                           "WHERE NOT EXISTS (SELECT 1 FROM ledger_tx t WHERE t.id = e.tx_id) ORDER BY e.id LIMIT 100")

    def held_seqs(self):
        """Return {terminal_id: number of seqs held by damaged records in quarantine}."""
        return dict(self._fetch("SELECT terminal_id, COUNT(*) FROM quarantine WHERE seq IS NOT NULL "
                                "GROUP BY terminal_id"))

    def missing_seqs(self, terminal_id, upto, limit=20):
        """Return up to `limit` seqs in 1..upto of a terminal with neither a record nor a quarantined hold."""
        return [r[0] for r in self._fetch(
            "SELECT n FROM generate_series(1, $1::bigint) n WHERE NOT EXISTS (SELECT 1 FROM records r "
            "WHERE r.terminal_id=$2 AND r.seq=n) AND NOT EXISTS (SELECT 1 FROM quarantine q "
            "WHERE q.terminal_id=$2 AND q.seq=n) ORDER BY n LIMIT $3", upto, terminal_id, limit)]

    def credits(self):
        """Return [(grant_tx, cancel_tx, source, amount_cents, card_no, credit_no, bonus_cents, moved_to_card_no,
        moved_to_credit_no, delivered_terminal, delivered_seq)] of every pending credit."""
        return self._fetch("SELECT grant_tx, cancel_tx, source, amount_cents, card_no, credit_no, bonus_cents, "
                           "moved_to_card_no, moved_to_credit_no, delivered_terminal, delivered_seq "
                           "FROM pending_credits ORDER BY card_no, credit_no")

    def paid_tickets(self):
        """Return [(sale_tx, price_cents, serial, card_no)] of every ticket whose price was booked."""
        return self._fetch("SELECT sale_tx, price_cents, serial, card_no FROM tickets WHERE sale_tx IS NOT NULL "
                           "ORDER BY serial")

    def shift_postings(self):
        """Return ([(over_short_tx, z_no, report JSON)], [(paid_by_tx, op_id, method, kind, amount_cents,
        bonus_cents, deposit_cents)]): the ledger transactions of shift closes and of non-cash desk payments."""
        return self._fetch(Z_POSTINGS), self._fetch(PAID_BY_POSTINGS)

    def replacements(self):
        """Return [(old_card_no, new_card_no, balance_cents, moved_cents, hold_cents, covered_cents, loss_cents,
        released_cents, move_tx)] of every replacement (SPEC.md §4.13)."""
        return self._fetch(AUDIT_REPLACEMENTS)

    def replacement_covers(self):
        """Return [(old_card_no, terminal_id, seq, amount_cents, covered_cents, loss_cents, cover_tx, bonus_cents)]
        of every late record settled against a hold."""
        return self._fetch(AUDIT_COVERS)

    def cards(self):
        """Return {card_no: (shadow_balance_cents, last_counter)}."""
        return {r[0]: (r[1], r[2]) for r in self._fetch("SELECT card_no, shadow_balance_cents, last_counter "
                                                        "FROM cards")}

    def clone_cards(self):
        """Return the cards with a clone alarm."""
        return {r[0] for r in self._fetch("SELECT DISTINCT card_no FROM alarms WHERE kind=$1", ALARM_CLONE)}
