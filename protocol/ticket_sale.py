"""Selling a ticket onto a card's sector 3, and the names of the gate's refusal reasons (SPEC.md §3.8, §3.11,
§3.12): what the hub and the desk use of protocol/ticket.py and a gate does not, read through that module
(ticket.sale_blocks, ticket.REASON_NAMES) and loaded only when first used. A codec only: no I/O, runs on
MicroPython and CPython.
"""

from protocol import card, card_issue
from protocol.ticket import (INFO_BLOCK, REASON_ALREADY_INSIDE, REASON_BLACKLISTED, REASON_DAY_LIMIT, REASON_EXPIRED,
                             REASON_NO_ENTRIES, REASON_NO_REENTRY, REASON_NO_TICKET, REASON_NOT_HERE, REASON_NOT_INSIDE,
                             REASON_NOT_YET_VALID, REASON_PAY_AT_DESK, SLOT_BLOCKS, TICKET_SECTOR, TRAILER_BLOCK,
                             TicketSlot)

REASON_NAMES = {REASON_BLACKLISTED: "blacklisted", REASON_NO_TICKET: "no_ticket", REASON_NOT_HERE: "not_here",
                REASON_EXPIRED: "expired", REASON_NOT_YET_VALID: "not_valid_today",
                REASON_ALREADY_INSIDE: "already_inside", REASON_NO_REENTRY: "no_reentry",
                REASON_NO_ENTRIES: "no_entries_left", REASON_DAY_LIMIT: "day_limit",
                REASON_NOT_INSIDE: "not_inside", REASON_PAY_AT_DESK: "pay_at_desk"}


def sale_blocks(card_keys, info, entries_left, time_s=0):
    """{block: 16 bytes} a desk writes to sell a ticket onto a card's blank sector 3: info, slot A, blank B, trailer."""
    slot = TicketSlot(1, entries_left, False, 0, time_s, 0)
    return {
        INFO_BLOCK: info.encode(card_keys),
        SLOT_BLOCKS[0]: slot.encode(card_keys, SLOT_BLOCKS[0]),
        SLOT_BLOCKS[1]: bytes(card.BLOCK_SIZE),
        TRAILER_BLOCK: card_issue.trailer_block(card_keys, TICKET_SECTOR),
    }


def rewrite_blocks(card_keys, info, entries_left, time_s=0):
    """[(block, 16 bytes)] in write order that replace the ticket of a sector 3 a sale made before (SPEC.md §3.12).

    Both state slots are blanked before the new info is written and slot A last: a write torn anywhere
    leaves no valid slot (no ticket), never the new ticket with the old one's state."""
    slot = TicketSlot(1, entries_left, False, 0, time_s, 0)
    blank = bytes(card.BLOCK_SIZE)
    return [(SLOT_BLOCKS[1], blank), (SLOT_BLOCKS[0], blank), (INFO_BLOCK, info.encode(card_keys)),
            (SLOT_BLOCKS[0], slot.encode(card_keys, SLOT_BLOCKS[0]))]
