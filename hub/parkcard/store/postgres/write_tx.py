"""A PostgreSQL batch: the same WriteTx the ingest rules see on SQLite, its reads and flush over asyncpg.

The staging (records, postings, counters, cards, quarantine, alarms...) is
every backend's (parkcard.store.batch); this class adds what touches the database. Each
read is a round trip to the server, so what a batch will read is loaded first
in one statement where the caller says (prefetch: the ingest names the
records, cards, counters and terminals of its frames), and everything staged is
written at the end in one go with the COMMIT, a statement per table (COPY for
the many rows of records and postings), not one per record. A batch of
frames is then three round trips, whatever its size.
"""

from parkcard.domain import accounts
from parkcard.domain.lifecycle import BlacklistAction, CardStatus, RecordStatus
from parkcard.store.batch import StagedWriteTx
from parkcard.store.batch import MISSING as _MISSING
from parkcard.store.postgres.bulk import TERMINAL_TYPES, BulkStatement
from parkcard.store.postgres.sql import numbered
from parkcard.store.rows import CounterClaim, SeqRecord



def _numbered(sql, params):
    """(sql, *args) for SyncConn from SQL with `?` placeholders."""
    sql, args = numbered(sql, params)
    return (sql, *args)

# A batch of this many records or more sends its per-record rows (records, postings, counters) by COPY,
# faster than unnest()ed arrays for many rows; a smaller one sends everything in one statement (bulk.py).
COPY_ROWS_MIN = 64
_RECORD_COLUMNS = ("id", "terminal_id", "seq", "raw", "kind", "card_no", "card_counter", "amount_cents",
                   "balance_after_cents", "time_s", "status", "applied_at")
_RECORD_TYPES = ("bigint", "bigint", "bigint", "bytea") + ("bigint",) * 6 + ("text", "float8")
_COUNTER_COLUMNS = ("card_no", "counter", "terminal_id", "seq", "delta_cents", "balance_after_cents")

# What a batch will read, in one statement: rows tagged 0 records by (terminal, seq) ($1, $2), 1 cards ($3),
# 2 card counters by (card, counter) ($4, $5), 3 terminals' locked flag ($6), 4 the last ids of records and
# ledger_tx (next_id). LATERAL makes each key one index lookup, whatever the planner guesses of the arrays'
# lengths.
_PREFETCH = (
    "SELECT 0, r.terminal_id, r.seq, r.id, r.card_no, r.card_counter, NULL::bigint, r.raw, r.status "
    "FROM unnest($1::bigint[], $2::bigint[]) k(t, s), "
    "LATERAL (SELECT * FROM records WHERE terminal_id = k.t AND seq = k.s) r "
    "UNION ALL SELECT 1, card_no, shadow_balance_cents, last_counter, NULL, NULL, NULL, uid, NULL FROM cards "
    "WHERE card_no = ANY($3::bigint[]) "
    "UNION ALL SELECT 2, c.card_no, c.counter, c.terminal_id, c.seq, c.delta_cents, c.balance_after_cents, NULL, "
    "NULL FROM unnest($4::bigint[], $5::bigint[]) k(n, k), "
    "LATERAL (SELECT * FROM card_counters WHERE card_no = k.n AND counter = k.k) c "
    "UNION ALL SELECT 3, id, locked, NULL, NULL, NULL, NULL, NULL, NULL FROM terminals WHERE id = ANY($6::bigint[]) "
    "UNION ALL SELECT 4, (SELECT COALESCE(MAX(id), 0) FROM records), (SELECT COALESCE(MAX(id), 0) FROM ledger_tx), "
    "NULL, NULL, NULL, NULL, NULL, NULL "
    # The bonus purses of the cards (bonus:<card_no>), which their postings read (SPEC.md §4.12).
    "UNION ALL SELECT 5, CAST(SUBSTR(account, %d) AS BIGINT), CAST(SUM(amount_cents) AS BIGINT), NULL, NULL, NULL, "
    "NULL, NULL, NULL FROM ledger_entries WHERE account = ANY($7::text[]) GROUP BY account"
    % (len(accounts.BONUS_PREFIX) + 1))
