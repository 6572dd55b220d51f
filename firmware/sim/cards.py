"""Make virtual ParkCard cards: a MIFARE Classic 1K carrying an issued card image."""

from protocol import card, card_issue, hub_credits
from sim.mifare import MifareClassic1K


def card_from_blocks(uid, blocks):
    """Return a blank virtual card with the given {block: 16 bytes} written."""
    virtual = MifareClassic1K(uid)
    for block, data in blocks.items():
        virtual.blocks[block][:] = data
    return virtual


def issued_card(park_keys, uid, info, balance_cents, time_s, terminal_id=0):
    """Return a virtual card personalised as the desk would issue it (SPEC.md §3)."""
    keys = card.CardKeys(park_keys, uid)
    blocks = card_issue.issue_blocks(keys, info, balance_cents, time_s, terminal_id)
    blocks.update(hub_credits.credit_blocks(keys))
    return card_from_blocks(uid, blocks)


def card_balance(park_keys, virtual):
    """Read the balance in force straight from a virtual card's memory (for checks, not terminals)."""
    keys = card.CardKeys(park_keys, virtual.uid)
    slot, _ = card.read_slots(bytes(virtual.blocks[card.SLOT_BLOCKS[0]]),
                              bytes(virtual.blocks[card.SLOT_BLOCKS[1]]), keys)
    return slot
