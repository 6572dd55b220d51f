"""The hub's half of the frame bodies (SPEC.md §5.3): it parses what terminals
send and builds what it sends them.

frames.py holds the envelope and the terminal's half (it builds uplink bodies
and parses downlink ones) over the same formats. The halves live apart so a
terminal never loads code it does not run: on the ESP32 every imported
function costs heap.
"""

import struct

from protocol import staff_list
from protocol.card import CARD_NO_MAX, CARD_NO_MIN
from protocol.errors import Malformed
from protocol.frames import (BODY_MAX, FRAME_MAC_SIZE, HEADER_SIZE, SHIFT_REQUIRED, UPLOAD_RECORDS_MAX, status_body,
                             upload_parts)
from protocol.record import RECORD_SIZES

# Limits only the hub checks (operator input, the broker's packet limit). They stand here, not in
# frames.py, because every name a terminal's modules define is interned on its heap.
TERMINAL_ID_MIN = 1        # H in the frame header; 0 is no terminal
TERMINAL_ID_MAX = 0xFFFF
FRAME_SIZE_MAX = HEADER_SIZE + BODY_MAX + FRAME_MAC_SIZE
# T_CONFIG field limits and the body formats: protocol/config.py and frames.py hold the same values
# as underscored const()s, unnamed on the terminal (tests/test_protocol.py checks they agree).
MERCHANT_ID_MAX = 0xFFFF
PARK_ID_MAX = 0xFFFF
PRICE_MAX_CENTS = (1 << 23) - 1
OFFLINE_S_MAX = 7 * 86400
STATUS_FMT = ">IBB8sHIIIIIIBH"
STATUS_SHORT_FMT = ">IBB8sHIIIIIIB"   # without memory_errors, as terminals before it sent (SPEC.md §5.3)
SYNC_FMT = ">IHH"
SYNC_PRICES_FMT = ">HII"   # a booth's price list merchant and version, its discounts version (SPEC.md §5.3)
SYNC_SHORT_FMT = ">IH"    # without chunk_cards_max, as terminals before it sent (SPEC.md §5.3)
AUTH_FMT = ">I7sB"
ACK_FMT = ">IHH"
BL_FMT = ">IIBHHHH"
COMMAND_FMT = ">BI"
CARD_WRITE_BLOCKS_MAX = 48
CARD_WRITE_FMT = ">I7sBB"
CARD_RESULT_FMT = ">I7sBBB"

# Uplink bodies (terminal -> hub)


class Status:
    """T_STATUS body: the terminal's retained health report (a terminal builds it with frames.status_body)."""

    def __init__(self, boot=0, online=1, role=0, firmware=b"", config_version=0, blacklist_version=0,
                 queue_depth=0, oldest_unsynced_age_s=0, free_heap=0, uptime_s=0, last_seq=0, authorised=0,
                 memory_errors=0):
        self.boot = boot
        self.online = online
        self.role = role
        self.firmware = firmware
        self.config_version = config_version
        self.blacklist_version = blacklist_version
        self.queue_depth = queue_depth
        self.oldest_unsynced_age_s = oldest_unsynced_age_s
        self.free_heap = free_heap
        self.uptime_s = uptime_s
        self.last_seq = last_seq
        self.authorised = authorised
        self.memory_errors = memory_errors

    def encode(self):
        """Return the body bytes."""
        return status_body(self.boot, self.online, self.role, self.firmware, self.config_version,
                           self.blacklist_version, self.queue_depth, self.oldest_unsynced_age_s, self.free_heap,
                           self.uptime_s, self.last_seq, self.authorised, self.memory_errors)


def upload_body(entries):
    """Body of T_UPLOAD from [(status, record_bytes)], oldest first, joined (the simulated terminals, the vectors)."""
    return b"".join(upload_parts(entries))


def parse_status(body):
    """Parse a T_STATUS body into a Status (memory_errors 0 in a body without it)."""
    if len(body) == struct.calcsize(STATUS_SHORT_FMT):
        v = struct.unpack(STATUS_SHORT_FMT, body)
    elif len(body) == struct.calcsize(STATUS_FMT):
        v = struct.unpack(STATUS_FMT, body)
    else:
        raise Malformed("status length")
    return Status(v[0], v[1], v[2], v[3].rstrip(b"\x00"), *v[4:])


def parse_upload(body):
    """Return [(status, record_bytes)] from a T_UPLOAD body; a record is sized by its version (SPEC.md §4.1)."""
    if not body:
        raise Malformed("empty upload")
    count = body[0]
    if count > UPLOAD_RECORDS_MAX:
        raise Malformed("upload length does not match its count")
    out = []
    at = 1
    for _ in range(count):
        if at + 2 > len(body):
            raise Malformed("upload length does not match its count")
        version = body[at + 1]
        size = RECORD_SIZES.get(version)
        if size is None:
            # A version this hub does not know: as the last entry it is the rest of the body and
            # goes to the record checks (SPEC.md §5.4); before others its size is unknown, and a
            # guess could misplace every record after it, so nothing of the upload is split.
            if len(out) != count - 1:
                raise Malformed("upload: record %d has unknown version %d" % (len(out), version))
            size = len(body) - at - 1
        end = at + 1 + size
        if end > len(body):
            raise Malformed("upload length does not match its count")
        out.append((body[at], body[at + 1:end]))
        at = end
    if at != len(body):
        raise Malformed("upload length does not match its count")
    return out


