"""Check protocol/admin_card.py against protocol/vectors/admin_card.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/admin_card_check.py protocol/vectors/admin_card.json
Prints "admin card vectors ok <n>" at the end.
"""

import gc
import json
import sys

from binascii import unhexlify

from protocol import admin_card, card, card_issue
from protocol.errors import BadMac
from vector_checks import checks, expect, refused

def blocks_of(hexes):
    return {int(b): unhexlify(d) for b, d in hexes.items()}


def check_card(c, transport_key, park):
    uid = unhexlify(c["uid"])
    desk = c["desk"]
    want = blocks_of(c["blocks"])
    got = admin_card.seal(transport_key, park, c["card_no"], uid, unhexlify(c["nonce"]), desk=desk)
    expect(got == want, "seal %s" % c["uid"])
    expect(admin_card.trailer_blocks(transport_key, park, uid, desk=desk) == blocks_of(c["trailers"]), "trailers")
    for s, key in c["sector_keys_a"].items():
        expect(admin_card.sector_key_a(transport_key, uid, int(s)) == unhexlify(key), "sector key A %s" % s)
        expect(admin_card.sector_key_b(transport_key, uid, int(s)) == unhexlify(c["sector_keys_b"][s]), "key B")
    # Block 4: an admin card to any serving terminal (SPEC.md §3.3 flag 1).
    info = card.CardInfo.decode(want[card.INFO_BLOCK], card.CardKeys(park, uid))
    expect(info.card_no == c["card_no"] and info.flags & card.FLAG_ADMIN and info.perms == 0, "info block")
    card_no, booth = admin_card.unseal(transport_key, want, uid)
    expect(card_no == c["card_no"] and booth.pack() == park.master_a + park.master_mac, "unseal booth")
    expect(booth.master_b is None, "booth keys without master B")
    if desk:
        card_no, keys = admin_card.unseal(transport_key, want, uid, True)
        expect(card_no == c["card_no"] and keys.pack() == park.pack(), "unseal desk")
    for blob_desk in ((False, True) if desk else (False,)):
        blob = admin_card.blob_blocks(blob_desk)
        for block in blob:                      # one bit of every block, each bit position across blocks
            for bit in (0, 61, 127):
                bad = dict(want)
                raw = bytearray(bad[block])
                raw[bit // 8] ^= 1 << (bit % 8)
                bad[block] = bytes(raw)
                expect(refused(admin_card.unseal, transport_key, bad, uid, blob_desk, error=BadMac), "bit flip %d" % block)
        swapped = dict(want)
        swapped[blob[1]], swapped[blob[2]] = want[blob[2]], want[blob[1]]
        expect(refused(admin_card.unseal, transport_key, swapped, uid, blob_desk, error=BadMac), "swapped blocks")
        other_uid = bytes(uid[:-1]) + bytes((uid[-1] ^ 1,))
        expect(refused(admin_card.unseal, transport_key, want, other_uid, blob_desk, error=BadMac), "cloned onto another UID")
        wrong_key = bytes(transport_key[:-1]) + bytes((transport_key[-1] ^ 0x80,))
        expect(refused(admin_card.unseal, wrong_key, want, uid, blob_desk, error=BadMac), "wrong transport key")
    if not desk:
        try:
            admin_card.unseal(transport_key, want, uid, True)
            expect(False, "desk blob read from a booth-only card")
        except ValueError:
            expect(True, "booth-only card has no desk blob")


def main(path):
    gc.collect()
    with open(path) as f:
        v = json.load(f)
    transport_key = unhexlify(v["transport_key"])
    park = card_issue.ParkKeys.unpack(unhexlify(v["park_keys"]))
    expect(admin_card.ADMIN_ACCESS == unhexlify(v["admin_access"]), "admin access bits")
    for c in v["cards"]:
        check_card(c, transport_key, park)
    print("admin card vectors ok", checks[0])


main(sys.argv[1])
