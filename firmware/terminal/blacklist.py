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
file and the changes through 256-byte buffers. RAM never depends on the count.
"""

import os
import struct
from binascii import crc32

from . import atomic
from .compat import const

_NAME = const("blacklist")
_MAGIC = const(b"PCBL")
_TRAILER_LEN = const(16)
_CHUNK = const(256)  # bytes per read/write while streaming: 64 card numbers
_CARD_MAX = const(0xFFFFFFFF)


class VersionGap(Exception):
    """The delta does not start at our version: ask the hub for a full snapshot."""


class BlacklistError(ValueError):
    """Bad input: numbers not strictly ascending or out of u32 range, or a bad version."""


class BlacklistCorrupt(Exception):
    """The stored list does not check: fetch a full snapshot."""


def _ascending(numbers):
    """Pass numbers through, refusing any that is not above the previous one."""
    prev = -1
    for n in numbers:
        if not prev < n <= _CARD_MAX:
            raise BlacklistError("card number %r after %r" % (n, prev))
        prev = n
        yield n


class _Writer:
    """Streams ascending card numbers into a new list file."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "wb")
        self._buf = bytearray(_CHUNK)
        self._fill = 0
        self._last = -1
        self._crc = 0
        self.count = 0

    def add(self, n):
        if not self._last < n <= _CARD_MAX:
            raise BlacklistError("card number %r after %r" % (n, self._last))
        struct.pack_into(">I", self._buf, self._fill, n)
        self._fill += 4
        self._last = n
        self.count += 1
        if self._fill == _CHUNK:
            self._flush()

    def _flush(self):
        chunk = memoryview(self._buf)[: self._fill]
        self._crc = crc32(chunk, self._crc)
        self._f.write(chunk)
        self._fill = 0

    def finish(self, version):
        self._flush()
        self._f.write(_MAGIC + struct.pack(">III", version, self.count, self._crc))
        atomic.sync(self._f)
        self._f.close()

    def abort(self):
        self._f.close()
        atomic.remove(self.path)


class Blacklist:
    def __init__(self, dirpath):
        self._dir = dirpath
        self._path = dirpath + "/" + _NAME
        self._buf4 = bytearray(4)
        self._f = None
        self._snapshot = None  # (writer, version) while a snapshot arrives
        atomic.makedirs(dirpath)
        atomic.remove(self._path + atomic.TMP)  # a list that never got installed
        self._load()

    def _load(self):
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
                if atomic.crc_of(self._path, count * 4) == crc:
                    self._f, self.version, self.count = f, version, count
                    return
                f.close()
                raise BlacklistCorrupt("%s: numbers do not match their crc" % self._path)
        f.close()
        raise BlacklistCorrupt("%s: bad trailer" % self._path)

    def contains(self, card_no):
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

    def _numbers(self):
        """Yield the stored numbers in order, a chunk at a time."""
        if not self.count:
            return
        buf = bytearray(_CHUNK)
        mv = memoryview(buf)
        left = self.count * 4
        self._f.seek(0)
        while left:
            got = self._f.readinto(mv[: min(_CHUNK, left)])
            if not got or got % 4:
                raise BlacklistCorrupt("%s: short read" % self._path)
            for i in range(0, got, 4):
                yield struct.unpack_from(">I", buf, i)[0]
            left -= got

    def apply_delta(self, from_version, to_version, adds, removes):
        """Merge sorted adds and removes into the list; to_version is then in force."""
        if from_version != self.version:
            raise VersionGap("delta from %d, have %d" % (from_version, self.version))
        if to_version <= from_version:
            raise BlacklistError("delta to %d from %d" % (to_version, from_version))
        self._abandon_snapshot()
        writer = _Writer(self._path + atomic.TMP)
        try:
            self._merge(writer, _ascending(adds), _ascending(removes))
            writer.finish(to_version)
        except BaseException:
            writer.abort()
            raise
        self._install()

    def _merge(self, writer, adds, removes):
        # Three sorted streams: an add already listed and a remove of a
        # number not listed are no-ops, so a delta can be re-applied safely.
        old = self._numbers()
        o, a, r = next(old, None), next(adds, None), next(removes, None)
        while o is not None or a is not None:
            if a is None or (o is not None and o <= a):
                n = o
                if a == o:
                    a = next(adds, None)
                o = next(old, None)
            else:
                n = a
                a = next(adds, None)
            while r is not None and r < n:
                r = next(removes, None)
            if r != n:
                writer.add(n)
        while r is not None:  # still check that the rest is sorted
            r = next(removes, None)

    def begin_snapshot(self, version):
        """Start a full replacement; the current list stays in force until finish_snapshot."""
        if not 0 <= version <= _CARD_MAX:
            raise BlacklistError("version %r" % (version,))
        self._abandon_snapshot()
        self._snapshot = (_Writer(self._path + atomic.TMP), version)

    def add_snapshot_chunk(self, sorted_card_numbers):
        """Add numbers ascending within and across chunks; otherwise the snapshot is abandoned."""
        if self._snapshot is None:
            raise BlacklistError("no snapshot in progress")
        writer = self._snapshot[0]
        try:
            for n in sorted_card_numbers:
                writer.add(n)
        except BaseException:
            self._abandon_snapshot()
            raise

    def finish_snapshot(self):
        if self._snapshot is None:
            raise BlacklistError("no snapshot in progress")
        writer, version = self._snapshot
        self._snapshot = None
        try:
            writer.finish(version)
        except BaseException:
            writer.abort()
            raise
        self._install()

    def _abandon_snapshot(self):
        if self._snapshot is not None:
            self._snapshot[0].abort()
            self._snapshot = None

    def _install(self):
        # Close our handle first: renaming over a file that is open is not
        # something to rely on with littlefs.
        if self._f is not None:
            self._f.close()
            self._f = None
        atomic.replace(self._path + atomic.TMP, self._path, self._dir)
        self._load()

    def close(self):
        self._abandon_snapshot()
        if self._f is not None:
            self._f.close()
            self._f = None
