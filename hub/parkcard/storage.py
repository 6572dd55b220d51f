"""SQLite storage of the hub: the only module with SQL.

One writer connection (aiosqlite, WAL, synchronous=FULL) owns every write.
A write is a whole batch: `await storage.write(fn)` runs the sync function
`fn(tx)` in the writer's thread between BEGIN IMMEDIATE and COMMIT, where `tx`
(a `WriteTx`) offers the few statements the rules need. Reads use a second
connection so that they never wait behind a batch.

Schema changes are numbered migrations; `PRAGMA user_version` holds the last
one applied.
"""

import errno
import hashlib
import sqlite3
import time
from collections import Counter

import aiosqlite

from parkcard.money import DEFAULT_CURRENCY
from parkcard.oplog import OpLog, log_path_for

# Quarantine keeps evidence, not payloads: a prefix (a whole record or frame header and more) and the
# digest of the whole, so a flood of large publishes cannot fill the disk (the broker's own limit is
# the protocol's largest frame, parkcard.broker).
QUARANTINE_KEPT_MAX = 4096
TOPIC_KEPT_MAX = 256

# Numbered migrations: index + 1 is the user_version after applying it.
MIGRATIONS = (
    """
    CREATE TABLE parks(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE merchants(
        id INTEGER PRIMARY KEY, park_id INTEGER NOT NULL REFERENCES parks(id), name TEXT NOT NULL,
        commission_bps INTEGER NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000));
    CREATE TABLE terminals(
        id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 65535),
        merchant_id INTEGER NOT NULL REFERENCES merchants(id), role INTEGER NOT NULL, key BLOB NOT NULL,
        name TEXT NOT NULL, config_version INTEGER NOT NULL DEFAULT 1,
        fixed_price_cents INTEGER NOT NULL DEFAULT 0, category INTEGER NOT NULL DEFAULT 0,
        counter_up INTEGER NOT NULL DEFAULT 0, counter_down_reserved INTEGER NOT NULL DEFAULT 0,
        acked_upto INTEGER NOT NULL DEFAULT 0,
        authorised INTEGER NOT NULL DEFAULT 0, locked INTEGER NOT NULL DEFAULT 0, last_seen REAL,
        online INTEGER NOT NULL DEFAULT 0, status_boot INTEGER, status_counter INTEGER, firmware TEXT,
        status_role INTEGER, status_config_version INTEGER, status_blacklist_version INTEGER,
        queue_depth INTEGER, oldest_unsynced_age_s INTEGER, free_heap INTEGER, uptime_s INTEGER,
        last_seq INTEGER, status_at REAL);
    CREATE TABLE terminal_gaps(
        terminal_id INTEGER NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, from_seq)) WITHOUT ROWID;
    CREATE TABLE cards(
        card_no INTEGER PRIMARY KEY, uid BLOB, tier INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'active', deposit_cents INTEGER NOT NULL DEFAULT 0,
        shadow_balance_cents INTEGER NOT NULL DEFAULT 0, last_counter INTEGER, issued_at REAL);
    CREATE TABLE records(
        id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
        kind INTEGER NOT NULL, card_no INTEGER NOT NULL, card_counter INTEGER NOT NULL,
        amount_cents INTEGER NOT NULL, balance_after_cents INTEGER NOT NULL, time_s INTEGER NOT NULL,
        status TEXT NOT NULL, applied_at REAL, UNIQUE (terminal_id, seq));
    CREATE INDEX records_card ON records(card_no, status);
    CREATE TABLE quarantine(
        id INTEGER PRIMARY KEY, raw BLOB NOT NULL, topic TEXT NOT NULL, terminal_id INTEGER,
        reason TEXT NOT NULL, detail TEXT, at REAL NOT NULL);
    CREATE TABLE conflicts(
        id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
        existing_raw BLOB NOT NULL, at REAL NOT NULL);
    CREATE TABLE accounts(name TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE ledger_tx(
        id INTEGER PRIMARY KEY, record_id INTEGER UNIQUE REFERENCES records(id), kind INTEGER NOT NULL,
        at REAL NOT NULL);
    CREATE TABLE ledger_entries(
        id INTEGER PRIMARY KEY, tx_id INTEGER NOT NULL REFERENCES ledger_tx(id),
        account TEXT NOT NULL, amount_cents INTEGER NOT NULL);
    CREATE INDEX ledger_entries_account ON ledger_entries(account);
    CREATE TRIGGER ledger_entries_append_only_u BEFORE UPDATE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    CREATE TRIGGER ledger_entries_append_only_d BEFORE DELETE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    CREATE TABLE card_counters(
        card_no INTEGER NOT NULL, counter INTEGER NOT NULL, terminal_id INTEGER NOT NULL,
        seq INTEGER NOT NULL, delta_cents INTEGER NOT NULL, balance_after_cents INTEGER NOT NULL,
        PRIMARY KEY (card_no, counter)) WITHOUT ROWID;
    CREATE TABLE alarms(
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, card_no INTEGER, terminal_id INTEGER, seq INTEGER,
        detail TEXT NOT NULL, at REAL NOT NULL);
    CREATE TABLE blacklist_versions(
        version INTEGER PRIMARY KEY, card_no INTEGER NOT NULL, action TEXT NOT NULL
        CHECK (action IN ('add', 'remove')), reason TEXT NOT NULL, at REAL NOT NULL);
    CREATE TABLE blacklist(
        card_no INTEGER PRIMARY KEY, added_version INTEGER NOT NULL, removed_version INTEGER,
        reason TEXT NOT NULL);
    CREATE TABLE settlements(
        id INTEGER PRIMARY KEY, merchant_id INTEGER NOT NULL, period_start INTEGER NOT NULL,
        period_end INTEGER NOT NULL, sales_cents INTEGER NOT NULL, refunds_cents INTEGER NOT NULL,
        commission_cents INTEGER NOT NULL, payout_cents INTEGER NOT NULL, records INTEGER NOT NULL,
        closed_at REAL NOT NULL, UNIQUE (merchant_id, period_start, period_end));
    """,
    # 2: security. Each terminal's broker password (the hub writes Mosquitto's password file from
    # it and exports it in the provisioning bundle); admin system cards; taps of blacklisted cards
    # (lock and attempt records); terminal commands decided by the CLI, sent by the running hub.
    """
    ALTER TABLE terminals ADD COLUMN broker_password TEXT;
    CREATE TABLE admin_cards(
        card_no INTEGER PRIMARY KEY, uid BLOB NOT NULL, desk INTEGER NOT NULL DEFAULT 0,
        issued_by INTEGER, issued_at REAL NOT NULL, revoked_at REAL, reason TEXT);
    CREATE TABLE attempts(
        id INTEGER PRIMARY KEY, card_no INTEGER NOT NULL, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL,
        kind INTEGER NOT NULL, time_s INTEGER NOT NULL, at REAL NOT NULL);
    CREATE INDEX attempts_card ON attempts(card_no, time_s);
    CREATE TABLE terminal_commands(
        id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL REFERENCES terminals(id), command INTEGER NOT NULL,
        actor TEXT NOT NULL, created_at REAL NOT NULL, sent_at REAL);
    CREATE INDEX terminal_commands_pending ON terminal_commands(sent_at);
    """,
    # 3: admin card issues asked for by the CLI, carried out by the running hub at a desk terminal.
    """
    CREATE TABLE card_write_requests(
        id INTEGER PRIMARY KEY, desk_terminal_id INTEGER NOT NULL, uid BLOB NOT NULL, desk INTEGER NOT NULL,
        actor TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL, card_no INTEGER,
        error TEXT);
    """,
    # 4: the head of the operator audit log (<db>.audit.log, parkcard.oplog), moved in the same
    # transaction as the change each entry records, so a cut, swapped or extended log is detected.
    """
    CREATE TABLE audit_anchor(
        id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL CHECK (seq >= 0), hash TEXT NOT NULL,
        at REAL NOT NULL);
    """,
    # 5: quarantine keeps a bounded prefix of what it refused, with the whole payload's size and digest.
    """
    ALTER TABLE quarantine ADD COLUMN size INTEGER;
    ALTER TABLE quarantine ADD COLUMN sha256 BLOB;
    UPDATE quarantine SET size = length(raw);
    """,
    # 6: an admin card is valid only once its desk reported it written (state pending -> written, or
    # failed / abandoned); a request the CLI gave up on is cancelled. Cards issued before this
    # version were accepted as valid then and stay written.
    """
    ALTER TABLE admin_cards ADD COLUMN state TEXT NOT NULL DEFAULT 'written'
        CHECK (state IN ('pending', 'written', 'failed', 'abandoned'));
    ALTER TABLE card_write_requests ADD COLUMN cancelled_at REAL;
    """,
    # 7: whether the terminal itself reports serving (status.authorised), beside the hub's decision.
    """
    ALTER TABLE terminals ADD COLUMN status_authorised INTEGER;
    """,
    # 8: a damaged record (its MAC or version fails inside an authenticated upload) holds its
    # terminal's seq in quarantine, so the cumulative ack moves past it (SPEC.md §5.4).
    """
    ALTER TABLE quarantine ADD COLUMN seq INTEGER;
    CREATE UNIQUE INDEX quarantine_held_seq ON quarantine(terminal_id, seq) WHERE seq IS NOT NULL;
    """,
    # 9: a booth's refund claims the sale it reverses (SPEC.md §4.4): one refund per sale, kept by the key.
    """
    CREATE TABLE refunds(
        terminal_id INTEGER NOT NULL, sale_seq INTEGER NOT NULL, refund_seq INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, sale_seq)) WITHOUT ROWID;
    """,
    # 10: settlement pays each record once. settlement_records has the record as its primary key, so
    # no record can be in two settlements; both it and settlements are append-only, and a closed
    # period may not overlap another of the same merchant. Closes made before this migration did not
    # say which records they took: each old settlement claims the records of its period that were
    # applied by the time it closed, the oldest settlement first. The park has a currency (ISO 4217),
    # and a settlement keeps the one it was closed in. Entries are found by their transaction: a close
    # sums the commission and payout entries of each record it takes (was a scan of the account's
    # entries per record).
    """
    CREATE INDEX ledger_entries_tx ON ledger_entries(tx_id);
    ALTER TABLE parks ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY';
    ALTER TABLE settlements ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY';
    ALTER TABLE settlements ADD COLUMN late_records INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE settlement_records(
        record_id INTEGER PRIMARY KEY REFERENCES records(id),
        settlement_id INTEGER NOT NULL REFERENCES settlements(id));
    CREATE INDEX settlement_records_settlement ON settlement_records(settlement_id);
    INSERT OR IGNORE INTO settlement_records(record_id, settlement_id)
        SELECT r.id, s.id FROM settlements s JOIN terminals m ON m.merchant_id = s.merchant_id
        JOIN records r ON r.terminal_id = m.id JOIN ledger_tx t ON t.record_id = r.id
        WHERE r.status='applied' AND r.kind IN (1, 3) AND r.time_s >= s.period_start AND r.time_s < s.period_end
        AND r.applied_at <= s.closed_at ORDER BY s.id, r.id;
    CREATE TRIGGER settlement_records_final_u BEFORE UPDATE ON settlement_records
        BEGIN SELECT RAISE(ABORT, 'a settled record stays in its settlement'); END;
    CREATE TRIGGER settlement_records_final_d BEFORE DELETE ON settlement_records
        BEGIN SELECT RAISE(ABORT, 'a settled record stays in its settlement'); END;
    CREATE TRIGGER settlements_final_u BEFORE UPDATE ON settlements
        BEGIN SELECT RAISE(ABORT, 'a closed settlement is final'); END;
    CREATE TRIGGER settlements_final_d BEFORE DELETE ON settlements
        BEGIN SELECT RAISE(ABORT, 'a closed settlement is final'); END;
    CREATE TRIGGER settlements_no_overlap BEFORE INSERT ON settlements
        WHEN EXISTS (SELECT 1 FROM settlements s WHERE s.merchant_id = NEW.merchant_id
                     AND s.period_start < NEW.period_end AND NEW.period_start < s.period_end)
        BEGIN SELECT RAISE(ABORT, 'the period overlaps a closed settlement of this merchant'); END;
    """,
)

