"""The pending-credit marker on a MIFARE Classic card (protocol/SPEC.md §3.7): sector 2 read, and the credit's
two writes in their order. Apart from terminal/cards/classic.py so that a terminal with no credits never
loads it (terminal/credits.py imports it).
"""

from protocol import card
from protocol import credits
from terminal.rc522 import RC522Error


def read_marker(session, state):
    """(credit number received, block for the next marker) from sector 2; RC522Error when the sector does not
    open (the card is halted then: read it again)."""
    reader = session.reader
    reader.auth(credits.MARKER_BLOCKS[0], state.keys.key_a(credits.CREDIT_SECTOR), state.uid)
    return credits.read_markers(reader.read_block(credits.MARKER_BLOCKS[0]),
                                reader.read_block(credits.MARKER_BLOCKS[1]), state.keys, state.slot.counter)


def seal_marker(state, block, credit_no, slot):
    """The marker block for credit_no carried by the write of slot."""
    return credits.encode_marker(state.keys, block, credit_no, slot.counter,
                                 slot.balance_cents - state.slot.balance_cents)


def write_credit(session, state, marker_block, marker, sealed):
    """Write the sealed marker, then the sealed slot (SPEC.md §3.7 order): True when both landed."""
    try:
        session.reader.write_block(marker_block, marker)
        reopen(session, state)
        session.reader.write_block(state.write_block, sealed)
    except RC522Error:
        return False
    return True


def reopen(session, state):
    """Authenticate the wallet sector again after work in sector 2."""
    session.reader.auth(card.INFO_BLOCK, state.keys.key_a(), state.uid)


def wrote(state, slot):
    """The write of slot landed: it is now the slot in force, and the next write goes to the other block."""
    index = card.SLOT_BLOCKS.index(state.write_block)
    state.slots[index] = slot
    state.slot = slot
    state.write_block = card.SLOT_BLOCKS[1 - index]
