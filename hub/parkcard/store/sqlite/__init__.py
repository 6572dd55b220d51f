"""The SQLite backend of the store: one database file, aiosqlite for reads, one writer thread."""

from parkcard.store.sqlite.store import SqliteStore


def store_for(path):
    """An unopened SqliteStore for a database file."""
    return SqliteStore(path)
