"""Regenerate price_list.json from protocol/price_list.py (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate_price_list.py

Only regenerate on a deliberate format change: terminals in the field keep these bytes in flash.
"""

import hashlib
import json
import os
import struct

from protocol import hub_price_list, price_list, pricing

HERE = os.path.dirname(os.path.abspath(__file__))
ITEMS = [price_list.Item(3, "Cola 330ml", 450, category=1),
         price_list.Item(17, "冰淇淋", 1200, category=2, member_only=True),
         price_list.Item(65535, "Souvenir mug, large blue", price_list.PRICE_MAX_CENTS, category=255, active=False)]
BIG_ITEMS = 300     # two chunks: 256 and 44


def big_item(i):
    """Item i of the big list, made by the same rule in tests/mpy/price_list_check.py."""
    return price_list.Item(10 + 3 * i, "item %d" % i, 100 + 7 * i, category=i % 5, member_only=i % 11 == 0)


def rules():
    """A merchant's discount rules: three tiers, item and category overrides."""
    r = pricing.Discounts(12, [0, 500, 1000], [0, 0, 500])
    r.set_override(1, pricing.OVERRIDE_ITEM, 17, 2000)
    r.set_override(2, pricing.OVERRIDE_CATEGORY, 1, 1500)
    r.set_override(2, pricing.OVERRIDE_ITEM, 3, 0)
    return r


def entry(code, category, flags, price, name):
    """An entry's bytes packed by hand, to make the ones the codec must refuse."""
    return struct.pack(price_list.ENTRY_FMT, code, category, flags, price, name)


def chunk(entries, chunk=0, chunks=1, flags=0):
    """A chunk body around raw entries."""
    return struct.pack(price_list.CHUNK_FMT, 5, 8, flags, chunk, chunks, len(entries)) + b"".join(entries)


def main():
    """Write price_list.json."""
    (body,) = hub_price_list.price_list_bodies(5, 8, ITEMS, flags=price_list.LIST_FREE_AMOUNT)
    disc = hub_price_list.discounts_body(5, rules())
    big = hub_price_list.price_list_bodies(5, 9, [big_item(i) for i in range(BIG_ITEMS)])
    good = entry(3, 1, 1, 450, b"Cola")
    bad_lists = {
        "codes not ascending": chunk([entry(5, 0, 1, 1, b"b"), entry(4, 0, 1, 1, b"a")]),
        "code twice": chunk([good, good]),
        "code 0": chunk([entry(0, 0, 1, 1, b"a")]),
        "price 0": chunk([entry(1, 0, 1, 0, b"a")]),
        "price over the card maximum": chunk([entry(1, 0, 1, price_list.PRICE_MAX_CENTS + 1, b"a")]),
        "unknown item flag": chunk([entry(1, 0, 4, 1, b"a")]),
        "empty name": chunk([entry(1, 0, 1, 1, b"")]),
        "name not UTF-8": chunk([entry(1, 0, 1, 1, b"\xff\xfe")]),
        "bytes after the name's end": chunk([entry(1, 0, 1, 1, b"a\x00b")]),
        "count over the bytes": chunk([good])[:-1],
        "chunk not below chunks": chunk([good], chunk=1, chunks=1),
        "over 16 chunks": chunk([good], chunks=17),
        "unknown list flag": chunk([good], flags=2),
        "merchant 0": b"\x00\x00" + chunk([good])[2:],
        "short header": chunk([])[:12],
    }
    bad_discounts = {
        "rate over 100 %": disc[:7] + b"\x27\x11" + disc[9:],
        "overrides not ascending": disc[:-12] + disc[-6:] + disc[-12:-6],
        "unknown override kind": disc[:-5] + b"\x02" + disc[-4:],
        "17 tiers": disc[:6] + b"\x11" + disc[7:],
        "a byte too many": disc + b"\x00",
        "version 0": disc[:2] + bytes(4) + disc[6:],
    }
    out = {
        "items": [[i.code, i.name, i.price_cents, i.category, i.active, i.member_only] for i in ITEMS],
        "chunk": body.hex(),
        "discounts": {"version": 12, "sale_bp": [0, 500, 1000], "total_bp": [0, 0, 500],
                      "overrides": [[1, 0, 17, 2000], [2, 0, 3, 0], [2, 1, 1, 1500]]},
        "discounts_body": disc.hex(),
        "big_items": BIG_ITEMS,
        "big_sha256": [hashlib.sha256(b).hexdigest() for b in big],
        "bad_price_lists": {k: v.hex() for k, v in bad_lists.items()},
        "bad_discounts": {k: v.hex() for k, v in bad_discounts.items()},
    }
    with open(os.path.join(HERE, "price_list.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
