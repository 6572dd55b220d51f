"""A merchant's price list and its discount rules as downlink bodies (SPEC.md §7): bytes in, values out.

The price list travels as a snapshot in chunks, the way a blacklist snapshot does (§5.5): each chunk
names the merchant, the list's version, its index and the chunk count, and carries entries strictly
ascending by item code across the chunks. An entry has the same 32 bytes on the wire and in the
terminal's flash file (firmware/terminal/prices.py), so a chunk is written to flash as it arrives.
"""

import struct

from protocol.card import BALANCE_MAX_CENTS
from protocol.errors import Malformed
from protocol.pricing import (CATEGORY_MAX, ITEM_CODE_MAX, OVERRIDE_CATEGORY, OVERRIDE_ITEM, OVERRIDES_MAX, TIERS_MAX,
                              Discounts, rate_key)

# Frame types (SPEC.md §5.3), downlink; reserved: the hub does not send them yet.
T_PRICE_LIST = 0x26
T_DISCOUNTS = 0x27

ENTRY_SIZE = 32
ENTRY_FMT = ">HBBI24s"          # code, category, flags, price_cents, name (UTF-8, zero padded)
NAME_MAX_BYTES = 24             # 8 Chinese characters, 24 Latin ones
PRICE_MAX_CENTS = BALANCE_MAX_CENTS
ITEMS_PER_CHUNK_MAX = 256       # 8 KB of entries: one chunk in RAM at a time on the terminal
ITEMS_MAX = 4096                # 128 KB of flash; 16 chunks
ITEM_ACTIVE = 1
ITEM_MEMBER_ONLY = 2
LIST_FREE_AMOUNT = 1            # list flag: the merchant allows free amount lines (pricing.FREE_AMOUNT)
CHUNK_FMT = ">HIBHHH"           # merchant_id, version, flags, chunk, chunks, count
CHUNK_HEAD_SIZE = 13
DISCOUNTS_FMT = ">HIB"          # merchant_id, version, tiers
DISCOUNTS_HEAD_SIZE = 7
TIER_FMT = ">HH"                # sale_bp, total_bp
OVERRIDE_FMT = ">BBHH"          # tier, kind, code, rate_bp


class Item:
    """One entry of a price list."""

    def __init__(self, code, name, price_cents, category=0, active=True, member_only=False):
        self.code = code
        self.name = name
        self.price_cents = price_cents
        self.category = category
        self.active = active
        self.member_only = member_only

    def encode(self):
        """Return the entry's 32 bytes; Malformed when a field is out of its range (SPEC.md §7.1)."""
        name = self.name.encode("utf-8")
        if not (0 < self.code <= ITEM_CODE_MAX and 0 <= self.category <= CATEGORY_MAX
                and 0 < self.price_cents <= PRICE_MAX_CENTS and 0 < len(name) <= NAME_MAX_BYTES
                and b"\x00" not in name):
            raise Malformed("item %r: code 1..%d, category 0..%d, price 1..%d cents, name 1..%d UTF-8 bytes"
                            % (self.code, ITEM_CODE_MAX, CATEGORY_MAX, PRICE_MAX_CENTS, NAME_MAX_BYTES))
        flags = (ITEM_ACTIVE if self.active else 0) | (ITEM_MEMBER_ONLY if self.member_only else 0)
        return struct.pack(ENTRY_FMT, self.code, self.category, flags, self.price_cents, name)


def decode_entry(buf, at=0):
    """Parse the entry at buf[at:at + 32] into an Item; Malformed when it breaks SPEC.md §7.1."""
    code, category, flags, price, name = struct.unpack_from(ENTRY_FMT, buf, at)
    end = name.find(b"\x00")
    if end < 0:
        end = NAME_MAX_BYTES
    if (code == 0 or flags & ~(ITEM_ACTIVE | ITEM_MEMBER_ONLY) or not 0 < price <= PRICE_MAX_CENTS or end == 0
            or name[end:] != bytes(NAME_MAX_BYTES - end)):
        raise Malformed("price list entry %d" % code)
    try:
        text = name[:end].decode("utf-8")
    except UnicodeError:
        raise Malformed("price list entry %d: name not UTF-8" % code)
    return Item(code, text, price, category, bool(flags & ITEM_ACTIVE), bool(flags & ITEM_MEMBER_ONLY))


