"""Changing the offline blacklist (terminal/blacklist.py): a delta merged, a snapshot streamed in.

Loaded for a change and forgotten after it (blacklist._changed): a terminal looks cards up at every
tap and changes the list a few times a day.
"""

import struct
from binascii import crc32

from terminal import atomic
# Its errors by one name, not three: every global name more grows this module's dict, one block each change
# must find free when it loads the module (19 names took 368 bytes, 17 take 272 on the unix port).
from terminal import blacklist
from terminal.compat import const

# terminal/blacklist.py's: a const() is folded where it is used, so each module that uses one names it.
_MAGIC = const(b"PCBL")
# The list's change buffer (blacklist._CHANGE_BUF_BYTES) in two: bytes per write while streaming (64 card
# numbers), then bytes per read of the old list while a delta merges into the new one.
_CHUNK = const(256)
_READ_CHUNK = const(64)
_CARD_MAX = const(0xFFFFFFFF)


def _ascending(numbers):
    """Pass numbers through, refusing any that is not above the previous one."""
    prev = -1
    for n in numbers:
        if not prev < n <= _CARD_MAX:
            raise blacklist.BlacklistError("card number %r after %r" % (n, prev))
        prev = n
        yield n


class _Writer:
    """Streams ascending card numbers into a new list file."""

    def __init__(self, path, buf):
        self.path = path
        self._f = open(path, "wb")
        self._buf = buf  # the list's change buffer: its first _CHUNK bytes
        self._fill = 0
        self._last = -1
        self._crc = 0
        self.count = 0

    def add(self, n):
        """Append n, above the last one."""
        if not self._last < n <= _CARD_MAX:
            raise blacklist.BlacklistError("card number %r after %r" % (n, self._last))
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
        """Write the trailer and close the file."""
        self._flush()
        self._f.write(_MAGIC + struct.pack(">III", version, self.count, self._crc))
        atomic.sync(self._f)
        self._f.close()

    def abort(self):
        """Close and delete the file."""
        self._f.close()
        atomic.remove(self.path)


def _numbers(bl):
    """Yield the stored numbers in order, a chunk at a time."""
    if not bl.count:
        return
    mv = memoryview(bl._buf)[_CHUNK:]
    left = bl.count * 4
    bl._f.seek(0)
    while left:
        got = bl._f.readinto(mv[: min(_READ_CHUNK, left)])
        if not got or got % 4:
            raise blacklist.BlacklistCorrupt("%s: short read" % bl._path)
        for i in range(0, got, 4):
            yield mv[i] << 24 | mv[i + 1] << 16 | mv[i + 2] << 8 | mv[i + 3]  # no tuple per number
        left -= got


def apply_delta(bl, from_version, to_version, adds, removes):
    """Merge sorted adds and removes into the list; to_version is then in force."""
    if from_version != bl.version:
        raise blacklist.VersionGap("delta from %d, have %d" % (from_version, bl.version))
    if to_version <= from_version:
        raise blacklist.BlacklistError("delta to %d from %d" % (to_version, from_version))
    abandon_snapshot(bl)
    writer = _Writer(bl._path + atomic.TMP, bl._buf)
    try:
        _merge(bl, writer, _ascending(adds), _ascending(removes))
        writer.finish(to_version)
    except BaseException:
        writer.abort()
        raise
    _install(bl)


def _merge(bl, writer, adds, removes):
    # Three sorted streams: an add already listed and a remove of a
    # number not listed are no-ops, so a delta can be re-applied safely.
    old = _numbers(bl)
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


def begin_snapshot(bl, version):
    """Start a full replacement; the current list stays in force until finish_snapshot."""
    if not 0 <= version <= _CARD_MAX:
        raise blacklist.BlacklistError("version %r" % (version,))
    abandon_snapshot(bl)
    bl._snapshot = (_Writer(bl._path + atomic.TMP, bl._buf), version)


def add_snapshot_chunk(bl, numbers):
    """Add numbers ascending within and across chunks; otherwise the snapshot is abandoned."""
    writer = bl._snapshot[0]
    try:
        for n in numbers:
            writer.add(n)
    except BaseException:
        abandon_snapshot(bl)
        raise


def finish_snapshot(bl):
    """Install the snapshot received (bl._snapshot is set)."""
    writer, version = bl._snapshot
    bl._snapshot = None
    try:
        writer.finish(version)
    except BaseException:
        writer.abort()
        raise
    _install(bl)


def abandon_snapshot(bl):
    """Drop a snapshot under way, its file with it."""
    if bl._snapshot is not None:
        bl._snapshot[0].abort()
        bl._snapshot = None


def _install(bl):
    # Close our handle first: renaming over a file that is open is not
    # something to rely on with littlefs.
    if bl._f is not None:
        bl._f.close()
        bl._f = None
    atomic.replace(bl._path + atomic.TMP, bl._path, bl._dir)
    bl._load()

