"""One hub per database: an exclusive flock on <db>.lock, held for the hub's whole lifetime.

The kernel drops a flock when its file is closed, so the lock goes with the
process on any exit, a SIGKILL or a crash included: a stale lock file is
harmless, only a live holder refuses. The holder writes its pid into the
file so the refusal can say which process holds the database.

The CLI's one-shot commands take no lock: they are short transactions that
SQLite serialises with the hub's writer.
"""

import fcntl
import os
from pathlib import Path


class HubLockedError(RuntimeError):
    """Another hub holds this database; the message names its process when known."""

    @classmethod
    def held_by(cls, where, holder=None):
        """The refusal of a database another hub runs on: where it is, and who holds it when known."""
        return cls("another hub is running on %s%s: stop it first (one hub per database)" % (
            where, " (%s)" % holder if holder else ""))


def lock_path_for(db_path):
    """The lock file that belongs to a hub database: <db>.lock."""
    return Path(str(db_path) + ".lock")


class HubLock:
    """The exclusive right to run a hub on one database."""

    def __init__(self, db_path):
        self.path = lock_path_for(db_path)
        self._fd = None

    @property
    def held(self):
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self):
        """Take the lock without waiting; raise HubLockedError if another hub holds it."""
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise HubLockedError.held_by(str(self.path)[:-len(".lock")], holder and "pid %s" % holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._fd = fd
        return self

    def release(self):
        """Give the lock back (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)   # closing drops the flock


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None
