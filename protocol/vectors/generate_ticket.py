"""Regenerate ticket.json from protocol/ticket.py and protocol/record.py (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate_ticket.py

Only regenerate on a deliberate format change: tickets sold carry these bytes.
"""

import json
import os

from protocol import card, ticket as t
from protocol import card_issue
from protocol.record import (KIND_ENTRY, KIND_EXIT_FINISHED, KIND_REFUSAL, KIND_TIMED_EXIT, Record, passage_detail,
                             record_mac_for)

HERE = os.path.dirname(os.path.abspath(__file__))
PARK = card_issue.ParkKeys(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
TERMINAL_KEY = bytes(range(0x40, 0x60))
UID = bytes.fromhex("04a1b2c3d4e5f6")
TIME_S = 1795600000
INFOS = [t.TicketInfo(1, t.TYPE_DAY, 1, 20782, 20782, 0, 1),
         t.TicketInfo(2, t.TYPE_MULTI_DAY, 0, 20782, 20784, 1, 77),
         t.TicketInfo(3, t.TYPE_COUNT, 2, 0, 0, 2, 0xABCDEF),
         t.TicketInfo(4, t.TYPE_PERIOD, 255, 20700, 21065, 0, 5),
         t.TicketInfo(65535, t.TYPE_TIMED, 0, 0, 0, 0, t.SERIAL_MAX)]
SLOTS = [(13, t.TicketSlot(1, t.ENTRIES_UNLIMITED, False, 0, 0, 0)),
         (14, t.TicketSlot(2, 9, True, 1, TIME_S, 3)),
         (13, t.TicketSlot(65535, 0, False, 255, 0xFFFFFFFF, 255))]
# Charged exits (SPEC.md §3.13): the exit of slot 14 above, naming wallet counters 0, 0x12 and 0xFF
CHARGED = [(13, t.TicketSlot(3, 9, False, 1, TIME_S + 7200, 3, 0)),
           (13, t.TicketSlot(3, 9, False, 1, TIME_S + 7200, 3, 0x12)),
           (13, t.TicketSlot(3, 9, False, 1, TIME_S + 7200, 3, 0xFF))]
# (pay_counter, wallet counter in force) -> the charge landed
CHARGE_LANDED = [(0x12, 0x11), (0x12, 0x12), (0x12, 0x13), (0x12, 0x1311), (0x12, 0x1312), (0, 0xFFFF), (0, 0),
                 (0xFF, 0xFE), (0xFF, 0x01FE), (0xFF, 0xFF)]
# Europe/Berlin in spring 2026: UTC+1 until 2026-03-29 01:00 UTC, then UTC+2 (SPEC.md §5.8)
SPRING_CHANGE_S = 1774746000
AUTUMN_CHANGE_S = 1792890000     # back to UTC+1 at 2026-10-25 01:00 UTC
GATE = t.GateConfig(7, t.DIRECTION_BOTH, 2, t.REENTRY_AFTER_MINUTES, 30, 4 * 3600,
                    [t.GateProduct(1), t.GateProduct(5, 60, 30, 500)], 3600, SPRING_CHANGE_S, 7200)
# (reset_s, utc_offset_s, next_change_s, next_offset_s): zones and reset times the park day is checked in
ZONES = [(0, 8 * 3600, 0, 8 * 3600),                       # Asia/Shanghai, reset at local midnight
         (4 * 3600, 8 * 3600, 0, 8 * 3600),                # ... at 04:00
         (9000, 3600, SPRING_CHANGE_S, 7200),              # Berlin, reset 02:30: the hour the spring change skips
         (4 * 3600, 3600, SPRING_CHANGE_S, 7200),
         (9000, 7200, AUTUMN_CHANGE_S, 3600),              # ... 02:30: the hour the autumn change repeats
         (4 * 3600, 7200, AUTUMN_CHANGE_S, 3600),
         (0, -5 * 3600, 0, -5 * 3600)]                     # America/New_York in winter
PARK_DAY_OFFSETS_S = (-86400 - 1, -86400, -3 * 3600 - 1, -3 * 3600, -1, 0, 1, 1800, 3600 - 1, 3600, 3 * 3600,
                      86400 - 1, 86400)
# inside seconds, included min, interval min, price per started interval -> cents
CHARGES = [(0, 60, 30, 500), (3600, 60, 30, 500), (3601, 60, 30, 500), (5400, 60, 30, 500), (5401, 60, 30, 500),
           (-100, 0, 15, 200), (7200, 0, 0, 900), (7200, 30, 0, 0)]


def passages():
    """Passage records (SPEC.md §4.9) sealed with TERMINAL_KEY."""
    mac = record_mac_for(TERMINAL_KEY)
    recs = [Record(KIND_ENTRY, 31, 1, TIME_S, 700, UID, 2, 0, 1200, 5, passage_detail(0, 2, 9), 1, 3,
                   b"\x01\x02\x03\x04"),
            Record(KIND_REFUSAL, 31, 2, TIME_S + 5, 700, UID, 2, 0, 1200, 5,     # the slot in force's MAC, §4.9
                   passage_detail(t.REASON_ALREADY_INSIDE, 2, 9), 0, 3, b"\x01\x02\x03\x04"),
            Record(KIND_TIMED_EXIT, 32, 9, TIME_S + 7200, 700, UID, 3, 1000, 200, 5, passage_detail(0, 2, 9), 0, 3,
                   b"\xaa\xbb\xcc\xdd"),
            Record(KIND_EXIT_FINISHED, 33, 4, TIME_S + 7230, 700, UID, 3, 1000, 200, 5, passage_detail(0, 2, 9), 1,
                   3, b"\xaa\xbb\xcc\xdd")]
    return [r.encode(mac).hex() for r in recs]


def park_days():
    """[reset_s, utc_offset_s, next_change_s, next_offset_s, time_s, park day] around each zone's change."""
    out = []
    for zone in ZONES:
        reset_s, offset_s, change_s, next_offset_s = zone
        # around the change, else around the local reset of 2026-03-29
        anchor = change_s or (20541 * 86400 + reset_s - offset_s)
        for delta in PARK_DAY_OFFSETS_S:
            out.append(list(zone) + [anchor + delta, t.park_day(anchor + delta, *zone)])
    return out


def main():
    """Write ticket.json."""
    keys = card.CardKeys(PARK, UID)
    out = {
        "park_keys": PARK.pack().hex(),
        "terminal_key": TERMINAL_KEY.hex(),
        "uid": UID.hex(),
        "sector_key_a": keys.key_a(t.TICKET_SECTOR).hex(),
        "sector_key_b": keys.key_b(t.TICKET_SECTOR).hex(),
        "infos": [[i.product, i.type, i.area, i.from_day, i.to_day, i.day_limit, i.serial, i.encode(keys).hex()]
                  for i in INFOS],
        "slots": [[b, s.counter, s.entries_left, s.inside, s.day_entries, s.last_time_s, s.area,
                   s.encode(keys, b).hex()] for b, s in SLOTS],
        "charged_slots": [[b, s.counter, s.entries_left, s.day_entries, s.last_time_s, s.area, s.pay_counter,
                           s.encode(keys, b).hex()] for b, s in CHARGED],
        "charge_landed": [[pay, counter, t.TicketSlot(pay_counter=pay).charge_landed(counter)]
                          for pay, counter in CHARGE_LANDED],
        "sale": {str(b): d.hex() for b, d in sorted(t.sale_blocks(keys, INFOS[2], 10, TIME_S).items())},
        "gate_config": GATE.encode().hex(),
        "park_days": park_days(),
        "charges": [list(c) + [t.timed_charge_cents(*c)] for c in CHARGES],
        "passages": passages(),
        "reasons": {str(k): v for k, v in sorted(t.REASON_NAMES.items())},
        "bad_gate_configs": {
            "short": GATE.encode()[:11].hex(),
            "direction 0": (b"\x00\x07\x00" + GATE.encode()[3:]).hex(),
            "re-entry rule 3": (GATE.encode()[:4] + b"\x03" + GATE.encode()[5:]).hex(),
            "reset a day late": (GATE.encode()[:7] + (86400).to_bytes(4, "big") + GATE.encode()[11:]).hex(),
            "offset 19 h": (GATE.encode()[:11] + (19 * 3600).to_bytes(4, "big") + GATE.encode()[15:]).hex(),
            "a new offset with no change": (GATE.encode()[:15] + bytes(4) + GATE.encode()[19:]).hex(),
            "one product short": GATE.encode()[:-1].hex(),
            "product 0": (GATE.encode()[:24] + b"\x00\x00" + GATE.encode()[26:]).hex(),
        },
    }
    with open(os.path.join(HERE, "ticket.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
