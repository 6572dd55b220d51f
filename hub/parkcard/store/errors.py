"""The store's errors, the same for every backend, and which of them mean "retry later"."""

import errno
import sqlite3

from parkcard.domain.explained import Explained

# Said with every refusal of a damaged file: what to do, and why it loses nothing (SPEC.md §5.4: a
# terminal keeps each record in its journal until the hub acknowledges it).
RESTORE_ADVICE = ("restore the last backup; the terminals keep their records until the hub acknowledges them, "
                  "so nothing they hold is lost")


class Refused(Explained):
    """A change the store refuses for what it holds (an unknown merchant, a name taken); the message says what to do."""


class NotIssued(Refused):
    """A card number with no row in cards: this park never issued it."""


# A sqlite3.DatabaseError so that a caller catching the driver's database errors also catches a refusal.
class DatabaseDamaged(sqlite3.DatabaseError):
    """A database this hub must not serve from (damaged pages, an unknown schema version); the message says why."""


class StoreUnavailable(ConnectionError):
    """A database server that cannot be reached or used now; the message says where and what to check."""


class PeriodOverlap(Refused):
    """A period that overlaps a closed settlement of the same merchant."""

    def __init__(self, merchant_id, merchant_name, period_start, period_end):
        """The merchant and the closed period the new one overlaps."""
        super().__init__("the period overlaps merchant %(merchant)d's closed period [%(start)d, %(end)d)",
                         merchant=merchant_id, start=period_start, end=period_end)
        self.merchant_id = merchant_id
        self.merchant_name = merchant_name
        self.period_start = period_start
        self.period_end = period_end


def schema_problem(version, newest):
    """Return why a database at this schema version cannot be used by a hub knowing `newest`, or None."""
    if version < 0:
        return "database schema version %d is not one this hub knows: restore a backup" % version
    if version > newest:
        return "database schema version %d is newer than this hub (%d): upgrade parkcard" % (version, newest)
    return None


# SQLite result codes that say the database cannot be written right now, not that the data is bad:
# a full disk, an I/O error, another process holding the lock past busy_timeout, a file that
# cannot be opened. The hub waits and retries these; it never quarantines a message for them.
_TRANSIENT_SQLITE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN")
_TRANSIENT_OS_ERRORS = (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS)


def _sqlite_transient(exc):
    if isinstance(exc, sqlite3.OperationalError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(_TRANSIENT_SQLITE_ERRORS) or "disk is full" in str(exc)
    return False


def _os_transient(exc):
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_OS_ERRORS


# Each backend adds the test for its driver's errors (register_transient) when it is imported.
_transient_checks = [_sqlite_transient, _os_transient]


def register_transient(check):
    """Add check(exc) -> bool: a backend's test for its driver's "unavailable, retry later" errors."""
    if check not in _transient_checks:
        _transient_checks.append(check)


def is_transient(exc):
    """True when an error from a write says the store is unavailable (retry later), not that the data is bad."""
    return any(check(exc) for check in _transient_checks)


# The driver errors a caller reports as "database error" (a file or server that is not a ParkCard
# database, a statement it refused); each backend adds its driver's (register_database_errors).
_database_errors = [sqlite3.DatabaseError]


def register_database_errors(*types):
    """Add a backend driver's error types to what database_errors() returns."""
    _database_errors.extend(t for t in types if t not in _database_errors)


def database_errors():
    """The tuple of driver error types of every backend loaded (for an except clause)."""
    return tuple(_database_errors)
