"""Consumption rules (消费规则) of a pos or ride terminal: the T_CONFIG tail the hub sends it (SPEC.md §5.10).

The park sets them per terminal category or merchant; the terminal enforces them offline from the card
alone (SPEC.md §3.6 rules 10-16). A codec only: no I/O, runs on MicroPython and CPython.
"""

import struct

from protocol.errors import Malformed

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

# Card types a rule may allow (SPEC.md §5.10 `card_types`), by the card info's staff flag (§3.3).
TYPE_VISITOR = 1
TYPE_STAFF = 2
TYPES_ALL = 3
TIERS_ALL = 0xFFFF      # bit t: cards of tier t may pay (tiers 0..15, §3.3)

_FMT = const(">HIIBHIB")
SIZE = const(18)
_CENTS_MAX = const((1 << 23) - 1)    # a card's balance maximum (SPEC.md §3.4)
_TIER_MAX = const(15)
_FLAG_STAFF = const(2)               # protocol.card.FLAG_STAFF, not imported: the tap path stays small
# Where a record (SPEC.md §4.1, protocol.record's _FMT) holds what the offline limit reads; not imported from
# protocol.record, which every terminal loads, so that only the spending roles carry it.
_KIND_AT = const(1)
_CARD_AT = const(16)
_AMOUNT_AT = const(30)
_KIND_DEBIT = const(1)
_CARD_AMOUNT_FMT = const(">I10xI")    # card_no at 16, amount at 30 (SPEC.md §4.1)


class SpendRules:
    """What a pos or ride terminal refuses offline beyond the park's caps (SPEC.md §5.10); 0 = no limit."""

    def __init__(self, version=1, tx_cap_cents=0, daily_cap_cents=0, card_types=TYPES_ALL, tiers=TIERS_ALL,
                 offline_cents=0, member_tier=1):
        self.version = version
        self.tx_cap_cents = tx_cap_cents
        self.daily_cap_cents = daily_cap_cents
        self.card_types = card_types
        self.tiers = tiers
        self.offline_cents = offline_cents
        self.member_tier = member_tier

    def fields(self):
        """The fields in wire order."""
        return (self.version, self.tx_cap_cents, self.daily_cap_cents, self.card_types, self.tiers,
                self.offline_cents, self.member_tier)

    def encode(self):
        """Return the tail bytes; Malformed when a field is out of its range."""
        _check(*self.fields())
        return struct.pack(_FMT, *self.fields())

    @classmethod
    def decode(cls, body):
        """Parse a tail; Malformed under SIZE bytes or for a field out of range (bytes after SIZE are fields of a
        newer hub, ignored)."""
        if len(body) < SIZE:
            raise Malformed("consumption rules length %d, under %d" % (len(body), SIZE))
        fields = struct.unpack_from(_FMT, body, 0)
        _check(*fields)
        return cls(*fields)

    def allows(self, tier, flags):
        """True when a card of this tier and these info flags (§3.3) may pay here."""
        kind = TYPE_STAFF if flags & _FLAG_STAFF else TYPE_VISITOR
        return bool(self.card_types & kind) and bool((self.tiers >> tier) & 1)

    def member(self, tier):
        """True when a card of this tier may buy member-only items (SPEC.md §7.1 item flag bit 1)."""
        return tier >= self.member_tier


def _check(version, tx_cap, daily_cap, card_types, tiers, offline, member_tier):
    if (not 0 < version <= 0xFFFF or not 0 <= tx_cap <= _CENTS_MAX or not 0 <= daily_cap <= _CENTS_MAX
            or not 0 < card_types <= TYPES_ALL or not 0 < tiers <= TIERS_ALL or not 0 <= offline <= _CENTS_MAX
            or not 0 <= member_tier <= _TIER_MAX):
        raise Malformed("consumption rules field out of range")


def debit_of(buf, offset):
    """(card_no, amount) of the record at buf[offset:] when it is a debit (kind 1), else None: read as debit_cents
    reads, both in one unpack (one tuple: a tap counts every record since the last)."""
    if buf[offset + _KIND_AT] != _KIND_DEBIT:
        return None
    return struct.unpack_from(_CARD_AMOUNT_FMT, buf, offset + _CARD_AT)


def debit_cents(buf, offset, card_no):
    """The amount of the record at buf[offset:] when it is a debit (kind 1) of card_no, else 0: no MAC check (a
    terminal reading its own journal, SPEC.md §3.6 rule 16) and no allocation beyond the numbers."""
    if buf[offset + _KIND_AT] != _KIND_DEBIT or struct.unpack_from(">I", buf, offset + _CARD_AT)[0] != card_no:
        return 0
    return struct.unpack_from(">I", buf, offset + _AMOUNT_AT)[0]
