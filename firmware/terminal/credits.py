"""Pending credits: the hub's list in flash, and their delivery to a tapped card (protocol/SPEC.md §3.7, §8).

On-flash format (all integers big-endian; kept as terminal/listfile.py keeps every chunked list)
-----------------------------------------
``dirpath/credits``: count entries of 10 bytes (card_no u32 | credit_no u16 | amount_cents u32), strictly
ascending by (card_no, credit_no), exactly as the T_CREDITS chunks carried them, then a 16-byte trailer:

  'PCCR' | version u32 | count u16 | 0 0 | crc32 of the entries u32

A new version is streamed into ``credits.tmp`` chunk by chunk and renamed over the old file after its
last chunk (atomic.replace): the old list serves until the new one is whole. A lookup is a binary
search reading 4 bytes per step: RAM never depends on the count.

Delivery (SPEC.md §3.7): a card whose number has entries above the marker it carries gets them in
one wallet write of their own, journal first: the record (kind 15) is PENDING before the marker is
written, the marker before the wallet slot, so a card torn between the two shows a marker that
does not count and gets the credits again at its next tap.
"""

import struct

from protocol import card
from protocol.credits import ENTRY_SIZE, T_CREDITS, entry_key, parse_credits
from protocol.errors import ProtocolError
from protocol.record import FLAG_OFFLINE, KIND_CREDIT, Record

from . import atomic
from . import journal as jr
from .cards import classic_credits
from .listfile import ListFile
from .rc522 import RC522Error
from .wallet import READ_FAILED, Result

_NAME = "credits"
_MAGIC = b"PCCR"
_TRAILER_FMT = ">4sIHHI"
_FREE_RECORDS_MIN = 3       # the credit record, then the sale's record and its successor


class CreditsOrder(ProtocolError):
    """A chunk that does not continue the list being received; the hub sends the list again whole."""

    reason = "snapshot_order"


class CreditsCorrupt(Exception):
    """The stored list does not check: the terminal asks the hub for the whole list (version 0)."""


