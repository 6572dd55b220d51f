"""The SQLite store: one writer thread, reads through aiosqlite.

Writes are whole batches of synchronous rules (`write(fn)` runs `fn(tx)` between
BEGIN IMMEDIATE and COMMIT), so the writer is a plain `sqlite3` connection owned
by a single-thread executor of the store: the batch runs in that thread as one
call, the way datasette's one write thread does, and the event loop awaits it
once. aiosqlite's public API offers a statement per await, not a function run
in its thread; a batch of hundreds of statements would cost hundreds of
round trips. Reads go through an aiosqlite connection of their own (WAL), so
they never wait behind a batch; the ledger check streams its rows on a plain
connection opened in a worker thread for the scan.

WAL, synchronous=FULL: a batch the hub acknowledged survives a power cut.
"""

import asyncio
import concurrent.futures
import sqlite3
from collections import Counter

import aiosqlite

from parkcard.domain.lifecycle import AdminCardState
from parkcard.oplog import OpLog, log_path_for
from parkcard.store import interface
from parkcard.store.booth import BoothMethods
from parkcard.store.staff import StaffMethods
from parkcard.store.credits import CreditMethods
from parkcard.store.desk_ops import DeskOpMethods
from parkcard.store.shifts import ShiftMethods
from parkcard.store.reads import TERMINAL_SELECT, SharedMethods
from parkcard.store.members import MemberMethods
from parkcard.store.replacements import ReplacementMethods
from parkcard.store.tickets import TicketMethods
from parkcard.store.web import WebMethods
from parkcard.store.rows import MerchantListing, StartedCardRequest, Terminal
from parkcard.store.sqlite import migrate
from parkcard.store.sqlite.audit_rows import AuditRows
from parkcard.store.sqlite import settlement
from parkcard.store.sqlite.write_tx import WriteTx

BUSY_TIMEOUT_MS = 10000     # how long a statement waits for another process's lock before SQLITE_BUSY
# Statements the writer keeps compiled: every flush statement of each INSERT size (write_tx.INSERT_SIZES) with room
# for the rest; Python's default of 128 would drop and compile them again as batches change size.
WRITER_STATEMENTS_CACHED = 512