def parse_sync(body):
    """Return (blacklist_version, config_version, chunk_cards_max); a 6-byte body has chunk_cards_max 0.

    A 12-byte body also carries the terminal's credits version (sync_credits_version)."""
    if len(body) == struct.calcsize(SYNC_SHORT_FMT):
        return struct.unpack(SYNC_SHORT_FMT, body) + (0,)
    if len(body) not in _SYNC_LENGTHS:
        raise Malformed("sync length")
    return struct.unpack_from(SYNC_FMT, body, 0)


def sync_credits_version(body):
    """The pending-credits version a T_SYNC says the terminal holds (SPEC.md §8.2); None: it does not say."""
    if len(body) < _SYNC_CREDITS_END:
        return None
    return struct.unpack_from(">I", body, struct.calcsize(SYNC_FMT))[0]


def parse_sync_prices(body):
    """Return (merchant_id, price_list_version, discounts_version) a booth's T_SYNC appends, or None (SPEC.md §5.3)."""
    if len(body) != _SYNC_CREDITS_END + struct.calcsize(SYNC_PRICES_FMT):
        return None
    return struct.unpack_from(SYNC_PRICES_FMT, body, _SYNC_CREDITS_END)


# T_SYNC's lengths (SPEC.md §5.3): the versions alone; with the credits version; with a booth's prices after it.
_SYNC_CREDITS_END = struct.calcsize(SYNC_FMT) + 4
_SYNC_LENGTHS = (struct.calcsize(SYNC_FMT), _SYNC_CREDITS_END, _SYNC_CREDITS_END + struct.calcsize(SYNC_PRICES_FMT))


def parse_auth(body):
    """Return (admin_card_no, uid)."""
    if len(body) != struct.calcsize(AUTH_FMT):
        raise Malformed("auth length")
    card_no, uid, uid_len = struct.unpack(AUTH_FMT, body)
    if uid_len not in (4, 7):
        raise Malformed("UID length")
    return card_no, uid[:uid_len]


def parse_card_result(body):
    """Return (request_id, uid, status, block)."""
    if len(body) != struct.calcsize(CARD_RESULT_FMT):
        raise Malformed("card result length")
    request_id, uid, uid_len, status, block = struct.unpack(CARD_RESULT_FMT, body)
    if uid_len not in (4, 7):
        raise Malformed("UID length")
    return request_id, uid[:uid_len], status, block


# Downlink bodies (hub -> terminal)


def ack_body(upto_seq, applied, rejected):
    """T_ACK: every record with seq <= upto_seq is durably stored at the hub."""
    return struct.pack(ACK_FMT, upto_seq, applied, rejected)


def blacklist_body(from_version, to_version, mode, chunk, chunks, adds, removes):
    """T_BLACKLIST: a delta, or one chunk of a snapshot; card numbers ascending, each within CARD_NO_MIN..MAX."""
    for numbers in (adds, removes):
        for card_no in numbers:
            if not CARD_NO_MIN <= card_no <= CARD_NO_MAX:
                raise Malformed("blacklist card number %r outside %d..%d" % (card_no, CARD_NO_MIN, CARD_NO_MAX))
    head = struct.pack(BL_FMT, from_version, to_version, mode, chunk, chunks, len(adds), len(removes))
    return head + struct.pack(">%dI" % len(adds), *adds) + struct.pack(">%dI" % len(removes), *removes)


def command_body(command, argument=0):
    """T_COMMAND: an instruction from the hub."""
    return struct.pack(COMMAND_FMT, command, argument)


def card_write_body(request_id, uid, blocks):
    """T_CARD_WRITE: write {block: 16 bytes} onto the blank card with this UID."""
    if not 0 < len(blocks) <= CARD_WRITE_BLOCKS_MAX or len(uid) not in (4, 7):
        raise Malformed("card write: 1..%d blocks and a 4 or 7 byte UID" % CARD_WRITE_BLOCKS_MAX)
    parts = [struct.pack(CARD_WRITE_FMT, request_id, bytes(uid) + bytes(7 - len(uid)), len(uid), len(blocks))]
    for block in sorted(blocks):
        data = blocks[block]
        if not 0 < block < 64 or len(data) != 16:
            raise Malformed("card write: blocks 1..63 of 16 bytes")
        parts.append(bytes((block,)))
        parts.append(bytes(data))
    return b"".join(parts)


def shifts_body(required):
    """The T_SHIFTS body (SPEC.md §5.3): one flags byte (terminals read it with protocol.frames.parse_shifts)."""
    return bytes((SHIFT_REQUIRED if required else 0,))


def staff_body(zone, card_nos):
    """The T_STAFF body (SPEC.md §5.11): the park's zone fields (utc_offset_s, next_change_s, next_offset_s) and the
    staff card numbers of a booth's merchant (booths read it with protocol.staff_list.parse_staff)."""
    cards = sorted(set(card_nos))
    if len(cards) > staff_list.STAFF_MAX or (cards and not CARD_NO_MIN <= cards[0] <= cards[-1] <= CARD_NO_MAX):
        raise Malformed("staff list: at most %d card numbers of %d..%d"
                        % (staff_list.STAFF_MAX, CARD_NO_MIN, CARD_NO_MAX))
    return struct.pack(staff_list.STAFF_HEAD_FMT, zone[0], zone[1], zone[2], len(cards)) + struct.pack(
        ">%dI" % len(cards), *cards)
