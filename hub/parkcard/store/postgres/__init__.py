"""The hub's store on PostgreSQL through asyncpg, behind the same interface as the SQLite store.

    store = await store_for("postgresql://user@host:5432/parkcard?audit_log=/var/lib/parkcard/audit.log").open()

See store.py (connections and the writer), write_tx.py (a batch), migrate.py
(numbered .sql files), hub_lock.py (one hub per database) and errors.py
(which errors are transient).
"""

import asyncpg

from parkcard.store.errors import register_database_errors, register_transient
from parkcard.store.postgres.errors import PostgresUnavailable, is_transient
from parkcard.store.postgres.hub_lock import PgHubLock
from parkcard.store.postgres.store import PostgresStore

__all__ = ["PgHubLock", "PostgresStore", "PostgresUnavailable", "store_for"]

register_transient(is_transient)
register_database_errors(asyncpg.PostgresError, asyncpg.InterfaceError)


def store_for(url):
    """An unopened PostgresStore for a postgresql:// URL."""
    return PostgresStore(url)