def connect_writer(path):
    """Open the writer connection: WAL, synchronous=FULL, foreign keys on, the file checked and migrated."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True,
                           cached_statements=WRITER_STATEMENTS_CACHED)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=%d" % BUSY_TIMEOUT_MS)
        migrate.quick_check(conn, path)
        migrate.migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _scan(path, fn):
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=%d" % BUSY_TIMEOUT_MS)
        return fn(AuditRows(conn))
    finally:
        conn.close()


class SqliteStore(SharedMethods, BoothMethods, StaffMethods, CreditMethods, MemberMethods, ReplacementMethods,
                  TicketMethods, DeskOpMethods, ShiftMethods, WebMethods, interface.Store):
    """The hub database in one SQLite file: one writer thread, one reader connection."""

    def __init__(self, path):
        self.path = str(path)
        self.oplog = OpLog.shared(log_path_for(self.path))    # operator actions, anchored here (WriteTx.audit)
        self.stats = Counter()
        self._executor = None
        self._writer = None
        self._reader = None

    # -- lifecycle
    @property
    def is_open(self):
        """True from open() until close(): a connection or the writer's thread is still held."""
        return not (self._reader is None and self._writer is None and self._executor is None)

    async def open(self):
        """Open (creating and migrating) the database and return self; on failure nothing stays open."""
        try:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="parkcard-store-writer")
            self._writer = await self._in_writer(connect_writer, self.path)
            await self._open_reader()
        except BaseException:
            # A thread left running keeps the process alive after the error is reported.
            await self.close()
            raise
        return self

    async def open_for_audit(self):
        """Open the reader connection only: no checks, no migrations, nothing written (`ledger check`)."""
        await self._open_reader()
        return self

    async def _open_reader(self):
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        await self._reader.execute("PRAGMA busy_timeout=%d" % BUSY_TIMEOUT_MS)

    async def close(self):
        """Close both connections and the writer thread."""
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._in_writer(self._writer.close)
        if self._executor is not None:
            self._executor.shutdown(wait=False)     # idle by now: its thread ends at once
        self._reader = self._writer = self._executor = None

    async def _in_writer(self, fn, *args):
        if self._executor is None:      # else run_in_executor would run it on the loop's shared pool
            raise RuntimeError("%s is not open for writing (open(), not open_for_audit())" % self.path)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _all(self, sql, params=()):
        return await self._reader.execute_fetchall(sql, params)

    async def _one(self, sql, params=()):
        async with self._reader.execute(sql, params) as cur:
            return await cur.fetchone()

    async def schema_version(self):
        """Return PRAGMA user_version of the open database."""
        return (await self._one("PRAGMA user_version"))[0]

    # -- the writer
    async def write(self, fn, audit=None):
        """Run fn(WriteTx) in one BEGIN IMMEDIATE transaction in the writer thread; return its result.

        audit(result) -> [(actor, action, details)] names the operator actions the change records:
        they are appended to the audit log in this same transaction (nothing, when it returns None).
        """
        def run():
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = WriteTx(conn, self.stats)
                result = fn(tx)
                for actor, action, details in (audit(result) or ()) if audit is not None else ():
                    tx.audit(actor, action, **details)
                tx.flush()
                tx.flush_audit(self.oplog)
                conn.execute("COMMIT")
                return result, tx.may_hold_events()     # the batch's rows are let go here, in this thread
            except BaseException:
                if conn.in_transaction:     # SQLITE_FULL and some I/O errors roll back by themselves
                    conn.execute("ROLLBACK")
                raise

        result, events = await self._in_writer(run)
        self._committed(events)
        return result

    _close_one = staticmethod(settlement.close_one)     # what close_settlements runs per merchant

    async def audit_scan(self, fn):
        """Run fn(AuditRows) in a worker thread on a connection of its own and return its result."""
        return await asyncio.to_thread(_scan, self.path, fn)

    # -- park and merchants

    async def set_park_currency(self, park_id, currency, audit=None):
        """Set the park's currency (creating the park); ValueError once the park has taken money in another."""
        def run(tx):
            tx.conn.execute("INSERT OR IGNORE INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            current = tx.conn.execute("SELECT currency FROM parks WHERE id=?", (park_id,)).fetchone()[0]
            if current == currency:
                return False
            # Stored amounts carry no currency: changing it would relabel money already taken.
            taken = tx.conn.execute("SELECT COUNT(*) FROM records r JOIN terminals t ON t.id = r.terminal_id "
                                    "JOIN merchants m ON m.id = t.merchant_id WHERE m.park_id=?",
                                    (park_id,)).fetchone()[0]
            if taken:
                raise ValueError("park %d already holds %d records in %s: its currency cannot change"
                                 % (park_id, taken, current))
            tx.conn.execute("UPDATE parks SET currency=? WHERE id=?", (currency, park_id))
            return True
        return await self.write(run, audit)

    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1, audit=None):
        """Create a merchant; return True, or False if it exists with these very values.

        Raises ValueError if the id is taken by a merchant with another name, commission or park:
        changing a merchant is update_merchant's, never a side effect of adding one.
        """
        def run(tx):
            row = tx.conn.execute("SELECT park_id, name, commission_bps FROM merchants WHERE id=?",
                                  (merchant_id,)).fetchone()
            if row is not None:
                if tuple(row) == (park_id, name, commission_bps):
                    return False
                raise ValueError("merchant %d already exists (%s, %d bps, park %d)" % (merchant_id, row[1], row[2],
                                                                                       row[0]))
            tx.conn.execute("INSERT OR IGNORE INTO parks(id, name) VALUES (?, ?)", (park_id, "park %d" % park_id))
            tx.conn.execute("INSERT INTO merchants(id, park_id, name, commission_bps) VALUES (?,?,?,?)",
                            (merchant_id, park_id, name, commission_bps))
            return True
        return await self.write(run, audit)

    async def update_merchant(self, merchant_id, name=None, commission_bps=None, audit=None):
        """Change a merchant's name and/or commission; return ((name, bps) before, after). ValueError if unknown."""
        def run(tx):
            row = tx.conn.execute("SELECT name, commission_bps FROM merchants WHERE id=?", (merchant_id,)).fetchone()
            if row is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            after = (row[0] if name is None else name, row[1] if commission_bps is None else commission_bps)
            if after != tuple(row):
                tx.conn.execute("UPDATE merchants SET name=?, commission_bps=? WHERE id=?", (*after, merchant_id))
            return tuple(row), after
        return await self.write(run, audit)

    async def merchant_list(self):
        """Return [MerchantListing] (each merchant with its terminal ids) by id."""
        rows = await self._all("SELECT m.id, m.park_id, m.name, m.commission_bps, "
                               "(SELECT group_concat(t.id) FROM (SELECT id FROM terminals "
                               " WHERE merchant_id=m.id ORDER BY id) t) FROM merchants m ORDER BY m.id")
        return [MerchantListing(*r[:4], [int(t) for t in r[4].split(",")] if r[4] else []) for r in rows]

    # -- terminals
    async def add_terminal(self, terminal_id, merchant_id, role, key, name, fixed_price_cents=0, category=0,
                           broker_password=None, audit=None):
        """Register a terminal; raise ValueError for an unknown merchant or a taken id."""
        def run(tx):
            if tx.conn.execute("SELECT 1 FROM merchants WHERE id=?", (merchant_id,)).fetchone() is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            if tx.conn.execute("SELECT 1 FROM terminals WHERE id=?", (terminal_id,)).fetchone() is not None:
                raise ValueError("terminal %d is already registered" % terminal_id)
            tx.conn.execute("INSERT INTO terminals(id, merchant_id, role, key, name, fixed_price_cents, category, "
                            "broker_password) VALUES (?,?,?,?,?,?,?,?)",
                            (terminal_id, merchant_id, role, key, name, fixed_price_cents, category,
                             broker_password))
        await self.write(run, audit)

    async def terminal_command(self, terminal_id, command, actor, audit=None, **columns):
        """Set terminal columns and queue a command (unless None) for the running hub to send, in one transaction.

        Returns False, changing and queueing nothing, when every column already has its value (lock of a
        locked terminal, unlock of an unlocked one). Raises ValueError if the terminal is not registered.
        """
        def run(tx):
            stored = tx.conn.execute(TERMINAL_SELECT + "WHERE id=?", (terminal_id,)).fetchone()
            if stored is None:
                raise ValueError("terminal %d is not registered" % terminal_id)
            stored = Terminal(*stored)
            if all(getattr(stored, n) == v for n, v in columns.items()):
                return False
            tx.update_terminal(terminal_id, **columns)
            if command is not None:
                tx.conn.execute("INSERT INTO terminal_commands(terminal_id, command, actor, created_at) "
                                "VALUES (?,?,?,?)", (terminal_id, command, actor, tx.now))
            return True
        return await self.write(run, audit)

    async def command_sent(self, command_id):
        """Mark a queued terminal command as sent."""
        await self.write(lambda tx: tx.conn.execute("UPDATE terminal_commands SET sent_at=? WHERE id=?",
                                                    (tx.now, command_id)))

    # -- admin system cards
    async def add_admin_card(self, uid, desk, issued_by, first, last, audit=None):
        """Record a new pending admin card under the next number in [first, last]; return it (ValueError when full)."""
        def run(tx):
            row = tx.conn.execute("SELECT MAX(card_no) FROM admin_cards").fetchone()
            card_no = max(first, (row[0] or 0) + 1)
            if card_no > last:
                raise ValueError("admin card numbers %d..%d are all used" % (first, last))
            tx.conn.execute("INSERT INTO admin_cards(card_no, uid, desk, issued_by, issued_at, state) "
                            "VALUES (?,?,?,?,?,?)", (card_no, bytes(uid), int(desk), issued_by, tx.now,
                                                     AdminCardState.PENDING))
            return card_no
        return await self.write(run, audit)

    async def revoke_admin_card(self, card_no, reason, audit=None):
        """Revoke an admin card; return True if revoked now, False if it already was; ValueError if unknown."""
        def run(tx):
            row = tx.conn.execute("SELECT revoked_at FROM admin_cards WHERE card_no=?", (card_no,)).fetchone()
            if row is None:
                raise ValueError("admin card %d does not exist" % card_no)
            if row[0] is not None:
                return False
            tx.conn.execute("UPDATE admin_cards SET revoked_at=?, reason=? WHERE card_no=?",
                            (tx.now, reason, card_no))
            return True
        return await self.write(run, audit)

    async def settle_admin_card(self, card_no, written, request_id=None, error=None):
        """End a pending admin card: written (the desk said so) or failed; return the state it got.

        With the CLI's request_id, in the same transaction: the request is finished, and a card of a
        request the CLI cancelled is abandoned even if the desk wrote it, since the operator was told it
        was cancelled; an abandoned card authorises nothing.
        """
        def run(tx):
            cancelled = request_id is not None and tx.conn.execute(
                "SELECT cancelled_at FROM card_write_requests WHERE id=?", (request_id,)).fetchone()[0] is not None
            state = AdminCardState.settled(cancelled, written)
            tx.conn.execute("UPDATE admin_cards SET state=? WHERE card_no=? AND state=?",
                            (state, card_no, AdminCardState.PENDING))
            if request_id is not None:
                tx.conn.execute("UPDATE card_write_requests SET finished_at=?, card_no=?, error=? WHERE id=?",
                                (tx.now, card_no, state.request_error(card_no, error), request_id))
            return state
        return await self.write(run)

    async def request_admin_card(self, desk_terminal_id, uid, desk, actor):
        """Queue an admin card issue for the running hub; return the request id."""
        return await self.write(lambda tx: tx.conn.execute(
            "INSERT INTO card_write_requests(desk_terminal_id, uid, desk, actor, created_at) VALUES (?,?,?,?,?) "
            "RETURNING id", (desk_terminal_id, bytes(uid), int(bool(desk)), actor, tx.now)).fetchone()[0])

    async def start_card_requests(self):
        """Claim the queued admin card issues: [StartedCardRequest], marked started."""
        def run(tx):
            # Claimed in the transaction that reads them: a request the CLI cancels meanwhile is not started.
            rows = tx.conn.execute("SELECT id, desk_terminal_id, uid, desk, actor FROM card_write_requests "
                                   "WHERE started_at IS NULL AND cancelled_at IS NULL ORDER BY id").fetchall()
            tx.conn.executemany("UPDATE card_write_requests SET started_at=? WHERE id=?",
                                [(tx.now, r[0]) for r in rows])
            return rows
        return [StartedCardRequest(r[0], r[1], bytes(r[2]), bool(r[3]), r[4]) for r in await self.write(run)]

    async def cancel_card_request(self, request_id):
        """Cancel an admin card issue nobody waits for any more; return False if it had finished already."""
        return await self.write(lambda tx: tx.conn.execute(
            "UPDATE card_write_requests SET cancelled_at=? WHERE id=? AND finished_at IS NULL",
            (tx.now, request_id)).rowcount == 1)

    async def finish_card_request(self, request_id, card_no=None, error=None):
        """Record how an admin card issue ended."""
        await self.write(lambda tx: tx.conn.execute(
            "UPDATE card_write_requests SET finished_at=?, card_no=?, error=? WHERE id=?",
            (tx.now, card_no, error, request_id)))

    # -- cards, records, ledger

    # -- blacklist

    # -- what ingest refused or flagged
    async def add_alarm_once(self, kind, detail, card_no=None, terminal_id=None):
        """Raise an alarm unless the same one (kind, card, terminal, detail) is already listed; return True if new."""
        def run(tx):
            if tx.conn.execute("SELECT 1 FROM alarms WHERE kind=? AND card_no IS ? AND terminal_id IS ? AND detail=?",
                               (kind, card_no, terminal_id, detail)).fetchone() is not None:
                return False
            tx.add_alarm(kind, card_no, terminal_id, None, detail)
            return True
        return await self.write(run)

    # -- settlement
