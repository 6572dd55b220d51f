"""The transaction record: kept in the journal, uploaded and verified (SPEC.md §4).

Version 1 is 56 bytes (what terminals journal); version 2 is 64 bytes, the
version 1 body followed by deposit_cents and ref_seq (SPEC.md §4.1).
"""

import struct

from protocol import crypto
from protocol.errors import BadMac, Malformed, Unsupported

RECORD_VERSION = 1     # what terminals write (firmware journal slots are RECORD_SIZE)
RECORD_V2 = 2          # adds deposit_cents and ref_seq; written by the hub's desk and by booth refunds
RECORD_SIZE = 56       # version 1
RECORD_V2_SIZE = 64
RECORD_MAC_SIZE = 8
_FMT = ">BBBBHHIII7sBHIIIH4s"   # the version 1 body: everything but the record MAC (48 bytes)
_V2_FMT = ">II"                 # deposit_cents, ref_seq: appended to the version 1 body in version 2
RECORD_SIZES = {RECORD_VERSION: RECORD_SIZE, RECORD_V2: RECORD_V2_SIZE}   # version -> bytes

# Kinds (SPEC.md §4.2). Debit-side kinds take value off a card.
KIND_DEBIT = 1        # sale at a pos, ride or gate
KIND_TOPUP = 2        # desk: cash in, bonus by tier
KIND_REFUND = 3       # merchant gives a sale back to the card
KIND_CASHOUT = 4      # desk: card returned, balance and deposit paid out (SPEC.md §4.12)
KIND_TRANSFER_OUT = 5  # desk: lost card's balance leaves it
KIND_TRANSFER_IN = 6   # desk: ... and arrives on the new card
KIND_ISSUE = 7        # desk: new card, first load
KIND_LOCK = 8         # blacklisted card locked on tap; no value moves
KIND_ATTEMPT = 9      # an already locked card tapped again: nothing written to the card
KIND_PAYOUT = 10      # desk: part of the card's cash paid back to its holder (SPEC.md §4.12)
KIND_CREDIT = 15      # any terminal: the hub's pending credits delivered to the card (SPEC.md §3.7)
# One line of a booth's sale (SPEC.md §4.11): journalled before the debit it prices, moves no value.
KIND_SALE_LINE = 17
# A staff member's shift at a booth opened or closed (SPEC.md §4.14): moves no value, claims no wallet counter.
KIND_SHIFT = 18
# A booth gives one of its own sales of the open shift back to the card, staff card tapped (SPEC.md §4.15).
KIND_REVERSAL = 19
# Passages at a gate (SPEC.md §4.9): card_counter and card_mac are the ticket's (sector 3), never the wallet's.
KIND_ENTRY = 20
KIND_EXIT = 21
KIND_REFUSAL = 22     # nothing written; the reason code in the detail field
KIND_TIMED_EXIT = 23  # an exit priced by the time inside; the money moved by the debit record just after it
KIND_EXIT_FINISHED = 25  # an exit found on the card, torn before its charge landed or its gate opened, finished
PASSAGE_KINDS = (KIND_ENTRY, KIND_EXIT, KIND_REFUSAL, KIND_TIMED_EXIT, KIND_EXIT_FINISHED)
KINDS = (KIND_DEBIT, KIND_TOPUP, KIND_REFUND, KIND_CASHOUT, KIND_TRANSFER_OUT, KIND_TRANSFER_IN,
         KIND_ISSUE, KIND_LOCK, KIND_ATTEMPT, KIND_PAYOUT, KIND_CREDIT, KIND_SALE_LINE, KIND_SHIFT,
         KIND_REVERSAL) + PASSAGE_KINDS

FLAG_OFFLINE = 0x01   # taken while the terminal had no hub link
FLAG_RESOLVED = 0x02  # card outcome was uncertain and was settled on a later tap

# Upload status of a record (SPEC.md §4.3); not part of the MACed record.
STATUS_COMMITTED = 1
STATUS_VOIDED = 2
STATUS_UNCERTAIN = 3


