"""The front desk on the wire: the hub's desk source and the desk order/report frames (SPEC.md §4.6, §5.9).

Desk records are made by the hub, not by a terminal: they carry terminal id
DESK_SOURCE_ID, seqs of that source's own space and a MAC under the source's
key, which only the hub holds; `item` names the desk terminal that wrote the
card. A desk terminal only reads and writes cards as the hub orders
(T_DESK_ORDER) and reports what the card holds after (T_DESK_REPORT).

Only a desk imports this module (terminal.roles.desk), and the hub.
"""

import struct

from protocol import crypto
from protocol.errors import Malformed
from protocol.frames import T_DESK_ORDER, T_DESK_REPORT  # noqa: F401 - re-exported

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

DESK_SOURCE_ID = 0xFFFE        # record terminal id of every hub-made desk record; no terminal may take it


OP_READ = 1                    # read blocks 4..6 of the card `uid` with the order's key
OP_WRITE = 2                   # write the order's blocks in order, then read 4..6 back
OP_IDENTIFY = 3                # report the UID of whatever card lies on the desk (uid ANY_CARD, no key used)
OP_TICKET_WRITE = 4            # open sector 3 with the order's key, write its blocks in order, read 12..14 back

_OPS = (OP_READ, OP_WRITE, OP_IDENTIFY, OP_TICKET_WRITE)
_WRITES = (OP_WRITE, OP_TICKET_WRITE)

DESK_OK = 0
DESK_NOT_OURS = 1              # the key does not open the card's sector: not a card of this park (or not blank)
DESK_WRITE_FAILED = 2          # the card left or refused part-way through the write
DESK_READ_FAILED = 3           # written (or not asked to write), but the card left before it was read back

KEY_A = 0
KEY_B = 1

READ_BLOCKS = (4, 5, 6)        # the info block and both wallet slots (SPEC.md §3.1)
TICKET_BLOCKS = (12, 13, 14)   # the ticket info and both ticket state slots (SPEC.md §3.8, §3.12)
_ORDER_FMT = const(">IB7sBB6sB")   # request_id, op, uid, uid_len, key_type, wrapped key, block count
_REPORT_FMT = const(">IB7sBB")     # request_id, status, uid, uid_len, block count
_BLOCKS_MAX = const(4)
_LABEL_DESK_KEY = const(b"DKY")
ANY_CARD = b"\x00" * 4         # the UID of an order for whatever card lies on the desk (reads only)


def wrap_key(frame_mac, request_id, key):
    """The sector key as the order carries it: XORed with a pad from the desk's frame key and the request id."""
    pad = crypto.derive(frame_mac, _LABEL_DESK_KEY, struct.pack(">I", request_id))
    return bytes(k ^ p for k, p in zip(key, pad))


unwrap_key = wrap_key          # XOR is its own inverse


def _blocks_part(blocks):
    if len(blocks) > _BLOCKS_MAX:
        raise Malformed("a desk frame carries at most %d blocks" % _BLOCKS_MAX)
    parts = []
    for block, data in blocks:
        if len(data) != 16 or not 0 <= block <= 63:
            raise Malformed("a desk block is a block number and 16 bytes")
        parts.append(bytes((block,)) + bytes(data))
    return b"".join(parts)


def _parse_blocks(body, at, count):
    if count > _BLOCKS_MAX or len(body) != at + 17 * count:
        raise Malformed("desk frame length")
    return [(body[at + 17 * i], bytes(body[at + 17 * i + 1:at + 17 * i + 17])) for i in range(count)]


def _uid_field(uid):
    if len(uid) not in (4, 7):
        raise Malformed("UID is 4 or 7 bytes")
    return bytes(uid) + bytes(7 - len(uid))


def order_body(request_id, op, uid, key_type, wrapped_key, blocks=()):
    """T_DESK_ORDER body: op on the card `uid` (ANY_CARD with OP_IDENTIFY), blocks to write in order."""
    if op not in _OPS or (op in _WRITES) != bool(blocks) or len(wrapped_key) != 6:
        raise Malformed("a desk order reads, or writes 1..%d blocks, with a 6-byte key" % _BLOCKS_MAX)
    return struct.pack(_ORDER_FMT, request_id, op, _uid_field(uid), len(uid), key_type, wrapped_key,
                       len(blocks)) + _blocks_part(blocks)


def parse_order(body):
    """(request_id, op, uid, key_type, wrapped_key, [(block, 16 bytes)]) of a T_DESK_ORDER body."""
    head = struct.calcsize(_ORDER_FMT)
    if len(body) < head:
        raise Malformed("desk order length")
    request_id, op, uid, uid_len, key_type, wrapped, count = struct.unpack_from(_ORDER_FMT, body, 0)
    if uid_len not in (4, 7) or op not in _OPS or key_type not in (KEY_A, KEY_B):
        raise Malformed("desk order fields")
    blocks = _parse_blocks(body, head, count)
    if (op in _WRITES) != bool(blocks):
        raise Malformed("a desk write carries blocks, a read none")
    return request_id, op, bytes(uid[:uid_len]), key_type, bytes(wrapped), blocks


def read_blocks(op):
    """The blocks a desk reads back after an order of op (its first one names the sector opened)."""
    return TICKET_BLOCKS if op == OP_TICKET_WRITE else READ_BLOCKS


def report_body(request_id, status, uid, blocks=()):
    """T_DESK_REPORT body: how the order ended and the blocks read after it ([] when none could be)."""
    return struct.pack(_REPORT_FMT, request_id, status, _uid_field(uid), len(uid), len(blocks)) + _blocks_part(blocks)


def parse_report(body):
    """(request_id, status, uid, {block: 16 bytes}) of a T_DESK_REPORT body."""
    head = struct.calcsize(_REPORT_FMT)
    if len(body) < head:
        raise Malformed("desk report length")
    request_id, status, uid, uid_len, count = struct.unpack_from(_REPORT_FMT, body, 0)
    if uid_len not in (4, 7):
        raise Malformed("desk report UID length")
    return request_id, status, bytes(uid[:uid_len]), dict(_parse_blocks(body, head, count))
