"""Regenerate desk.json: the desk source and desk order/report frames (SPEC.md §4.10, §5.9); run from the repo root.

    .venv/bin/python protocol/vectors/generate_desk.py

Only regenerate on a deliberate format change: desk terminals in the field speak these bytes.
"""

import json
import os

from protocol import card, card_issue, desk, frames, ticket

HERE = os.path.dirname(os.path.abspath(__file__))
PARK = card_issue.ParkKeys(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
DESK_KEY = bytes(range(100, 132))
UID = bytes.fromhex("04a1b2c3d4e5f6")


def main():
    frame_mac = frames.frame_mac_for(DESK_KEY)
    keys = card.CardKeys(PARK, UID)
    slot = card.WalletSlot(2, 7700, 0, 20782, 7)
    blocks = [(5, bytes(16)), (6, slot.encode(keys, 6))]
    orders = []
    for request_id, op, uid, key_type, key, write in (
            (1, desk.OP_IDENTIFY, desk.ANY_CARD, desk.KEY_A, bytes(6), []),
            (0x01020304, desk.OP_READ, UID, desk.KEY_B, keys.key_b(), []),
            (0xFFFFFFFF, desk.OP_WRITE, UID, desk.KEY_B, keys.key_b(), blocks[1:]),
            # a ticket rewrite (SPEC.md §3.12): sector 3's key B, both slots blanked, the info, slot A last
            (0x0A0B0C0D, desk.OP_TICKET_WRITE, UID, desk.KEY_B, keys.key_b(ticket.TICKET_SECTOR),
             ticket.rewrite_blocks(keys, ticket.TicketInfo(3, ticket.TYPE_COUNT, 0, 0, 0, 0, 9), 10, 1795600000))):
        wrapped = desk.wrap_key(frame_mac, request_id, key)
        orders.append({"request_id": request_id, "op": op, "uid": uid.hex(), "key_type": key_type, "key": key.hex(),
                       "wrapped": wrapped.hex(), "blocks": [[b, d.hex()] for b, d in write],
                       "body": desk.order_body(request_id, op, uid, key_type, wrapped, write).hex()})
    reports = []
    for request_id, status, read in ((1, desk.DESK_OK, []), (0x01020304, desk.DESK_OK, blocks),
                                     (7, desk.DESK_WRITE_FAILED, [])):
        reports.append({"request_id": request_id, "status": status, "uid": UID.hex(),
                        "blocks": [[b, d.hex()] for b, d in read],
                        "body": desk.report_body(request_id, status, UID, read).hex()})
    out = {"desk_key": DESK_KEY.hex(), "desk_source_id": desk.DESK_SOURCE_ID,
           "types": {"report": frames.T_DESK_REPORT, "order": frames.T_DESK_ORDER},
           "orders": orders, "reports": reports,
           "ticket_blocks": list(desk.read_blocks(desk.OP_TICKET_WRITE)),
           "malformed_orders": [desk.order_body(1, desk.OP_READ, UID, desk.KEY_B, bytes(6)).hex()[:-2],
                                # a ticket write without blocks
                                "00000001" + "04" + UID.hex() + "07" + "01" + "00" * 6 + "00",
                                "00000001" + "04" + "00" * 7 + "04" + "00" + "00" * 6 + "00"],
           "malformed_reports": [desk.report_body(1, 0, UID, blocks).hex()[:-2]]}
    with open(os.path.join(HERE, "desk.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