class Record:
    """One change of value (or lock) on one card at one terminal."""

    # Version 2 fields default at class level and are set on the instance only when they differ:
    # a version 1 record (every record a terminal makes) keeps its 14 attributes, and the instance
    # dict its size, on a terminal's heap.
    version = RECORD_VERSION
    deposit_cents = 0
    ref_seq = 0
    # byte 27: a sale line's quantity (SPEC.md §4.11), the shift tag of a booth's debit, shift or reversal
    # (§4.14, protocol/staff.py); checked by the hub, not here.
    quantity = 0

    def __init__(self, kind, terminal_id, seq, time_s, card_no, uid, card_counter, amount_cents,
                 balance_after_cents, item=0, discount_cents=0, flags=0, config_version=0, card_mac=b"\x00" * 4,
                 deposit_cents=0, ref_seq=0, version=RECORD_VERSION):
        self.kind = kind
        self.terminal_id = terminal_id
        self.seq = seq
        self.time_s = time_s
        self.card_no = card_no
        self.uid = bytes(uid)
        self.card_counter = card_counter
        self.amount_cents = amount_cents
        self.balance_after_cents = balance_after_cents
        self.item = item
        self.discount_cents = discount_cents
        self.flags = flags
        self.config_version = config_version
        self.card_mac = bytes(card_mac)
        self.mac = b""
        if version != RECORD_VERSION:
            self.version = version
        if deposit_cents:
            self.deposit_cents = deposit_cents
        if ref_seq:
            self.ref_seq = ref_seq

    def body(self):
        """Return the MACed bytes: 48 in version 1, 56 in version 2."""
        return _body(self.kind, self.terminal_id, self.seq, self.time_s, self.card_no, self.uid, self.card_counter,
                     self.amount_cents, self.balance_after_cents, self.item, self.discount_cents, self.flags,
                     self.config_version, self.card_mac, self.quantity, self.deposit_cents, self.ref_seq,
                     self.version)

    def encode(self, record_mac):
        """Return the record (56 or 64 bytes by version), MACed with the terminal's record Mac."""
        body = self.body()
        self.mac = record_mac.tag(RECORD_MAC_SIZE, body)
        return body + self.mac

    @classmethod
    def decode(cls, data, record_mac=None):
        """Parse one record of either version; verify the MAC when record_mac is given (BadMac otherwise)."""
        if not data:
            raise Malformed("empty record")
        version = data[0]
        size = RECORD_SIZES.get(version)
        if size is None:
            raise Unsupported("record version %d" % version)
        if len(data) != size:
            raise Malformed("a version %d record is %d bytes, got %d" % (version, size, len(data)))
        if type(data) is not bytes:
            data = bytes(data)      # its slices below are then bytes, and the record keeps none of the caller's
        end = size - RECORD_MAC_SIZE
        mac = data[end:]
        if record_mac is not None and not crypto.equal(record_mac.tag(RECORD_MAC_SIZE, data[:end]), mac):
            raise BadMac("record MAC")
        (_version, kind, flags, uid_len, terminal_id, item, seq, time_s, card_no, uid, quantity, counter, amount,
         balance, discount, config_version, card_mac) = struct.unpack_from(_FMT, data, 0)
        if kind not in KINDS:
            raise Malformed("unknown record kind %d" % kind)
        if uid_len not in (4, 7):
            raise Malformed("UID length %d" % uid_len)
        # The attributes __init__ sets, set here without its call: every field comes out of struct as bytes or a
        # whole number, so its copies have nothing to do, and the hub decodes every record it is sent (about
        # a third of decode's time went to the call on CPython).
        rec = object.__new__(cls)
        rec.kind = kind
        rec.terminal_id = terminal_id
        rec.seq = seq
        rec.time_s = time_s
        rec.card_no = card_no
        rec.uid = uid[:uid_len]
        rec.card_counter = counter
        rec.amount_cents = amount
        rec.balance_after_cents = balance
        rec.item = item
        rec.discount_cents = discount
        rec.flags = flags
        rec.config_version = config_version
        rec.card_mac = card_mac
        rec.mac = mac
        if version == RECORD_V2:
            rec.version = version
            deposit, ref_seq = struct.unpack_from(_V2_FMT, data, RECORD_SIZE - RECORD_MAC_SIZE)
            if deposit:
                rec.deposit_cents = deposit
            if ref_seq:
                rec.ref_seq = ref_seq
        if quantity:
            rec.quantity = quantity     # a sale line's; set only then, like deposit_cents
        return rec


def _body(kind, terminal_id, seq, time_s, card_no, uid, card_counter, amount_cents, balance_after_cents, item,
          discount_cents, flags, config_version, card_mac, quantity=0, deposit_cents=0, ref_seq=0,
          version=RECORD_VERSION):
    if kind not in KINDS:
        raise Malformed("unknown record kind %d" % kind)
    if len(uid) not in (4, 7):
        raise Malformed("UID is 4 or 7 bytes")
    if len(card_mac) != 4:
        raise Malformed("card MAC is 4 bytes")
    if amount_cents < 0 or balance_after_cents < 0 or discount_cents < 0 or deposit_cents < 0 or ref_seq < 0:
        raise Malformed("amounts and ref_seq are unsigned")
    body = struct.pack(_FMT, version, kind, flags, len(uid), terminal_id, item, seq, time_s, card_no,
                       bytes(uid) + bytes(7 - len(uid)), quantity, card_counter, amount_cents, balance_after_cents,
                       discount_cents, config_version, card_mac)
    if version == RECORD_V2:
        return body + struct.pack(_V2_FMT, deposit_cents, ref_seq)
    if version != RECORD_VERSION:
        raise Unsupported("record version %d" % version)
    if deposit_cents or ref_seq:
        raise Malformed("deposit_cents and ref_seq need record version 2")
    return body


def seal(record_mac, kind, terminal_id, seq, time_s, card_no, uid, card_counter, amount_cents, balance_after_cents,
         item, discount_cents, flags, config_version, card_mac):
    """A version 1 record's bytes MACed, as Record(...).encode(record_mac) returns them, without the Record: its
    fifteen attributes need a 272-byte dict in one piece, which a gate's fragmented heap may not have at a tap."""
    body = _body(kind, terminal_id, seq, time_s, card_no, uid, card_counter, amount_cents, balance_after_cents, item,
                 discount_cents, flags, config_version, card_mac)
    return body + record_mac.tag(RECORD_MAC_SIZE, body)


def passage_detail(reason, area, entries_left):
    """The detail a passage record carries in its discount field (SPEC.md §4.9): reason, area, entries left."""
    return (reason << 24) | (area << 16) | entries_left


def passage_fields(rec):
    """(reason, area, entries_left) of a passage record's detail field."""
    d = rec.discount_cents
    return d >> 24, (d >> 16) & 0xFF, d & 0xFFFF


def record_mac_for(terminal_key):
    """Return the Mac that seals this terminal's records (SPEC.md §2.3)."""
    return crypto.Mac(crypto.derive(terminal_key, crypto.LABEL_RECORD))

