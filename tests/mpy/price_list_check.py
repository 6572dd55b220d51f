"""Check protocol/price_list.py against protocol/vectors/price_list.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/price_list_check.py protocol/vectors/price_list.json
Prints "price list vectors ok <n>" at the end.
"""

import hashlib
import json
import sys

from binascii import hexlify, unhexlify

from protocol import hub_price_list, price_list, pricing
from protocol.errors import Malformed
from vector_checks import Lazy, checks, expect, refused


def big_item(i):
    """Item i of the big list (protocol/vectors/generate_price_list.py makes it by the same rule)."""
    return price_list.Item(10 + 3 * i, "item %d" % i, 100 + 7 * i, category=i % 5, member_only=i % 11 == 0)


def main(path):
    """Check every case of the file at path."""
    with open(path) as f:
        v = json.load(f)
    body = unhexlify(v["chunk"])
    chunk = price_list.parse_price_list(body)
    expect((chunk.merchant_id, chunk.version, chunk.flags, chunk.chunk, chunk.chunks, chunk.count)
           == (5, 8, price_list.LIST_FREE_AMOUNT, 0, 1, len(v["items"])), "chunk header")
    items = []
    for i, (code, name, price, category, active, member_only) in enumerate(v["items"]):
        item = price_list.decode_entry(chunk.entries, i * price_list.ENTRY_SIZE)
        expect((item.code, item.name, item.price_cents, item.category, item.active, item.member_only)
               == (code, name, price, category, active, member_only), "entry %d" % code)
        expect(chunk.code(i) == code, "entry code %d" % code)
        items.append(price_list.Item(code, name, price, category, active, member_only))
    expect(hub_price_list.price_list_bodies(5, 8, items, price_list.LIST_FREE_AMOUNT) == [body], "chunk encode")
    big = hub_price_list.price_list_bodies(5, 9, Lazy(v["big_items"], big_item))
    expect([hexlify(hashlib.sha256(b).digest()).decode() for b in big] == v["big_sha256"], "big list chunks")
    last = 0
    for body in big:
        c = price_list.parse_price_list(body)
        expect(c.chunks == len(big) and c.count <= price_list.ITEMS_PER_CHUNK_MAX and c.code(0) > last, "big chunk")
        last = c.code(c.count - 1)
    expect(hub_price_list.price_list_bodies(5, 1, []) != [] and price_list.parse_price_list(
        hub_price_list.price_list_bodies(5, 1, [])[0]).count == 0, "an empty list is one empty chunk")
    for why in sorted(v["bad_price_lists"]):
        expect(refused(price_list.parse_price_list, unhexlify(v["bad_price_lists"][why]), error=Malformed), why)
    body = unhexlify(v["discounts_body"])
    merchant_id, rules = price_list.parse_discounts(body)
    d = v["discounts"]
    tiers = len(d["sale_bp"])
    expect(merchant_id == 5 and rules.version == d["version"] and rules.sale_bp[:tiers] == d["sale_bp"]
           and rules.total_bp[:tiers] == d["total_bp"] and rules.sale_bp[tiers:] == [0] * (16 - tiers), "discounts")
    for tier, kind, code, bp in d["overrides"]:
        expect(rules.overrides[pricing.rate_key(tier, kind, code)] == bp, "override %d %d %d" % (tier, kind, code))
    expect(len(rules.overrides) == len(d["overrides"]), "override count")
    expect(hub_price_list.discounts_body(5, rules) == body, "discounts encode")
    for why in sorted(v["bad_discounts"]):
        expect(refused(price_list.parse_discounts, unhexlify(v["bad_discounts"][why]), error=Malformed), why)
    for bad in (price_list.Item(0, "a", 1), price_list.Item(1, "", 1), price_list.Item(1, "a", 0),
                price_list.Item(1, "a" * 25, 1), price_list.Item(1, "冰淇淋冰淇淋冰淇淋", 1),
                price_list.Item(1, "a", price_list.PRICE_MAX_CENTS + 1), price_list.Item(1, "a", 1, 256)):
        expect(refused(lambda: hub_price_list.item_entry(bad), error=Malformed), "item out of range refused")
    print("price list vectors ok", checks[0])


main(sys.argv[1])
