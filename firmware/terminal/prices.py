"""The merchant's price list in flash, looked up by item code without loading it (SPEC.md §7.1).

On-flash format (all integers big-endian)
-----------------------------------------
``dirpath/prices``: count entries of 32 bytes, strictly ascending by item code, each exactly as the
T_PRICE_LIST chunk carried it (protocol/price_list.py), followed by a 20-byte trailer:

  'PCPL' | version u32 | merchant_id u16 | count u16 | flags u8 | 0 0 0 | crc32 of the entries u32

A new version arrives as chunks 0..n-1 and is streamed into ``prices.tmp``; only after the last chunk
is it renamed over the old file (atomic.replace), so the old version serves every lookup until the
new one is whole, and after a power cut at any byte one of the two is in force. A leftover .tmp is
deleted at open. The trailer sits at the end for the blacklist's reason: littlefs appends cheaply.

A lookup is a binary search reading 2 bytes per step and one entry at the end: RAM never depends on
the count.
"""

import struct

from protocol.price_list import ENTRY_SIZE, decode_entry

from . import atomic
from .listfile import ListFile

_NAME = "prices"
_MAGIC = b"PCPL"
_TRAILER_FMT = ">4sIHHBBHI"


class PricesError(ValueError):
    """A chunk that does not continue the list being received: `reason` says why; ask again from chunk 0."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason


class PricesCorrupt(Exception):
    """The stored list does not check: ask the hub for the whole list."""


class PriceList(ListFile):
    """The version of the price list in force, and the next one while its chunks arrive."""

    _MAGIC = _MAGIC

    def __init__(self, dirpath):
        ListFile.__init__(self, dirpath, _NAME, ENTRY_SIZE)
        self._code = bytearray(2)
        self._next = None   # [merchant_id, version, flags, chunks, next chunk, last code] while receiving
        self._load()

    def _load(self):
        self.version = 0
        self.merchant_id = 0
        self.flags = 0
        self.count = 0
        fields = self._trailer(_TRAILER_FMT, 3, PricesCorrupt)
        if fields is not None:
            _magic, self.version, self.merchant_id, self.count, self.flags = fields[:5]

    def lookup(self, code):
        """The Item with this code, or None; reads the file, never the whole list."""
        lo, hi = 0, self.count
        f = self._f
        while lo < hi:
            mid = (lo + hi) // 2
            f.seek(mid * ENTRY_SIZE)
            f.readinto(self._code)
            value = (self._code[0] << 8) | self._code[1]
            if value == code:
                f.seek(mid * ENTRY_SIZE)
                f.readinto(self._entry)
                return decode_entry(self._entry)
            if value < code:
                lo = mid + 1
            else:
                hi = mid
        return None

    def take(self, chunk):
        """Add one parsed chunk (price_list.parse_price_list); True when it completed a new version.

        Chunk 0 starts a version afresh (a half-received one is dropped); any other chunk must be the
        next of the version being received, else PricesError("snapshot_order") and nothing is kept.
        """
        if chunk.chunk == 0:
            self._abandon()
            if chunk.version == self.version and chunk.merchant_id == self.merchant_id:
                return False        # the list in force, sent again
            self._begin()
            self._next = [chunk.merchant_id, chunk.version, chunk.flags, chunk.chunks, 0, 0]
        nxt = self._next
        if nxt is None or (chunk.merchant_id, chunk.version, chunk.flags, chunk.chunks, chunk.chunk) != tuple(nxt[:5]):
            self._abandon()
            raise PricesError("snapshot_order", "price list chunk %d of version %d is not the next one"
                              % (chunk.chunk, chunk.version))
        if chunk.count and chunk.code(0) <= nxt[5]:
            self._abandon()
            raise PricesError("snapshot_order", "price list codes not ascending across chunks at %d" % chunk.code(0))
        self._append(chunk.entries, chunk.count)
        nxt[4] += 1
        if chunk.count:
            nxt[5] = chunk.code(chunk.count - 1)
        if nxt[4] < nxt[3]:
            return False
        self._next = None
        self._seal(struct.pack(_TRAILER_FMT, _MAGIC, nxt[1], nxt[0], self._count, nxt[2], 0, 0, self._crc))
        return True

    def _abandon(self):
        ListFile._abandon(self)
        self._next = None
