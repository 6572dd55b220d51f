"""The hub's store on PostgreSQL through asyncpg, behind the same methods as the SQLite store.

    store = await open_postgres("postgresql://user@host:5432/parkcard?audit_log=/var/lib/parkcard/audit.log")

See store.py (connections and the writer), write_tx.py (a batch), migrate.py
(numbered .sql files), hub_lock.py (one hub per database) and errors.py
(which errors are transient).
"""

import asyncpg

from parkcard.store.postgres.errors import PostgresUnavailable, is_transient
from parkcard.store.postgres.hub_lock import PgHubLock
from parkcard.store.postgres.store import PostgresStore
from parkcard.store.postgres.url import is_postgres_url

# What a caller reports as "database error" (beside sqlite3.DatabaseError).
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)

__all__ = ["DATABASE_ERRORS", "PgHubLock", "PostgresStore", "PostgresUnavailable", "is_postgres_url", "is_transient",
           "open_postgres"]


async def open_postgres(url):
    """Open (migrating) the PostgreSQL store at url; return it."""
    return await PostgresStore(url).open()
