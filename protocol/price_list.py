"""A merchant's price list and its discount rules as downlink bodies (SPEC.md §7): bytes in, values out.

The price list travels as a snapshot in chunks, the way a blacklist snapshot does (§5.5): each chunk
names the merchant, the list's version, its index and the chunk count, and carries entries strictly
ascending by item code across the chunks. An entry has the same 32 bytes on the wire and in the
terminal's flash file (firmware/terminal/prices.py), so a chunk is written to flash as it arrives.

This is the terminal's half (it parses); hub_price_list.py encodes the same formats, so a terminal
never holds the encoders on its heap.
"""

import struct

from protocol.card import BALANCE_MAX_CENTS
from protocol.errors import Malformed
from protocol.pricing import OVERRIDE_CATEGORY, OVERRIDE_ITEM, OVERRIDES_MAX, TIERS_MAX, Discounts, rate_key

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
