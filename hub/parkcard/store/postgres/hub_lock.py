"""One hub per PostgreSQL database: a session-level advisory lock held for the hub's whole life.

The lock lives on a connection of its own; PostgreSQL drops it when that
session ends, so a killed hub (its socket closed by the kernel) frees the
database as a dead flock does on SQLite (parkcard.hub_lock). The holder names
itself in application_name, which the refusal quotes.
"""

import os
import socket

import asyncpg

from parkcard.hub_lock import HubLockedError
from parkcard.store.postgres.errors import connecting
from parkcard.store.postgres.loop import LoopThread
from parkcard.store.postgres.url import split

HUB_LOCK_KEY = 0x70617263_68756221    # "parchub!": advisory locks are per database, one key is enough
CONNECT_TIMEOUT_S = 10


class PgHubLock:
    """The exclusive right to run a hub on one PostgreSQL database (HubLock's interface)."""

    def __init__(self, url):
        self.dsn, _audit_log, self.shown = split(url)
        self._loop = None
        self._conn = None

    @property
    def held(self):
        """True while this object holds the lock."""
        return self._conn is not None

    def acquire(self):
        """Take the lock without waiting; raise HubLockedError if another hub holds it."""
        if self._conn is not None:
            return self
        loop = LoopThread("parkcard-pg-lock")
        try:
            conn, holder = loop.wait(self._take())
        except BaseException:
            loop.stop()
            raise
        if conn is None:
            loop.stop()
            raise HubLockedError("another hub is running on %s%s: stop it first (one hub per database)" % (
                self.shown, " (%s)" % holder if holder else ""))
        self._loop, self._conn = loop, conn
        return self

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
        if self._conn is not None:
            conn, loop = self._conn, self._loop
            self._conn = self._loop = None
            try:
                loop.wait(conn.close(timeout=CONNECT_TIMEOUT_S))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass        # the session is gone either way, and the lock with it
            finally:
                loop.stop()
