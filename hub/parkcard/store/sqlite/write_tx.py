"""One write transaction of the SQLite store: the reads and staged writes a batch may make.

Inserts that need no answer are collected and written at the end of the batch
(flush), many rows per statement: that is most of what makes ingest fast. The rows
of `records` and `ledger_tx` written by a batch need their ids before the flush
(a ledger transaction names its record, an entry its transaction), so the batch
numbers them itself, counting on from the table's MAX(id) read inside this
transaction: BEGIN IMMEDIATE holds the write lock from the first statement, so no
other writer (another process on the file included) can take those ids, and
nothing is remembered between transactions. Asking SQLite for each id instead
(an INSERT ... RETURNING per row) would write the rows one statement at a time.
"""

from itertools import chain

from parkcard.domain.lifecycle import BlacklistAction, CardStatus, RecordStatus
from parkcard.domain import accounts
from parkcard.store.batch import MISSING as _MISSING
from parkcard.store.batch import StagedWriteTx
from parkcard.store.rows import CounterClaim, SeqRecord, Terminal

_MAX_ID = {"records": "SELECT COALESCE(MAX(id), 0) FROM records",
           "ledger_tx": "SELECT COALESCE(MAX(id), 0) FROM ledger_tx"}

# update_terminal's names go into the statement: only the table's own columns (a row's fields).
TERMINAL_COLUMN_NAMES = frozenset(Terminal._fields)
# Keys per prefetch statement, well under SQLITE_MAX_VARIABLE_NUMBER (32,766 since 3.32).
PREFETCH_KEYS_MAX = 4000
# One statement per terminal, "terminal_id=? AND seq IN (...)": it walks the unique index, where a
# row-value "(a, b) IN (VALUES ...)" makes SQLite scan the table.
_RECORDS_SQL = ("SELECT terminal_id, seq, id, raw, status, card_no, card_counter FROM records "
                "WHERE terminal_id=? AND seq IN (%s)")
# A batch's counter claims in one statement: a card's records and their neighbours hold close counters, so they
# are asked as ranges, each one search of the primary key (the ranges are the outer loop: CROSS JOIN).
_COUNTER_RANGES_SQL = ("WITH k(card_no, lo, hi) AS (VALUES %s) SELECT cc.card_no, cc.counter, cc.terminal_id, cc.seq, "
                       "cc.delta_cents, cc.balance_after_cents FROM k CROSS JOIN card_counters cc "
                       "ON cc.card_no = k.card_no AND cc.counter BETWEEN k.lo AND k.hi")
COUNTER_GAP_MAX = 8     # a card's counters at most this far apart are asked as one range

# Rows per INSERT statement of a flush: one statement of many rows binds the same values as many
# statements of one, but steps SQLite once, and every step gives up and takes back the GIL (a wait
# behind paho's thread under load). Kept well under SQLITE_MAX_VARIABLE_NUMBER (32,766 since 3.32).
# A batch's rows go out in statements of these sizes, largest first: compiling a statement of 256 rows costs
# five times running it, so a flush compiles none of its own size but runs the few kept in the writer's
# statement cache (WRITER_STATEMENTS_CACHED), whatever a batch's size.
INSERT_SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)
_INSERT_SQL = {}        # (table, columns, rows) -> the statement's text


def insert_rows(conn, table, columns, rows):
    """INSERT rows (tuples in the order of columns) into table, in statements of INSERT_SIZES rows."""
    at, left = 0, len(rows)
    for size in INSERT_SIZES:
        if left < size:
            continue
        sql = _INSERT_SQL.get((table, columns, size))
        if sql is None:
            sql = _INSERT_SQL[(table, columns, size)] = "INSERT INTO %s(%s) VALUES %s" % (
                table, ", ".join(columns), ",".join(["(%s)" % ",".join("?" * len(columns))] * size))
        while left >= size:
            conn.execute(sql, list(chain.from_iterable(rows[at:at + size])))
            at, left = at + size, left - size


def counter_ranges(keys):
    """[(card_no, lo, hi)] covering [(card_no, counter)] keys: one range a card, unless its counters spread over
    more than COUNTER_GAP_MAX each; then split where two are more than COUNTER_GAP_MAX apart."""
    by_card = {}
    for card_no, counter in keys:
        by_card.setdefault(card_no, []).append(counter)
    ranges = []
    for card_no, counters in by_card.items():
        lo, hi = min(counters), max(counters)
        if hi - lo <= COUNTER_GAP_MAX * len(counters):
            ranges.append((card_no, lo, hi))    # close together (a card's run of records): no gap worth a split
            continue
        counters.sort()
        lo = prev = counters[0]
        for counter in counters[1:]:
            if counter - prev > COUNTER_GAP_MAX:
                ranges.append((card_no, lo, prev))
                lo = counter
            prev = counter
        ranges.append((card_no, lo, prev))
    return ranges


