"""Regenerate replacement.json: a lost card's replacement as a terminal meets it (SPEC.md §4.13); run from the repo
root.

    .venv/bin/python protocol/vectors/generate_replacement.py

The new card's first write (its info with the lost card's tier and deposit, slot 5 at counter 1 holding the
balance moved) and the desk source's transfer-in record of it (kind 6, version 2); a late debit of the lost card
as its offline booth uploads it. Only regenerate on a deliberate format change: cards and records in the field
carry these bytes.
"""

import json
import os

from protocol import card, card_issue, desk
from protocol import record as R

HERE = os.path.dirname(os.path.abspath(__file__))
PARK = card_issue.ParkKeys(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
SOURCE_KEY = bytes(range(140, 172))     # the desk source's record key (SPEC.md §4.10)
BOOTH_KEY = bytes(range(180, 212))
NEW_UID = bytes.fromhex("04aabbccdd0101")
OLD_UID = bytes.fromhex("04a1b2c3d4e5f6")
OLD_CARD, NEW_CARD, DESK_TERMINAL, BOOTH = 100001, 100002, 1, 2
DAY = 20788                     # the replacement's day (UTC days since 1970)
TIME_S = DAY * 86400 + 36000
BALANCE, HOLD = 12340, 3000     # the lost card's balance at the hub and its hold: 9340 moves now


def main():
    """Write replacement.json."""
    keys = card.CardKeys(PARK, NEW_UID)
    info = card.CardInfo(NEW_CARD, card.TIER_GOLD, 0, 0, 0xFFFF, DAY, 500)
    slot = card.WalletSlot(1, BALANCE - HOLD, 0, DAY, DESK_TERMINAL)
    slot_block = slot.encode(keys, card.SLOT_BLOCKS[0])
    transfer_in = R.Record(R.KIND_TRANSFER_IN, desk.DESK_SOURCE_ID, 7, TIME_S, NEW_CARD, NEW_UID, 1, BALANCE - HOLD,
                           BALANCE - HOLD, item=DESK_TERMINAL, card_mac=slot_block[12:], version=R.RECORD_V2)
    old_keys = card.CardKeys(PARK, OLD_UID)
    old_slot = card.WalletSlot(9, BALANCE - 800, 800, DAY, BOOTH).encode(old_keys, card.SLOT_BLOCKS[1])
    late = R.Record(R.KIND_DEBIT, BOOTH, 41, TIME_S - 600, OLD_CARD, OLD_UID, 9, 800, BALANCE - 800,
                    card_mac=old_slot[12:], flags=R.FLAG_OFFLINE)
    out = {"park_keys": PARK.pack().hex(), "source_key": SOURCE_KEY.hex(), "booth_key": BOOTH_KEY.hex(),
           "desk_source_id": desk.DESK_SOURCE_ID, "balance": BALANCE, "hold": HOLD,
           "new_card": {"uid": NEW_UID.hex(), "card_no": NEW_CARD, "tier": card.TIER_GOLD, "deposit_cents": 500,
                        "issue_day": DAY, "desk_terminal": DESK_TERMINAL, "info_block": info.encode(keys).hex(),
                        "slot_block": card.SLOT_BLOCKS[0], "slot": slot_block.hex()},
           "transfer_in": transfer_in.encode(R.record_mac_for(SOURCE_KEY)).hex(),
           "late_debit": {"uid": OLD_UID.hex(), "slot": old_slot.hex(),
                          "record": late.encode(R.record_mac_for(BOOTH_KEY)).hex()}}
    with open(os.path.join(HERE, "replacement.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
