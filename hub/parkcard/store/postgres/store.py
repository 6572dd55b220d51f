"""The hub's store on PostgreSQL (asyncpg), behind parkcard.store.interface.Store like the SQLite store.

Connections live on the store's own loops (parkcard.store.postgres.loop): one
writer connection, owned by the writer thread that runs each batch's sync
`fn(tx)` between BEGIN and COMMIT, and a small pool of readers on a thread of
their own, so a read never waits behind a batch. A batch is three round trips
(BEGIN and the writer's lock; its reads, loaded ahead; its writes with COMMIT:
write_tx.py). Row ids are numbered on from MAX(id) under the writer's lock. Migrations are the
numbered files in store/migrations/postgres.
"""

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import asyncpg

from parkcard.domain.lifecycle import AdminCardState
from parkcard.oplog import OpLog
from parkcard.store import interface
from parkcard.store.postgres.errors import connecting
from parkcard.store.postgres.ledger_methods import LedgerMethods
from parkcard.store.postgres.loop import LoopThread, OwnLoop
from parkcard.store.postgres.migrate import migrate
from parkcard.store.postgres.sql import numbered
from parkcard.store.postgres.url import split
from parkcard.store.postgres.write_tx import PgWriteTx, SyncConn
from parkcard.store.booth import BoothMethods
from parkcard.store.staff import StaffMethods
from parkcard.store.credits import CreditMethods
from parkcard.store.desk_ops import DeskOpMethods
from parkcard.store.shifts import ShiftMethods
from parkcard.store.reads import SharedMethods
from parkcard.store.members import MemberMethods
from parkcard.store.replacements import ReplacementMethods
from parkcard.store.tickets import TicketMethods
from parkcard.store.web import WebMethods
from parkcard.store.rows import MerchantListing, StartedCardRequest

CONNECT_TIMEOUT_S = 10
READERS_MAX = 4             # reader connections; the ledger check streams on two at once
WRITE_LOCK_KEY = 0x70617263_77726974    # "parcwrit": pg_advisory_xact_lock of every write transaction


