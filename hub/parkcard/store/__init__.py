"""The hub's store: the only SQL. `open_store(url_or_path)` picks the backend.

- a plain path, or `sqlite:///path` (`sqlite:////abs/path` for an absolute one): SQLite, one file;
- `postgresql://...`: PostgreSQL (`parkcard.store.postgres`, installed apart).

A backend is a package `parkcard.store.<name>` with `store_for(url_or_path)`
returning an unopened store that implements `parkcard.store.interface.Store`;
`await store.open()` opens it. The errors and helpers every backend shares are
re-exported here.
"""

import importlib

from parkcard.store.errors import (RESTORE_ADVICE, DatabaseDamaged, NotIssued, PeriodOverlap, is_transient,
                                   register_transient, schema_problem)
from parkcard.store.interface import AuditRows, Store, WriteTx, audited, version_detail

__all__ = ["RESTORE_ADVICE", "AuditRows", "DatabaseDamaged", "NotIssued", "PeriodOverlap", "Store", "StoreError",
           "WriteTx", "audited", "is_postgres", "is_transient", "local_path", "open_store", "register_transient",
           "schema_problem", "store_for", "version_detail"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite:///"


class StoreError(ValueError):
    """A database URL this hub cannot use; the message says what to pass instead."""


def is_postgres(url_or_path):
    """True when the database is a PostgreSQL URL."""
    return str(url_or_path).startswith(_POSTGRES_SCHEMES)


def local_path(url_or_path):
    """The database file of a SQLite path or sqlite:/// URL; None for a database served elsewhere."""
    target = str(url_or_path)
    if is_postgres(target):
        return None
    if target.startswith(_SQLITE_SCHEME):
        return target[len(_SQLITE_SCHEME):]
    if "://" in target:
        raise StoreError("%s: unknown database URL scheme; pass a file path, sqlite:///path or postgresql://..."
                         % _redacted(target))
    return target


def store_for(url_or_path):
    """Return an unopened store for a path or URL (await its open())."""
    target = str(url_or_path)
    if is_postgres(target):
        try:
            backend = importlib.import_module("parkcard.store.postgres")
        except ImportError as exc:
            raise StoreError("%s is a PostgreSQL database, but the PostgreSQL backend is not installed (%s): "
                             "install parkcard with its PostgreSQL support, or pass a SQLite file path"
                             % (_redacted(target), exc)) from None
        return backend.store_for(target)
    from parkcard.store.sqlite import store_for as sqlite_store_for
    return sqlite_store_for(local_path(target))


async def open_store(url_or_path):
    """Return the opened (created and migrated) store for a path or URL."""
    return await store_for(url_or_path).open()


def _redacted(url):
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        user, _, host = rest.rpartition("@")
        rest = "%s:***@%s" % (user.split(":")[0], host) if ":" in user else rest
    return scheme + sep + rest
