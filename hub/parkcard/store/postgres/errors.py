"""Which PostgreSQL errors say "the store is unavailable, retry" rather than "this data is bad"."""

import asyncio
import errno

import asyncpg

# SQLSTATE classes of a server that cannot take the write now: connection exceptions (08), insufficient
# resources such as a full disk (53), operator intervention such as a shutdown (57), system errors such
# as I/O (58), and the transaction rollbacks a retry resolves (40: serialization failure, deadlock).
TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "58", "40")

_TRANSIENT_OS_ERRORS = (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS, errno.ECONNREFUSED, errno.EHOSTUNREACH,
                        errno.ENETUNREACH, errno.ETIMEDOUT)


class PostgresUnavailable(ConnectionError):
    """The PostgreSQL server cannot be reached or used now; the message says where and what to check."""


def is_transient(exc):
    """True when an error from a PostgreSQL write says the store is unavailable (retry later), not bad data."""
    if isinstance(exc, (ConnectionError, asyncio.TimeoutError)):     # PostgresUnavailable, a reset socket
        return True
    if isinstance(exc, asyncpg.InterfaceError):     # most are mistakes in a query; a closed session is not
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_OS_ERRORS
    if isinstance(exc, asyncpg.PostgresError):
        return (getattr(exc, "sqlstate", "") or "")[:2] in TRANSIENT_SQLSTATE_CLASSES
    return False
