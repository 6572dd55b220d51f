"""Terminal configuration from the hub (SPEC.md §5.3, type 0x22): small on purpose,
since the tap path imports it without the rest of the frame codec."""

import struct

from protocol.errors import Malformed

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

# Roles (SPEC.md §5.3, T_CONFIG)
ROLE_POS = 1
ROLE_RIDE = 2
ROLE_GATE = 3
ROLE_DESK = 4
ROLE_NAMES = {ROLE_POS: "pos", ROLE_RIDE: "ride", ROLE_GATE: "gate", ROLE_DESK: "desk"}

_CONFIG_FMT = const(">HBHIIIIIHH")
_CONFIG_SIZE = const(29)
# Field limits of T_CONFIG (_CONFIG_FMT); the hub checks operator input against these same values,
# which protocol/hub_frames.py names (a const() with an underscore has no name on the terminal's heap).
_MERCHANT_ID_MAX = const(0xFFFF)             # H
_PARK_ID_MAX = const(0xFFFF)                 # H
_PRICE_MAX_CENTS = const((1 << 23) - 1)  # a card's balance maximum (SPEC.md §3.4; card.BALANCE_MAX_CENTS, not
                                         # imported: the sync stack loads this module without the card codec)
_OFFLINE_S_MAX = const(7 * 86400)        # max_offline_s and blacklist_max_age_s: 1 s .. a week (SPEC.md §5.3)


class Config:
    """T_CONFIG body: what this terminal is and the park's offline rules; `tail` the role's own bytes after them
    (a gate's protocol.ticket.GateConfig, SPEC.md §5.8), empty for the other roles."""

    tail = b""      # at class level: a booth's config keeps its size on the heap

    def __init__(self, version=0, role=ROLE_POS, merchant_id=0, fixed_price_cents=0, tx_cap_cents=5000,
                 daily_cap_cents=20000, max_offline_s=86400, blacklist_max_age_s=86400, category=0, park_id=0):
        self.version = version
        self.role = role
        self.merchant_id = merchant_id
        self.fixed_price_cents = fixed_price_cents
        self.tx_cap_cents = tx_cap_cents
        self.daily_cap_cents = daily_cap_cents
        self.max_offline_s = max_offline_s
        self.blacklist_max_age_s = blacklist_max_age_s
        self.category = category
        self.park_id = park_id

    def encode(self):
        """Return the body bytes; Malformed when a field is out of its range (SPEC.md §5.3)."""
        if not (0 <= self.merchant_id <= _MERCHANT_ID_MAX and 0 <= self.park_id <= _PARK_ID_MAX
                and 0 <= self.fixed_price_cents <= _PRICE_MAX_CENTS):
            raise Malformed("config merchant %r, park %r or fixed price %r out of range"
                            % (self.merchant_id, self.park_id, self.fixed_price_cents))
        return struct.pack(_CONFIG_FMT, self.version, self.role, self.merchant_id, self.fixed_price_cents,
                           self.tx_cap_cents, self.daily_cap_cents, self.max_offline_s,
                           self.blacklist_max_age_s, self.category, self.park_id) + self.tail

    @classmethod
    def decode(cls, body):
        """Parse a T_CONFIG body; bytes after the 29 known ones are fields of a newer hub, ignored (SPEC.md §5.3)."""
        if len(body) < _CONFIG_SIZE:
            raise Malformed("config length")
        cfg = cls(*struct.unpack_from(_CONFIG_FMT, body, 0))
        if cfg.role not in ROLE_NAMES or cfg.category > 15:
            raise Malformed("config role or category")
        if len(body) > _CONFIG_SIZE:
            cfg.tail = bytes(body[_CONFIG_SIZE:])
        return cfg


def out_of_range(cfg):
    """True for a config a terminal must refuse (SPEC.md §5.3 "A terminal refuses", `config_range`): one
    frame must not switch the offline rules off (0 disables a check) nor set a price or cap no card holds."""
    return (max(cfg.fixed_price_cents, cfg.tx_cap_cents, cfg.daily_cap_cents) > _PRICE_MAX_CENTS
            or not 0 < cfg.max_offline_s <= _OFFLINE_S_MAX or not 0 < cfg.blacklist_max_age_s <= _OFFLINE_S_MAX)
