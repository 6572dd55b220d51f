"""Check protocol/ticket.py and the passage records against protocol/vectors/ticket.json; runs on MicroPython
and CPython.

usage: <interpreter> tests/mpy/ticket_check.py protocol/vectors/ticket.json
Prints "ticket vectors ok <n>" at the end.
"""

import json
import sys

from binascii import hexlify, unhexlify

from protocol import card, ticket as t
from protocol import card_issue
from protocol.errors import BadMac, Malformed
from protocol.record import PASSAGE_KINDS, Record, passage_fields, record_mac_for
from vector_checks import checks, expect, refused


def main(path):
    """Check every case of the file at path."""
    with open(path) as f:
        v = json.load(f)
    park = card_issue.ParkKeys.unpack(unhexlify(v["park_keys"]))
    uid = unhexlify(v["uid"])
    keys = card.CardKeys(park, uid)
    expect(keys.key_a(t.TICKET_SECTOR) == unhexlify(v["sector_key_a"]), "sector 3 key A")
    expect(keys.key_b(t.TICKET_SECTOR) == unhexlify(v["sector_key_b"]), "sector 3 key B")
    other = card.CardKeys(park, b"\x01\x02\x03\x04")
    for product, ttype, area, from_day, to_day, day_limit, serial, block in v["infos"]:
        raw = unhexlify(block)
        info = t.TicketInfo(product, ttype, area, from_day, to_day, day_limit, serial)
        expect(info.encode(keys) == raw, "info encode %d" % product)
        got = t.TicketInfo.decode(raw, keys)
        expect((got.product, got.type, got.area, got.from_day, got.to_day, got.day_limit, got.serial)
               == (product, ttype, area, from_day, to_day, day_limit, serial), "info decode %d" % product)
        expect(refused(t.TicketInfo.decode, raw, other, error=BadMac), "info of another card")
        torn = raw[:5] + bytes(11)
        expect(refused(t.TicketInfo.decode, torn, keys, error=BadMac), "torn info")
    for block, counter, entries, inside, day_entries, last_time, area, data in v["slots"]:
        raw = unhexlify(data)
        slot = t.TicketSlot(counter, entries, inside, day_entries, last_time, area)
        expect(slot.encode(keys, block) == raw and slot.mac == raw[12:], "slot encode %d" % counter)
        got = t.TicketSlot.decode(raw, keys, block)
        expect((got.counter, got.entries_left, got.inside, got.day_entries, got.last_time_s, got.area)
               == (counter, entries, inside, day_entries, last_time, area), "slot decode %d" % counter)
        other_block = t.SLOT_BLOCKS[1] if block == t.SLOT_BLOCKS[0] else t.SLOT_BLOCKS[0]
        expect(refused(t.TicketSlot.decode, raw, keys, other_block, error=BadMac), "slot copied to the other block")
    for block, counter, entries, day_entries, last_time, area, pay, data in v["charged_slots"]:
        raw = unhexlify(data)
        slot = t.TicketSlot(counter, entries, False, day_entries, last_time, area, pay)
        expect(slot.encode(keys, block) == raw and raw[4] == t.STATE_CHARGED and raw[11] == pay,
               "charged slot encode %d" % pay)
        got = t.TicketSlot.decode(raw, keys, block)
        expect((got.counter, got.inside, got.last_time_s, got.pay_counter) == (counter, False, last_time, pay),
               "charged slot decode %d" % pay)
        expect(refused(t.TicketSlot(counter, entries, True, day_entries, last_time, area, pay).encode, keys, block,
                       error=Malformed), "an entry binds no charge")
    for pay, counter, landed in v["charge_landed"]:
        expect(t.TicketSlot(pay_counter=pay).charge_landed(counter) == landed, "charge landed %d %d" % (pay, counter))
    expect(t.TicketSlot().charge_landed(7) is None, "an uncharged slot binds no charge")
    entered = t.TicketSlot.decode(unhexlify(v["slots"][1][7]), keys, 14)
    charged = t.TicketSlot.decode(unhexlify(v["charged_slots"][1][7]), keys, 13)
    expect(t.entry_before([charged, entered], charged) is entered and t.entry_before([charged, None], charged) is None,
           "the entry a charged exit followed")
    sale = dict((int(b), unhexlify(d)) for b, d in v["sale"].items())
    info = t.TicketInfo(*v["infos"][2][:7])
    expect(t.sale_blocks(keys, info, 10, 1795600000) == sale, "sale blocks")
    slots = t.decode_slots(sale[13], sale[14], keys)
    expect(slots[1] is None and t.pick_slot(slots)[0].counter == 1 and t.pick_slot(slots)[1] == 14, "sale slot A")
    newer = slots[0].next(9, True, 1, 1795600100, 2)
    pair = [slots[0], t.TicketSlot.decode(newer.encode(keys, 14), keys, 14)]
    expect(t.pick_slot(pair)[0].counter == 2 and t.pick_slot(pair)[1] == 13, "the newer slot is in force")
    expect(refused(t.pick_slot, [None, None], error=BadMac), "no valid slot")
    body = unhexlify(v["gate_config"])
    gate = t.GateConfig.decode(body)
    expect((gate.version, gate.direction, gate.area, gate.reentry, gate.reentry_min, gate.reset_s)
           == (7, t.DIRECTION_BOTH, 2, t.REENTRY_AFTER_MINUTES, 30, 4 * 3600), "gate config")
    p = gate.product(5)
    expect((p.included_min, p.interval_min, p.interval_price_cents) == (60, 30, 500) and gate.product(2) is None,
           "gate products")
    expect(gate.encode() == body, "gate config encode")
    expect((gate.utc_offset_s, gate.next_change_s, gate.next_offset_s) == (3600, 1774746000, 7200), "gate zone")
    expect(gate.park_day(20540 * 86400 + 3 * 3600 - 1) == 20539 and gate.park_day(20540 * 86400 + 3 * 3600) == 20540,
           "park day turns at the local reset")
    for reset_s, offset_s, change_s, next_offset_s, time_s, day in v["park_days"]:
        expect(t.park_day(time_s, reset_s, offset_s, change_s, next_offset_s) == day, "park day %d" % time_s)
    for why in sorted(v["bad_gate_configs"]):
        expect(refused(t.GateConfig.decode, unhexlify(v["bad_gate_configs"][why]), error=Malformed), why)
    for inside_s, included, interval, price, cents in v["charges"]:
        expect(t.timed_charge_cents(inside_s, included, interval, price) == cents, "charge %d s" % inside_s)
    mac = record_mac_for(unhexlify(v["terminal_key"]))
    for raw in v["passages"]:
        rec = Record.decode(unhexlify(raw), mac)
        expect(rec.kind in PASSAGE_KINDS and hexlify(rec.encode(mac)).decode() == raw, "passage %d" % rec.seq)
    first = Record.decode(unhexlify(v["passages"][1]), mac)
    expect(passage_fields(first) == (t.REASON_ALREADY_INSIDE, 2, 9), "refusal detail")
    entry = Record.decode(unhexlify(v["passages"][0]), mac)     # a refusal names the slot in force (SPEC.md §4.9)
    expect((first.card_counter, first.card_mac) == (entry.card_counter, entry.card_mac), "refusal slot")
    expect(sorted(t.REASON_NAMES) == sorted(int(k) for k in v["reasons"]) and all(
        t.REASON_NAMES[int(k)] == name for k, name in v["reasons"].items()), "reason codes")
    print("ticket vectors ok", checks[0])


main(sys.argv[1])
