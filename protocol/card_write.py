"""Card writes at a desk terminal (SPEC.md §5.7): the desk's half, apart from protocol/frames.py.

Only a desk parses T_CARD_WRITE and reports T_CARD_RESULT, so only a desk (terminal/roles/desk.py)
loads this module: a booth's heap never holds it. The hub's half (card_write_body, parse_card_result)
is in hub_frames.py; the hub takes the status codes from here.
"""

import struct

from protocol.errors import Malformed

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

_CARD_WRITE_BLOCKS_MAX = const(48)
CARD_OK = 0
CARD_NOT_BLANK = 1       # the factory key does not open a sector: not a blank card
CARD_WRITE_FAILED = 2    # the card left or refused a write part-way
_CARD_WRITE_FMT = const(">I7sBB")
_CARD_RESULT_FMT = const(">I7sBBB")


def parse_card_write(body):
    """Return (request_id, uid, [(block, data)]) in ascending block order."""
    head = struct.calcsize(_CARD_WRITE_FMT)
    if len(body) < head:
        raise Malformed("card write header")
    request_id, uid, uid_len, count = struct.unpack_from(_CARD_WRITE_FMT, body, 0)
    if uid_len not in (4, 7) or not 0 < count <= _CARD_WRITE_BLOCKS_MAX or len(body) != head + 17 * count:
        raise Malformed("card write body")
    blocks = []
    for i in range(count):
        at = head + 17 * i
        block = body[at]
        if not 0 < block < 64 or (blocks and block <= blocks[-1][0]):
            raise Malformed("card write blocks must ascend within 1..63")
        blocks.append((block, body[at + 1:at + 17]))
    return request_id, uid[:uid_len], blocks


def card_result_body(request_id, uid, status, block=0):
    """T_CARD_RESULT: how a card write ended (CARD_OK or the failure and its block)."""
    return struct.pack(_CARD_RESULT_FMT, request_id, bytes(uid) + bytes(7 - len(uid)), len(uid), status, block)
