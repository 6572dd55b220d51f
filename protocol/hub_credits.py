"""The hub's side of pending credits: the T_CREDITS list it sends and the sector 2 a desk writes at issue
(SPEC.md §3.7, §8). Apart from protocol/credits.py so that a terminal's heap holds only what it reads."""

import struct

from protocol import card
from protocol.card_issue import access_bytes
from protocol.credits import (CHUNK_FMT, CHUNK_HEAD_SIZE, CREDIT_NO_MAX, CREDIT_SECTOR, CREDIT_TRAILER_BLOCK,
                              CREDITS_MAX, CREDITS_PER_CHUNK_MAX, ENTRY_FMT, ENTRY_SIZE, MARKER_BLOCKS, RESERVED_BLOCK)
from protocol.errors import Malformed

# Blocks 8-10 read and written with key A or B (000): booths write the marker; the trailer as sector 1's (011).
CREDIT_ACCESS = access_bytes(0b000, 0b000, 0b000, 0b011)


def credit_blocks(card_keys):
    """{block: 16 bytes} the desk writes to sector 2 at issue: no marker yet, and the sector's trailer."""
    blank = bytes(card.BLOCK_SIZE)
    return {MARKER_BLOCKS[0]: blank, MARKER_BLOCKS[1]: blank, RESERVED_BLOCK: blank,
            CREDIT_TRAILER_BLOCK: card_keys.key_a(CREDIT_SECTOR) + CREDIT_ACCESS + card_keys.key_b(CREDIT_SECTOR)}


def encode_entry(card_no, credit_no, amount_cents):
    """One credit's 10 bytes; Malformed when a field is out of range."""
    if not (card.CARD_NO_MIN <= card_no <= card.CARD_NO_MAX and 0 < credit_no <= CREDIT_NO_MAX
            and 0 < amount_cents <= card.BALANCE_MAX_CENTS):
        raise Malformed("credit %r/%r of %r cents out of range" % (card_no, credit_no, amount_cents))
    return struct.pack(ENTRY_FMT, card_no, credit_no, amount_cents)


def credits_bodies(version, credits):
    """The T_CREDITS bodies of the whole list at `version`: credits is a sequence of (card_no, credit_no,
    amount_cents) strictly ascending by (card_no, credit_no), cut into chunks (an empty list is one chunk)."""
    return [credits_chunk(version, credits, i) for i in range(chunk_count(len(credits)))]


def chunk_count(count):
    """How many T_CREDITS chunks a list of count credits takes; Malformed past CREDITS_MAX."""
    if count > CREDITS_MAX:
        raise Malformed("%d credits outstanding, at most %d" % (count, CREDITS_MAX))
    return max(1, (count + CREDITS_PER_CHUNK_MAX - 1) // CREDITS_PER_CHUNK_MAX)


def credits_chunk(version, credits, i):
    """Body of chunk i of the list (credits_bodies' one element; a terminal-side sender holds one at a time)."""
    chunks = chunk_count(len(credits))
    if not 0 < version <= 0xFFFFFFFF or not 0 <= i < chunks:
        raise Malformed("credits version 1..2^32-1, chunk below %d" % chunks)
    first = i * CREDITS_PER_CHUNK_MAX
    end = min(len(credits), first + CREDITS_PER_CHUNK_MAX)
    out = bytearray(CHUNK_HEAD_SIZE + (end - first) * ENTRY_SIZE)    # one buffer: no list of small bytes
    struct.pack_into(CHUNK_FMT, out, 0, version, i, chunks, end - first)
    last = tuple(credits[first - 1][:2]) if first else None
    at = CHUNK_HEAD_SIZE
    for j in range(first, end):
        card_no, credit_no, amount = credits[j]
        if last is not None and (card_no, credit_no) <= last:
            raise Malformed("credits not strictly ascending at %d/%d" % (card_no, credit_no))
        last = (card_no, credit_no)
        out[at:at + ENTRY_SIZE] = encode_entry(card_no, credit_no, amount)
        at += ENTRY_SIZE
    return bytes(out)
