"""Check shift and reversal records (SPEC.md §4.14, §4.15) against protocol/vectors/staff.json; runs on
MicroPython and CPython.

usage: <interpreter> tests/mpy/staff_check.py protocol/vectors/staff.json
Decodes a shift's records, reads the tags, the reversal's sale and staff card and the closing totals, and
sums the sales and reversals between the shift records as the hub's reconciliation does; reads T_STAFF lists
and refuses bad ones, and counts the booth's park days by their offsets (§5.11).
Prints "staff vectors ok <n>" at the end.
"""

import json
import sys

from binascii import unhexlify

from protocol import frames
from protocol.errors import Malformed
from protocol.record import KIND_DEBIT, KIND_REVERSAL, KIND_SHIFT, Record
from protocol.park_day import park_day
from protocol.staff import PHASE_CLOSE, PHASE_OPEN, TAG_NONE, ShiftTotals, reversal_of, shift_fields, tag_of
from protocol.staff_list import parse_staff, staff_holds
from vector_checks import checks, expect, refused, round_tripped_records


def main(path):
    """Check every case of the file at path."""
    with open(path) as f:
        v = json.load(f)
    mac, recs = round_tripped_records(v["terminal_key"], v["records"])
    for rec in recs:
        expect(tag_of(rec) == v["tag"], "record %d carries the shift tag" % rec.seq)
    opened, closed = recs[0], recs[-1]
    expect(opened.kind == closed.kind == KIND_SHIFT and opened.card_no == closed.card_no == v["staff_no"],
           "shift records name the staff card")
    phase, tag, totals, open_seq = shift_fields(opened)
    expect((phase, tag, open_seq) == (PHASE_OPEN, v["tag"], 0) and totals == ShiftTotals(), "opening record")
    phase, tag, totals, open_seq = shift_fields(closed)
    expect((phase, open_seq) == (PHASE_CLOSE, v["open_seq"]) and open_seq == opened.seq, "closing record")
    expect(totals == ShiftTotals(*v["totals"]) and totals.net_cents() == v["net_cents"], "closing totals")
    summed = ShiftTotals()
    for rec in recs[1:-1]:
        if rec.kind == KIND_DEBIT:
            summed.sales += 1
            summed.sales_cents += rec.amount_cents
        elif rec.kind == KIND_REVERSAL:
            sale_seq, staff_no = reversal_of(rec)
            sale = [r for r in recs if r.seq == sale_seq][0]
            expect((sale_seq, staff_no) == (v["reversed_seq"], v["staff_no"]), "reversal names sale and staff")
            expect(sale.kind == KIND_DEBIT and sale.card_no == rec.card_no and sale.amount_cents == rec.amount_cents,
                   "reversal gives its whole sale back to the same card")
            expect(rec.balance_after_cents == sale.balance_after_cents + rec.amount_cents, "reversal balance")
            summed.reversals += 1
            summed.reversals_cents += rec.amount_cents
    expect(summed == totals, "the records between sum to the closing totals")
    expect(tag_of(Record.decode(unhexlify(v["untagged_sale"]), mac)) == TAG_NONE, "a sale with no shift")
    fmac = frames.frame_mac_for(unhexlify(v["terminal_key"]))
    said = [frames.parse_shifts(frames.decode(fmac, unhexlify(raw)).body) for raw in v["shifts_frames"]]
    expect(said == [True, False], "T_SHIFTS frames")
    for bad in v["shifts_bad_bodies"]:
        expect(refused(frames.parse_shifts, unhexlify(bad), error=Malformed), "T_SHIFTS body %r refused" % bad)
    for raw, (zone, cards) in zip(v["staff_frames"], v["staff_lists"]):
        got_zone, got = parse_staff(frames.decode(fmac, unhexlify(raw)).body)
        expect(list(got_zone) == zone and len(got) == 4 * len(cards), "T_STAFF zone and count")
        expect(all(staff_holds(got, c) for c in cards), "T_STAFF holds its staff cards")
        expect(not any(staff_holds(got, c) for c in v["staff_not_listed"]), "T_STAFF holds no other card")
    for bad in v["staff_bad_bodies"]:
        expect(refused(parse_staff, unhexlify(bad), error=Malformed), "T_STAFF body %s refused" % bad)
    for time_s, zone, day in v["park_days"]:
        expect(park_day(time_s, 0, zone[0], zone[1], zone[2]) == day, "park day of %d at %r" % (time_s, zone))
    print("staff vectors ok", checks[0])


main(sys.argv[1])
