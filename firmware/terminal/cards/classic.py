"""MIFARE Classic 1K card session: find the card, read its state, write the next one, tell whether it landed.

The wallet (terminal/wallet.py) orders a tap journal-first and the purse rules
(terminal/purse.py) decide; this module alone knows the card is a MIFARE
Classic (protocol/SPEC.md §3.1-3.5, the bytes in protocol/card.py): one
authentication of the application sector with the card's diversified key A,
the info block and both wallet slots read, the next state written over the
slot not in force, so a card pulled mid-write keeps the old one.
"""

from protocol import card
from terminal.rc522 import RC522Error


class CardState:
    """A card as read in one tap: UID, keys, info, both slots (None: torn or forged) and the one in force."""

    def __init__(self, uid, keys, info, slots, slot, write_block):
        self.uid = uid
        self.keys = keys
        self.info = info
        self.slots = slots
        self.slot = slot
        self.write_block = write_block


class ClassicSession:
    """Card access on one reader for MIFARE Classic cards."""

    def __init__(self, reader):
        self.reader = reader

    async def present(self):
        """True when a card answered in the field; the event loop runs while the reader waits (its IRQ)."""
        return await self.reader.poll_card()

    def read(self, park_keys, wakeup=False, uid=None):
        """Read the card in the field: a CardState, or None with no card (or not the card with this uid).

        wakeup=True also finds a card left active or halted by an interrupted exchange. Raises
        protocol.errors.BadMac for a card that is not this park's, RC522Error when the read fails.
        """
        reader = self.reader
        found = reader.detect(wakeup)
        if found is None or (uid is not None and found[0] != uid):
            return None
        uid = found[0]
        keys = card.CardKeys(park_keys, uid)
        # One authentication for the whole sector: blocks 4, 5 and 6 (SPEC.md §3.1).
        reader.auth(card.INFO_BLOCK, keys.key_a(), uid)
        raw_info = reader.read_block(card.INFO_BLOCK)
        raw_a = reader.read_block(card.SLOT_BLOCKS[0])
        raw_b = reader.read_block(card.SLOT_BLOCKS[1])
        info = card.CardInfo.decode(raw_info, keys)
        slots = card.decode_slots(raw_a, raw_b, keys)
        slot, _, write_block = card.pick_slot(slots[0], slots[1])
        return CardState(uid, keys, info, slots, slot, write_block)

    def seal(self, state, slot):
        """Encode slot as this card's next state; sets slot.mac (which its record carries) and returns the block."""
        return slot.encode(state.keys, state.write_block)

    def write(self, state, sealed):
        """Store a sealed state on the card: True when the card acknowledged it, False when the outcome is unknown."""
        try:
            self.reader.write_block(state.write_block, sealed)
        except RC522Error:
            return False
        return True

    def landed(self, state, counter, mac):
        """Whether the write of the state with this counter and MAC landed, by the slots in state (SPEC.md §3.5).

        True or False once the card shows it; None when it cannot tell yet.
        """
        for slot in state.slots:
            if slot is not None and slot.counter == counter:
                return slot.mac == mac
        if (state.slot.counter + 1) % card.COUNTER_MODULUS == counter:
            return False    # the card is still one state before it
        return None

    def release(self):
        """End the session: HLTA and Crypto1 off; a card already gone is fine."""
        self.reader.release()
