"""The ticket on the card (sector 3), its timed-entry price and a gate's config (SPEC.md §3.8-3.10, §5.8).

A gate decides from these bytes alone: what the ticket is (the ticket info,
block 12, written at the desk's sale), and where the card stands (two MACed
state slots, blocks 13 and 14, the newer valid one in force, as the wallet's,
§3.5). A codec only: no I/O, runs on MicroPython and CPython.
"""

import struct

from protocol import card, crypto
from protocol.errors import BadMac, Malformed
from protocol.park_day import park_day, zone_ok

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

TICKET_SECTOR = 3
INFO_BLOCK = 12
SLOT_BLOCKS = (13, 14)
TRAILER_BLOCK = 15

# Product types (SPEC.md §3.8)
TYPE_DAY = 1          # valid on the days from..to (one day: from == to)
TYPE_MULTI_DAY = 2    # as a day pass over several days, with entries and a per-day limit as sold
TYPE_COUNT = 3        # 次卡: N entries, optionally at most day_limit a day
TYPE_PERIOD = 4       # 月卡 / 年卡: any number of entries from..to
TYPE_TIMED = 5        # 计时: priced at the exit by the time inside
TYPES = (TYPE_DAY, TYPE_MULTI_DAY, TYPE_COUNT, TYPE_PERIOD, TYPE_TIMED)

ENTRIES_UNLIMITED = 0xFFFF
SERIAL_MAX = 0xFFFFFF
STATE_INSIDE = 0x01   # slot flag: the card passed an entry and no exit since
STATE_CHARGED = 0x02  # slot flag: a timed exit whose charge is the wallet write of counter pay_counter (SPEC.md §3.13)
PAY_COUNTER_MASK = 0xFF     # a charged exit names the low 8 bits of the wallet counter its debit writes

# Gate directions and re-entry rules (SPEC.md §5.8)
DIRECTION_ENTRY = 1
DIRECTION_EXIT = 2
DIRECTION_BOTH = 3
REENTRY_AFTER_EXIT = 0     # anti-passback: a card inside enters again only after it exited
REENTRY_AFTER_MINUTES = 1  # ... or once reentry_min minutes have passed since its entry
REENTRY_NEVER = 2          # one entry per ticket and park day, exit or not
PRODUCTS_MAX = 16

# Refusal reasons at a gate, in the order they are checked (SPEC.md §3.11); a refusal record carries the code.
REASON_BLACKLISTED = 1
REASON_NO_TICKET = 2       # no valid ticket in sector 3 (none sold, torn beyond both slots, forged)
REASON_NOT_HERE = 3        # a product or area this gate does not accept
REASON_EXPIRED = 4
REASON_NOT_YET_VALID = 5   # not valid today: before its first day
REASON_ALREADY_INSIDE = 6  # anti-passback
REASON_NO_REENTRY = 7      # the re-entry rule is never, and the ticket entered today already
REASON_NO_ENTRIES = 8
REASON_DAY_LIMIT = 9
REASON_NOT_INSIDE = 10     # an exit without an entry
REASON_PAY_AT_DESK = 11    # a timed exit the wallet cannot cover

_INFO_FMT = const(">HBBHHBBH")    # product, type, area, from_day, to_day, day_limit, serial (3 bytes: high, low)
_SLOT_FMT = const(">HHBBIBB")     # counter, entries_left, flags, day_entries, last_time, area, pay_counter
_GATE_FMT = const(">HBBBHIiIiB")  # version, direction, area, reentry, reentry_min, reset_s, the park's UTC offset,
                                    # its next change and the offset after it, product count
_GATE_PRODUCT_FMT = const(">HHHI")  # product, included_min, interval_min, interval_price_cents
_GATE_SIZE = const(24)
_GATE_PRODUCT_SIZE = const(10)
_MAC_DOMAIN_INFO = b"TKTI"
_MAC_DOMAIN_SLOT = b"TKTS"


class TicketInfo:
    """Block 12: what the ticket is, fixed at the sale."""

    def __init__(self, product, ticket_type, area=0, from_day=0, to_day=0, day_limit=0, serial=0):
        self.product = product
        self.type = ticket_type
        self.area = area
        self.from_day = from_day
        self.to_day = to_day
        self.day_limit = day_limit
        self.serial = serial

    def encode(self, card_keys):
        """Return the 16-byte block with its MAC; Malformed for a field out of range."""
        if (self.type not in TYPES or not 0 < self.product <= 0xFFFF or not 0 <= self.area <= 0xFF
                or not 0 <= self.from_day <= self.to_day <= 0xFFFF or not 0 <= self.day_limit <= 0xFF
                or not 0 <= self.serial <= SERIAL_MAX):
            raise Malformed("ticket info field out of range")
        body = struct.pack(_INFO_FMT, self.product, self.type, self.area, self.from_day, self.to_day,
                           self.day_limit, self.serial >> 16, self.serial & 0xFFFF)
        return body + card_keys.mac.tag(card.MAC_SIZE, _MAC_DOMAIN_INFO, card_keys.uid, body)

    @classmethod
    def decode(cls, block, card_keys):
        """Parse and verify block 12; BadMac when it is not this card's ticket (or no ticket at all)."""
        if len(block) != card.BLOCK_SIZE:
            raise Malformed("a card block is 16 bytes")
        body = bytes(block[:12])
        if not crypto.equal(card_keys.mac.tag(card.MAC_SIZE, _MAC_DOMAIN_INFO, card_keys.uid, body),
                            bytes(block[12:])):
            raise BadMac("ticket info MAC")
        product, ticket_type, area, from_day, to_day, day_limit, hi, lo = struct.unpack(_INFO_FMT, body)
        if ticket_type not in TYPES:
            raise Malformed("ticket type %d" % ticket_type)
        return cls(product, ticket_type, area, from_day, to_day, day_limit, (hi << 16) | lo)


