"""MIFARE Classic 1K card layout of ParkCard: info block, two wallet slots, keys (SPEC.md §3)."""

import struct

from protocol import crypto
from protocol.errors import BadMac, Malformed

APP_SECTOR = 1
INFO_BLOCK = 4
SLOT_BLOCKS = (5, 6)
TRAILER_BLOCK = 7
BLOCK_SIZE = 16
KEY_SIZE = 6
MAC_SIZE = 4
CARD_MAC_KEY_SIZE = 16

# Card info flags (low nibble of the tier/flags byte, SPEC.md §3.3).
FLAG_ADMIN = 0x1      # admin system card: carries park keys, never a wallet
FLAG_STAFF = 0x2
FLAG_RETURNED = 0x4   # taken back at the desk; refused everywhere

TIER_STANDARD = 0
TIER_SILVER = 1
TIER_GOLD = 2

BALANCE_MAX_CENTS = (1 << 23) - 1   # 23 bits beside the lock bit
CARD_NO_MIN = 1                     # 0 is no card
CARD_NO_MAX = 0xFFFFFFFF            # I in the card info, the record and T_BLACKLIST
DAY_SPEND_MAX_CENTS = (1 << 24) - 1
COUNTER_MODULUS = 1 << 16
SECONDS_PER_DAY = 86400

_INFO_FMT = ">IBHHHB"      # card_no, tier<<4|flags, expiry_day, perms, issue_day, deposit units
_SLOT_FMT = ">HBHBHHH"     # counter, lock|bal_hi, bal_lo, spend_hi, spend_lo, spend_day, last_terminal
_DEPOSIT_UNIT_CENTS = 100
_MAC_DOMAIN_INFO = b"INFO"
_MAC_DOMAIN_SLOT = b"SLOT"
_LOCK_BIT = 0x80


class BoothKeys:
    """What a booth terminal holds: master A and the card MAC master, never master B.

    Usable wherever protocol.card.CardKeys wants park keys for reading and
    debiting; key_b() of such CardKeys fails, as it must on a booth.
    """

    master_b = None
    kdf_b = None

    def __init__(self, master_a, master_mac):
        for key in (master_a, master_mac):
            if len(key) != 32:
                raise Malformed("master keys are 32 bytes")
        self.master_a = master_a
        self.master_mac = master_mac
        # Made once, as ParkKeys does: every card read derives from them.
        self.kdf_a = crypto.Mac(master_a)
        self.kdf_mac = crypto.Mac(master_mac)

    def pack(self):
        """Return the 64 bytes kept in the key store: master A then master MAC."""
        return self.master_a + self.master_mac

    @classmethod
    def unpack(cls, data):
        """Rebuild from pack()'s 64 bytes."""
        if len(data) != 2 * 32:
            raise Malformed("booth keys are 64 bytes")
        return cls(bytes(data[:32]), bytes(data[32:]))


def booth_keys(park_keys):
    """The booth subset of ParkKeys (or of BoothKeys, unchanged)."""
    return BoothKeys(park_keys.master_a, park_keys.master_mac)


def unpack_keys(data):
    """Key store bytes to keys: 96 bytes are desk ParkKeys, 64 bytes BoothKeys."""
    if len(data) == 3 * 32:
        from protocol.card_issue import ParkKeys
        return ParkKeys.unpack(data)
    return BoothKeys.unpack(data)


class CardKeys:
    """Keys diversified for one card UID (SPEC.md §2.2)."""

    def __init__(self, park_keys, uid):
        self.uid = bytes(uid)
        self._park = park_keys
        self.mac = crypto.Mac(crypto.derive(park_keys.kdf_mac, crypto.LABEL_CARD_MAC, self.uid)[:CARD_MAC_KEY_SIZE])

    def key_a(self, sector=APP_SECTOR):
        """Sector key A: read and debit (booth terminals)."""
        return crypto.derive(self._park.kdf_a, crypto.LABEL_KEY_A, self.uid, bytes((sector,)))[:KEY_SIZE]

    def key_b(self, sector=APP_SECTOR):
        """Sector key B: write card info and trailer (desk only)."""
        return crypto.derive(self._park.kdf_b, crypto.LABEL_KEY_B, self.uid, bytes((sector,)))[:KEY_SIZE]


def day_of(time_s):
    """Days since 1970-01-01 UTC for an epoch time in seconds."""
    return time_s // SECONDS_PER_DAY


