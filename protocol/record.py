"""The transaction record: 56 bytes kept in the journal, uploaded and verified (SPEC.md §4)."""

import struct

from protocol import crypto
from protocol.errors import BadMac, Malformed, Unsupported

RECORD_VERSION = 1
RECORD_SIZE = 56
RECORD_MAC_SIZE = 8
_FMT = ">BBBBHHIII7sBHIIIH4s"   # everything but the record MAC (48 bytes)
_BODY_SIZE = RECORD_SIZE - RECORD_MAC_SIZE

# Kinds (SPEC.md §4.2). Debit-side kinds take value off a card.
KIND_DEBIT = 1        # sale at a pos, ride or gate
KIND_TOPUP = 2        # desk: cash in, bonus by tier
KIND_REFUND = 3       # merchant gives a sale back to the card
KIND_CASHOUT = 4      # desk: card returned, balance and deposit paid out
KIND_TRANSFER_OUT = 5  # desk: lost card's balance leaves it
KIND_TRANSFER_IN = 6   # desk: ... and arrives on the new card
KIND_ISSUE = 7        # desk: new card, first load
KIND_LOCK = 8         # blacklisted card locked on tap; no value moves
KIND_ATTEMPT = 9      # an already locked card tapped again: nothing written to the card
KINDS = (KIND_DEBIT, KIND_TOPUP, KIND_REFUND, KIND_CASHOUT, KIND_TRANSFER_OUT, KIND_TRANSFER_IN,
         KIND_ISSUE, KIND_LOCK, KIND_ATTEMPT)

FLAG_OFFLINE = 0x01   # taken while the terminal had no hub link
FLAG_RESOLVED = 0x02  # card outcome was uncertain and was settled on a later tap

# Upload status of a record (SPEC.md §4.3); not part of the MACed record.
STATUS_COMMITTED = 1
STATUS_VOIDED = 2
STATUS_UNCERTAIN = 3


class Record:
    """One change of value (or lock) on one card at one terminal."""

    def __init__(self, kind, terminal_id, seq, time_s, card_no, uid, card_counter, amount_cents,
                 balance_after_cents, item=0, discount_cents=0, flags=0, config_version=0, card_mac=b"\x00" * 4):
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

    def body(self):
        """Return the 48 MACed bytes."""
        if self.kind not in KINDS:
            raise Malformed("unknown record kind %d" % self.kind)
        if len(self.uid) not in (4, 7):
            raise Malformed("UID is 4 or 7 bytes")
        if len(self.card_mac) != 4:
            raise Malformed("card MAC is 4 bytes")
        if self.amount_cents < 0 or self.balance_after_cents < 0 or self.discount_cents < 0:
            raise Malformed("amounts are unsigned cents")
        return struct.pack(_FMT, RECORD_VERSION, self.kind, self.flags, len(self.uid), self.terminal_id, self.item,
                           self.seq, self.time_s, self.card_no, self.uid + bytes(7 - len(self.uid)), 0,
                           self.card_counter, self.amount_cents, self.balance_after_cents,
                           self.discount_cents, self.config_version, self.card_mac)

    def encode(self, record_mac):
        """Return the 56-byte record, MACed with the terminal's record Mac."""
        body = self.body()
        self.mac = record_mac.tag(RECORD_MAC_SIZE, body)
        return body + self.mac

    @classmethod
    def decode(cls, data, record_mac=None):
        """Parse 56 bytes; verify the MAC when record_mac is given (BadMac otherwise)."""
        if len(data) != RECORD_SIZE:
            raise Malformed("a record is %d bytes, got %d" % (RECORD_SIZE, len(data)))
        body = bytes(data[:_BODY_SIZE])
        mac = bytes(data[_BODY_SIZE:])
        if record_mac is not None and not crypto.equal(record_mac.tag(RECORD_MAC_SIZE, body), mac):
            raise BadMac("record MAC")
        (version, kind, flags, uid_len, terminal_id, item, seq, time_s, card_no, uid, _pad, counter, amount,
         balance, discount, config_version, card_mac) = struct.unpack(_FMT, body)
        if version != RECORD_VERSION:
            raise Unsupported("record version %d" % version)
        if kind not in KINDS:
            raise Malformed("unknown record kind %d" % kind)
        if uid_len not in (4, 7):
            raise Malformed("UID length %d" % uid_len)
        rec = cls(kind, terminal_id, seq, time_s, card_no, uid[:uid_len], counter, amount, balance, item,
                  discount, flags, config_version, card_mac)
        rec.mac = mac
        return rec


def record_mac_for(terminal_key):
    """Return the Mac that seals this terminal's records (SPEC.md §2.3)."""
    return crypto.Mac(crypto.derive(terminal_key, crypto.LABEL_RECORD))

