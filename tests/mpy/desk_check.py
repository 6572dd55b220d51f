"""Check protocol/desk.py against protocol/vectors/desk.json; runs on MicroPython and CPython.

usage: <interpreter> tests/mpy/desk_check.py protocol/vectors/desk.json
Prints "desk vectors ok <n>" at the end.
"""

import json
import sys

from binascii import unhexlify

from protocol import desk, frames
from protocol.errors import Malformed
from vector_checks import checks, expect, refused


def blocks_of(pairs):
    return [(b, unhexlify(d)) for b, d in pairs]


def main(path):
    with open(path) as f:
        v = json.load(f)
    frame_mac = frames.frame_mac_for(unhexlify(v["desk_key"]))
    expect(desk.DESK_SOURCE_ID == v["desk_source_id"], "desk source id")
    expect((frames.T_DESK_REPORT, frames.T_DESK_ORDER) == (v["types"]["report"], v["types"]["order"]), "types")
    for o in v["orders"]:
        uid, body = unhexlify(o["uid"]), unhexlify(o["body"])
        wrapped = desk.wrap_key(frame_mac, o["request_id"], unhexlify(o["key"]))
        expect(wrapped == unhexlify(o["wrapped"]), "wrapped key %d" % o["request_id"])
        made = desk.order_body(o["request_id"], o["op"], uid, o["key_type"], wrapped, blocks_of(o["blocks"]))
        expect(made == body, "order body %d" % o["request_id"])
        request_id, op, got_uid, key_type, got_wrapped, blocks = desk.parse_order(body)
        expect((request_id, op, got_uid, key_type) == (o["request_id"], o["op"], uid, o["key_type"]), "order fields")
        expect(desk.unwrap_key(frame_mac, request_id, got_wrapped) == unhexlify(o["key"]), "unwrapped key")
        expect(blocks == blocks_of(o["blocks"]), "order blocks")
    for r in v["reports"]:
        body = unhexlify(r["body"])
        expect(desk.report_body(r["request_id"], r["status"], unhexlify(r["uid"]), blocks_of(r["blocks"])) == body,
               "report body %d" % r["request_id"])
        expect(desk.parse_report(body) == (r["request_id"], r["status"], unhexlify(r["uid"]),
                                           dict(blocks_of(r["blocks"]))), "report fields")
    expect(list(desk.read_blocks(desk.OP_TICKET_WRITE)) == v["ticket_blocks"] and desk.read_blocks(desk.OP_WRITE)
           == desk.READ_BLOCKS, "blocks read back")
    for bad in v["malformed_orders"]:
        expect(refused(desk.parse_order, unhexlify(bad), error=Malformed), "malformed order refused")
    for bad in v["malformed_reports"]:
        expect(refused(desk.parse_report, unhexlify(bad), error=Malformed), "malformed report refused")
    print("desk vectors ok", checks[0])


main(sys.argv[1])
