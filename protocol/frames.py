"""MQTT payload frames between terminal and hub: header, body, MAC (SPEC.md §5).

A codec only: bytes in, values out, no I/O. Every frame carries the sending
terminal's id, a per-direction counter and the sender's clock, and is MACed
with a key derived from the terminal's key.

The bodies here are the terminal's half: it builds the uplink ones and parses
the downlink ones. hub_frames.py holds the other half over the same formats.
"""

import struct

from protocol import crypto
from protocol.errors import BadMac, Malformed, Unsupported
from protocol.config import (ROLE_DESK, ROLE_GATE, ROLE_NAMES, ROLE_POS,  # noqa: F401 - re-exported
                             ROLE_RIDE, Config)
from protocol.record import RECORD_SIZES

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

# Names a terminal module defines are interned on the terminal's heap (about 7 KB for the next
# qstr pool): what only this codec reads is an underscored const(), which mpy-cross leaves unnamed.
_MAGIC = const(b"PK")
_FRAME_VERSION = const(1)
_HEADER_FMT = const(">2sBBHIIH")   # magic, version, type, terminal_id, counter, time_s, body_len
HEADER_SIZE = 16
FRAME_MAC_SIZE = 8
BODY_MAX = 60000           # well under Mosquitto's default limits and the terminal's RAM
UPLOAD_RECORDS_MAX = 64

# Uplink (terminal -> hub)
T_UPLOAD = 0x10
T_STATUS = 0x11
T_SYNC = 0x12
T_AUTH = 0x13
T_CARD_RESULT = 0x14
T_DESK_REPORT = 0x15     # protocol.desk: what the card on a desk holds after a desk order
# Downlink (hub -> terminal)
T_ACK = 0x20
T_BLACKLIST = 0x21
T_CONFIG = 0x22
T_TIME = 0x23
T_COMMAND = 0x24
T_CARD_WRITE = 0x25
T_PRICE_LIST = 0x26     # SPEC.md §7.1, taken by a booth (terminal/prices.py)
T_DISCOUNTS = 0x27      # SPEC.md §7.2
T_DESK_ORDER = 0x28     # protocol.desk: read, or write and read back, a card at a desk
T_CREDITS = 0x29        # pending credits to deliver (protocol/credits.py, SPEC.md §8)
T_SHIFTS = 0x2B         # a booth's staff shift setting (SPEC.md §4.14, §5.3)
T_STAFF = 0x2C          # a booth's merchant's staff cards and the park's UTC offset (SPEC.md §5.11)

DOWNLINK_TYPES = (T_ACK, T_BLACKLIST, T_CONFIG, T_TIME, T_COMMAND, T_CARD_WRITE, T_PRICE_LIST, T_DISCOUNTS,
                  T_DESK_ORDER, T_CREDITS, T_SHIFTS, T_STAFF)
SHIFT_REQUIRED = 0x01   # T_SHIFTS flag: refuse sales while no staff shift is open

# Commands (SPEC.md §5.3, type 0x24)
CMD_AUTH_CONFIRM = 1
CMD_AUTH_REJECT = 2
CMD_DEAUTHORISE = 3
CMD_LOCK = 4
CMD_REPORT_STATUS = 5

_STATUS_FMT = const(">IBB8sHIIIIIIBH")
_SYNC_FMT = const(">IHH")
_AUTH_FMT = const(">I7sB")
_ACK_FMT = const(">IHH")
_BL_FMT = const(">IIBHHHH")
_COMMAND_FMT = const(">BI")


def frame_mac_for(terminal_key):
    """Return the Mac that seals this terminal's frames in both directions (SPEC.md §2.3)."""
    return crypto.Mac(crypto.derive(terminal_key, crypto.LABEL_FRAME))


class Frame:
    """A decoded, verified frame."""

    def __init__(self, ftype, terminal_id, counter, time_s, body):
        self.type = ftype
        self.terminal_id = terminal_id
        self.counter = counter
        self.time_s = time_s
        self.body = body