class CardInfo:
    """Block 4: who the card is and what it may do."""

    def __init__(self, card_no, tier=TIER_STANDARD, flags=0, expiry_day=0, perms=0xFFFF,
                 issue_day=0, deposit_cents=0):
        self.card_no = card_no
        self.tier = tier
        self.flags = flags
        self.expiry_day = expiry_day
        self.perms = perms
        self.issue_day = issue_day
        self.deposit_cents = deposit_cents

    def encode(self, card_keys):
        """Return the 16-byte block with its MAC."""
        if not 0 <= self.tier <= 15 or not 0 <= self.flags <= 15:
            raise Malformed("tier and flags are 4 bits each")
        if self.deposit_cents % _DEPOSIT_UNIT_CENTS or not 0 <= self.deposit_cents <= 255 * _DEPOSIT_UNIT_CENTS:
            raise Malformed("deposit is whole units of 100 cents, at most 25500")
        body = struct.pack(_INFO_FMT, self.card_no, (self.tier << 4) | self.flags, self.expiry_day,
                           self.perms, self.issue_day, self.deposit_cents // _DEPOSIT_UNIT_CENTS)
        return body + card_keys.mac.tag(MAC_SIZE, _MAC_DOMAIN_INFO, card_keys.uid, body)

    @classmethod
    def decode(cls, block, card_keys):
        """Parse and verify block 4; raise BadMac when it is not this card's."""
        if len(block) != BLOCK_SIZE:
            raise Malformed("a card block is 16 bytes")
        body = bytes(block[:12])
        if not crypto.equal(card_keys.mac.tag(MAC_SIZE, _MAC_DOMAIN_INFO, card_keys.uid, body), bytes(block[12:])):
            raise BadMac("card info MAC")
        card_no, tier_flags, expiry, perms, issue, deposit = struct.unpack(_INFO_FMT, body)
        return cls(card_no, tier_flags >> 4, tier_flags & 0xF, expiry, perms, issue, deposit * _DEPOSIT_UNIT_CENTS)

    def expired(self, today):
        """True when the card's expiry day is before today (0 = no expiry)."""
        return self.expiry_day != 0 and today > self.expiry_day


class WalletSlot:
    """Block 5 or 6: one copy of the purse; the valid one with the newer counter wins."""

    def __init__(self, counter=0, balance_cents=0, day_spend_cents=0, spend_day=0, last_terminal=0, locked=False):
        self.counter = counter
        self.balance_cents = balance_cents
        self.day_spend_cents = day_spend_cents
        self.spend_day = spend_day
        self.last_terminal = last_terminal
        self.locked = locked
        self.mac = b""

    def encode(self, card_keys, block):
        """Return the 16-byte block for slot block `block`, MAC included; sets self.mac."""
        if not 0 <= self.balance_cents <= BALANCE_MAX_CENTS:
            raise Malformed("balance out of range")
        if not 0 <= self.day_spend_cents <= DAY_SPEND_MAX_CENTS:
            raise Malformed("day spend out of range")
        hi = (self.balance_cents >> 16) | (_LOCK_BIT if self.locked else 0)
        body = struct.pack(_SLOT_FMT, self.counter % COUNTER_MODULUS, hi, self.balance_cents & 0xFFFF,
                           self.day_spend_cents >> 16, self.day_spend_cents & 0xFFFF,
                           self.spend_day, self.last_terminal)
        self.mac = card_keys.mac.tag(MAC_SIZE, _MAC_DOMAIN_SLOT, card_keys.uid, bytes((block,)), body)
        return body + self.mac

    @classmethod
    def decode(cls, data, card_keys, block):
        """Parse and verify one slot block; raise BadMac for a torn or forged slot."""
        if len(data) != BLOCK_SIZE:
            raise Malformed("a card block is 16 bytes")
        body = bytes(data[:12])
        mac = bytes(data[12:])
        if not crypto.equal(card_keys.mac.tag(MAC_SIZE, _MAC_DOMAIN_SLOT, card_keys.uid, bytes((block,)), body), mac):
            raise BadMac("wallet slot MAC")
        counter, hi, lo, spend_hi, spend_lo, spend_day, terminal = struct.unpack(_SLOT_FMT, body)
        slot = cls(counter, ((hi & 0x7F) << 16) | lo, (spend_hi << 16) | spend_lo, spend_day, terminal,
                   bool(hi & _LOCK_BIT))
        slot.mac = mac
        return slot

    def spent_on(self, day):
        """Today's spend as of `day`: the stored spend only counts on its own day."""
        return self.day_spend_cents if self.spend_day == day else 0

    def next(self, balance_cents, day, day_spend_cents, terminal_id, locked=None):
        """Return the successor slot (counter + 1) with the given values."""
        return WalletSlot((self.counter + 1) % COUNTER_MODULUS, balance_cents, day_spend_cents, day,
                          terminal_id, self.locked if locked is None else locked)


def counter_newer(a, b):
    """True when counter a is after counter b in 16-bit serial arithmetic (RFC 1982)."""
    return a != b and ((a - b) % COUNTER_MODULUS) < (COUNTER_MODULUS // 2)


def pick_slot(slot_a, slot_b, blocks=SLOT_BLOCKS):
    """Return (current, index, other_block) from two decoded slots (None = invalid), SPEC.md §3.5.

    `index` is 0 or 1 for the slot in force; the next write goes to the other
    block of `blocks` (the wallet's, or the ticket's of §3.9). Raises BadMac when neither slot verifies.
    """
    if slot_a is None and slot_b is None:
        raise BadMac("no valid slot")
    if slot_b is None or (slot_a is not None and not counter_newer(slot_b.counter, slot_a.counter)):
        return slot_a, 0, blocks[1]
    return slot_b, 1, blocks[0]


def decode_slots(block_a, block_b, card_keys, slot_type=WalletSlot, blocks=SLOT_BLOCKS):
    """Decode both slot blocks: [slot or None, slot or None] (None: torn or forged).

    The wallet's by default; a ticket's (protocol.ticket.TicketSlot, blocks 13 and 14) by the same rule."""
    slots = []
    for data, block in ((block_a, blocks[0]), (block_b, blocks[1])):
        try:
            slots.append(slot_type.decode(data, card_keys, block))
        except BadMac:
            slots.append(None)
    return slots


def read_slots(block_a, block_b, card_keys):
    """Decode both slot blocks and pick the one in force: (slot, write_block)."""
    slots = decode_slots(block_a, block_b, card_keys)
    current, _, write_block = pick_slot(slots[0], slots[1])
    return current, write_block


TRANSPORT_KEY = b"\xff" * KEY_SIZE    # key A and B of a blank card's sectors as shipped: what the desk writes over
