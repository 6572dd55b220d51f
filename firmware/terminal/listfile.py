"""A sorted list the hub sends in chunks, kept in one flash file with a trailer (price list, pending credits).

The next version is streamed into ``<name>.tmp`` and renamed over the file in force only after its last
chunk (atomic.replace): the old version serves until the new one is whole, and after a power cut at
any byte one of the two is in force. A leftover .tmp is deleted at open. Subclasses give the entry
size, read their trailer in _load and look entries up on self._f.
"""

import os
import struct
from binascii import crc32

from . import atomic


class ListFile:
    """The file in force (self._f, opened by the subclass's _load) and the next version being received."""

    def __init__(self, dirpath, name, entry_size):
        self._dir = dirpath
        self._path = dirpath + "/" + name
        self._entry = bytearray(entry_size)
        self._f = None
        self._tmp = None        # the next version's file while its chunks arrive
        self._crc = 0           # crc32 of its entries so far
        self._count = 0         # and how many
        atomic.makedirs(dirpath)
        atomic.remove(self._path + atomic.TMP)  # a list that never got installed

    def _begin(self):
        """Start receiving a new version afresh (a half-received one is dropped)."""
        self._abandon()
        self._tmp = open(self._path + atomic.TMP, "wb")
        self._crc = 0
        self._count = 0

    def _append(self, entries, count):
        """Add one chunk's entries to the version being received."""
        try:
            self._tmp.write(entries)
        except BaseException:
            self._abandon()
            raise
        self._crc = crc32(entries, self._crc)
        self._count += count

    def _seal(self, trailer):
        """End the version being received with its trailer, make it durable and put it in force."""
        f, self._tmp = self._tmp, None
        try:
            f.write(trailer)
            atomic.sync(f)
            f.close()
        except BaseException:
            f.close()
            atomic.remove(self._path + atomic.TMP)
            raise
        # Close our handle first: renaming over an open file is not something to rely on with littlefs.
        if self._f is not None:
            self._f.close()
            self._f = None
        atomic.replace(self._path + atomic.TMP, self._path, self._dir)
        self._load()

    def _load(self):
        raise NotImplementedError

    def _trailer(self, fmt, count_index, corrupt):
        """The fields of the file's trailer (struct fmt: magic first, CRC-32 of the entries last, the entry count
        at count_index) once they check, the file open as self._f; None when there is no file (an empty list);
        raise corrupt when the magic, the size or the CRC does not check."""
        if not atomic.exists(self._path):
            return None
        size = os.stat(self._path)[6]
        length = struct.calcsize(fmt)
        if size >= length:
            f = open(self._path, "rb")
            f.seek(size - length)
            fields = struct.unpack(fmt, f.read(length))
            body = fields[count_index] * len(self._entry)
            if fields[0] == self._MAGIC and body + length == size and atomic.crc_of(self._path, body) == fields[-1]:
                self._f = f
                return fields
            f.close()
        raise corrupt("%s: bad trailer or checksum" % self._path)

    def _abandon(self):
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None
            atomic.remove(self._path + atomic.TMP)

    def close(self):
        """Drop a half-received version and close the file."""
        self._abandon()
        if self._f is not None:
            self._f.close()
            self._f = None
