"""The hub's store: the only SQL. `open_store(url_or_path)` picks the backend.

- a plain path, or `sqlite:///path` (`sqlite:////abs/path` for an absolute one): SQLite, one file;
- `postgresql://...`: PostgreSQL (`parkcard.store.postgres`, installed apart).

A backend is a package `parkcard.store.<name>` with `store_for(url_or_path)`
returning an unopened store that implements `parkcard.store.interface.Store`;
`await store.open()` opens it. The errors and helpers every backend shares are
re-exported here.
"""

import importlib
from pathlib import Path

from parkcard.domain.explained import Explained

from parkcard.store.errors import (RESTORE_ADVICE, DatabaseDamaged, NotIssued, PeriodOverlap, StoreUnavailable,
                                   database_errors, is_transient, register_database_errors, register_transient,
                                   schema_problem)
from parkcard.store.interface import AuditRows, Store, WriteTx, audited, version_detail

__all__ = ["RESTORE_ADVICE", "AuditRows", "DatabaseDamaged", "NotIssued", "PeriodOverlap", "Store", "StoreError",
           "StoreUnavailable", "WriteTx", "audited", "database_errors", "db_dir", "hub_lock_for", "is_postgres",
           "is_transient", "local_path", "open_store", "register_database_errors", "register_transient",
           "schema_problem", "store_for", "version_detail"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite:///"


class StoreError(Explained):
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
        raise StoreError("%(url)s: unknown database URL scheme; pass a file path, sqlite:///path or "
                         "postgresql://...", url=_redacted(target))
    return target


def _postgres_backend(target):
    try:
        return importlib.import_module("parkcard.store.postgres")
    except ImportError as exc:
        raise StoreError("%(url)s is a PostgreSQL database, but the PostgreSQL backend is not installed "
                         "(%(problem)s): install parkcard with its PostgreSQL support, or pass a SQLite file path",
                         url=_redacted(target), problem=exc) from None


def store_for(url_or_path):
    """Return an unopened store for a path or URL (await its open())."""
    target = str(url_or_path)
    if is_postgres(target):
        return _postgres_backend(target).store_for(target)
    from parkcard.store.sqlite import store_for as sqlite_store_for
    return sqlite_store_for(local_path(target))


def hub_lock_for(url_or_path):
    """Return the one-hub-per-database lock (a flock beside a file, an advisory lock on PostgreSQL), not taken."""
    target = str(url_or_path)
    if is_postgres(target):
        return _postgres_backend(target).PgHubLock(target)
    from parkcard.hub_lock import HubLock
    return HubLock(local_path(target))


def db_dir(url_or_path):
    """The folder of the database's own files; for a database served elsewhere, var/ (its audit log's home)."""
    file = local_path(url_or_path)
    return Path("var") if file is None else Path(file).parent


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
