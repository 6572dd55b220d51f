"""One hub per PostgreSQL database: a session-level advisory lock held for the hub's whole life.

The lock lives on a connection of its own; PostgreSQL drops it when that
session ends, so a killed hub (its socket closed by the kernel) frees the
database as a dead flock does on SQLite (parkcard.hub_lock). The holder names
itself in application_name, which the refusal quotes.

A session can also end under a live hub: the server restarts. The lock is then
taken again as soon as the server is back (every RETAKE_INTERVAL_S); should
another hub have taken it first, that is logged as event=hub_lock_lost and
`lost_to` names the holder.
"""

import asyncio
import logging
import os
import socket

import asyncpg

from parkcard.hub_lock import HubLockedError
from parkcard.store.postgres.errors import connecting
from parkcard.store.postgres.loop import LoopThread
from parkcard.store.postgres.url import split

HUB_LOCK_KEY = 0x70617263_68756221    # "parchub!": advisory locks are per database, one key is enough
CONNECT_TIMEOUT_S = 10
RETAKE_INTERVAL_S = 1.0
log = logging.getLogger("parkcard.store.postgres")


class PgHubLock:
    """The exclusive right to run a hub on one PostgreSQL database (HubLock's interface)."""

    def __init__(self, url):
        self.dsn, _audit_log, self.shown = split(url)
        self._loop = None
        self._conn = None
        self._retaking = None       # the task that takes the lock again after its session ended
        self.lost_to = None         # the holder that took the lock while this one's session was down

    @property
    def held(self):
        """True from acquire() to release() (the lock taken again after a server restart included)."""
        return self._loop is not None

    def acquire(self):
        """Take the lock without waiting; raise HubLockedError if another hub holds it."""
        if self._loop is not None:
            return self
        loop = LoopThread("parkcard-pg-lock")
        try:
            conn, holder = loop.wait(self._take())
        except BaseException:
            loop.stop()
            raise
        if conn is None:
            loop.stop()
            raise HubLockedError.held_by(self.shown, holder)
        self._loop, self._conn = loop, conn
        loop.loop.call_soon_threadsafe(conn.add_termination_listener, self._session_ended)
        return self

    def _session_ended(self, conn):
        """On the lock's loop: the session that held the lock is gone; take the lock again."""
        if conn is self._conn and self._retaking is None:
            log.warning("event=hub_lock_session_lost db=%s action=retaking", self.shown)
            self._retaking = asyncio.get_running_loop().create_task(self._retake())

    async def _retake(self):
        while True:
            try:
                conn, holder = await self._take()
                break
            except (ConnectionError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(RETAKE_INTERVAL_S)     # the server is not back yet
        self._retaking = None
        if conn is None:
            self.lost_to = holder or "another session"
            log.error("event=hub_lock_lost db=%s holder=%r", self.shown, self.lost_to)
            return
        self._conn = conn
        conn.add_termination_listener(self._session_ended)
        log.warning("event=hub_lock_retaken db=%s", self.shown)

    async def _take(self):
        me = "parkcard-hub pid %d on %s" % (os.getpid(), socket.gethostname())
        conn = await connecting(self.shown, asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S,
                                                            server_settings={"application_name": me}))
        try:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", HUB_LOCK_KEY):
                return conn, None
            holder = await conn.fetchval(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1", HUB_LOCK_KEY)
        except BaseException:
            await conn.close()
            raise
        await conn.close()
        return None, holder

    def release(self):
        """Give the lock back (idempotent): closing the session drops it."""
        if self._loop is not None:
            loop, self._loop = self._loop, None
            try:
                loop.wait(self._let_go())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass        # the session is gone either way, and the lock with it
            finally:
                loop.stop()

    async def _let_go(self):
        conn, self._conn = self._conn, None
        if self._retaking is not None:
            self._retaking.cancel()
            self._retaking = None
        if conn is not None and not conn.is_closed():
            await conn.close(timeout=CONNECT_TIMEOUT_S)
