"""Regenerate credits.json from protocol/credits.py (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate_credits.py

Only regenerate on a deliberate format change: cards in the field carry the marker bytes and
terminals keep the list entries in flash.
"""

import hashlib
import json
import os
import struct
from binascii import hexlify

from protocol import card, card_issue, credits, hub_credits

HERE = os.path.dirname(os.path.abspath(__file__))
PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
UIDS = ("04a1b2c3d4e5f6", "a1b2c3d4")
# (card_no, credit_no, amount_cents), ascending; the card 100002 has two.
CREDITS = [(100001, 1, 5000), (100002, 1, 1), (100002, 2, card.BALANCE_MAX_CENTS), (4294967295, 65535, 250)]
BIG = 300           # two chunks: 256 and 44


def big_credit(i):
    """Credit i of the big list, made by the same rule in tests/mpy/credits_check.py."""
    return (200000 + i // 3, 1 + i % 3, 100 + 7 * i)


def chunk(entries, version=3, chunk=0, chunks=1):
    """A chunk body around raw entries."""
    return struct.pack(credits.CHUNK_FMT, version, chunk, chunks, len(entries)) + b"".join(entries)


def entry(card_no, credit_no, amount):
    """An entry packed by hand, to make the ones the codec must refuse."""
    return struct.pack(credits.ENTRY_FMT, card_no, credit_no, amount)


def hexs(data):
    return hexlify(data).decode()


def main():
    """Write credits.json."""
    markers = []
    for uid_hex in UIDS:
        keys = card.CardKeys(PARK, bytes.fromhex(uid_hex))
        for block, (credit_no, counter, amount) in ((8, (1, 2, 5000)), (9, (65535, 65535, card.BALANCE_MAX_CENTS))):
            raw = credits.encode_marker(keys, block, credit_no, counter, amount)
            markers.append({"uid": uid_hex, "block": block, "credit_no": credit_no, "counter": counter,
                            "amount": amount, "bytes": hexs(raw)})
        markers[-1]["trailer"] = hexs(hub_credits.credit_blocks(keys)[credits.CREDIT_TRAILER_BLOCK])
    (body,) = hub_credits.credits_bodies(3, CREDITS)
    bad = {
        "not ascending": chunk([entry(5, 2, 1), entry(5, 1, 1)]),
        "credit twice": chunk([entry(5, 1, 1), entry(5, 1, 1)]),
        "card 0": chunk([entry(0, 1, 1)]),
        "credit number 0": chunk([entry(5, 0, 1)]),
        "amount 0": chunk([entry(5, 1, 0)]),
        "amount over the card maximum": chunk([entry(5, 1, card.BALANCE_MAX_CENTS + 1)]),
        "version 0": chunk([entry(5, 1, 1)], version=0),
        "chunk past chunks": chunk([entry(5, 1, 1)], chunk=1, chunks=1),
        "too many chunks": chunk([entry(5, 1, 1)], chunks=17),
        "count past the body": chunk([entry(5, 1, 1)])[:-1],
        "short header": chunk([])[:9],
    }
    out = {
        "park_keys": hexs(PARK.pack()),
        "markers": markers,
        "credits": CREDITS,
        "chunk": hexs(body),
        "big_credits": BIG,
        "big_sha256": [hexs(hashlib.sha256(b).digest())
                       for b in hub_credits.credits_bodies(4, [big_credit(i) for i in range(BIG)])],
        "bad_credits": {why: hexs(b) for why, b in bad.items()},
    }
    with open(os.path.join(HERE, "credits.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