def price_list_bodies(merchant_id, version, items, flags=0):
    """The T_PRICE_LIST bodies of a whole list: items is a sequence strictly ascending by code, cut into
    chunks of ITEMS_PER_CHUNK_MAX (an empty list is one empty chunk)."""
    count = len(items)
    if count > ITEMS_MAX:
        raise Malformed("price list: at most %d items, not %d" % (ITEMS_MAX, count))
    chunks = max(1, (count + ITEMS_PER_CHUNK_MAX - 1) // ITEMS_PER_CHUNK_MAX)
    bodies = []
    for chunk in range(chunks):
        first = chunk * ITEMS_PER_CHUNK_MAX
        if first and count > first and items[first].code <= items[first - 1].code:
            raise Malformed("price list: item code %d after %d; codes must ascend"
                            % (items[first].code, items[first - 1].code))
        bodies.append(chunk_body(merchant_id, version, chunk, chunks, items, first,
                                 min(count, first + ITEMS_PER_CHUNK_MAX), flags))
    return bodies


def chunk_body(merchant_id, version, chunk, chunks, items, start, end, flags=0):
    """T_PRICE_LIST chunk `chunk` of `chunks`, holding items[start:end] (ascending by code), each item
    made only when it is encoded: a caller may pass a sequence that builds them on demand."""
    count = end - start
    if not (0 < merchant_id <= 0xFFFF and 0 < version <= 0xFFFFFFFF and 0 <= flags <= LIST_FREE_AMOUNT
            and 0 <= chunk < chunks <= ITEMS_MAX // ITEMS_PER_CHUNK_MAX and 0 <= count <= ITEMS_PER_CHUNK_MAX):
        raise Malformed("price list chunk: merchant 1..65535, version >= 1, chunk below chunks <= %d, "
                        "at most %d items" % (ITEMS_MAX // ITEMS_PER_CHUNK_MAX, ITEMS_PER_CHUNK_MAX))
    body = bytearray(CHUNK_HEAD_SIZE + ENTRY_SIZE * count)
    struct.pack_into(CHUNK_FMT, body, 0, merchant_id, version, flags, chunk, chunks, count)
    previous = 0
    for i in range(start, end):
        item = items[i]
        if item.code <= previous:
            raise Malformed("price list: item code %d after %d; codes must ascend" % (item.code, previous))
        previous = item.code
        at = CHUNK_HEAD_SIZE + ENTRY_SIZE * (i - start)
        body[at:at + ENTRY_SIZE] = item.encode()
    return bytes(body)


class Chunk:
    """A parsed T_PRICE_LIST body; `entries` is a view of its count x 32 entry bytes, checked."""

    def __init__(self, merchant_id, version, flags, chunk, chunks, count, entries):
        self.merchant_id = merchant_id
        self.version = version
        self.flags = flags
        self.chunk = chunk
        self.chunks = chunks
        self.count = count
        self.entries = entries

    def code(self, i):
        """The item code of entry i."""
        return struct.unpack_from(">H", self.entries, i * ENTRY_SIZE)[0]


def parse_price_list(body):
    """Parse and check a T_PRICE_LIST body (SPEC.md §7.1), entry by entry; the entries stay bytes."""
    if len(body) < CHUNK_HEAD_SIZE:
        raise Malformed("price list header")
    merchant_id, version, flags, chunk, chunks, count = struct.unpack_from(CHUNK_FMT, body, 0)
    if (len(body) != CHUNK_HEAD_SIZE + ENTRY_SIZE * count or count > ITEMS_PER_CHUNK_MAX or merchant_id == 0
            or version == 0 or flags & ~LIST_FREE_AMOUNT or not chunk < chunks <= ITEMS_MAX // ITEMS_PER_CHUNK_MAX):
        raise Malformed("price list body")
    entries = memoryview(body)[CHUNK_HEAD_SIZE:]
    previous = 0
    for i in range(count):
        item = decode_entry(entries, i * ENTRY_SIZE)
        if item.code <= previous:
            raise Malformed("price list codes not ascending at %d" % item.code)
        previous = item.code
    return Chunk(merchant_id, version, flags, chunk, chunks, count, entries)


def discounts_body(merchant_id, rules):
    """T_DISCOUNTS: the discount rules one merchant's terminals price with (SPEC.md §7.2)."""
    rules.check()
    if not (0 < merchant_id <= 0xFFFF and 0 < rules.version <= 0xFFFFFFFF):
        raise Malformed("discounts: merchant 1..65535, version >= 1")
    tiers = TIERS_MAX
    while tiers and not (rules.sale_bp[tiers - 1] or rules.total_bp[tiers - 1]):
        tiers -= 1                                       # trailing tiers without a discount are implied
    parts = [struct.pack(DISCOUNTS_FMT, merchant_id, rules.version, tiers)]
    for tier in range(tiers):
        parts.append(struct.pack(TIER_FMT, rules.sale_bp[tier], rules.total_bp[tier]))
    parts.append(struct.pack(">H", len(rules.overrides)))
    for key in sorted(rules.overrides):
        parts.append(struct.pack(OVERRIDE_FMT, key >> 17, (key >> 16) & 1, key & 0xFFFF, rules.overrides[key]))
    return b"".join(parts)


def parse_discounts(body):
    """Return (merchant_id, Discounts) from a T_DISCOUNTS body; Malformed when it breaks SPEC.md §7.2."""
    if len(body) < DISCOUNTS_HEAD_SIZE:
        raise Malformed("discounts header")
    merchant_id, version, tiers = struct.unpack_from(DISCOUNTS_FMT, body, 0)
    at = DISCOUNTS_HEAD_SIZE + 4 * tiers
    if tiers > TIERS_MAX or merchant_id == 0 or version == 0 or len(body) < at + 2:
        raise Malformed("discounts body")
    sale, total = [], []
    for tier in range(tiers):
        s, t = struct.unpack_from(TIER_FMT, body, DISCOUNTS_HEAD_SIZE + 4 * tier)
        sale.append(s)
        total.append(t)
    count = struct.unpack_from(">H", body, at)[0]
    at += 2
    if count > OVERRIDES_MAX or len(body) != at + 6 * count:
        raise Malformed("discounts overrides")
    overrides = {}
    previous = -1
    for i in range(count):
        tier, kind, code, rate = struct.unpack_from(OVERRIDE_FMT, body, at + 6 * i)
        key = rate_key(tier, kind & 1, code)
        if kind not in (OVERRIDE_ITEM, OVERRIDE_CATEGORY) or key <= previous:
            raise Malformed("discounts overrides not ascending by tier, kind, code")
        previous = key
        overrides[key] = rate
    rules = Discounts(version, sale, total, overrides)
    try:
        rules.check()
    except ValueError as e:
        raise Malformed(str(e))
    return merchant_id, rules