class Credits(ListFile):
    """The list of credits in force, the next one while its chunks arrive, and delivery at a tap."""

    _MAGIC = _MAGIC

    def __init__(self, dirpath):
        ListFile.__init__(self, dirpath, _NAME, ENTRY_SIZE)
        self._key = bytearray(4)
        self._next = None       # [version, chunks, next chunk, last (card, credit)] while receiving
        self.version = 0
        self.count = 0
        try:
            self._load()
        except CreditsCorrupt:
            atomic.remove(self._path)   # version 0: the next sync asks for the whole list

    def _load(self):
        self.version = 0
        self.count = 0
        fields = self._trailer(_TRAILER_FMT, 2, CreditsCorrupt)
        if fields is not None:
            self.version, self.count = fields[1:3]

    # -- the list ----------------------------------------------------------------

    def due(self, card_no, received):
        """(total cents, highest credit number) of this card's credits above `received`; (0, 0) for none."""
        lo, hi = 0, self.count
        f = self._f
        while lo < hi:  # the first entry with a card number >= card_no
            mid = (lo + hi) // 2
            f.seek(mid * ENTRY_SIZE)
            f.readinto(self._key)
            if struct.unpack(">I", self._key)[0] < card_no:
                lo = mid + 1
            else:
                hi = mid
        total = top = 0
        f.seek(lo * ENTRY_SIZE) if lo < self.count else None
        while lo < self.count:
            f.readinto(self._entry)
            number, credit_no, amount = struct.unpack(">IHI", self._entry)
            if number != card_no:
                break
            if credit_no > received:
                total += amount
                top = credit_no
            lo += 1
        return total, top

    def on_frame(self, frame):
        """Sync's T_CREDITS handler: take one chunk; a chunk out of order drops the half-received list."""
        version, index, chunks, count, entries = parse_credits(frame.body)
        if index == 0:
            self._abandon()
            if version == self.version:
                return      # the list in force, sent again
            self._begin()
            self._next = [version, chunks, 0, (0, 0)]
        nxt = self._next
        if nxt is None or (version, chunks, index) != tuple(nxt[:3]) \
                or (count and tuple(entry_key(entries, 0)) <= nxt[3]):
            self._abandon()
            raise CreditsOrder("credits chunk %d of version %d" % (index, version))
        self._append(entries, count)
        nxt[2] += 1
        if count:
            nxt[3] = tuple(entry_key(entries, count - 1))
        if nxt[2] < nxt[1]:
            return
        self._next = None
        self._seal(struct.pack(_TRAILER_FMT, _MAGIC, nxt[0], self._count, 0, self._crc))

    def _abandon(self):
        ListFile._abandon(self)
        self._next = None

    def register(self, sync, wallet):
        """Take T_CREDITS from sync and deliver at the wallet's taps."""
        sync.handle(T_CREDITS, self.on_frame)
        sync.credits = self
        wallet.credits = self

    # -- delivery ----------------------------------------------------------------

    def deliver(self, wallet, cr, now):
        """Add this card's credits above its marker (SPEC.md §3.7): (CardState in force, None) or (None, refusal).

        A card that cannot take them now (locked, returned, no keyed sector 2, journal or balance full)
        is served as it is; they wait for a later tap.
        """
        info, slot = cr.info, cr.slot
        if not self.count or wallet.config is None or info.flags & (card.FLAG_ADMIN | card.FLAG_RETURNED) \
                or slot.locked or wallet.blacklist.contains(info.card_no) \
                or wallet.journal.free_records() < _FREE_RECORDS_MIN:
            return cr, None
        total, top = self.due(info.card_no, 0)
        if not total:
            return cr, None     # nothing for this card: the card's sector 2 is not even read
        session = wallet.card
        try:
            received, marker_block = classic_credits.read_marker(session, cr)
        except RC522Error:
            # Sector 2 not keyed (a card issued before credits existed): the credits wait for the desk.
            return self._reread(wallet, cr)
        total, top = self.due(info.card_no, received)
        if not total or slot.balance_cents + total > card.BALANCE_MAX_CENTS:
            try:
                classic_credits.reopen(session, cr)      # back to sector 1 for the sale
            except RC522Error:
                return self._reread(wallet, cr)
            return cr, None
        try:
            # Everything the writes need is made before the record is journaled: out of heap here, the
            # tap goes on without the credits (they wait for a later tap) and nothing is half done.
            new = slot.next(slot.balance_cents + total, slot.spend_day, slot.day_spend_cents, wallet.terminal_id)
            sealed = session.seal(cr, new)
            marker = classic_credits.seal_marker(cr, marker_block, top, new)
            seq = wallet.journal.last_seq() + 1
            online = wallet.link is not None and wallet.link.connected
            raw = Record(KIND_CREDIT, wallet.terminal_id, seq, now, info.card_no, cr.uid, new.counter, total,
                         new.balance_cents, top, received, 0 if online else FLAG_OFFLINE, wallet.config.version,
                         new.mac).encode(wallet.record_mac)
        except MemoryError:
            return self._reread(wallet, cr)
        try:
            wallet.journal.append(seq, now, raw)
        except jr.JournalFull:
            return self._reread(wallet, cr)
        raw = None
        if not classic_credits.write_credit(session, cr, marker_block, marker, sealed):
            wallet.journal.mark(seq, jr.UNCERTAIN)   # settled by the card's next read (SPEC.md §3.5)
            return self._reread(wallet, cr)
        wallet._mark(seq, jr.COMMITTED)
        classic_credits.wrote(cr, new)
        return cr, None

    def _reread(self, wallet, cr):
        """Read the card afresh after sector 2 work that failed (a failed authentication halts the card)."""
        try:
            again = wallet.card.read(wallet.park_keys, True, cr.uid)
        except RC522Error:
            again = None
        if again is None:
            wallet._finish()
            return None, Result(False, READ_FAILED, cr.info.card_no, cr.slot.balance_cents)
        wallet._resolve_uncertain(again)
        return again, None
