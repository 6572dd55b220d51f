"""The reads of the ledger check on a SQLite file, on a plain sqlite3 connection of their own thread."""

from parkcard.store import interface
from parkcard.domain.lifecycle import ALARM_CLONE
from parkcard.store.errors import schema_problem
from parkcard.store.replacements import AUDIT_COVERS as _COVERS, AUDIT_REPLACEMENTS as _REPLACEMENTS
from parkcard.store.shifts import PAID_BY_POSTINGS, Z_POSTINGS
from parkcard.store.sqlite.migrate import LATEST, schema_version


class AuditRows(interface.AuditRows):
    """The reads of the ledger check; the large ones are generators over one cursor."""

    def __init__(self, conn):
        self.conn = conn

    def schema_version(self):
        """Return PRAGMA user_version."""
        return schema_version(self.conn)

    def schema_problem(self):
        """Return why this hub cannot read the file's schema version, or None."""
        return schema_problem(self.schema_version(), LATEST)

    def integrity_check(self, max_errors=20):
        """Return the messages of PRAGMA integrity_check (["ok"] for a sound file)."""
        return [r[0] for r in self.conn.execute("PRAGMA integrity_check(%d)" % int(max_errors))]

    def terminals(self):
        """Return {terminal_id: (merchant_id, commission_bps now, key, acked_upto)}."""
        return {r[0]: tuple(r[1:]) for r in self.conn.execute(
            "SELECT t.id, t.merchant_id, m.commission_bps, t.key, t.acked_upto FROM terminals t "
            "LEFT JOIN merchants m ON m.id = t.merchant_id")}

    def records(self):
        """Yield (id, terminal_id, seq, raw, kind, card_no, counter, amount, balance_after, time_s, status) by id."""
        yield from self.conn.execute(
            "SELECT id, terminal_id, seq, raw, kind, card_no, card_counter, amount_cents, balance_after_cents, "
            "time_s, status FROM records ORDER BY id")

    def ledger_entries(self):
        """Yield (record_id, tx_id, account, amount_cents) of every ledger entry, by record then transaction."""
        yield from self.conn.execute(
            "SELECT t.record_id, t.id, e.account, e.amount_cents FROM ledger_tx t "
            "JOIN ledger_entries e ON e.tx_id = t.id ORDER BY t.record_id, t.id, e.id")

    def entries_without_tx(self):
        """Return [(entry id, tx_id, account, amount_cents)] of entries whose transaction row is missing."""
        return self.conn.execute("SELECT e.id, e.tx_id, e.account, e.amount_cents FROM ledger_entries e "
                                 "WHERE NOT EXISTS (SELECT 1 FROM ledger_tx t WHERE t.id = e.tx_id) "
                                 "ORDER BY e.id LIMIT 100").fetchall()

    def held_seqs(self):
        """Return {terminal_id: number of seqs held by damaged records in quarantine}."""
        return dict(self.conn.execute("SELECT terminal_id, COUNT(*) FROM quarantine WHERE seq IS NOT NULL "
                                      "GROUP BY terminal_id"))

    def missing_seqs(self, terminal_id, upto, limit=20):
        """Return up to `limit` seqs in 1..upto of a terminal with neither a record nor a quarantined hold."""
        return [r[0] for r in self.conn.execute(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?) "
            "SELECT n FROM s WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.terminal_id=? AND r.seq=s.n) "
            "AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.terminal_id=? AND q.seq=s.n) LIMIT ?",
            (upto, terminal_id, terminal_id, limit))]

    def credits(self):
        """Return [(grant_tx, cancel_tx, source, amount_cents, card_no, credit_no, bonus_cents, moved_to_card_no,
        moved_to_credit_no, delivered_terminal, delivered_seq)] of every pending credit."""
        return self.conn.execute("SELECT grant_tx, cancel_tx, source, amount_cents, card_no, credit_no, bonus_cents, "
                                 "moved_to_card_no, moved_to_credit_no, delivered_terminal, delivered_seq "
                                 "FROM pending_credits ORDER BY card_no, credit_no").fetchall()

    def paid_tickets(self):
        """Return [(sale_tx, price_cents, serial, card_no)] of every ticket whose price was booked."""
        return self.conn.execute("SELECT sale_tx, price_cents, serial, card_no FROM tickets "
                                 "WHERE sale_tx IS NOT NULL ORDER BY serial").fetchall()

    def shift_postings(self):
        """Return ([(over_short_tx, z_no, report JSON)], [(paid_by_tx, op_id, method, kind, amount_cents,
        bonus_cents, deposit_cents)]): the ledger transactions of shift closes and of non-cash desk payments."""
        return self.conn.execute(Z_POSTINGS).fetchall(), self.conn.execute(PAID_BY_POSTINGS).fetchall()

    def replacements(self):
        """Return [(old_card_no, new_card_no, balance_cents, moved_cents, hold_cents, covered_cents, loss_cents,
        released_cents, move_tx)] of every replacement (SPEC.md §4.13)."""
        return self.conn.execute(_REPLACEMENTS).fetchall()

    def replacement_covers(self):
        """Return [(old_card_no, terminal_id, seq, amount_cents, covered_cents, loss_cents, cover_tx, bonus_cents)]
        of every late record settled against a hold."""
        return self.conn.execute(_COVERS).fetchall()

    def cards(self):
        """Return {card_no: (shadow_balance_cents, last_counter)}."""
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(
            "SELECT card_no, shadow_balance_cents, last_counter FROM cards")}

    def clone_cards(self):
        """Return the cards with a clone alarm."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT card_no FROM alarms WHERE kind=?", (ALARM_CLONE,))}