ADMIN_CARD_STATES = ("pending", "written", "failed", "abandoned")


class NotIssued(ValueError):
    """A card number with no row in cards: this park never issued it."""


class DatabaseDamaged(sqlite3.DatabaseError):
    """A database file this hub must not serve from (damaged pages, an unknown schema version); the message says why."""


# Said with every refusal of a damaged file: what to do, and why it loses nothing (SPEC.md §5.4: a
# terminal keeps each record in its journal until the hub acknowledges it).
RESTORE_ADVICE = ("restore the last backup; the terminals keep their records until the hub acknowledges them, "
                  "so nothing they hold is lost")


def schema_problem(version):
    """Return why a database at this user_version cannot be used by this hub, or None when it can."""
    if version < 0:
        return "database schema version %d is not one this hub knows: restore a backup" % version
    if version > len(MIGRATIONS):
        return "database schema version %d is newer than this hub (%d): upgrade parkcard" % (version, len(MIGRATIONS))
    return None


def _quick_check(conn, path):
    """Refuse a file whose pages fail PRAGMA quick_check (O(N) in the file's size: run once, at open)."""
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.DatabaseError as exc:
        if is_transient(exc):
            raise
        problems = [str(exc)]
    if problems != ["ok"]:
        raise DatabaseDamaged("%s is damaged (%s): %s" % (path, "; ".join(problems[:3]), RESTORE_ADVICE))