def encode(frame_mac, ftype, terminal_id, counter, time_s, body=b""):
    """Return header + body + MAC; body is bytes or a list of its parts (upload_parts), joined only
    into the frame: on a terminal's heap the body and the frame never need room at once."""
    parts = body if isinstance(body, list) else [body]
    size = sum(len(part) for part in parts)
    if size > BODY_MAX:
        raise Malformed("frame body over %d bytes" % BODY_MAX)
    header = struct.pack(_HEADER_FMT, _MAGIC, _FRAME_VERSION, ftype, terminal_id, counter, time_s, size)
    parts.insert(0, header)
    parts.append(frame_mac.tag(FRAME_MAC_SIZE, *parts))
    return b"".join(parts)  # the only copy of the body


def encode_into(buf, frame_mac, ftype, terminal_id, counter, time_s, parts):
    """encode() into buf, a bytearray kept for every frame of one kind (a terminal's uploads): returns a
    memoryview of the frame in it, valid until the next frame is encoded into buf. The same bytes as encode."""
    at = HEADER_SIZE
    for part in parts:
        at += len(part)
    if at - HEADER_SIZE > BODY_MAX or at + FRAME_MAC_SIZE > len(buf):
        raise Malformed("frame body over %d bytes" % min(BODY_MAX, len(buf) - HEADER_SIZE - FRAME_MAC_SIZE))
    struct.pack_into(_HEADER_FMT, buf, 0, _MAGIC, _FRAME_VERSION, ftype, terminal_id, counter, time_s,
                     at - HEADER_SIZE)
    at = HEADER_SIZE
    for part in parts:
        buf[at:at + len(part)] = part
        at += len(part)
    view = memoryview(buf)
    view[at:at + FRAME_MAC_SIZE] = frame_mac.tag(FRAME_MAC_SIZE, view[:at])
    return view[:at + FRAME_MAC_SIZE]


def peek_terminal(data):
    """Return (type, terminal_id) from an unverified frame, to find the key to verify it with."""
    if len(data) < HEADER_SIZE + FRAME_MAC_SIZE:
        raise Malformed("frame shorter than header and MAC")
    magic, version, ftype, terminal_id, _c, _t, body_len = struct.unpack_from(_HEADER_FMT, data, 0)
    if magic != _MAGIC:
        raise Malformed("bad magic")
    if version != _FRAME_VERSION:
        raise Unsupported("frame version %d" % version)
    if body_len > BODY_MAX or len(data) != HEADER_SIZE + body_len + FRAME_MAC_SIZE:
        raise Malformed("frame length does not match header")
    return ftype, terminal_id


def decode(frame_mac, data):
    """Verify and parse a frame; raise Malformed, Unsupported or BadMac. The body is bytes, or a memoryview of
    data when data is one (a terminal's read buffer: verified in place, valid while data is)."""
    ftype, terminal_id = peek_terminal(data)
    end = len(data) - FRAME_MAC_SIZE
    mv = memoryview(data)
    if not crypto.equal(frame_mac.tag(FRAME_MAC_SIZE, mv[:end]), mv[end:]):
        raise BadMac("frame MAC")
    _m, _v, _t, _id, counter, time_s, _l = struct.unpack_from(_HEADER_FMT, data, 0)
    if ftype not in (T_UPLOAD, T_STATUS, T_SYNC, T_AUTH, T_CARD_RESULT, T_DESK_REPORT) and ftype not in DOWNLINK_TYPES:
        raise Unsupported("frame type 0x%02x" % ftype)
    # Not copied out of a terminal's read buffer: a 128-card T_BLACKLIST's body is 530 bytes, one block the
    # fragmented heap of a connected terminal may not have (tests/test_sync_micropython.py).
    body = mv[HEADER_SIZE:end]
    return Frame(ftype, terminal_id, counter, time_s, body if isinstance(data, memoryview) else bytes(body))


# --- bodies -------------------------------------------------------------

def upload_parts(entries):
    """Body of T_UPLOAD from [(status, record_bytes)], oldest first, as a list of parts for encode to join once
    into the frame (hub_frames.upload_body joins them for the simulated terminals)."""
    if len(entries) > UPLOAD_RECORDS_MAX:
        raise Malformed("at most %d records per upload" % UPLOAD_RECORDS_MAX)
    parts = [bytes((len(entries),))]
    for status, rec in entries:
        if not rec or len(rec) != RECORD_SIZES.get(rec[0]):
            raise Malformed("record size")
        parts.append(bytes((status,)))
        parts.append(rec)
    return parts


