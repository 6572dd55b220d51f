"""A booth's staff list and the park's UTC offset: the T_STAFF body (SPEC.md §5.11). A booth loads it when the list
comes and when a staff card is tapped; the hub encodes it (protocol/hub_frames.py).
"""

import struct

from protocol.errors import Malformed
from protocol.park_day import zone_ok

STAFF_MAX = 512     # staff cards one T_STAFF body names
STAFF_HEAD_FMT = ">iIiH"    # utc_offset_s, next_change_s, next_offset_s, count; then count x card_no (u32)
STAFF_HEAD_SIZE = 14


def parse_staff(body):
    """((utc_offset_s, next_change_s, next_offset_s), card numbers as count x u32 bytes) of a T_STAFF body (SPEC.md
    §5.11); Malformed for a wrong length, an offset out of range or numbers not ascending."""
    if len(body) < STAFF_HEAD_SIZE:
        raise Malformed("staff list length")
    offset_s, change_s, next_offset_s, count = struct.unpack_from(STAFF_HEAD_FMT, body, 0)
    if count > STAFF_MAX or len(body) != STAFF_HEAD_SIZE + 4 * count or not zone_ok(offset_s, change_s, next_offset_s):
        raise Malformed("staff list length, count or UTC offset out of range")
    cards = bytes(body[STAFF_HEAD_SIZE:])
    last = 0
    for i in range(count):
        card_no = struct.unpack_from(">I", cards, 4 * i)[0]
        if card_no <= last:
            raise Malformed("staff card numbers not ascending")
        last = card_no
    return (offset_s, change_s, next_offset_s), cards


def staff_holds(cards, card_no):
    """True when the ascending u32 card numbers `cards` (a T_STAFF list) hold card_no: a binary search in place."""
    low, high = 0, len(cards) // 4
    while low < high:
        mid = (low + high) // 2
        found = struct.unpack_from(">I", cards, 4 * mid)[0]
        if found == card_no:
            return True
        if found < card_no:
            low = mid + 1
        else:
            high = mid
    return False