def _migrate(conn):
    """Apply every migration newer than the database's user_version (sync, one transaction each)."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    problem = schema_problem(current)
    if problem is not None:
        raise DatabaseDamaged(problem)
    for number in range(current + 1, len(MIGRATIONS) + 1):
        try:
            conn.executescript("BEGIN IMMEDIATE;\n%s;\nPRAGMA user_version = %d;\nCOMMIT;"
                               % (MIGRATIONS[number - 1], number))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


# SQLite result codes that say the database cannot be written right now, not that the data is bad:
# a full disk, an I/O error, another process holding the lock past busy_timeout, a file that
# cannot be opened. The hub waits and retries these; it never quarantines a message for them.
_TRANSIENT_SQLITE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN")
_TRANSIENT_OS_ERRORS = (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS)


def is_transient(exc):
    """True when an error from a write says the store is unavailable (retry later), not that the data is bad."""
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(_TRANSIENT_SQLITE_ERRORS) or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_OS_ERRORS


def audited(actor, action, extra=None, when=bool, **details):
    """An `audit=` for a write: the operator's action, appended in the change's own transaction.

    Recorded when when(result) says the change happened (by default: a true result); extra(result)
    adds what only the change knows, such as the blacklist version it took.
    """
    def entries(result):
        if not when(result):
            return None
        return [(actor, action, {**details, **(extra(result) if extra else {})})]
    return entries


def version_detail(version):
    """The audit detail of a blacklist change (audited's extra=): the version it took."""
    return dict(version=version)


class WriteTx:
    """The statements a batch may run; lives only inside one `Storage.write` call.

    Inserts that need no answer are collected and written with executemany at
    the end of the batch; ids are allocated here, by the single writer.
    """

    def __init__(self, conn, ids, stats):
        self.conn = conn
        self._ids = ids
        self.stats = stats          # the storage's counters (bounds hit), shared by every batch
        self.now = time.time()
        self.records = []
        self._batch_records = {}    # (terminal_id, seq) -> row of self.records
        self.record_status = {}     # record id -> new status, this batch
        self.ledger_tx = []
        self.entries = []
        self.accounts = set()
        self.counters = {}          # (card_no, counter) -> row, this batch
        self.cards = {}             # card_no -> [uid, shadow, last_counter] to upsert
        self.quarantine = []
        self._held = {}             # (terminal_id, seq) -> raw of a damaged record held in quarantine, this batch
        self.conflicts = []
        self.alarms = []
        self.attempts = []
        self.terminal_updates = {}  # terminal_id -> {column: value}
        self.gaps = {}              # terminal_id -> [(from, to)]
        self.audits = []            # (actor, action, details) for the operator audit log, at commit
        self.refunds = {}           # (terminal_id, sale_seq) -> refund_seq claimed this batch; None = released

    def next_id(self, table):
        """Allocate the next row id of `records` or `ledger_tx`."""
        self._ids[table] += 1
        return self._ids[table]

    def prefetch(self, records=(), cards=(), counters=(), terminals=()):
        """Nothing to load ahead on SQLite: a read is a call into the library, not a round trip."""

    # -- reads inside the transaction
    def record(self, terminal_id, seq):
        """Return (id, raw, status, card_no, counter) of a stored record, or None."""
        row = self._batch_records.get((terminal_id, seq))
        if row is not None:
            row = (row[0], row[3], row[10], row[5], row[6])
        else:
            row = self.conn.execute(
                "SELECT id, raw, status, card_no, card_counter FROM records WHERE terminal_id=? AND seq=?",
                (terminal_id, seq)).fetchone()
        if row is not None and row[0] in self.record_status:  # settled earlier in this batch
            row = (row[0], row[1], self.record_status[row[0]], row[3], row[4])
        return row

    def counter_rows(self, card_no, counters):
        """Return {counter: (terminal_id, seq, delta, balance_after)} among the given counters of a card."""
        out = {}
        missing = []
        for c in counters:
            row = self.counters.get((card_no, c))
            if row is not None:
                out[c] = row
            else:
                missing.append(c)
        if missing:
            marks = ",".join("?" * len(missing))
            for row in self.conn.execute(
                    "SELECT counter, terminal_id, seq, delta_cents, balance_after_cents FROM card_counters "
                    "WHERE card_no=? AND counter IN (%s)" % marks, (card_no, *missing)):
                out[row[0]] = row[1:]
        return out

    def card(self, card_no):
        """Return [uid, shadow_balance_cents, last_counter] for a card (None values when unknown)."""
        state = self.cards.get(card_no)
        if state is None:
            row = self.conn.execute("SELECT uid, shadow_balance_cents, last_counter FROM cards WHERE card_no=?",
                                    (card_no,)).fetchone()
            state = list(row) if row else [None, 0, None]
            self.cards[card_no] = state
        return state

    def card_deposit(self, card_no):
        """Return the deposit in cents recorded for a card (0 when unknown)."""
        row = self.conn.execute("SELECT deposit_cents FROM cards WHERE card_no=?", (card_no,)).fetchone()
        return row[0] if row else 0

    def uncertain_records(self, card_no):
        """Return [(id, terminal_id, seq, raw, counter)] of the card's unresolved uncertain records."""
        rows = [(r[0], r[1], r[2], r[3], r[6]) for r in self.records if r[5] == card_no and r[10] == "uncertain"]
        seen = {r[0] for r in rows}
        for row in self.conn.execute(
                "SELECT id, terminal_id, seq, raw, card_counter FROM records WHERE card_no=? AND status='uncertain'",
                (card_no,)):
            if row[0] not in seen:
                rows.append(row)
        return [r for r in rows if r[0] not in self.record_status]

    def held_damaged(self, terminal_id, seq):
        """Return the bytes of the damaged record holding (terminal, seq) in quarantine, or None."""
        raw = self._held.get((terminal_id, seq))
        if raw is None:
            row = self.conn.execute("SELECT raw FROM quarantine WHERE terminal_id=? AND seq=?",
                                    (terminal_id, seq)).fetchone()
            raw = bytes(row[0]) if row else None
        return raw

    def terminal_locked(self, terminal_id):
        """True when an operator locked the terminal (read now: the CLI may have changed it)."""
        row = self.conn.execute("SELECT locked FROM terminals WHERE id=?", (terminal_id,)).fetchone()
        return bool(row and row[0])
    def refund_of(self, terminal_id, sale_seq):
        """Return the seq of the refund that claimed this sale, or None."""
        key = (terminal_id, sale_seq)
        if key in self.refunds:
            return self.refunds[key]
        row = self.conn.execute("SELECT refund_seq FROM refunds WHERE terminal_id=? AND sale_seq=?",
                                key).fetchone()
        return row[0] if row else None

    def next_card_no(self, first=100001):
        """Return an unused card number (the caller writes its row in this same transaction)."""
        row = self.conn.execute("SELECT MAX(card_no) FROM cards").fetchone()
        return max([first, (row[0] or 0) + 1, *[no + 1 for no, v in self.cards.items() if v[2] is not None]])

    def card_exists(self, card_no):
        """True when the card has a row (stored, or staged in this batch)."""
        staged = self.cards.get(card_no)
        if staged is not None and staged[2] is not None:
            return True
        return self.conn.execute("SELECT 1 FROM cards WHERE card_no=?", (card_no,)).fetchone() is not None

    def blacklisted(self, card_no):
        """True when the card is on the blacklist now."""
        return self.conn.execute("SELECT 1 FROM blacklist WHERE card_no=? AND removed_version IS NULL",
                                 (card_no,)).fetchone() is not None

    # -- writes
    def add_record(self, record_id, terminal_id, seq, raw, rec, status):
        """Store a record (not yet in the ledger unless post() is called too)."""
        row = (record_id, terminal_id, seq, raw, rec.kind, rec.card_no, rec.card_counter, rec.amount_cents,
               rec.balance_after_cents, rec.time_s, status, self.now if status == "applied" else None)
        self.records.append(row)
        self._batch_records[(terminal_id, seq)] = row

    def set_record_status(self, record_id, status):
        """Change the status of a stored record (uncertain -> applied or not_happened)."""
        self.record_status[record_id] = status

    def post(self, record_id, kind, entries):
        """Append a ledger transaction for a record; entries sum to zero (checked by the caller)."""
        tx_id = self.next_id("ledger_tx")
        self.ledger_tx.append((tx_id, record_id, kind, self.now))
        for account, amount in entries:
            self.entries.append((tx_id, account, amount))
            self.accounts.add(account)
        return tx_id

    def claim_counter(self, card_no, counter, terminal_id, seq, delta, balance_after):
        """Record that (card, counter) belongs to this record."""
        self.counters[(card_no, counter)] = (terminal_id, seq, delta, balance_after)

    def claim_refund(self, terminal_id, sale_seq, refund_seq):
        """Record that a refund reverses this sale (one refund per sale)."""
        self.refunds[(terminal_id, sale_seq)] = refund_seq

    def release_refund(self, terminal_id, sale_seq):
        """Free a sale whose refund turned out not to have happened."""
        self.refunds[(terminal_id, sale_seq)] = None

    def set_card_info(self, card_no, uid, tier, deposit_cents):
        """Write the desk's view of a new card (uid, tier, deposit, issued_at) now, in this transaction."""
        self.conn.execute("INSERT INTO cards(card_no, uid, tier, deposit_cents, issued_at) VALUES (?,?,?,?,?)",
                          (card_no, bytes(uid), tier, deposit_cents, self.now))

    def set_card(self, card_no, uid, shadow_balance_cents, last_counter):
        """Set the card's shadow balance and newest counter."""
        self.cards[card_no] = [uid, shadow_balance_cents, last_counter]

    def add_quarantine(self, raw, topic, terminal_id, reason, detail, seq=None):
        """Keep a frame or record that failed verification: its first QUARANTINE_KEPT_MAX bytes, size and
        digest; with seq, a damaged record holding that seq."""
        raw = bytes(raw)
        if len(raw) > QUARANTINE_KEPT_MAX:
            self.stats["quarantine_cut"] += 1
        self.quarantine.append((raw[:QUARANTINE_KEPT_MAX], len(raw), hashlib.sha256(raw).digest(), topic[:TOPIC_KEPT_MAX],
                                terminal_id, reason, detail, self.now, seq))
        if seq is not None:
            self._held[(terminal_id, seq)] = raw

    def add_conflict(self, terminal_id, seq, raw, existing_raw):
        """Keep a record whose key is taken by other bytes."""
        self.conflicts.append((terminal_id, seq, raw, existing_raw, self.now))

    def add_alarm(self, kind, card_no, terminal_id, seq, detail):
        """Raise an alarm for an operator."""
        self.alarms.append((kind, card_no, terminal_id, seq, detail, self.now))

    def add_attempt(self, rec):
        """Keep a tap of a blacklisted card (a lock or attempt record): when, where, which card."""
        self.attempts.append((rec.card_no, rec.terminal_id, rec.seq, rec.kind, rec.time_s, self.now))

    def audit(self, actor, action, **details):
        """Record an operator action in the audit log as part of this transaction (appended at commit)."""
        self.audits.append((actor, action, details))

    def update_terminal(self, terminal_id, **columns):
        """Set terminal columns at commit (last value wins)."""
        self.terminal_updates.setdefault(terminal_id, {}).update(columns)

    def set_gaps(self, terminal_id, gaps):
        """Replace the terminal's list of missing seq ranges."""
        self.gaps[terminal_id] = gaps

    def blacklist_add(self, card_no, reason):
        """Add a card to the blacklist under a new version; return the version or None if already listed."""
        if self.blacklisted(card_no):
            return None
        version = (self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM blacklist_versions").fetchone()[0]) + 1
        self.conn.execute("INSERT INTO blacklist_versions VALUES (?,?,?,?,?)", (version, card_no, "add", reason,
                                                                               self.now))
        self.conn.execute("INSERT INTO blacklist(card_no, added_version, removed_version, reason) VALUES (?,?,NULL,?) "
                          "ON CONFLICT(card_no) DO UPDATE SET added_version=excluded.added_version, "
                          "removed_version=NULL, reason=excluded.reason", (card_no, version, reason))
        self.conn.execute("UPDATE cards SET status='blacklisted' WHERE card_no=?", (card_no,))
        return version

    def blacklist_remove(self, card_no, reason):
        """Take a card off the blacklist under a new version; return the version or None if not listed."""
        if not self.blacklisted(card_no):
            return None
        version = (self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM blacklist_versions").fetchone()[0]) + 1
        self.conn.execute("INSERT INTO blacklist_versions VALUES (?,?,?,?,?)", (version, card_no, "remove", reason,
                                                                               self.now))
        self.conn.execute("UPDATE blacklist SET removed_version=? WHERE card_no=?", (version, card_no))
        self.conn.execute("UPDATE cards SET status='active' WHERE card_no=? AND status='blacklisted'", (card_no,))
        return version

    def execute(self, sql, params=()):
        """Run one statement now (for the storage module's own helpers)."""
        return self.conn.execute(sql, params)

    def flush(self):
        """Write everything collected, in dependency order."""
        c = self.conn
        if self.records:
            c.executemany("INSERT INTO records(id, terminal_id, seq, raw, kind, card_no, card_counter, amount_cents, "
                          "balance_after_cents, time_s, status, applied_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                          self.records)
        if self.record_status:
            c.executemany("UPDATE records SET status=?, applied_at=? WHERE id=?",
                          [(s, self.now if s == "applied" else None, i) for i, s in self.record_status.items()])
        if self.accounts:
            c.executemany("INSERT OR IGNORE INTO accounts(name) VALUES (?)", [(a,) for a in self.accounts])
        if self.ledger_tx:
            c.executemany("INSERT INTO ledger_tx(id, record_id, kind, at) VALUES (?,?,?,?)", self.ledger_tx)
            c.executemany("INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (?,?,?)", self.entries)
        if self.counters:
            c.executemany("INSERT INTO card_counters VALUES (?,?,?,?,?,?)",
                          [(k[0], k[1], *v) for k, v in self.counters.items()])
        if self.cards:
            c.executemany("INSERT INTO cards(card_no, uid, shadow_balance_cents, last_counter) VALUES (?,?,?,?) "
                          "ON CONFLICT(card_no) DO UPDATE SET uid=COALESCE(cards.uid, excluded.uid), "
                          "shadow_balance_cents=excluded.shadow_balance_cents, last_counter=excluded.last_counter",
                          [(k, *v) for k, v in self.cards.items() if v[2] is not None])
        claimed = [(k[0], k[1], v) for k, v in self.refunds.items() if v is not None]
        if claimed:
            c.executemany("INSERT OR REPLACE INTO refunds(terminal_id, sale_seq, refund_seq) VALUES (?,?,?)", claimed)
        released = [k for k, v in self.refunds.items() if v is None]
        if released:
            c.executemany("DELETE FROM refunds WHERE terminal_id=? AND sale_seq=?", released)
        if self.quarantine:
            c.executemany("INSERT INTO quarantine(raw, size, sha256, topic, terminal_id, reason, detail, at, seq) "
                          "VALUES (?,?,?,?,?,?,?,?,?)", self.quarantine)
        if self.conflicts:
            c.executemany("INSERT INTO conflicts(terminal_id, seq, raw, existing_raw, at) VALUES (?,?,?,?,?)",
                          self.conflicts)
        if self.alarms:
            c.executemany("INSERT INTO alarms(kind, card_no, terminal_id, seq, detail, at) VALUES (?,?,?,?,?,?)",
                          self.alarms)
        if self.attempts:
            c.executemany("INSERT INTO attempts(card_no, terminal_id, seq, kind, time_s, at) VALUES (?,?,?,?,?,?)",
                          self.attempts)
        for terminal_id, cols in self.terminal_updates.items():
            names = sorted(cols)
            c.execute("UPDATE terminals SET %s WHERE id=?" % ", ".join("%s=?" % n for n in names),
                      (*[cols[n] for n in names], terminal_id))
        for terminal_id, gaps in self.gaps.items():
            c.execute("DELETE FROM terminal_gaps WHERE terminal_id=?", (terminal_id,))
            c.executemany("INSERT INTO terminal_gaps VALUES (?,?,?)", [(terminal_id, a, b) for a, b in gaps])

    def flush_audit(self, oplog):
        """Append the staged audit entries to the log and move the database's anchor to its new head.

        Runs last before COMMIT, under the write lock: the log must end where
        the anchor says (AuditLogError otherwise, and the change rolls back).
        An entry appended whose COMMIT then fails shows as NOT_ANCHORED.
        """
        if not self.audits:
            return
        row = self.conn.execute("SELECT seq, hash FROM audit_anchor WHERE id=1").fetchone()
        anchor = tuple(row) if row else None
        for actor, action, details in self.audits:
            entry = oplog.append_anchored(anchor, actor, action, **details)
            anchor = (entry["seq"], entry["hash"])
        self.conn.execute("INSERT INTO audit_anchor(id, seq, hash, at) VALUES (1,?,?,?) ON CONFLICT(id) DO UPDATE "
                          "SET seq=excluded.seq, hash=excluded.hash, at=excluded.at", (*anchor, self.now))


TERMINAL_COLUMNS = ("id", "merchant_id", "role", "key", "name", "config_version", "fixed_price_cents", "category",
                    "counter_up", "counter_down_reserved", "acked_upto", "authorised", "locked", "last_seen",
                    "online", "status_boot", "status_counter", "firmware", "status_role", "status_config_version",
                    "status_blacklist_version", "queue_depth", "oldest_unsynced_age_s", "free_heap", "uptime_s",
                    "last_seq", "status_at", "broker_password", "status_authorised")


class AuditRows:
    """The reads of the ledger check, on a plain sqlite3 connection (the reader's, in its thread).

    The large ones are generators over one cursor: the check streams a park's records and
    entries instead of loading them.
    """

    def __init__(self, conn):
        self.conn = conn

    def schema_version(self):
        """Return PRAGMA user_version."""
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

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

    def cards(self):
        """Return {card_no: (shadow_balance_cents, last_counter)}."""
        return {r[0]: (r[1], r[2]) for r in self.conn.execute(
            "SELECT card_no, shadow_balance_cents, last_counter FROM cards")}

    def clone_cards(self):
        """Return the cards with a clone alarm."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT card_no FROM alarms WHERE kind='clone'")}


class Storage:
    """The hub database: one writer connection, one reader connection."""

    def __init__(self, path):
        self.path = str(path)
        self.oplog = OpLog.shared(log_path_for(self.path))    # operator actions, anchored here (WriteTx.audit)
        self._writer = None
        self._reader = None
        self._ids = {}
        self.stats = Counter()

    async def open(self):
        """Open (creating and migrating) the database; on failure nothing stays open."""
        try:
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.execute("PRAGMA synchronous=FULL")
            await self._writer.execute("PRAGMA foreign_keys=ON")
            await self._writer.execute("PRAGMA busy_timeout=10000")
            await self._in_writer(lambda conn: _quick_check(conn, self.path))
            await self._in_writer(lambda conn: _migrate(conn))
            for table in ("records", "ledger_tx"):
                async with self._writer.execute("SELECT COALESCE(MAX(id), 0) FROM %s" % table) as cur:
                    self._ids[table] = (await cur.fetchone())[0]
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute("PRAGMA busy_timeout=10000")
        except BaseException:
            # aiosqlite runs each connection on a thread of its own: one left
            # open keeps the process alive after the error is reported.
            await self.close()
            raise
        return self

    async def open_for_audit(self):
        """Open the reader connection only: no checks, no migrations, nothing written (`ledger check`)."""
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout=10000")
        return self

    async def close(self):
        """Close both connections."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _in_writer(self, fn):
        # aiosqlite runs every call in its connection's thread through _execute;
        # handing it one sync function is what makes a batch a single await.
        return await self._writer._execute(fn, self._writer._conn)

    async def write(self, fn, audit=None):
        """Run fn(WriteTx) in one BEGIN IMMEDIATE transaction in the writer thread; return its result.

        audit(result) -> [(actor, action, details)] names the operator actions the change records:
        they are appended to the audit log in this same transaction (nothing, when it returns None).
        """
        ids = self._ids

        def run(conn):
            snapshot = dict(ids)
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = WriteTx(conn, ids, self.stats)
                result = fn(tx)
                for actor, action, details in (audit(result) or ()) if audit is not None else ():
                    tx.audit(actor, action, **details)
                tx.flush()
                tx.flush_audit(self.oplog)
                conn.execute("COMMIT")
                return result
            except BaseException:
                ids.update(snapshot)
                if conn.in_transaction:     # SQLITE_FULL and some I/O errors roll back by themselves
                    conn.execute("ROLLBACK")
                raise

        return await self._in_writer(run)

    async def audit(self, actor, action, **details):
        """Append an operator action to the audit log in a transaction of its own (anchored)."""
        await self.write(lambda tx: tx.audit(actor, action, **details))

    async def audit_anchor(self):
        """Return the (seq, hash) of the audit log's head as the database knows it, or None."""
        row = await self.fetchone("SELECT seq, hash FROM audit_anchor WHERE id=1")
        return tuple(row) if row else None

    async def fetchall(self, sql, params=()):
        """Run a read query on the reader connection."""
        async with self._reader.execute(sql, params) as cur:
            return await cur.fetchall()

    async def fetchone(self, sql, params=()):
        """Run a read query returning one row (or None)."""
        async with self._reader.execute(sql, params) as cur:
            return await cur.fetchone()

    # -- registry
    async def add_park(self, park_id, name):
        """Create a park (idempotent on id)."""
        await self.write(lambda tx: tx.execute("INSERT OR IGNORE INTO parks(id, name) VALUES (?,?)", (park_id, name)))

    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1, audit=None):
        """Create a merchant; return True, or False if it exists with these very values.

        Raises ValueError if the id is taken by a merchant with another name, commission or park:
        changing a merchant is update_merchant's, never a side effect of adding one.
        """
        def run(tx):
            row = tx.execute("SELECT park_id, name, commission_bps FROM merchants WHERE id=?",
                             (merchant_id,)).fetchone()
            if row is not None:
                if tuple(row) == (park_id, name, commission_bps):
                    return False
                raise ValueError("merchant %d already exists (%s, %d bps, park %d)" % (merchant_id, row[1], row[2],
                                                                                       row[0]))
            tx.execute("INSERT OR IGNORE INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            tx.execute("INSERT INTO merchants(id, park_id, name, commission_bps) VALUES (?,?,?,?)",
                       (merchant_id, park_id, name, commission_bps))
            return True
        return await self.write(run, audit)

    async def update_merchant(self, merchant_id, name=None, commission_bps=None, audit=None):
        """Change a merchant's name and/or commission; return ((name, bps) before, after). ValueError if unknown."""
        def run(tx):
            row = tx.execute("SELECT name, commission_bps FROM merchants WHERE id=?", (merchant_id,)).fetchone()
            if row is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            after = (row[0] if name is None else name, row[1] if commission_bps is None else commission_bps)
            if after != tuple(row):
                tx.execute("UPDATE merchants SET name=?, commission_bps=? WHERE id=?", (*after, merchant_id))
            return tuple(row), after
        return await self.write(run, audit)

    async def merchant_list(self):
        """Return [(id, park_id, name, commission_bps, [terminal ids])] by id."""
        rows = await self.fetchall("SELECT m.id, m.park_id, m.name, m.commission_bps, "
                                   "(SELECT group_concat(t.id) FROM (SELECT id FROM terminals "
                                   " WHERE merchant_id=m.id ORDER BY id) t) FROM merchants m ORDER BY m.id")
        return [(*r[:4], [int(t) for t in r[4].split(",")] if r[4] else []) for r in rows]

    async def merchants(self):
        """Return [(id, park_id, name, commission_bps)]."""
        return await self.fetchall("SELECT id, park_id, name, commission_bps FROM merchants ORDER BY id")

    async def add_terminal(self, terminal_id, merchant_id, role, key, name, fixed_price_cents=0, category=0,
                           broker_password=None, audit=None):
        """Register a terminal; raise ValueError for an unknown merchant or a taken id."""
        def run(tx):
            if tx.execute("SELECT 1 FROM merchants WHERE id=?", (merchant_id,)).fetchone() is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            if tx.execute("SELECT 1 FROM terminals WHERE id=?", (terminal_id,)).fetchone() is not None:
                raise ValueError("terminal %d is already registered" % terminal_id)
            tx.execute("INSERT INTO terminals(id, merchant_id, role, key, name, fixed_price_cents, category, "
                       "broker_password) VALUES (?,?,?,?,?,?,?,?)",
                       (terminal_id, merchant_id, role, key, name, fixed_price_cents, category, broker_password))
        await self.write(run, audit)

    async def terminals(self, terminal_id=None):
        """Return every terminal (or just terminal_id's, if given) as a dict of TERMINAL_COLUMNS."""
        where, params = ("WHERE id=? ", (terminal_id,)) if terminal_id is not None else ("", ())
        rows = await self.fetchall("SELECT %s FROM terminals %sORDER BY id" % (", ".join(TERMINAL_COLUMNS), where),
                                   params)
        return [dict(zip(TERMINAL_COLUMNS, row)) for row in rows]

    async def terminal_ids(self):
        """Return the registered terminal ids, ascending."""
        return [r[0] for r in await self.fetchall("SELECT id FROM terminals ORDER BY id")]

    async def broker_credentials(self):
        """Return {terminal_id: broker password} of every terminal that has one."""
        return dict(await self.fetchall("SELECT id, broker_password FROM terminals "
                                        "WHERE broker_password IS NOT NULL ORDER BY id"))

    async def set_broker_password(self, terminal_id, password):
        """Give a terminal (registered before broker passwords existed) its password."""
        await self.write(lambda tx: tx.execute("UPDATE terminals SET broker_password=? WHERE id=?",
                                               (password, terminal_id)))

    async def terminal_flags(self, terminal_id):
        """Return (authorised, locked) as stored now (the CLI may have changed them), or None."""
        return await self.fetchone("SELECT authorised, locked FROM terminals WHERE id=?", (terminal_id,))

    async def terminal_command(self, terminal_id, command, actor, audit=None, **columns):
        """Set terminal columns and queue a command (unless None) for the running hub to send, in one transaction.

        Returns False, changing and queueing nothing, when every column already has its value (lock of a
        locked terminal, unlock of an unlocked one). Raises ValueError if the terminal is not registered.
        """
        names = sorted(columns)

        def run(tx):
            row = tx.execute("SELECT %s FROM terminals WHERE id=?" % ", ".join(names), (terminal_id,)).fetchone()
            if row is None:
                raise ValueError("terminal %d is not registered" % terminal_id)
            if tuple(row) == tuple(columns[n] for n in names):
                return False
            tx.update_terminal(terminal_id, **columns)
            if command is not None:
                tx.execute("INSERT INTO terminal_commands(terminal_id, command, actor, created_at) VALUES (?,?,?,?)",
                           (terminal_id, command, actor, tx.now))
            return True
        return await self.write(run, audit)

    async def request_admin_card(self, desk_terminal_id, uid, desk, actor):
        """Queue an admin card issue for the running hub; return the request id."""
        def run(tx):
            cur = tx.execute("INSERT INTO card_write_requests(desk_terminal_id, uid, desk, actor, created_at) "
                             "VALUES (?,?,?,?,?)", (desk_terminal_id, bytes(uid), int(bool(desk)), actor, tx.now))
            return cur.lastrowid
        return await self.write(run)

    async def start_card_requests(self):
        """Claim the queued admin card issues: [(id, desk_terminal_id, uid, desk, actor)], marked started."""
        def run(tx):
            # Claimed in the transaction that reads them: a request the CLI cancels meanwhile is not started.
            rows = tx.execute("SELECT id, desk_terminal_id, uid, desk, actor FROM card_write_requests "
                              "WHERE started_at IS NULL AND cancelled_at IS NULL ORDER BY id").fetchall()
            for r in rows:
                tx.execute("UPDATE card_write_requests SET started_at=? WHERE id=?", (tx.now, r[0]))
            return rows
        return [(r[0], r[1], bytes(r[2]), bool(r[3]), r[4]) for r in await self.write(run)]

    async def cancel_card_request(self, request_id):
        """Cancel an admin card issue nobody waits for any more; return False if it had finished already."""
        return await self.write(lambda tx: tx.execute(
            "UPDATE card_write_requests SET cancelled_at=? WHERE id=? AND finished_at IS NULL",
            (tx.now, request_id)).rowcount == 1)

    async def cancelled_card_requests(self):
        """Return the ids of started, unfinished admin card issues that were cancelled."""
        return [r[0] for r in await self.fetchall(
            "SELECT id FROM card_write_requests WHERE cancelled_at IS NOT NULL AND started_at IS NOT NULL "
            "AND finished_at IS NULL ORDER BY id")]

    async def finish_card_request(self, request_id, card_no=None, error=None):
        """Record how an admin card issue ended."""
        await self.write(lambda tx: tx.execute(
            "UPDATE card_write_requests SET finished_at=?, card_no=?, error=? WHERE id=?",
            (tx.now, card_no, error, request_id)))

    async def settle_admin_card(self, card_no, written, request_id=None, error=None):
        """End a pending admin card: written (the desk said so) or failed; return the state it got.

        With the CLI's request_id, in the same transaction: the request is finished, and a card of a
        request the CLI cancelled is abandoned even if the desk wrote it, since the operator was told it
        was cancelled; an abandoned card authorises nothing.
        """
        def run(tx):
            cancelled = request_id is not None and tx.execute(
                "SELECT cancelled_at FROM card_write_requests WHERE id=?", (request_id,)).fetchone()[0] is not None
            state = "abandoned" if cancelled else "written" if written else "failed"
            tx.execute("UPDATE admin_cards SET state=? WHERE card_no=? AND state='pending'", (state, card_no))
            if request_id is not None:
                if state == "abandoned":
                    why = "cancelled: admin card %d is abandoned and authorises no terminal" % card_no
                else:
                    why = None if written else error
                tx.execute("UPDATE card_write_requests SET finished_at=?, card_no=?, error=? WHERE id=?",
                           (tx.now, card_no, why, request_id))
            return state
        return await self.write(run)

    async def card_request(self, request_id):
        """Return (finished_at, card_no, error) of an admin card issue."""
        return await self.fetchone("SELECT finished_at, card_no, error FROM card_write_requests WHERE id=?",
                                   (request_id,))

    async def pending_commands(self):
        """Return [(id, terminal_id, command, actor)] not sent yet, oldest first."""
        return await self.fetchall("SELECT id, terminal_id, command, actor FROM terminal_commands "
                                   "WHERE sent_at IS NULL ORDER BY id")

    async def command_sent(self, command_id):
        """Mark a queued terminal command as sent."""
        await self.write(lambda tx: tx.execute("UPDATE terminal_commands SET sent_at=? WHERE id=?",
                                               (tx.now, command_id)))

    async def seqs_above_ack(self, terminal_id=None):
        """Return {terminal_id: [seq]} of the records stored above each terminal's ack (out-of-order arrivals).

        Damaged records held in quarantine count: their seq is stored too (SPEC.md §5.4).
        """
        where, params = ("AND t.id=? ", (terminal_id,)) if terminal_id is not None else ("", ())
        out = {}
        for tid, seq in await self.fetchall(
                "SELECT r.terminal_id, r.seq FROM records r JOIN terminals t ON t.id = r.terminal_id "
                "WHERE r.seq > t.acked_upto %s "
                "UNION ALL SELECT q.terminal_id, q.seq FROM quarantine q JOIN terminals t ON t.id = q.terminal_id "
                "WHERE q.seq IS NOT NULL AND q.seq > t.acked_upto %s" % (where, where), params + params):
            out.setdefault(tid, []).append(seq)
        return out

    async def uncertain_cards(self):
        """Return the card numbers that have unresolved uncertain records."""
        return [r[0] for r in await self.fetchall("SELECT DISTINCT card_no FROM records WHERE status='uncertain'")]

    async def reserve_down_counters(self, terminal_id, reserved):
        """Persist a new high-water mark of downlink counters for a terminal."""
        await self.write(lambda tx: tx.execute("UPDATE terminals SET counter_down_reserved=? WHERE id=?",
                                               (reserved, terminal_id)))

    async def set_terminal(self, terminal_id, **columns):
        """Update terminal columns now (fleet status, authorisation, config)."""
        def run(tx):
            tx.update_terminal(terminal_id, **columns)
        await self.write(run)

    # -- cards
    async def card(self, card_no):
        """Return the card row as a dict, or None."""
        row = await self.fetchone("SELECT card_no, uid, tier, status, deposit_cents, shadow_balance_cents, "
                                  "last_counter FROM cards WHERE card_no=?", (card_no,))
        if row is None:
            return None
        return dict(zip(("card_no", "uid", "tier", "status", "deposit_cents", "shadow_balance_cents",
                         "last_counter"), row))

    async def account_balance(self, account):
        """Return SUM of the account's entries in cents."""
        row = await self.fetchone("SELECT COALESCE(SUM(amount_cents), 0) FROM ledger_entries WHERE account=?",
                                  (account,))
        return row[0]

    # -- blacklist
    async def blacklist_change(self, card_no, reason, add=True, issued_only=False, audit=None):
        """Add (or remove) a card under a new blacklist version; return the version or None if unchanged.

        issued_only: refuse (NotIssued) to add a card this park never issued (no row in cards).
        """
        def run(tx):
            if not add:
                return tx.blacklist_remove(card_no, reason)
            if issued_only and not tx.blacklisted(card_no) and tx.execute(
                    "SELECT 1 FROM cards WHERE card_no=?", (card_no,)).fetchone() is None:
                raise NotIssued("card %d was never issued here" % card_no)
            return tx.blacklist_add(card_no, reason)
        return await self.write(run, audit)

    async def blacklist_version(self):
        """Return the current blacklist version (0 = empty history)."""
        return (await self.fetchone("SELECT COALESCE(MAX(version), 0) FROM blacklist_versions"))[0]

    async def blacklist_changes(self, after_version):
        """Return [(version, card_no, action)] newer than after_version, oldest first."""
        return await self.fetchall("SELECT version, card_no, action FROM blacklist_versions WHERE version>? "
                                   "ORDER BY version", (after_version,))

    async def blacklist_cards(self):
        """Return the card numbers on the blacklist now, ascending."""
        return [r[0] for r in await self.fetchall("SELECT card_no FROM blacklist WHERE removed_version IS NULL "
                                                  "ORDER BY card_no")]

    # -- admin system cards
    async def add_admin_card(self, uid, desk, issued_by, first, last, audit=None):
        """Record a new pending admin card under the next number in [first, last]; return it (ValueError when full)."""
        def run(tx):
            row = tx.execute("SELECT MAX(card_no) FROM admin_cards").fetchone()
            card_no = max(first, (row[0] or 0) + 1)
            if card_no > last:
                raise ValueError("admin card numbers %d..%d are all used" % (first, last))
            tx.execute("INSERT INTO admin_cards(card_no, uid, desk, issued_by, issued_at, state) "
                       "VALUES (?,?,?,?,?,'pending')", (card_no, bytes(uid), int(desk), issued_by, tx.now))
            return card_no
        return await self.write(run, audit)

    async def admin_card(self, card_no):
        """Return the admin card row as a dict, or None."""
        row = await self.fetchone("SELECT %s FROM admin_cards WHERE card_no=?" % ", ".join(ADMIN_CARD_COLUMNS),
                                  (card_no,))
        return dict(zip(ADMIN_CARD_COLUMNS, row)) if row else None

    async def admin_cards(self):
        """Return every admin card as a dict, by number."""
        rows = await self.fetchall("SELECT %s FROM admin_cards ORDER BY card_no" % ", ".join(ADMIN_CARD_COLUMNS))
        return [dict(zip(ADMIN_CARD_COLUMNS, r)) for r in rows]

    async def revoke_admin_card(self, card_no, reason, audit=None):
        """Revoke an admin card; return True if revoked now, False if it already was; ValueError if unknown."""
        def run(tx):
            row = tx.execute("SELECT revoked_at FROM admin_cards WHERE card_no=?", (card_no,)).fetchone()
            if row is None:
                raise ValueError("admin card %d does not exist" % card_no)
            if row[0] is not None:
                return False
            tx.execute("UPDATE admin_cards SET revoked_at=?, reason=? WHERE card_no=?", (tx.now, reason, card_no))
            return True
        return await self.write(run, audit)

    # -- listings
    async def blacklist_entries(self):
        """Return [(card_no, reason, added_version)] of the cards on the blacklist now."""
        return await self.fetchall("SELECT card_no, reason, added_version FROM blacklist "
                                   "WHERE removed_version IS NULL ORDER BY card_no")

    async def attempt_counts(self):
        """Return {card_no: number of lock and attempt records}."""
        return dict(await self.fetchall("SELECT card_no, COUNT(*) FROM attempts GROUP BY card_no"))

    async def attempts(self, card_no, limit):
        """Return the last `limit` [(time_s, terminal_id, kind)] of a card, newest first."""
        return await self.fetchall("SELECT time_s, terminal_id, kind FROM attempts WHERE card_no=? "
                                   "ORDER BY time_s DESC, id DESC LIMIT ?", (card_no, limit))

    async def add_alarm_once(self, kind, detail, card_no=None, terminal_id=None):
        """Raise an alarm unless the same one (kind, card, terminal, detail) is already listed; return True if new."""
        def run(tx):
            if tx.execute("SELECT 1 FROM alarms WHERE kind=? AND card_no IS ? AND terminal_id IS ? AND detail=?",
                          (kind, card_no, terminal_id, detail)).fetchone() is not None:
                return False
            tx.add_alarm(kind, card_no, terminal_id, None, detail)
            return True
        return await self.write(run)

    async def alarms(self):
        """Return [(id, kind, card_no, terminal_id, seq, detail, at)]."""
        return await self.fetchall("SELECT id, kind, card_no, terminal_id, seq, detail, at FROM alarms ORDER BY id")

    async def quarantined(self):
        """Return [(id, topic, terminal_id, reason, detail, at, size)]; size is the whole payload's."""
        return await self.fetchall("SELECT id, topic, terminal_id, reason, detail, at, size FROM quarantine "
                                   "ORDER BY id")

    async def count(self, table, where="1", params=()):
        """Return COUNT(*) of a table (tables are fixed names of this module)."""
        return (await self.fetchone("SELECT COUNT(*) FROM %s WHERE %s" % (table, where), params))[0]

    # -- audit (ledger check)
    async def audit_scan(self, fn):
        """Run fn(AuditRows) in the reader's thread and return its result: the auditor streams rows there."""
        return await self._reader._execute(fn, AuditRows(self._reader._conn))

    async def card_balances(self):
        """Return [(card_no, shadow_balance_cents, ledger_sum, counters_known, first_counter, last_counter, status)]."""
        return await self.fetchall(
            "SELECT c.card_no, c.shadow_balance_cents, "
            "COALESCE((SELECT SUM(amount_cents) FROM ledger_entries WHERE account='card:' || c.card_no), 0), "
            "(SELECT COUNT(*) FROM card_counters k WHERE k.card_no=c.card_no), "
            "(SELECT MIN(counter) FROM card_counters k WHERE k.card_no=c.card_no), c.last_counter, c.status "
            "FROM cards c ORDER BY c.card_no")

    async def clone_alarm_cards(self):
        """Return the cards with a clone alarm."""
        return {r[0] for r in await self.fetchall("SELECT DISTINCT card_no FROM alarms WHERE kind='clone'")}

    # -- park
    async def park_currency(self, park_id=1):
        """Return the park's ISO 4217 currency code (the default until the park is set up)."""
        row = await self.fetchone("SELECT currency FROM parks WHERE id=?", (park_id,))
        return row[0] if row else DEFAULT_CURRENCY

    async def set_park_currency(self, park_id, currency, audit=None):
        """Set the park's currency (creating the park); ValueError once the park has taken money in another."""
        def run(tx):
            tx.execute("INSERT OR IGNORE INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            current = tx.execute("SELECT currency FROM parks WHERE id=?", (park_id,)).fetchone()[0]
            if current == currency:
                return False
            # Stored amounts carry no currency: changing it would relabel money already taken.
            taken = tx.execute("SELECT COUNT(*) FROM records r JOIN terminals t ON t.id = r.terminal_id "
                               "JOIN merchants m ON m.id = t.merchant_id WHERE m.park_id=?", (park_id,)).fetchone()[0]
            if taken:
                raise ValueError("park %d already holds %d records in %s: its currency cannot change"
                                 % (park_id, taken, current))
            tx.execute("UPDATE parks SET currency=? WHERE id=?", (currency, park_id))
            return True
        return await self.write(run, audit)

    # -- settlement
    async def unsettled(self, merchant_id, start_s, end_s):
        """Return the totals dict of what closing [start, end) would take now (see close_settlement)."""
        rows = await self.fetchall("SELECT %s" % _TAKEN, _taken_params(merchant_id, start_s, end_s))
        return _settlement_totals(rows)

    async def settlement(self, merchant_id, start_s, end_s):
        """Return the closed settlement of exactly this period as a dict of SETTLEMENT_COLUMNS, or None."""
        row = await self.fetchone(_SETTLEMENT_ROW + "WHERE s.merchant_id=? AND s.period_start=? AND s.period_end=?",
                                  (merchant_id, start_s, end_s))
        return dict(zip(SETTLEMENT_COLUMNS, row)) if row else None

    async def settlement_records(self, settlement_id):
        """Return the ids of the records a closed settlement paid, ascending."""
        return [r[0] for r in await self.fetchall("SELECT record_id FROM settlement_records WHERE settlement_id=? "
                                                  "ORDER BY record_id", (settlement_id,))]

    async def close_settlements(self, merchant_ids, start_s, end_s, audit=None):
        """Close the merchants' period in one transaction (all or none); return [(row, newly_closed)].

        A close takes the merchant's applied sales and refunds of [start, end)
        that no settlement holds yet, and the late ones: records of the
        merchant's closed periods that reached the hub after their period
        closed. An exactly matching closed period is returned as it is. Raises
        PeriodOverlap when the period overlaps another closed period of a
        merchant, ValueError when a merchant does not exist.
        """
        def close_one(tx, merchant_id):
            same = tx.execute("SELECT id FROM settlements WHERE merchant_id=? AND period_start=? AND period_end=?",
                              (merchant_id, start_s, end_s)).fetchone()
            if same is not None:
                return same[0], None
            clash = tx.execute("SELECT m.name, s.period_start, s.period_end FROM settlements s "
                               "JOIN merchants m ON m.id = s.merchant_id WHERE s.merchant_id=? "
                               "AND s.period_start<? AND ?<s.period_end ORDER BY s.period_start LIMIT 1",
                               (merchant_id, end_s, start_s)).fetchone()
            if clash is not None:
                raise PeriodOverlap(merchant_id, *clash)
            park = tx.execute("SELECT p.currency FROM merchants m JOIN parks p ON p.id = m.park_id WHERE m.id=?",
                              (merchant_id,)).fetchone()
            if park is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            rows = tx.execute("SELECT %s" % _TAKEN, _taken_params(merchant_id, start_s, end_s)).fetchall()
            t = _settlement_totals(rows)
            settlement_id = tx.execute(
                "INSERT INTO settlements(merchant_id, period_start, period_end, currency, sales_cents, "
                "refunds_cents, commission_cents, payout_cents, records, late_records, closed_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (merchant_id, start_s, end_s, park[0], t["sales_cents"], t["refunds_cents"], t["commission_cents"],
                 t["payout_cents"], t["records"], t["late_records"], tx.now)).lastrowid
            # The record is the primary key: a record already paid makes the whole close fail.
            tx.conn.executemany("INSERT INTO settlement_records(record_id, settlement_id) VALUES (?,?)",
                                [(r[0], settlement_id) for r in rows])
            return settlement_id, dict(merchant_id=merchant_id, period_start=start_s, period_end=end_s,
                                       currency=park[0], **t)

        # audit([details of each newly closed period]) -> entries, appended in the closing transaction.
        closed = await self.write(lambda tx: [close_one(tx, m) for m in merchant_ids],
                                  audit and (lambda res: audit([new for _, new in res if new])))
        out = []
        for settlement_id, new in closed:
            row = await self.fetchone(_SETTLEMENT_ROW + "WHERE s.id=?", (settlement_id,))
            out.append((dict(zip(SETTLEMENT_COLUMNS, row)), new is not None))
        return out


class PeriodOverlap(ValueError):
    """A period that overlaps a closed settlement of the same merchant."""

    def __init__(self, merchant_id, merchant_name, period_start, period_end):
        super().__init__("the period overlaps merchant %d's closed period [%d, %d)"
                         % (merchant_id, period_start, period_end))
        self.merchant_id = merchant_id
        self.merchant_name = merchant_name
        self.period_start = period_start
        self.period_end = period_end


# The records a close takes, one row each: (id, kind, amount, commission, payout, late). Commission is
# what the park kept (park:commission entries), payout what the merchant's account gained.
_TAKEN = (
    "r.id, r.kind, r.amount_cents, "
    "COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "          AND e.account='park:commission'), 0), "
    "COALESCE((SELECT SUM(e.amount_cents) FROM ledger_entries e WHERE e.tx_id=t.id "
    "          AND e.account='merchant:' || :merchant), 0), "
    "NOT (r.time_s>=:start AND r.time_s<:end) "
    "FROM records r JOIN terminals m ON m.id = r.terminal_id JOIN ledger_tx t ON t.record_id = r.id "
    "WHERE m.merchant_id=:merchant AND r.status='applied' AND r.kind IN (1, 3) "
    "AND NOT EXISTS (SELECT 1 FROM settlement_records x WHERE x.record_id = r.id) "
    "AND ((r.time_s>=:start AND r.time_s<:end) OR EXISTS (SELECT 1 FROM settlements s "
    "     WHERE s.merchant_id=:merchant AND r.time_s>=s.period_start AND r.time_s<s.period_end)) "
    "ORDER BY r.id")


def _taken_params(merchant_id, start_s, end_s):
    return {"merchant": merchant_id, "start": start_s, "end": end_s}


def _settlement_totals(rows):
    """Sum the rows of _TAKEN into the totals of a settlement."""
    return dict(sales_cents=sum(r[2] for r in rows if r[1] == 1), refunds_cents=sum(r[2] for r in rows if r[1] == 3),
                commission_cents=sum(r[3] for r in rows), payout_cents=sum(r[4] for r in rows), records=len(rows),
                late_records=sum(1 for r in rows if r[5]))


_SETTLEMENT_ROW = (
    "SELECT s.id, s.merchant_id, m.name, s.currency, s.period_start, s.period_end, s.sales_cents, s.refunds_cents, "
    "s.commission_cents, s.payout_cents, s.records, s.late_records, s.closed_at "
    "FROM settlements s JOIN merchants m ON m.id = s.merchant_id ")


ADMIN_CARD_COLUMNS = ("card_no", "uid", "desk", "issued_by", "issued_at", "revoked_at", "reason", "state")
SETTLEMENT_COLUMNS = ("id", "merchant_id", "merchant_name", "currency", "period_start", "period_end", "sales_cents",
                      "refunds_cents", "commission_cents", "payout_cents", "records", "late_records", "closed_at")