_MAX_IDS = "SELECT (SELECT COALESCE(MAX(id), 0) FROM records), (SELECT COALESCE(MAX(id), 0) FROM ledger_tx)"


class SyncConn:
    """An asyncpg connection used from the writer thread: every call runs the writer's own loop until it is done."""

    def __init__(self, loop, conn):
        self.loop = loop
        self.conn = conn

    def fetch(self, sql, *args):
        """Return every row as a tuple."""
        return [tuple(r) for r in self.loop.wait(self.conn.fetch(sql, *args))]

    def fetchrow(self, sql, *args):
        """Return the first row as a tuple, or None."""
        row = self.loop.wait(self.conn.fetchrow(sql, *args))
        return tuple(row) if row is not None else None

    def fetchval(self, sql, *args):
        """Return the first column of the first row (None when no row)."""
        return self.loop.wait(self.conn.fetchval(sql, *args))

    def execute(self, sql, *args):
        """Run one statement; return its status tag (e.g. 'UPDATE 1')."""
        return self.loop.wait(self.conn.execute(sql, *args))

    def run_all(self, statements, then=None):
        """Run [(sql, rows)] with executemany, in order, in one hop to the loop; ((table, columns), rows) is a COPY.

        then: a coroutine function awaited after them in the same hop (the transaction's commit).
        """
        async def run():
            for sql, rows in statements:
                if isinstance(sql, tuple):
                    if rows:
                        await self.conn.copy_records_to_table(sql[0], records=rows, columns=sql[1])
                else:
                    await self.conn.executemany(sql, rows)
            if then is not None:
                await then()
        if statements or then is not None:
            self.loop.wait(run())


