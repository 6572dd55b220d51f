"""The hub's store: the only SQL. The URL picks the backend.

A path (or sqlite:///path) is a SQLite file (parkcard.storage); postgresql://
names a PostgreSQL database (parkcard.store.postgres).
"""

from parkcard.hub_lock import HubLock
from parkcard.storage import Storage
from parkcard.storage import is_transient as _sqlite_transient
from parkcard.store.postgres import PgHubLock, PostgresStore, is_postgres_url
from parkcard.store.postgres import is_transient as _postgres_transient


def store_for(url):
    """Return the unopened store of url (SQLite for a file path, PostgreSQL for postgresql://)."""
    return PostgresStore(url) if is_postgres_url(url) else Storage(_sqlite_path(url))


async def open_store(url):
    """Open (creating and migrating) the store url names; return it."""
    return await store_for(url).open()


def hub_lock_for(url):
    """Return the one-hub-per-database lock of url (a flock beside a file, an advisory lock on PostgreSQL)."""
    return PgHubLock(url) if is_postgres_url(url) else HubLock(_sqlite_path(url))


def is_transient(exc):
    """True when an error from a write says the store is unavailable (retry later), not that the data is bad."""
    return _sqlite_transient(exc) or _postgres_transient(exc)


def _sqlite_path(url):
    text = str(url)
    return text[len("sqlite://"):] if text.startswith("sqlite:///") else url
