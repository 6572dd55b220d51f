"""Offline blacklist: card numbers refused even with no hub in reach.

On-flash format (all integers big-endian)
-----------------------------------------
``dirpath/blacklist``: count card numbers, u32 each, strictly ascending,
followed by a 16-byte trailer:

  'PCBL' | version u32 | count u32 | crc32 of the numbers u32

The version lives in the same file as the numbers, so the two cannot
disagree. A new list (delta merge or snapshot) is streamed into
``blacklist.tmp`` and renamed over the old file (atomic.replace): after a power
cut at any byte the old or the new list is in force, and a leftover .tmp is
deleted at open. The trailer sits at the end because littlefs appends
cheaply but rewriting the start of a file rewrites all of it.

Lookups are a binary search reading 4 bytes per step; merging streams the old
file and the changes through one 320-byte buffer, taken at start. RAM never depends on the count.
"""

import os
import struct

from . import atomic
from .compat import const, forget

_NAME = const("blacklist")
_MAGIC = const(b"PCBL")
_TRAILER_LEN = const(16)
# The buffer a change streams through (terminal/blacklist_write.py: 256 bytes of writes to the new list, 64 of
# reads from the old one), taken at start while the heap is whole: a change arrives beside a link that has
# fragmented the heap, where a 256-byte block was missing (tests/test_sync_micropython.py at 98k).
_CHANGE_BUF_BYTES = const(320)


class VersionGap(Exception):
    """The delta does not start at our version: ask the hub for a full snapshot."""


class BlacklistError(ValueError):
    """Bad input: numbers not strictly ascending or out of u32 range, or a bad version."""


class BlacklistCorrupt(Exception):
    """The stored list does not check: fetch a full snapshot."""


def _write():
    """The list-changing code, loaded for a change."""
    from terminal import blacklist_write
    return blacklist_write


def _done():
    """A change is over: its code leaves the heap."""
    forget("terminal.blacklist_write")


class Blacklist:
    """The offline blacklist on flash: a binary search per lookup."""

    def __init__(self, dirpath):
        self._dir = dirpath
        self._path = dirpath + "/" + _NAME
        self._buf4 = bytearray(4)
        self._buf = bytearray(_CHANGE_BUF_BYTES)
        self._f = None
        self._snapshot = None  # (writer, version) while a snapshot arrives
        atomic.makedirs(dirpath)
        atomic.remove(self._path + atomic.TMP)  # a list that never got installed
        self._load()

    def _load(self):
        # The new list's crc is read through the change buffer: installing it needs no block of the heap.
        self.version = 0
        self.count = 0
        if not atomic.exists(self._path):
            return
        size = os.stat(self._path)[6]
        f = open(self._path, "rb")
        if size >= _TRAILER_LEN:
            f.seek(size - _TRAILER_LEN)
            trailer = f.read(_TRAILER_LEN)
            version, count, crc = struct.unpack(">III", trailer[4:16])
            if trailer[:4] == _MAGIC and count * 4 + _TRAILER_LEN == size:
                if atomic.crc_of(self._path, count * 4, self._buf) == crc:
                    self._f, self.version, self.count = f, version, count
                    return
                f.close()
                raise BlacklistCorrupt("%s: numbers do not match their crc" % self._path)
        f.close()
        raise BlacklistCorrupt("%s: bad trailer" % self._path)

    def contains(self, card_no):
        """True when card_no is on the list."""
        lo, hi = 0, self.count
        f, buf = self._f, self._buf4
        while lo < hi:
            mid = (lo + hi) // 2
            f.seek(mid * 4)
            f.readinto(buf)
            value = struct.unpack(">I", buf)[0]
            if value == card_no:
                return True
            if value < card_no:
                lo = mid + 1
            else:
                hi = mid
        return False

    # Changing the list is rare (a snapshot, a delta): its code (terminal/blacklist_write.py) is loaded for
    # the change and forgotten after it, so only the lookup stays on the heap.

    def apply_delta(self, from_version, to_version, adds, removes):
        """Merge sorted adds and removes into the list; to_version is then in force."""
        try:
            _write().apply_delta(self, from_version, to_version, adds, removes)
        finally:
            _done()

    def begin_snapshot(self, version):
        """Start a full replacement; the current list stays in force until finish_snapshot."""
        try:
            _write().begin_snapshot(self, version)
        finally:
            if self._snapshot is None:  # refused: nothing of the change is left
                _done()

    def add_snapshot_chunk(self, numbers):
        """Add numbers ascending within and across chunks; otherwise the snapshot is abandoned."""
        if self._snapshot is None:
            raise BlacklistError("no snapshot in progress")
        try:
            _write().add_snapshot_chunk(self, numbers)
        finally:
            if self._snapshot is None:  # abandoned: nothing of the change is left
                _done()

    def finish_snapshot(self):
        """Install the snapshot received: its version is then in force."""
        if self._snapshot is None:
            raise BlacklistError("no snapshot in progress")
        try:
            _write().finish_snapshot(self)
        finally:
            _done()

    def close(self):
        """Close the list file (and drop a snapshot under way)."""
        if self._snapshot is not None:
            _write().abandon_snapshot(self)
            _done()
        if self._f is not None:
            self._f.close()
            self._f = None