class PgWriteTx(StagedWriteTx):
    """The statements a batch may run on PostgreSQL; lives only inside one `PostgresStore.write` call."""

    def __init__(self, sync_conn, stats):
        super().__init__(sync_conn, stats)
        self._last_ids = {}         # table -> last id this batch gave out (read under the writer's lock)
        self._locked = {}           # terminal_id -> locked, read this batch

    def next_id(self, table):
        """Allocate the id of the next row of `records` or `ledger_tx` written by this batch.

        Numbered on from the table's MAX(id), read after BEGIN took the writer's lock (store.py), as
        SQLite's batch does under BEGIN IMMEDIATE: loaded with the batch's other reads when it prefetches.
        """
        if not self._last_ids:
            self._last_ids.update(zip(("records", "ledger_tx"), self.conn.fetchrow(_MAX_IDS)))
        self._last_ids[table] += 1
        return self._last_ids[table]

    # -- statements written once for both backends (parkcard.store.reads)
    def sql_row(self, sql, params=()):
        """Run one statement with `?` placeholders; return its first row as a tuple, or None."""
        return self.conn.fetchrow(*_numbered(sql, params))

    def sql_rows(self, sql, params=()):
        """Run one statement with `?` placeholders; return every row as a tuple."""
        return self.conn.fetch(*_numbered(sql, params))

    def sql_rowcount(self, sql, params=()):
        """Run one statement with `?` placeholders; return how many rows it changed (from its status tag)."""
        tag = self.conn.execute(*_numbered(sql, params))
        return int(tag.rsplit(" ", 1)[-1]) if tag and tag.rsplit(" ", 1)[-1].isdigit() else 0

    # -- bulk reads a caller knows it will need
    def prefetch(self, records=(), cards=(), counters=(), terminals=()):
        """Load in one hop what the batch will read: [(terminal_id, seq)], [card_no], [(card_no, counter)], and
        the locked flag of [terminal_id]."""
        records = [k for k in set(records) if k not in self._record_rows and k not in self._batch_records]
        cards = [c for c in set(cards) if c not in self.cards]
        counters = [k for k in set(counters) if k not in self._counter_rows and k not in self.counters]
        terminals = [t for t in set(terminals) if t not in self._locked]
        if not (records or cards or counters or terminals):
            return

        rows = self.conn.fetch(_PREFETCH, [k[0] for k in records], [k[1] for k in records], cards,
                               [k[0] for k in counters], [k[1] for k in counters], terminals,
                               [accounts.bonus_account(c) for c in cards])
        purses = {}
        for key in records:
            self._record_rows[key] = _MISSING
        for card_no in cards:
            self.cards[card_no] = [None, 0, None]
        for key in counters:
            self._counter_rows[key] = _MISSING
        for terminal_id in terminals:
            self._locked[terminal_id] = False
        for tag, a, b, c, d, e, f, raw, status in rows:
            if tag == 0:
                self._record_rows[(a, b)] = SeqRecord(c, bytes(raw), status, d, e)
            elif tag == 1:
                self.cards[a] = [raw, b, c]
            elif tag == 2:
                self._counter_rows[(a, b)] = CounterClaim(c, d, e, f)
            elif tag == 3:
                self._locked[a] = bool(b)
            elif tag == 5:
                purses[accounts.bonus_account(a)] = b
            elif not self._last_ids:
                self._last_ids.update(records=a, ledger_tx=b)
        self._purses_read(cards, purses)

    # -- reads inside the transaction
    def _stored_record(self, terminal_id, seq):
        key = (terminal_id, seq)
        if key not in self._record_rows:
            self.prefetch(records=[key])
        found = self._record_rows[key]
        return None if found is _MISSING else found

    def _read_counters(self, card_no, counters):
        """{counter: CounterClaim} of the stored claims among counters, read by a prefetch."""
        self.prefetch(counters=[(card_no, c) for c in counters])
        found = ((c, self._counter_rows[(card_no, c)]) for c in counters)
        return {c: row for c, row in found if row is not _MISSING}

    def card(self, card_no):
        """Return [uid, shadow_balance_cents, last_counter] for a card (None values when unknown)."""
        if card_no not in self.cards:
            self.prefetch(cards=[card_no])
        return self.cards[card_no]

    def card_deposit(self, card_no):
        """Return the deposit in cents recorded for a card (0 when unknown)."""
        return self.conn.fetchval("SELECT deposit_cents FROM cards WHERE card_no=$1", card_no) or 0

    def held_damaged(self, terminal_id, seq):
        """Return the bytes of the damaged record holding (terminal, seq) in quarantine, or None."""
        raw = self._held.get((terminal_id, seq))
        if raw is None:
            raw = self.conn.fetchval("SELECT raw FROM quarantine WHERE terminal_id=$1 AND seq=$2", terminal_id, seq)
            raw = bytes(raw) if raw is not None else None
        return raw

    def terminal_locked(self, terminal_id):
        """True when an operator locked the terminal (read once per batch: the CLI may have changed it)."""
        if terminal_id not in self._locked:
            self.prefetch(terminals=[terminal_id])
        return self._locked[terminal_id]

    def refund_of(self, terminal_id, sale_seq):
        """Return the seq of the refund that claimed this sale, or None."""
        key = (terminal_id, sale_seq)
        if key in self.refunds:
            return self.refunds[key]
        return self.conn.fetchval("SELECT refund_seq FROM refunds WHERE terminal_id=$1 AND sale_seq=$2", *key)

    def next_card_no(self, first=100001):
        """Return an unused card number (the caller writes its row in this same transaction)."""
        top = self.conn.fetchval("SELECT MAX(card_no) FROM cards")
        return max([first, (top or 0) + 1, *[no + 1 for no, v in self.cards.items() if v[2] is not None]])

    def card_exists(self, card_no):
        """True when the card has a row (stored, or staged in this batch)."""
        staged = self.cards.get(card_no)
        if staged is not None and staged[2] is not None:
            return True
        return self.conn.fetchval("SELECT 1 FROM cards WHERE card_no=$1", card_no) is not None

    def blacklisted(self, card_no):
        """True when the card is on the blacklist now."""
        return self.conn.fetchval("SELECT 1 FROM blacklist WHERE card_no=$1 AND removed_version IS NULL",
                                  card_no) is not None

    # -- writes that happen now
    def set_card_info(self, card_no, uid, tier, deposit_cents):
        """Write the desk's view of a new card (uid, tier, deposit, issued_at) now, in this transaction."""
        self.conn.execute("INSERT INTO cards(card_no, uid, tier, deposit_cents, issued_at) VALUES ($1,$2,$3,$4,$5)",
                          card_no, bytes(uid), tier, deposit_cents, self.now)

    def _blacklist_version(self):
        # Serialised with other processes' blacklist changes (the CLI's) for the rest of the transaction.
        self.conn.execute("LOCK TABLE blacklist_versions IN SHARE ROW EXCLUSIVE MODE")
        return self.conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM blacklist_versions") + 1

    def blacklist_add(self, card_no, reason):
        """Add a card to the blacklist under a new version; return the version or None if already listed."""
        if self.blacklisted(card_no):
            return None
        version = self._blacklist_version()
        self.conn.execute("INSERT INTO blacklist_versions(version, card_no, action, reason, at) "
                          "VALUES ($1,$2,$3,$4,$5)", version, card_no, BlacklistAction.ADD, reason, self.now)
        self.conn.execute("INSERT INTO blacklist(card_no, added_version, removed_version, reason) "
                          "VALUES ($1,$2,NULL,$3) ON CONFLICT(card_no) DO UPDATE SET "
                          "added_version=excluded.added_version, removed_version=NULL, reason=excluded.reason",
                          card_no, version, reason)
        self.conn.execute("UPDATE cards SET status=$1 WHERE card_no=$2", CardStatus.BLACKLISTED, card_no)
        return version

    def blacklist_remove(self, card_no, reason):
        """Take a card off the blacklist under a new version; return the version or None if not listed."""
        if not self.blacklisted(card_no):
            return None
        version = self._blacklist_version()
        self.conn.execute("INSERT INTO blacklist_versions(version, card_no, action, reason, at) "
                          "VALUES ($1,$2,$3,$4,$5)", version, card_no, BlacklistAction.REMOVE, reason, self.now)
        self.conn.execute("UPDATE blacklist SET removed_version=$1 WHERE card_no=$2", version, card_no)
        self.conn.execute("UPDATE cards SET status=$1 WHERE card_no=$2 AND status=$3", CardStatus.ACTIVE, card_no,
                          CardStatus.BLACKLISTED)
        return version

    # -- at the end of the batch
    def flush(self, then=None):
        """Write everything collected: the appends and upserts in one statement (bulk.py; a large batch's
        per-record rows by COPY before it), then what must see them (status changes of records this batch
        stored, released refunds, gaps); then() is awaited last, all in one hop to the store's loop."""
        bulk = BulkStatement()
        s = []
        per_record = [("records", _RECORD_COLUMNS, _RECORD_TYPES, self.records),
                      ("ledger_tx", ("id", "record_id", "kind", "at"), ("bigint", "bigint", "bigint", "float8"),
                       self.ledger_tx),
                      ("ledger_entries", ("tx_id", "account", "amount_cents"), ("bigint", "text", "bigint"),
                       self.entries),
                      ("card_counters", _COUNTER_COLUMNS, ("bigint",) * 6,
                       [(k[0], k[1], *v) for k, v in self.counters.items()])]
        for table, columns, types, rows in per_record:
            if len(self.records) >= COPY_ROWS_MIN:
                s.append(((table, columns), rows))      # COPY, records first: the postings' keys need them
            else:
                bulk.insert(table, columns, types, rows)
        bulk.insert("accounts", ("name",), ("text",), [(a,) for a in sorted(self.accounts)], "ON CONFLICT DO NOTHING")
        bulk.insert("cards", ("card_no", "uid", "shadow_balance_cents", "last_counter"),
                    ("bigint", "bytea", "bigint", "bigint"),
                    [(k, None if v[0] is None else bytes(v[0]), v[1], v[2]) for k, v in self.cards.items()
                     if v[2] is not None],
                    "ON CONFLICT (card_no) DO UPDATE SET uid=COALESCE(cards.uid, excluded.uid), "
                    "shadow_balance_cents=excluded.shadow_balance_cents, last_counter=excluded.last_counter")
        bulk.insert("refunds", ("terminal_id", "sale_seq", "refund_seq"), ("bigint",) * 3,
                    [(k[0], k[1], v) for k, v in self.refunds.items() if v is not None],
                    "ON CONFLICT (terminal_id, sale_seq) DO UPDATE SET refund_seq=excluded.refund_seq")
        bulk.insert("quarantine", ("raw", "size", "sha256", "topic", "terminal_id", "reason", "detail", "at", "seq"),
                    ("bytea", "bigint", "bytea", "text", "bigint", "text", "text", "float8", "bigint"),
                    self.quarantine)
        bulk.insert("conflicts", ("terminal_id", "seq", "raw", "existing_raw", "at"),
                    ("bigint", "bigint", "bytea", "bytea", "float8"),
                    [(t, q, bytes(r), bytes(e), at) for t, q, r, e, at in self.conflicts])
        bulk.insert("alarms", ("kind", "card_no", "terminal_id", "seq", "detail", "at"),
                    ("text", "bigint", "bigint", "bigint", "text", "float8"), self.alarms)
        bulk.insert("passages", ("record_id", "terminal_id", "card_no", "kind", "area", "reason", "product", "time_s"),
                    ("bigint",) * 8, self.passages)
        bulk.insert("attempts", ("card_no", "terminal_id", "seq", "kind", "time_s", "at"),
                    ("bigint",) * 5 + ("float8",), self.attempts)
        by_columns = {}
        for terminal_id, cols in self.terminal_updates.items():
            names = tuple(sorted(cols))
            by_columns.setdefault(names, []).append((terminal_id, *[cols[n] for n in names]))
        for names, rows in sorted(by_columns.items()):
            bulk.update("terminals", names, [TERMINAL_TYPES.get(n, "bigint") for n in names], rows)
        if bulk:
            s.append((bulk.sql(), [bulk.args]))
        if self.record_status:
            s.append(("UPDATE records SET status=$1, applied_at=$2 WHERE id=$3",
                      [(st, self.now if st == RecordStatus.APPLIED else None, i) for i, st in self.record_status.items()]))
        released = [k for k, v in self.refunds.items() if v is None]
        if released:
            s.append(("DELETE FROM refunds WHERE terminal_id=$1 AND sale_seq=$2", released))
        if self.gaps:
            s.append(("DELETE FROM terminal_gaps WHERE terminal_id=$1", [(t,) for t in self.gaps]))
            rows = [(t, a, b) for t, gaps in self.gaps.items() for a, b in gaps]
            if rows:
                s.append(("INSERT INTO terminal_gaps VALUES ($1,$2,$3)", rows))
        self.conn.run_all(s, then)

    def flush_audit(self, oplog):
        """Append the staged audit entries to the log and move the database's anchor to its new head.

        The anchor is locked first: a CLI process and the hub append to the same log, and the second
        one must see the first one's head.
        """
        if not self.audits:
            return
        # Until the first commit the anchor row does not exist to be locked: the table is.
        self.conn.execute("LOCK TABLE audit_anchor IN SHARE ROW EXCLUSIVE MODE")
        row = self.conn.fetchrow("SELECT seq, hash FROM audit_anchor WHERE id=1")
        anchor = tuple(row) if row else None
        for actor, action, details in self.audits:
            entry = oplog.append_anchored(anchor, actor, action, **details)
            anchor = (entry["seq"], entry["hash"])
        self.conn.execute("INSERT INTO audit_anchor(id, seq, hash, at) VALUES (1,$1,$2,$3) ON CONFLICT(id) DO UPDATE "
                          "SET seq=excluded.seq, hash=excluded.hash, at=excluded.at", *anchor, self.now)