class TicketSlot:
    """Block 13 or 14: where the card stands; the valid one with the newer counter is in force (§3.5)."""

    def __init__(self, counter=0, entries_left=ENTRIES_UNLIMITED, inside=False, day_entries=0, last_time_s=0,
                 area=0, pay_counter=None):
        self.counter = counter
        self.entries_left = entries_left
        self.inside = inside
        self.day_entries = day_entries
        self.last_time_s = last_time_s
        self.area = area
        self.pay_counter = pay_counter    # a charged exit's wallet counter (low 8 bits), else None (§3.13)
        self.mac = b""

    def encode(self, card_keys, block):
        """Return the 16-byte block for slot block `block`, MAC included; sets self.mac."""
        pay = self.pay_counter
        if not (0 <= self.entries_left <= 0xFFFF and 0 <= self.day_entries <= 0xFF
                and 0 <= self.last_time_s <= 0xFFFFFFFF and 0 <= self.area <= 0xFF
                and (pay is None or (not self.inside and 0 <= pay <= PAY_COUNTER_MASK))):
            raise Malformed("ticket state field out of range")
        flags = (STATE_INSIDE if self.inside else 0) | (STATE_CHARGED if pay is not None else 0)
        body = struct.pack(_SLOT_FMT, self.counter % card.COUNTER_MODULUS, self.entries_left, flags,
                           self.day_entries, self.last_time_s, self.area, pay or 0)
        self.mac = card_keys.mac.tag(card.MAC_SIZE, _MAC_DOMAIN_SLOT, card_keys.uid, bytes((block,)), body)
        return body + self.mac

    @classmethod
    def decode(cls, data, card_keys, block):
        """Parse and verify one state slot; BadMac for a torn, blank or forged slot."""
        if len(data) != card.BLOCK_SIZE:
            raise Malformed("a card block is 16 bytes")
        body = bytes(data[:12])
        mac = bytes(data[12:])
        if not crypto.equal(card_keys.mac.tag(card.MAC_SIZE, _MAC_DOMAIN_SLOT, card_keys.uid, bytes((block,)), body),
                            mac):
            raise BadMac("ticket state MAC")
        counter, entries, flags, day_entries, last_time, area, pay = struct.unpack(_SLOT_FMT, body)
        slot = cls(counter, entries, bool(flags & STATE_INSIDE), day_entries, last_time, area,
                   pay if flags & STATE_CHARGED and not flags & STATE_INSIDE else None)
        slot.mac = mac
        return slot

    def next(self, entries_left, inside, day_entries, time_s, area, pay_counter=None):
        """The successor state (counter + 1); pay_counter binds an exit to the wallet write of its charge."""
        return TicketSlot((self.counter + 1) % card.COUNTER_MODULUS, entries_left, inside, day_entries, time_s, area,
                          None if pay_counter is None else pay_counter & PAY_COUNTER_MASK)

    def charge_landed(self, wallet_counter):
        """For a charged exit (§3.13): False while the wallet in force is one write before the charge's counter
        (the debit never landed), True once it is not; None for a slot that binds no charge."""
        if self.pay_counter is None:
            return None
        return (wallet_counter + 1) & PAY_COUNTER_MASK != self.pay_counter


def decode_slots(block_a, block_b, card_keys):
    """Decode both state blocks: [slot or None, slot or None] (None: torn, blank or forged)."""
    return card.decode_slots(block_a, block_b, card_keys, TicketSlot, SLOT_BLOCKS)


def pick_slot(slots):
    """(slot in force, block the next write goes to) of decoded slots, by the wallet's rule (§3.5); BadMac if none."""
    current, _, write_block = card.pick_slot(slots[0], slots[1], SLOT_BLOCKS)
    return current, write_block


def entry_before(slots, slot):
    """The inside state a charged exit `slot` followed (its counter − 1, §3.13), from the decoded slots, or None."""
    for other in slots:
        if other is not None and other.inside and (other.counter + 1) % card.COUNTER_MODULUS == slot.counter:
            return other
    return None


