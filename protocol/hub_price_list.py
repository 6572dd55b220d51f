"""The hub's half of price_list.py: a price list and discount rules encoded as downlink bodies (SPEC.md §7).

Not imported by a terminal: it parses these bodies with price_list.py and never builds them.
"""

import struct

from protocol.errors import Malformed
from protocol.price_list import (CHUNK_FMT, CHUNK_HEAD_SIZE, DISCOUNTS_FMT, ENTRY_FMT, ENTRY_SIZE, ITEM_ACTIVE,
                                 ITEM_MEMBER_ONLY, ITEMS_MAX, ITEMS_PER_CHUNK_MAX, LIST_FREE_AMOUNT, NAME_MAX_BYTES,
                                 OVERRIDE_FMT, PRICE_MAX_CENTS, TIER_FMT)
from protocol.pricing import CATEGORY_MAX, ITEM_CODE_MAX, TIERS_MAX


def item_entry(item):
    """Return a price_list.Item's 32 bytes; Malformed when a field is out of its range (SPEC.md §7.1)."""
    name = item.name.encode("utf-8")
    if not (0 < item.code <= ITEM_CODE_MAX and 0 <= item.category <= CATEGORY_MAX
            and 0 < item.price_cents <= PRICE_MAX_CENTS and 0 < len(name) <= NAME_MAX_BYTES
            and b"\x00" not in name):
        raise Malformed("item %r: code 1..%d, category 0..%d, price 1..%d cents, name 1..%d UTF-8 bytes"
                        % (item.code, ITEM_CODE_MAX, CATEGORY_MAX, PRICE_MAX_CENTS, NAME_MAX_BYTES))
    flags = (ITEM_ACTIVE if item.active else 0) | (ITEM_MEMBER_ONLY if item.member_only else 0)
    return struct.pack(ENTRY_FMT, item.code, item.category, flags, item.price_cents, name)


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
    body = bytearray(CHUNK_HEAD_SIZE + ENTRY_SIZE * count)
    body[:CHUNK_HEAD_SIZE] = _chunk_head(merchant_id, version, flags, chunk, chunks, count)
    previous = 0
    for i in range(start, end):
        item = items[i]
        if item.code <= previous:
            raise Malformed("price list: item code %d after %d; codes must ascend" % (item.code, previous))
        previous = item.code
        at = CHUNK_HEAD_SIZE + ENTRY_SIZE * (i - start)
        body[at:at + ENTRY_SIZE] = item_entry(item)
    return bytes(body)


def entries_bodies(merchant_id, version, entries, flags=0):
    """The T_PRICE_LIST bodies of a list kept as its entries (count x 32 bytes, ascending by code, as the
    hub stores them), cut into chunks of ITEMS_PER_CHUNK_MAX."""
    count = len(entries) // ENTRY_SIZE
    if len(entries) % ENTRY_SIZE or count > ITEMS_MAX:
        raise Malformed("price list: %d bytes of entries, not a whole number of at most %d" % (len(entries), ITEMS_MAX))
    chunks = max(1, (count + ITEMS_PER_CHUNK_MAX - 1) // ITEMS_PER_CHUNK_MAX)
    bodies = []
    for chunk in range(chunks):
        first = chunk * ITEMS_PER_CHUNK_MAX
        last = min(count, first + ITEMS_PER_CHUNK_MAX)
        bodies.append(_chunk_head(merchant_id, version, flags, chunk, chunks, last - first)
                      + bytes(entries[first * ENTRY_SIZE:last * ENTRY_SIZE]))
    return bodies


def _chunk_head(merchant_id, version, flags, chunk, chunks, count):
    """The 13 bytes before a chunk's entries; Malformed when a field is out of its range (SPEC.md §7.1)."""
    if not (0 < merchant_id <= 0xFFFF and 0 < version <= 0xFFFFFFFF and 0 <= flags <= LIST_FREE_AMOUNT
            and 0 <= chunk < chunks <= ITEMS_MAX // ITEMS_PER_CHUNK_MAX and 0 <= count <= ITEMS_PER_CHUNK_MAX):
        raise Malformed("price list chunk: merchant 1..65535, version >= 1, chunk below chunks <= %d, "
                        "at most %d items" % (ITEMS_MAX // ITEMS_PER_CHUNK_MAX, ITEMS_PER_CHUNK_MAX))
    return struct.pack(CHUNK_FMT, merchant_id, version, flags, chunk, chunks, count)


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
