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

``dirpath/discounts``: the T_DISCOUNTS body in force (SPEC.md §7.2), at most 1.6 KB, replaced whole
(atomic.write) and kept in RAM as those bytes: a line's rate is a binary search of its overrides.
"""

import struct

from protocol.errors import ProtocolError
from protocol.price_list import (DISCOUNTS_FMT, DISCOUNTS_HEAD_SIZE, ENTRY_SIZE, OVERRIDE_FMT, decode_entry,
                                 parse_discounts)
from protocol.pricing import FREE_AMOUNT, OVERRIDE_CATEGORY, OVERRIDE_ITEM, TIERS_MAX, rate_key

from . import atomic
from .listfile import ListFile

_NAME = "prices"
_RULES_NAME = "discounts"
_MAGIC = b"PCPL"
_TRAILER_FMT = ">4sIHHBBHI"
_SYNC_FMT = ">HII"      # what a booth's T_SYNC appends (SPEC.md §5.3): merchant, list version, rules version


class PricesError(ProtocolError):
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


class Rules:
    """The discount rules in force (SPEC.md §7.2), as protocol.pricing.price_basket asks of them."""

    def __init__(self, dirpath):
        self._dir = dirpath
        atomic.makedirs(dirpath)
        self._set(atomic.read(dirpath, _RULES_NAME))

    def _set(self, body):
        self.version = 0
        self.merchant_id = 0
        self.sale_bp = [0] * TIERS_MAX
        self.total_bp = [0] * TIERS_MAX
        self._body = body
        self._count = 0
        if body is None:
            return
        try:
            parse_discounts(body)    # checked again: flash may have rotted since it was taken
        except ProtocolError:
            self._body = None
            return                   # no rules: no discount, and the next T_SYNC asks for them (version 0)
        self.merchant_id, self.version, tiers = struct.unpack_from(DISCOUNTS_FMT, body, 0)
        for tier in range(tiers):
            self.sale_bp[tier], self.total_bp[tier] = struct.unpack_from(">HH", body, DISCOUNTS_HEAD_SIZE + 4 * tier)
        self._at = DISCOUNTS_HEAD_SIZE + 4 * tiers + 2
        self._count = struct.unpack_from(">H", body, self._at - 2)[0]

    def take(self, body):
        """Check a T_DISCOUNTS body and put it in force; False when it is the version in force."""
        merchant_id, rules = parse_discounts(body)
        version = rules.version
        rules = None            # its overrides dict: lookups read the bytes
        if merchant_id == self.merchant_id and version == self.version:
            return False
        atomic.write(self._dir, _RULES_NAME, body)
        self._set(bytes(body))
        return True

    def _override(self, key):
        """The rate of the override with this key, or None: a binary search of the body's overrides."""
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) // 2
            tier, kind, code, rate = struct.unpack_from(OVERRIDE_FMT, self._body, self._at + 6 * mid)
            found = rate_key(tier, kind, code)
            if found == key:
                return rate
            if found < key:
                lo = mid + 1
            else:
                hi = mid
        return None

    def line_rate(self, tier, item, category):
        """The rate of one line (SPEC.md §7.3 step 1), as pricing.Discounts.line_rate."""
        rate = None
        if item != FREE_AMOUNT:
            rate = self._override(rate_key(tier, OVERRIDE_ITEM, item))
            if rate is None:
                rate = self._override(rate_key(tier, OVERRIDE_CATEGORY, category))
        return self.sale_bp[tier] if rate is None else rate


def sync_versions(prices, rules):
    """What a booth appends to T_SYNC: the merchant and version of its list, the version of its rules."""
    return struct.pack(_SYNC_FMT, prices.merchant_id, prices.version, rules.version)
