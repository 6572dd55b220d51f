"""Check a replacement's bytes against protocol/vectors/replacement.json (SPEC.md §4.13); runs on MicroPython and
CPython.

usage: <interpreter> tests/mpy/replacement_check.py protocol/vectors/replacement.json
Prints "replacement vectors ok <n>" at the end.
"""

import json
import sys

from binascii import unhexlify

from protocol import card, card_issue, desk
from protocol import record as R
from protocol.errors import BadMac
from vector_checks import checks, expect, refused


def check_new_card(v, park):
    n = v["new_card"]
    keys = card.CardKeys(park, unhexlify(n["uid"]))
    info = card.CardInfo.decode(unhexlify(n["info_block"]), keys)
    expect((info.card_no, info.tier, info.deposit_cents, info.issue_day, info.flags) ==
           (n["card_no"], n["tier"], n["deposit_cents"], n["issue_day"], 0), "new card info")
    expect(info.encode(keys) == unhexlify(n["info_block"]), "new card info encode")
    slot_bytes = unhexlify(n["slot"])
    slot = card.WalletSlot.decode(slot_bytes, keys, n["slot_block"])
    moved = v["balance"] - v["hold"]
    expect((slot.counter, slot.balance_cents, slot.day_spend_cents, slot.last_terminal) ==
           (1, moved, 0, n["desk_terminal"]), "new card slot: counter 1, the balance moved")
    expect(refused(card.WalletSlot.decode, slot_bytes, card.CardKeys(park, unhexlify(v["late_debit"]["uid"])),
                   n["slot_block"], error=BadMac), "the slot is bound to the new card's UID")
    return keys, slot_bytes, moved


def check_transfer_in(v, slot_bytes, moved):
    raw = unhexlify(v["transfer_in"])
    rec = R.Record.decode(raw, R.record_mac_for(unhexlify(v["source_key"])))
    n = v["new_card"]
    expect((rec.kind, rec.version, rec.terminal_id, rec.card_no, rec.uid) ==
           (R.KIND_TRANSFER_IN, R.RECORD_V2, desk.DESK_SOURCE_ID, n["card_no"], unhexlify(n["uid"])),
           "transfer in: kind 6, version 2, the desk source, the new card")
    expect((rec.card_counter, rec.amount_cents, rec.balance_after_cents, rec.item, rec.discount_cents) ==
           (1, moved, moved, n["desk_terminal"], 0), "transfer in: counter 1, amount = balance after = moved")
    expect((rec.deposit_cents, rec.ref_seq) == (0, 0), "transfer in moves no deposit and refers to nothing")
    expect(rec.card_mac == slot_bytes[12:], "transfer in carries the MAC of the slot written")
    expect(refused(R.Record.decode, raw, R.record_mac_for(unhexlify(v["booth_key"])), error=BadMac),
           "only the desk source's key makes a transfer in")


def check_late_debit(v, park):
    late = v["late_debit"]
    raw = unhexlify(late["record"])
    rec = R.Record.decode(raw, R.record_mac_for(unhexlify(v["booth_key"])))
    old_keys = card.CardKeys(park, unhexlify(late["uid"]))
    slot = card.WalletSlot.decode(unhexlify(late["slot"]), old_keys, card.SLOT_BLOCKS[1])
    expect((rec.kind, rec.flags & R.FLAG_OFFLINE, rec.card_counter, rec.balance_after_cents) ==
           (R.KIND_DEBIT, R.FLAG_OFFLINE, slot.counter, slot.balance_cents), "late debit: an offline debit")
    expect(rec.amount_cents <= v["hold"] and rec.balance_after_cents + rec.amount_cents == v["balance"],
           "late debit: within the hold, from the balance the hub knew")


def main(path):
    with open(path) as f:
        v = json.load(f)
    park = card_issue.ParkKeys.unpack(unhexlify(v["park_keys"]))
    expect(desk.DESK_SOURCE_ID == v["desk_source_id"], "desk source id")
    _keys, slot_bytes, moved = check_new_card(v, park)
    check_transfer_in(v, slot_bytes, moved)
    check_late_debit(v, park)
    print("replacement vectors ok", checks[0])


main(sys.argv[1])