def timed_charge_cents(inside_s, included_min, interval_min, interval_price_cents):
    """The price of inside_s seconds on a timed ticket: the first included_min minutes free, then each started
    interval_min minutes interval_price_cents (SPEC.md §3.10). Integer cents; a clock that ran back costs nothing."""
    over_s = inside_s - included_min * 60
    if over_s <= 0 or interval_price_cents == 0:
        return 0
    if interval_min == 0:
        return interval_price_cents        # one flat price once the included time is over
    step_s = interval_min * 60
    return ((over_s + step_s - 1) // step_s) * interval_price_cents


class GateProduct:
    """A product a gate accepts, with its timed-entry price (zeros for untimed products)."""

    def __init__(self, product, included_min=0, interval_min=0, interval_price_cents=0):
        self.product = product
        self.included_min = included_min
        self.interval_min = interval_min
        self.interval_price_cents = interval_price_cents


class GateConfig:
    """T_GATE_CONFIG body (SPEC.md §5.8): the gate's direction, area, re-entry rule, daily reset and products."""

    def __init__(self, version=0, direction=DIRECTION_ENTRY, area=0, reentry=REENTRY_AFTER_EXIT, reentry_min=0,
                 reset_s=0, products=(), utc_offset_s=0, next_change_s=0, next_offset_s=0):
        self.version = version
        self.direction = direction
        self.area = area
        self.reentry = reentry
        self.reentry_min = reentry_min
        self.reset_s = reset_s          # the daily reset, seconds after the park's local midnight
        self.products = list(products)
        self.utc_offset_s = utc_offset_s      # the park's local time − UTC now
        self.next_change_s = next_change_s    # epoch s of its next change (DST), 0: none known
        self.next_offset_s = next_offset_s    # the offset from then on

    def product(self, number):
        """The GateProduct for this product number, or None when this gate does not accept it."""
        for p in self.products:
            if p.product == number:
                return p
        return None

    def park_day(self, time_s):
        """The park day of an epoch time: the day starts at the daily reset, reset_s after local midnight."""
        return park_day(time_s, self.reset_s, self.utc_offset_s, self.next_change_s, self.next_offset_s)

    def encode(self):
        """Return the body bytes; Malformed for a field out of range."""
        _check_gate(self.direction, self.area, self.reentry, self.reset_s, len(self.products))
        _check_zone(self.utc_offset_s, self.next_change_s, self.next_offset_s)
        out = struct.pack(_GATE_FMT, self.version, self.direction, self.area, self.reentry, self.reentry_min,
                          self.reset_s, self.utc_offset_s, self.next_change_s, self.next_offset_s, len(self.products))
        for p in self.products:
            if not 0 < p.product <= 0xFFFF or not 0 <= p.interval_price_cents <= card.BALANCE_MAX_CENTS:
                raise Malformed("gate product %r or its price out of range" % p.product)
            out += struct.pack(_GATE_PRODUCT_FMT, p.product, p.included_min, p.interval_min, p.interval_price_cents)
        return out

    @classmethod
    def decode(cls, body):
        """Parse a T_GATE_CONFIG body; Malformed for a wrong length or a field out of range."""
        if len(body) < _GATE_SIZE:
            raise Malformed("gate config length")
        (version, direction, area, reentry, reentry_min, reset_s, offset_s, change_s, next_offset_s,
         count) = struct.unpack_from(_GATE_FMT, body, 0)
        _check_gate(direction, area, reentry, reset_s, count)
        _check_zone(offset_s, change_s, next_offset_s)
        if len(body) != _GATE_SIZE + count * _GATE_PRODUCT_SIZE:
            raise Malformed("gate config length")
        products = []
        for i in range(count):
            p = GateProduct(*struct.unpack_from(_GATE_PRODUCT_FMT, body, _GATE_SIZE + i * _GATE_PRODUCT_SIZE))
            if p.product == 0 or p.interval_price_cents > card.BALANCE_MAX_CENTS:
                raise Malformed("gate product %d or its price out of range" % p.product)
            products.append(p)
        return cls(version, direction, area, reentry, reentry_min, reset_s, products, offset_s, change_s,
                   next_offset_s)


def _check_zone(offset_s, change_s, next_offset_s):
    if not zone_ok(offset_s, change_s, next_offset_s):
        raise Malformed("gate config UTC offset or its next change out of range")


def _check_gate(direction, area, reentry, reset_s, count):
    if (direction not in (DIRECTION_ENTRY, DIRECTION_EXIT, DIRECTION_BOTH) or not 0 <= area <= 0xFF
            or reentry not in (REENTRY_AFTER_EXIT, REENTRY_AFTER_MINUTES, REENTRY_NEVER)
            or not 0 <= reset_s < card.SECONDS_PER_DAY or count > PRODUCTS_MAX):
        raise Malformed("gate config direction, area, re-entry rule, reset time or product count out of range")


def __getattr__(name):
    """REASON_NAMES, sale_blocks and rewrite_blocks, from protocol/ticket_sale.py when first asked for: a gate
    never sells a ticket nor names a reason, so it never loads them."""
    from protocol import ticket_sale
    try:
        return getattr(ticket_sale, name)
    except AttributeError:
        raise AttributeError("module 'protocol.ticket' has no attribute %r" % name) from None
