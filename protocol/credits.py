"""Pending credits: the card's credit marker and the hub's list of credits to deliver (SPEC.md §3.7, §8).

A credit is value the hub granted to a card that was not present (a top-up paid elsewhere, a
replacement's released hold). The hub numbers a card's credits 1, 2, 3, ... and sends the credits
not yet delivered to every terminal as a versioned list (T_CREDITS). The card carries the highest
credit number it has received (its marker, sector 2), so a terminal adds only the credits above
it and a second terminal that sees the card afterwards adds nothing.
"""

import struct

from protocol import card, crypto
from protocol.errors import BadMac, Malformed

T_CREDITS = 0x29            # downlink (SPEC.md §5.3)

CREDIT_SECTOR = 2
MARKER_BLOCKS = (8, 9)      # two copies, written alternately (SPEC.md §3.7)
RESERVED_BLOCK = 10         # zeros, kept for later use
CREDIT_TRAILER_BLOCK = 11
CREDIT_NO_MAX = 0xFFFF      # credit numbers per card: 1..65535
_MARKER_FMT = ">HHBH5s"     # credit_no, counter, amount hi (1) + lo (2), 5 zero bytes
_MAC_DOMAIN_MARKER = b"CRED"

ENTRY_SIZE = 10
ENTRY_FMT = ">IHI"          # card_no, credit_no, amount_cents: the same on the wire and in flash
CHUNK_FMT = ">IHHH"         # version, chunk, chunks, count
CHUNK_HEAD_SIZE = 10
CREDITS_PER_CHUNK_MAX = 256  # 2.5 KB of entries: one chunk in RAM at a time on the terminal
CREDITS_MAX = 4096          # 40 KB of flash, 16 chunks


def encode_marker(card_keys, block, credit_no, counter, amount_cents):
    """Block 8 or 9 (SPEC.md §3.7): the highest credit number received, the wallet counter of the write that
    carries it and the cents it added, MAC included. (Functions, not a class: a terminal's heap.)"""
    if not (0 < credit_no <= CREDIT_NO_MAX and 0 <= counter < card.COUNTER_MODULUS
            and 0 < amount_cents <= card.BALANCE_MAX_CENTS) or block not in MARKER_BLOCKS:
        raise Malformed("credit marker out of range")
    body = struct.pack(_MARKER_FMT, credit_no, counter, amount_cents >> 16, amount_cents & 0xFFFF, bytes(5))
    return body + card_keys.mac.tag(card.MAC_SIZE, _MAC_DOMAIN_MARKER, card_keys.uid, bytes((block,)), body)


def decode_marker(data, card_keys, block):
    """(credit_no, counter, amount_cents) of one marker block; BadMac for a blank, torn or forged one."""
    if len(data) != card.BLOCK_SIZE:
        raise Malformed("a card block is 16 bytes")
    body = bytes(data[:12])
    if not crypto.equal(card_keys.mac.tag(card.MAC_SIZE, _MAC_DOMAIN_MARKER, card_keys.uid, bytes((block,)), body),
                        bytes(data[12:])):
        raise BadMac("credit marker MAC")
    credit_no, counter, hi, lo, _zero = struct.unpack(_MARKER_FMT, body)
    return credit_no, counter, (hi << 16) | lo


def read_markers(block_a, block_b, card_keys, slot_counter):
    """The credit number the card has received and the block the next marker goes to (SPEC.md §3.7).

    slot_counter: the counter of the wallet slot in force. A marker whose counter is the next one
    (its wallet write did not land) does not count. Returns (credit_no received, write block).
    """
    best = 0
    best_block = MARKER_BLOCKS[1]
    for data, block in ((block_a, MARKER_BLOCKS[0]), (block_b, MARKER_BLOCKS[1])):
        try:
            credit_no, counter, _amount = decode_marker(data, card_keys, block)
        except BadMac:
            continue
        if counter != (slot_counter + 1) % card.COUNTER_MODULUS and credit_no > best:
            best, best_block = credit_no, block     # a marker of a wallet write that never landed does not count
    return best, (MARKER_BLOCKS[0] if best_block == MARKER_BLOCKS[1] else MARKER_BLOCKS[1])


def decode_entry(buf, at=0):
    """(card_no, credit_no, amount_cents) of the entry at buf[at:at + 10]; Malformed when out of range."""
    card_no, credit_no, amount = struct.unpack_from(ENTRY_FMT, buf, at)
    if card_no < card.CARD_NO_MIN or credit_no == 0 or not 0 < amount <= card.BALANCE_MAX_CENTS:
        raise Malformed("credit entry %d/%d" % (card_no, credit_no))
    return card_no, credit_no, amount


def entry_key(entries, i):
    """(card_no, credit_no) of entry i of a chunk's entries."""
    return struct.unpack_from(">IH", entries, i * ENTRY_SIZE)


def parse_credits(body):
    """Check a T_CREDITS body (SPEC.md §8.2): (version, chunk, chunks, count, entries' bytes), or Malformed."""
    if len(body) < CHUNK_HEAD_SIZE:
        raise Malformed("credits body too short")
    version, chunk, chunks, count = struct.unpack_from(CHUNK_FMT, body, 0)
    if (version == 0 or not 0 < chunks <= CREDITS_MAX // CREDITS_PER_CHUNK_MAX or chunk >= chunks
            or count > CREDITS_PER_CHUNK_MAX or len(body) != CHUNK_HEAD_SIZE + count * ENTRY_SIZE):
        raise Malformed("credits chunk header")
    entries = bytes(memoryview(body)[CHUNK_HEAD_SIZE:])
    last = None
    for i in range(count):
        key = decode_entry(entries, i * ENTRY_SIZE)[:2]
        if last is not None and key <= last:
            raise Malformed("credits not strictly ascending")
        last = key
    return version, chunk, chunks, count, entries
