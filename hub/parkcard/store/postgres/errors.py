"""Which PostgreSQL errors say "the store is unavailable, retry" rather than "this data is bad".

A socket that fails under a database call (refused, reset, timed out) is turned
into PostgresUnavailable where the call is awaited (parkcard.store.postgres.loop),
so an OSError or a timeout from anywhere else keeps the meaning the hub gives it
on SQLite.
"""

import asyncio

import asyncpg

from parkcard.store.errors import StoreUnavailable

# SQLSTATE classes of a server that cannot take the write now: connection exceptions (08), insufficient
# resources such as a full disk (53), operator intervention such as a shutdown (57), system errors such
# as I/O (58), and the transaction rollbacks a retry resolves (40: serialization failure, deadlock).
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "58", "40")


class PostgresUnavailable(StoreUnavailable):
    """The PostgreSQL server cannot be reached or used now; the message says where and what to check."""


# What opening a session raises when the server, the database or the user is not there (or not yet).
CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.InvalidCatalogNameError,
                  asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError,
                  asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


async def connecting(where, opening):
    """Await a session's opening; a server, database or user that cannot be used becomes PostgresUnavailable."""
    try:
        return await opening
    except PostgresUnavailable:
        raise
    except CONNECT_ERRORS as exc:
        raise PostgresUnavailable("cannot use PostgreSQL at %s: %s: check that the server runs and the URL names "
                                  "an existing database and a user allowed to use it"
                                  % (where, str(exc) or type(exc).__name__)) from exc


def is_transient(exc):
    """True when an error from a PostgreSQL write says the store is unavailable (retry later), not bad data."""
    if isinstance(exc, PostgresUnavailable):
        return True
    if isinstance(exc, asyncpg.InterfaceError):     # most are mistakes in a query; a closed session is not
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    if isinstance(exc, asyncpg.PostgresError):
        return (getattr(exc, "sqlstate", "") or "")[:2] in TRANSIENT_SQLSTATE_CLASSES
    return False


async def reaching(awaitable):
    """Await a database call; a socket that fails under it (refused, reset, timed out) is PostgresUnavailable."""
    try:
        return await awaitable
    except PostgresUnavailable:
        raise
    except (OSError, asyncio.TimeoutError) as exc:
        raise PostgresUnavailable("the PostgreSQL server cannot be reached: %s" % (str(exc) or type(exc).__name__)) \
            from exc
