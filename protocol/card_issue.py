"""Issuing a card: the park's master keys, the sector trailer and the blocks of a fresh card (SPEC.md §2.1, §3.2):
what the hub, the desk and the flash tool need beside protocol/card.py and a booth does not, so a booth never
loads it (a desk's key store loads ParkKeys through card.unpack_keys). A codec only: no I/O, runs on MicroPython and
CPython.
"""

from protocol import crypto
from protocol.card import (APP_SECTOR, BLOCK_SIZE, INFO_BLOCK, SLOT_BLOCKS, TRAILER_BLOCK, WalletSlot, day_of)
from protocol.errors import Malformed


class ParkKeys:
    """The park's three master keys (SPEC.md §2.1): read/debit, desk, card MAC."""

    def __init__(self, master_a, master_b, master_mac):
        for key in (master_a, master_b, master_mac):
            if len(key) != 32:
                raise Malformed("master keys are 32 bytes")
        self.master_a = master_a
        self.master_b = master_b
        self.master_mac = master_mac
        # Made once per park, not per tap: every card read derives from them.
        self.kdf_a = crypto.Mac(master_a)
        self.kdf_b = crypto.Mac(master_b)
        self.kdf_mac = crypto.Mac(master_mac)

    def pack(self):
        """Return the 96 bytes a provisioning bundle or admin card carries."""
        return self.master_a + self.master_b + self.master_mac

    @classmethod
    def unpack(cls, data):
        """Rebuild from pack()'s 96 bytes."""
        if len(data) != 96:
            raise Malformed("park keys are 96 bytes")
        return cls(bytes(data[:32]), bytes(data[32:64]), bytes(data[64:]))


def access_bytes(data0, data1, data2, trailer):
    """Encode access conditions (C1C2C3 as a 3-bit int per block) as bytes 6..9 of a trailer.

    MF1S50yyX datasheet §8.7: byte 6 = ~C2|~C1, byte 7 = C1|~C3, byte 8 = C3|C2,
    with bit i of each nibble for block i of the sector; byte 9 is user data.
    """
    c1 = c2 = c3 = 0
    for i, bits in enumerate((data0, data1, data2, trailer)):
        c1 |= ((bits >> 2) & 1) << i
        c2 |= ((bits >> 1) & 1) << i
        c3 |= (bits & 1) << i
    return bytes((((~c2 & 0xF) << 4) | (~c1 & 0xF), (c1 << 4) | (~c3 & 0xF), (c3 << 4) | c2, 0x69))


# SPEC.md §3.2: info read A|B write B (100); slots read/write A|B (000);
# trailer: keys and access bits written with key B only, key B unreadable (011).
APP_ACCESS = access_bytes(0b100, 0b000, 0b000, 0b011)


def trailer_block(card_keys, sector=APP_SECTOR):
    """Return the sector trailer ParkCard writes at issue: key A, access bits, key B."""
    return card_keys.key_a(sector) + APP_ACCESS + card_keys.key_b(sector)


def issue_blocks(card_keys, info, balance_cents, time_s, terminal_id=0):
    """Return {block: 16 bytes} for a freshly issued card: info, slot A, blank slot B, trailer."""
    slot = WalletSlot(1, balance_cents, 0, day_of(time_s), terminal_id)
    return {
        INFO_BLOCK: info.encode(card_keys),
        SLOT_BLOCKS[0]: slot.encode(card_keys, SLOT_BLOCKS[0]),
        SLOT_BLOCKS[1]: bytes(BLOCK_SIZE),
        TRAILER_BLOCK: trailer_block(card_keys),
    }