class PostgresStore(SharedMethods, BoothMethods, StaffMethods, CreditMethods, MemberMethods, ReplacementMethods,
                    TicketMethods, DeskOpMethods, ShiftMethods, WebMethods, LedgerMethods, interface.Store):
    """The hub database on a PostgreSQL server: one writer connection, a pool of readers."""

    def __init__(self, url):
        self.dsn, audit_log, self.path = split(url)     # path: the URL without its password, for logs
        self.oplog = OpLog.shared(audit_log)    # operator actions, anchored here (WriteTx.audit)
        self.stats = Counter()
        self._loop = None
        self._writer = None
        self._writer_loop = None    # OwnLoop of the writer thread, where the writer connection lives
        self._readers = None
        self._writer_thread = None

    # -- lifecycle
    @property
    def is_open(self):
        """True from open() until close(): a connection or one of the store's threads is still held."""
        return not (self._loop is None and self._writer_thread is None)

    async def open(self):
        """Connect, check the schema version and migrate; on failure nothing stays open."""
        return await self._start(migrating=True)

    async def open_for_audit(self):
        """Connect the readers only: no migrations, nothing written (`ledger check`)."""
        return await self._start(migrating=False)

    async def _start(self, migrating):
        self._loop = LoopThread("parkcard-pg-readers")
        try:
            if migrating:
                self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parkcard-pg-writer")
                await self._in_writer(self._open_writer)
            self._readers = await self._loop.run(self._connecting(self._readers_pool()))
        except BaseException:
            await self.close()
            raise
        return self

    def _connecting(self, opening):
        return connecting(self.path, opening)

    async def _readers_pool(self):
        # Made on the readers' loop: a pool belongs to the loop it is created on.
        return await asyncpg.create_pool(self.dsn, min_size=1, max_size=READERS_MAX, timeout=CONNECT_TIMEOUT_S)

    async def _in_writer(self, fn, *args):
        if self._writer_thread is None:
            raise RuntimeError("%s is not open for writing (open(), not open_for_audit())" % self.path)
        return await asyncio.wrap_future(self._writer_thread.submit(fn, *args))

    def _open_writer(self):
        """In the writer thread: its loop, its connection, the migrations."""
        self._writer_loop = OwnLoop()
        self._writer = self._writer_loop.wait(self._connecting(asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)))
        self._writer_loop.wait(migrate(self._writer, self.path))

    def _close_writer(self):
        """In the writer thread: close its connection and its loop."""
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                self._writer_loop.wait(_closed(writer.close(timeout=CONNECT_TIMEOUT_S)))
        finally:
            self._writer_loop.close()
            self._writer_loop = None

    async def close(self):
        """Close every connection and stop the store's threads (idempotent)."""
        if self._writer_thread is not None:
            try:
                if self._writer_loop is not None:
                    await self._in_writer(self._close_writer)
            finally:
                self._writer_thread.shutdown(wait=True)
                self._writer_thread = None
        loop, self._loop = self._loop, None
        if loop is not None:
            readers, self._readers = self._readers, None
            try:
                if readers is not None:
                    await loop.run(_closed(readers.close()))
            finally:
                loop.stop()

    # -- the writer
    async def write(self, fn, audit=None):
        """Run fn(PgWriteTx) in one transaction in the writer thread; return its result.

        audit(result) -> [(actor, action, details)] names the operator actions the change records:
        they are appended to the audit log in this same transaction (nothing, when it returns None).
        """
        result, events = await self._in_writer(self._write_now, fn, audit)
        self._committed(events)
        return result

    async def _begin(self):
        # A writer whose session died (server restart, network cut) is replaced at the next batch:
        # the failed batch raised a transient error and is retried by the hub.
        if self._writer is None or self._writer.is_closed():
            self._writer = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        # One writer at a time, as BEGIN IMMEDIATE is on SQLite, taken in BEGIN's own round trip: a batch
        # numbers its rows from MAX(id) read after the lock (write_tx.py), so no other process's batch
        # (a CLI's) can take the same ids, and nothing is remembered between transactions.
        await self._writer.execute("BEGIN; SELECT pg_advisory_xact_lock(%d)" % WRITE_LOCK_KEY)
        return self._writer

    def _write_now(self, fn, audit):
        loop = self._writer_loop
        conn = loop.wait(self._begin())

        async def commit():
            await conn.execute("COMMIT")
        try:
            tx = PgWriteTx(SyncConn(loop, conn), self.stats)
            result = fn(tx)
            for actor, action, details in (audit(result) or ()) if audit is not None else ():
                tx.audit(actor, action, **details)
            if tx.audits:   # the log is appended between the anchor's read and its write
                tx.flush()
                tx.flush_audit(self.oplog)
                loop.wait(commit())
            else:
                tx.flush(then=commit)       # a batch's writes and its COMMIT in one round trip from here
            return result, tx.may_hold_events()     # the batch's rows are let go here, in this thread
        except BaseException:
            if not conn.is_closed():
                try:
                    loop.wait(conn.execute("ROLLBACK"))
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    loop.wait(_closed(conn.close(timeout=CONNECT_TIMEOUT_S)))    # the next batch reconnects
            raise

    # -- reads
    async def _read(self, method, sql, args):
        async def run():
            async with self._readers.acquire() as conn:
                return await getattr(conn, method)(sql, *args)
        return await self._loop.run(run())

    async def _all(self, sql, params=()):
        return [tuple(r) for r in await self._read("fetch", *numbered(sql, params))]

    async def _one(self, sql, params=()):
        row = await self._read("fetchrow", *numbered(sql, params))
        return tuple(row) if row is not None else None

    async def schema_version(self):
        """Return the schema version of the open database (parkcard_schema)."""
        return await self._value("SELECT version FROM parkcard_schema")

    async def _value(self, sql, *args):
        return await self._read("fetchval", sql, args)

    # -- park and merchants

    async def add_merchant(self, merchant_id, name, commission_bps, park_id=1, audit=None):
        """Create a merchant; return True, or False if it exists with these very values (ValueError otherwise)."""
        def run(tx):
            row = tx.conn.fetchrow("SELECT park_id, name, commission_bps FROM merchants WHERE id=$1", merchant_id)
            if row is not None:
                if row == (park_id, name, commission_bps):
                    return False
                raise ValueError("merchant %d already exists (%s, %d bps, park %d)" % (merchant_id, row[1], row[2],
                                                                                       row[0]))
            tx.conn.execute("INSERT INTO parks(id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                            park_id, "park %d" % park_id)
            tx.conn.execute("INSERT INTO merchants(id, park_id, name, commission_bps) VALUES ($1,$2,$3,$4)",
                            merchant_id, park_id, name, commission_bps)
            return True
        return await self.write(run, audit)

    async def update_merchant(self, merchant_id, name=None, commission_bps=None, audit=None):
        """Change a merchant's name and/or commission; return ((name, bps) before, after). ValueError if unknown."""
        def run(tx):
            row = tx.conn.fetchrow("SELECT name, commission_bps FROM merchants WHERE id=$1 FOR UPDATE", merchant_id)
            if row is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            after = (row[0] if name is None else name, row[1] if commission_bps is None else commission_bps)
            if after != row:
                tx.conn.execute("UPDATE merchants SET name=$1, commission_bps=$2 WHERE id=$3", *after, merchant_id)
            return row, after
        return await self.write(run, audit)

    async def merchant_list(self):
        """Return [MerchantListing] (each merchant with its terminal ids) by id."""
        rows = await self._all("SELECT m.id, m.park_id, m.name, m.commission_bps, "
                                   "COALESCE((SELECT array_agg(t.id ORDER BY t.id) FROM terminals t "
                                   "WHERE t.merchant_id = m.id), '{}') FROM merchants m ORDER BY m.id")
        return [MerchantListing(*r[:4], list(r[4])) for r in rows]

    async def add_terminal(self, terminal_id, merchant_id, role, key, name, fixed_price_cents=0, category=0,
                           broker_password=None, audit=None):
        """Register a terminal; raise ValueError for an unknown merchant or a taken id."""
        def run(tx):
            if tx.conn.fetchval("SELECT 1 FROM merchants WHERE id=$1", merchant_id) is None:
                raise ValueError("merchant %d does not exist" % merchant_id)
            if tx.conn.fetchval("SELECT 1 FROM terminals WHERE id=$1", terminal_id) is not None:
                raise ValueError("terminal %d is already registered" % terminal_id)
            tx.conn.execute("INSERT INTO terminals(id, merchant_id, role, key, name, fixed_price_cents, category, "
                            "broker_password) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)", terminal_id, merchant_id, role,
                            bytes(key), name, fixed_price_cents, category, broker_password)
        await self.write(run, audit)

    async def terminal_command(self, terminal_id, command, actor, audit=None, **columns):
        """Set terminal columns and queue a command (unless None) for the running hub to send, in one transaction.

        Returns False, changing and queueing nothing, when every column already has its value. Raises
        ValueError if the terminal is not registered.
        """
        names = sorted(columns)

        def run(tx):
            row = tx.conn.fetchrow("SELECT %s FROM terminals WHERE id=$1 FOR UPDATE" % ", ".join(names), terminal_id)
            if row is None:
                raise ValueError("terminal %d is not registered" % terminal_id)
            if row == tuple(columns[n] for n in names):
                return False
            tx.update_terminal(terminal_id, **columns)
            if command is not None:
                tx.conn.execute("INSERT INTO terminal_commands(terminal_id, command, actor, created_at) "
                                "VALUES ($1,$2,$3,$4)", terminal_id, command, actor, tx.now)
            return True
        return await self.write(run, audit)

    async def request_admin_card(self, desk_terminal_id, uid, desk, actor):
        """Queue an admin card issue for the running hub; return the request id."""
        return await self.write(lambda tx: tx.conn.fetchval(
            "INSERT INTO card_write_requests(desk_terminal_id, uid, desk, actor, created_at) "
            "VALUES ($1,$2,$3,$4,$5) RETURNING id", desk_terminal_id, bytes(uid), int(bool(desk)), actor, tx.now))

    async def start_card_requests(self):
        """Claim the queued admin card issues: [StartedCardRequest], marked started."""
        # Claimed in the statement that reads them: a request the CLI cancels meanwhile is not started.
        rows = await self.write(lambda tx: tx.conn.fetch(
            "UPDATE card_write_requests SET started_at=$1 WHERE id IN (SELECT id FROM card_write_requests "
            "WHERE started_at IS NULL AND cancelled_at IS NULL FOR UPDATE) "
            "RETURNING id, desk_terminal_id, uid, desk, actor", tx.now))
        return [StartedCardRequest(r[0], r[1], bytes(r[2]), bool(r[3]), r[4]) for r in sorted(rows)]

    async def cancel_card_request(self, request_id):
        """Cancel an admin card issue nobody waits for any more; return False if it had finished already."""
        return await self.write(lambda tx: tx.conn.execute(
            "UPDATE card_write_requests SET cancelled_at=$1 WHERE id=$2 AND finished_at IS NULL",
            tx.now, request_id) == "UPDATE 1")

    async def finish_card_request(self, request_id, card_no=None, error=None):
        """Record how an admin card issue ended."""
        await self.write(lambda tx: tx.conn.execute(
            "UPDATE card_write_requests SET finished_at=$1, card_no=$2, error=$3 WHERE id=$4",
            tx.now, card_no, error, request_id))

    async def settle_admin_card(self, card_no, written, request_id=None, error=None):
        """End a pending admin card: written (the desk said so) or failed; return the state it got.

        With the CLI's request_id, in the same transaction: the request is finished, and a card of a
        request the CLI cancelled is abandoned even if the desk wrote it.
        """
        def run(tx):
            cancelled = request_id is not None and tx.conn.fetchval(
                "SELECT cancelled_at FROM card_write_requests WHERE id=$1 FOR UPDATE", request_id) is not None
            state = AdminCardState.settled(cancelled, written)
            tx.conn.execute("UPDATE admin_cards SET state=$1 WHERE card_no=$2 AND state=$3", state, card_no,
                            AdminCardState.PENDING)
            if request_id is not None:
                tx.conn.execute("UPDATE card_write_requests SET finished_at=$1, card_no=$2, error=$3 WHERE id=$4",
                                tx.now, card_no, state.request_error(card_no, error), request_id)
            return state
        return await self.write(run)


    async def command_sent(self, command_id):
        """Mark a queued terminal command as sent."""
        await self.write(lambda tx: tx.conn.execute("UPDATE terminal_commands SET sent_at=$1 WHERE id=$2",
                                                    tx.now, command_id))

async def _closed(closing):
    """Await a connection's or pool's close; a server that went away took the sessions with it."""
    try:
        await asyncio.wait_for(closing, CONNECT_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pass