class WriteTx(StagedWriteTx):
    """The statements a batch may run on the writer connection; lives only inside one `SqliteStore.write` call."""

    def __init__(self, conn, stats):
        super().__init__(conn, stats)
        self._last_ids = {}         # table -> last id this batch gave out
        self._locked = {}           # terminal_id -> locked, prefetched this batch

    def prefetch(self, records=(), cards=(), counters=(), terminals=()):
        """Load in a few statements what the batch will read: one indexed lookup per key costs more in
        Python than the lookup itself (see the interface for the arguments)."""
        records = [k for k in set(records) if k not in self._record_rows and k not in self._batch_records]
        counters = [k for k in set(counters) if k not in self._counter_rows and k not in self.counters]
        cards = [c for c in set(cards) if c not in self.cards]
        terminals = [t for t in set(terminals) if t not in self._locked]
        for key in records:
            self._record_rows[key] = _MISSING
        for row in self._record_pairs(records):
            self._record_rows[(row[0], row[1])] = SeqRecord(*row[2:])
        for key in counters:
            self._counter_rows[key] = _MISSING
        ranges = counter_ranges(counters)
        for i in range(0, len(ranges), PREFETCH_KEYS_MAX // 3):
            part = ranges[i:i + PREFETCH_KEYS_MAX // 3]
            for row in self.conn.execute(_COUNTER_RANGES_SQL % ",".join(["(?,?,?)"] * len(part)),
                                         list(chain.from_iterable(part))):
                key = (row[0], row[1])
                if self._counter_rows.get(key) is _MISSING:     # asked for (a range holds others too)
                    self._counter_rows[key] = CounterClaim(*row[2:])
        for i in range(0, len(cards), PREFETCH_KEYS_MAX):
            part = cards[i:i + PREFETCH_KEYS_MAX]
            for card_no in part:
                self.cards[card_no] = [None, 0, None]
            for row in self.conn.execute("SELECT card_no, uid, shadow_balance_cents, last_counter FROM cards "
                                         "WHERE card_no IN (%s)" % ",".join("?" * len(part)), part):
                self.cards[row[0]] = list(row[1:])
            purses = [accounts.bonus_account(c) for c in part]     # the bonus purses the postings read
            self._purses_read(part, dict(self.conn.execute(
                "SELECT account, SUM(amount_cents) FROM ledger_entries WHERE account IN (%s) GROUP BY account"
                % ",".join("?" * len(purses)), purses)))
        if terminals:
            self._locked.update((t, False) for t in terminals)
            self._locked.update((row[0], bool(row[1])) for row in self.conn.execute(
                "SELECT id, locked FROM terminals WHERE id IN (%s)" % ",".join("?" * len(terminals)), terminals))

    def _record_pairs(self, keys):
        """The rows of _RECORDS_SQL for [(terminal_id, seq)] keys: a statement per terminal, PREFETCH_KEYS_MAX
        seqs each."""
        by_first = {}
        for a, b in keys:
            by_first.setdefault(a, []).append(b)
        for a, bs in by_first.items():
            for i in range(0, len(bs), PREFETCH_KEYS_MAX):
                part = bs[i:i + PREFETCH_KEYS_MAX]
                yield from self.conn.execute(_RECORDS_SQL % ",".join("?" * len(part)), (a, *part))

    def next_id(self, table):
        """Allocate the id of the next row of `records` or `ledger_tx` written by this batch."""
        last = self._last_ids.get(table)
        if last is None:
            last = self.conn.execute(_MAX_ID[table]).fetchone()[0]
        self._last_ids[table] = last + 1
        return last + 1

    # -- statements written once for both backends (parkcard.store.reads)
    def sql_row(self, sql, params=()):
        """Run one statement with `?` placeholders; return its first row as a tuple, or None."""
        row = self.conn.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def sql_rows(self, sql, params=()):
        """Run one statement with `?` placeholders; return every row as a tuple."""
        return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    def sql_rowcount(self, sql, params=()):
        """Run one statement with `?` placeholders; return how many rows it changed."""
        return self.conn.execute(sql, params).rowcount

    # -- reads inside the transaction
    def _stored_record(self, terminal_id, seq):
        found = self._record_rows.get((terminal_id, seq))
        if found is not None:
            return None if found is _MISSING else found
        return self.sql_row_as(SeqRecord, "SELECT id, raw, status, card_no, card_counter FROM records "
                               "WHERE terminal_id=? AND seq=?", (terminal_id, seq))

    def _read_counters(self, card_no, counters):
        """{counter: CounterClaim} of the stored claims among counters."""
        marks = ",".join("?" * len(counters))
        return {row[0]: CounterClaim(*row[1:]) for row in self.conn.execute(
            "SELECT counter, terminal_id, seq, delta_cents, balance_after_cents FROM card_counters "
            "WHERE card_no=? AND counter IN (%s)" % marks, (card_no, *counters))}

    def card(self, card_no):
        """Return [uid, shadow_balance_cents, last_counter] of a card (None values when unknown)."""
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

    def held_damaged(self, terminal_id, seq):
        """Return the bytes of the damaged record holding (terminal, seq) in quarantine, or None."""
        raw = self._held.get((terminal_id, seq))
        if raw is None:
            row = self.conn.execute("SELECT raw FROM quarantine WHERE terminal_id=? AND seq=?",
                                    (terminal_id, seq)).fetchone()
            raw = bytes(row[0]) if row else None
        return raw

    def terminal_locked(self, terminal_id):
        """True when an operator locked the terminal (read in this transaction: the CLI may have changed it)."""
        locked = self._locked.get(terminal_id)
        if locked is not None:
            return locked
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

    def set_card_info(self, card_no, uid, tier, deposit_cents):
        """Write the desk's view of a new card (uid, tier, deposit, issued_at) now, in this transaction."""
        self.conn.execute("INSERT INTO cards(card_no, uid, tier, deposit_cents, issued_at) VALUES (?,?,?,?,?)",
                          (card_no, bytes(uid), tier, deposit_cents, self.now))

    def _next_blacklist_version(self, card_no, action, reason):
        version = self.conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM blacklist_versions").fetchone()[0]
        self.conn.execute("INSERT INTO blacklist_versions(version, card_no, action, reason, at) VALUES (?,?,?,?,?)",
                          (version, card_no, action, reason, self.now))
        return version

    def blacklist_add(self, card_no, reason):
        """Add a card to the blacklist under a new version; return the version or None if already listed."""
        if self.blacklisted(card_no):
            return None
        version = self._next_blacklist_version(card_no, BlacklistAction.ADD, reason)
        self.conn.execute("INSERT INTO blacklist(card_no, added_version, removed_version, reason) VALUES (?,?,NULL,?) "
                          "ON CONFLICT(card_no) DO UPDATE SET added_version=excluded.added_version, "
                          "removed_version=NULL, reason=excluded.reason", (card_no, version, reason))
        self.conn.execute("UPDATE cards SET status=? WHERE card_no=?", (CardStatus.BLACKLISTED, card_no))
        return version

    def blacklist_remove(self, card_no, reason):
        """Take a card off the blacklist under a new version; return the version or None if not listed."""
        if not self.blacklisted(card_no):
            return None
        version = self._next_blacklist_version(card_no, BlacklistAction.REMOVE, reason)
        self.conn.execute("UPDATE blacklist SET removed_version=? WHERE card_no=?", (version, card_no))
        self.conn.execute("UPDATE cards SET status=? WHERE card_no=? AND status=?",
                          (CardStatus.ACTIVE, card_no, CardStatus.BLACKLISTED))
        return version

    def flush(self):
        """Write everything collected, in dependency order."""
        c = self.conn
        if self.records:
            insert_rows(c, "records", ("id", "terminal_id", "seq", "raw", "kind", "card_no", "card_counter",
                                       "amount_cents", "balance_after_cents", "time_s", "status", "applied_at"),
                        self.records)
        if self.record_status:
            c.executemany("UPDATE records SET status=?, applied_at=? WHERE id=?",
                          [(s, self.now if s == RecordStatus.APPLIED else None, i)
                           for i, s in self.record_status.items()])
        if self.accounts:
            c.executemany("INSERT OR IGNORE INTO accounts(name) VALUES (?)", [(a,) for a in self.accounts])
        if self.ledger_tx:
            insert_rows(c, "ledger_tx", ("id", "record_id", "kind", "at"), self.ledger_tx)
            insert_rows(c, "ledger_entries", ("tx_id", "account", "amount_cents"), self.entries)
        if self.counters:
            insert_rows(c, "card_counters", ("card_no", "counter", "terminal_id", "seq", "delta_cents",
                                             "balance_after_cents"),
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
        insert_rows(c, "quarantine", ("raw", "size", "sha256", "topic", "terminal_id", "reason", "detail", "at", "seq"),
                    self.quarantine)
        insert_rows(c, "conflicts", ("terminal_id", "seq", "raw", "existing_raw", "at"), self.conflicts)
        insert_rows(c, "alarms", ("kind", "card_no", "terminal_id", "seq", "detail", "at"), self.alarms)
        insert_rows(c, "passages", ("record_id", "terminal_id", "card_no", "kind", "area", "reason", "product",
                                    "time_s"), self.passages)
        insert_rows(c, "attempts", ("card_no", "terminal_id", "seq", "kind", "time_s", "at"), self.attempts)
        for terminal_id, cols in self.terminal_updates.items():
            names = sorted(cols)
            unknown = set(names) - TERMINAL_COLUMN_NAMES
            if unknown:
                raise ValueError("terminals has no column %s" % ", ".join(sorted(unknown)))
            c.execute("UPDATE terminals SET %s WHERE id=?" % ", ".join("%s=?" % n for n in names),
                      (*[cols[n] for n in names], terminal_id))
        for terminal_id, gaps in self.gaps.items():
            c.execute("DELETE FROM terminal_gaps WHERE terminal_id=?", (terminal_id,))
            c.executemany("INSERT INTO terminal_gaps(terminal_id, from_seq, to_seq) VALUES (?,?,?)",
                          [(terminal_id, a, b) for a, b in gaps])

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

