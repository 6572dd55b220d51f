"""Check protocol/credits.py against protocol/vectors/credits.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/credits_check.py protocol/vectors/credits.json
Prints "credits vectors ok <n>" at the end.
"""

import hashlib
import json
import sys

from binascii import hexlify, unhexlify

from protocol import card, card_issue, credits, hub_credits
from protocol.errors import BadMac, Malformed
from vector_checks import Lazy, checks, expect, refused


def big_credit(i):
    """Credit i of the big list (protocol/vectors/generate_credits.py makes it by the same rule)."""
    return (200000 + i // 3, 1 + i % 3, 100 + 7 * i)


def check_markers(v):
    park = card_issue.ParkKeys.unpack(unhexlify(v["park_keys"]))
    for m in v["markers"]:
        keys = card.CardKeys(park, unhexlify(m["uid"]))
        raw = unhexlify(m["bytes"])
        block = m["block"]
        what = "marker %s block %d" % (m["uid"], block)
        got = credits.decode_marker(raw, keys, block)
        expect(got == (m["credit_no"], m["counter"], m["amount"]), what)
        expect(credits.encode_marker(keys, block, m["credit_no"], m["counter"], m["amount"]) == raw, what + " encode")
        other = 9 if block == 8 else 8
        expect(refused(credits.decode_marker, raw, keys, other, error=BadMac), what + " copied to the other block")
        torn = bytearray(raw)
        torn[3] ^= 1
        expect(refused(credits.decode_marker, bytes(torn), keys, block, error=BadMac), what + " torn")
        if "trailer" in m:
            expect(hub_credits.credit_blocks(keys)[credits.CREDIT_TRAILER_BLOCK] == unhexlify(m["trailer"]), "trailer")
        # The marker in force (SPEC.md §3.7): one whose wallet write did not land does not count.
        blank = bytes(16)
        pair = (raw, blank) if block == 8 else (blank, raw)
        expect(credits.read_markers(pair[0], pair[1], keys, m["counter"]) == (m["credit_no"], other),
               what + " in force")
        expect(credits.read_markers(pair[0], pair[1], keys, (m["counter"] - 1) % 65536) == (0, 8),
               what + " not landed")
    expect(credits.read_markers(bytes(16), bytes(16), keys, 1) == (0, 8), "no marker: received 0, write block 8")


def check_lists(v):
    body = unhexlify(v["chunk"])
    version, chunk, chunks, count, entries = credits.parse_credits(body)
    expect((version, chunk, chunks, count) == (3, 0, 1, len(v["credits"])), "chunk header")
    for i, c in enumerate(v["credits"]):
        expect(list(credits.decode_entry(entries, i * credits.ENTRY_SIZE)) == c, "entry %d" % i)
        expect(list(credits.entry_key(entries, i)) == c[:2], "key %d" % i)
    expect(hub_credits.credits_bodies(3, [tuple(c) for c in v["credits"]]) == [body], "chunk encode")
    big = hub_credits.credits_bodies(4, Lazy(v["big_credits"], big_credit))
    expect([hexlify(hashlib.sha256(b).digest()).decode() for b in big] == v["big_sha256"], "big list chunks")
    for b in big:
        parsed = credits.parse_credits(b)
        expect(parsed[2] == len(big) and parsed[3] <= credits.CREDITS_PER_CHUNK_MAX, "big chunk")
    empty = hub_credits.credits_bodies(1, [])
    expect(len(empty) == 1 and credits.parse_credits(empty[0])[3] == 0, "an empty list is one empty chunk")
    for why in sorted(v["bad_credits"]):
        expect(refused(credits.parse_credits, unhexlify(v["bad_credits"][why]), error=Malformed), why)


def main(path):
    """Check every case of the file at path."""
    with open(path) as f:
        v = json.load(f)
    check_markers(v)
    check_lists(v)
    print("credits vectors ok", checks[0])


main(sys.argv[1])