# A terminal publishes its status at least this often while connected (SPEC.md §5.3); the hub
# counts a terminal silent for longer than its interval allows as offline (parkcard.ingest.fleet).
STATUS_INTERVAL_S = 30


def status_body(boot, online, role, firmware, config_version, blacklist_version, queue_depth, oldest_unsynced_age_s,
                free_heap, uptime_s, last_seq, authorised, memory_errors):
    """T_STATUS body from its fields, no Status object on the way (the terminal's heap, SPEC.md §5.3)."""
    fw = firmware[:8]
    return struct.pack(_STATUS_FMT, boot, online, role, fw + bytes(8 - len(fw)), config_version, blacklist_version,
                       queue_depth, oldest_unsynced_age_s, free_heap, uptime_s, last_seq, authorised,
                       min(memory_errors, 0xFFFF))


def sync_body(blacklist_version, config_version, chunk_cards_max=0, credits_version=None, prices=b""):
    """T_SYNC: ask for config and the blacklist from the versions the terminal holds, in T_BLACKLIST
    frames of at most chunk_cards_max cards (0: the hub's limit; SPEC.md §5.5), and for the pending
    credits list when credits_version (the one it holds, 0: none) is not the hub's (SPEC.md §8.2); a
    booth then appends the price list and discount versions it holds (prices: 10 bytes, terminal/prices.py)."""
    body = struct.pack(_SYNC_FMT, blacklist_version, config_version, chunk_cards_max)
    if credits_version is None and not prices:
        return body
    return body + struct.pack(">I", credits_version or 0) + prices


def auth_body(admin_card_no, uid):
    """T_AUTH: the terminal was unlocked by this admin system card."""
    return struct.pack(_AUTH_FMT, admin_card_no, bytes(uid) + bytes(7 - len(uid)), len(uid))


def parse_ack(body):
    """Return (upto_seq, applied, rejected)."""
    if len(body) != struct.calcsize(_ACK_FMT):
        raise Malformed("ack length")
    return struct.unpack(_ACK_FMT, body)


BL_DELTA = 0
BL_SNAPSHOT = 1


def parse_blacklist(body):
    """Return (from_version, to_version, mode, chunk, chunks, adds, removes), adds and removes as tuples."""
    head = parse_blacklist_stream(body)
    return head[:5] + (tuple(head[5]), tuple(head[6]))


def parse_blacklist_stream(body):
    """parse_blacklist() with adds and removes as iterators over body, checked ascending first: a terminal's
    fragmented heap may have no block for a chunk's 64 numbers as one tuple."""
    size = struct.calcsize(_BL_FMT)
    if len(body) < size:
        raise Malformed("blacklist header")
    from_v, to_v, mode, chunk, chunks, n_add, n_rem = struct.unpack_from(_BL_FMT, body, 0)
    if len(body) != size + 4 * (n_add + n_rem) or mode not in (BL_DELTA, BL_SNAPSHOT) or chunk >= max(chunks, 1):
        raise Malformed("blacklist body")
    removes_at = size + 4 * n_add
    for start, count in ((size, n_add), (removes_at, n_rem)):
        prev = -1
        for n in _card_numbers(body, start, count):
            if n <= prev:
                raise Malformed("blacklist numbers not ascending")
            prev = n
    return (from_v, to_v, mode, chunk, chunks, _card_numbers(body, size, n_add),
            _card_numbers(body, removes_at, n_rem))


def _card_numbers(body, start, count):
    # By bytes, not struct.unpack_from: its tuple per number made 4.5 KB of garbage per 64-card chunk (unix port).
    for at in range(start, start + 4 * count, 4):
        yield body[at] << 24 | body[at + 1] << 16 | body[at + 2] << 8 | body[at + 3]


def parse_shifts(body):
    """True when a T_SHIFTS body says the booth refuses sales while no shift is open."""
    if len(body) != 1 or body[0] & ~SHIFT_REQUIRED:
        raise Malformed("shifts body is one flags byte")
    return bool(body[0] & SHIFT_REQUIRED)


def parse_command(body):
    """Return (command, argument)."""
    if len(body) != struct.calcsize(_COMMAND_FMT):
        raise Malformed("command length")
    return struct.unpack(_COMMAND_FMT, body)
