"""Regenerate spend_rules.json from protocol/spend_rules.py and protocol/config.py (CPython; run from the repo root).

    .venv/bin/python protocol/vectors/generate_spend_rules.py

Only regenerate on a deliberate format change: terminals in the field parse these bytes (SPEC.md §5.10).
"""

import json
import os

from protocol import card
from protocol import spend_rules as s
from protocol.config import ROLE_POS, Config
from protocol.record import KIND_DEBIT, KIND_REFUND, KIND_SALE_LINE, Record, record_mac_for

HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL_KEY = bytes(range(0x40, 0x60))
UID = bytes.fromhex("04a1b2c3d4e5f6")
RULES = [s.SpendRules(1),
         s.SpendRules(7, 1000, 5000, s.TYPE_VISITOR, 0b110, 3000, 2),
         s.SpendRules(0xFFFF, card.BALANCE_MAX_CENTS, card.BALANCE_MAX_CENTS, s.TYPE_STAFF, 1, card.BALANCE_MAX_CENTS,
                      15)]
# Tails a terminal must refuse (it then spends by the park's caps alone): too short, or a field out of range.
BAD = ["", "0001", "0000" + "00" * 16,                          # version 0
       "0001" + "00800000" + "00" * 12,                          # a cap over the balance maximum
       "0001" + "00" * 8 + "00" + "ffff" + "00" * 5,             # no card type
       "0001" + "00" * 8 + "03" + "0000" + "00" * 5,             # no tier
       "0001" + "00" * 8 + "04" + "ffff" + "00" * 5,             # an unknown card type
       "0001" + "00" * 8 + "03" + "ffff" + "00000000" + "10"]    # member tier 16
# (rules index, tier, info flags) -> allows, member
CARDS = [(0, 0, 0), (0, 2, card.FLAG_STAFF), (1, 0, 0), (1, 1, 0), (1, 2, 0), (1, 2, card.FLAG_STAFF), (2, 0, 0),
         (2, 0, card.FLAG_STAFF), (2, 15, card.FLAG_STAFF)]


def records():
    """Journal records and what spend_rules.debit_cents reads of them for card 700: a debit, another card's,
    a refund, a sale line, a debit of the balance maximum."""
    mac = record_mac_for(TERMINAL_KEY)
    recs = [Record(KIND_DEBIT, 31, 1, 1795600000, 700, UID, 2, 1234, 8766, 11, 100, 1, 3),
            Record(KIND_DEBIT, 31, 2, 1795600001, 701, UID, 2, 999, 1, 11, 0, 1, 3),
            Record(KIND_REFUND, 31, 3, 1795600002, 700, UID, 3, 500, 9266, 0, 0, 1, 3),
            Record(KIND_SALE_LINE, 31, 4, 1795600003, 700, UID, 4, 800, 1, 12, 0, 1, 3),
            Record(KIND_DEBIT, 31, 5, 1795600004, 700, UID, 4, card.BALANCE_MAX_CENTS, 0, 0, 0, 1, 3)]
    expected = [1234, 0, 0, 0, card.BALANCE_MAX_CENTS]
    return [[r.encode(mac).hex(), want] for r, want in zip(recs, expected)]


def main():
    """Write spend_rules.json."""
    cfg = Config(version=9, role=ROLE_POS, merchant_id=3, category=2)
    cfg.tail = RULES[1].encode() + b"\xee\xee"     # bytes a newer hub adds after the rules are ignored
    out = {
        "rules": [[list(r.fields()), r.encode().hex()] for r in RULES],
        "bad": BAD,
        "cards": [[i, tier, flags, RULES[i].allows(tier, flags), RULES[i].member(tier)] for i, tier, flags in CARDS],
        "config": cfg.encode().hex(),
        "records": records(),
    }
    with open(os.path.join(HERE, "spend_rules.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
