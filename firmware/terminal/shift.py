"""A booth's staff shift and its totals, kept in flash (protocol/SPEC.md §4.14, §5.11). Only a booth imports this.

A staff card of the booth's merchant (the list the hub sends, T_STAFF) tapped on the booth opens its member's
shift; the same card tapped again closes it. Each opening and closing is a shift record (kind 18) in the
journal, uploaded like any record; the closing one carries the shift's totals. Every debit and reversal
journalled while the shift is open carries its tag.

The counters (this shift's and today's sales and reversals, counted and in cents; today is the park's day, by
the UTC offset T_STAFF carries) are one small file replaced atomically (terminal/atomic.py). A sale is counted
in memory first and saved once its approved screen is up, so the visitor never waits for the flash. The file
names the last journal seq it counted: at start the booth counts the records the journal holds after it (a
power cut between a sale's journal commit and the save), so its totals stay those of its journal, and the
hub's (`parkcard report reconcile`).

The open shift's sales are appended to a file of their own (seq, card_no, amount: 12 bytes each), which a
reversal reads back by seq in a small buffer: any sale of the shift, however old, in bounded memory.
"""

import json
import os
import struct

from protocol import staff as S
from protocol.park_day import park_day
from protocol.record import KIND_DEBIT, KIND_REVERSAL, KIND_SHIFT, RECORD_SIZE, Record
from protocol.staff import PHASE_CLOSE, PHASE_OPEN, ShiftTotals, next_tag, shift_record, staff_holds
from terminal import atomic
from terminal.compat import const
from terminal.journal import COMMITTED, VOIDED

_NAME = const("shift.json")
_SALES = const("sales")         # the open shift's sales: seq, card_no, amount_cents (u32 each), appended
_STAFF = const("staff")         # the merchant's staff card numbers (T_STAFF), u32 each, ascending
_SALE_SIZE = const(12)
_SALES_READ = const(20)         # sales read at a time by a lookup: a 240-byte buffer
REVERSALS_MAX = const(64)       # reversals one shift keeps track of; past it the desk gives money back


def _totals(values):
    return ShiftTotals(values[0], values[1], values[2], values[3])


def _values(totals):
    return [totals.sales, totals.sales_cents, totals.reversals, totals.reversals_cents]


class Shift:
    """The booth's shift state: who holds it, its tag and counters, the day's counters, its sales and reversals."""

    def __init__(self, folder):
        self.folder = folder
        atomic.makedirs(folder)
        raw = atomic.read(folder, _NAME)
        data = json.loads(raw) if raw else {}
        self.tag = data.get("tag", 0)               # the tag of the shift open, or of the last one
        self.staff_no = data.get("staff", 0)        # 0: no shift open
        self.open_seq = data.get("seq", 0)
        self.totals = _totals(data.get("shift", [0, 0, 0, 0]))
        self.day = data.get("day", 0)
        self.day_totals = _totals(data.get("today", [0, 0, 0, 0]))
        self.reversed = data.get("reversed", [])    # seqs of this shift's sales given back (or whose reversal is open)
        self.required = data.get("required", False)   # refuse sales with no shift open (hub's setting)
        self.zone = data.get("zone", [0, 0, 0])     # the park's utc_offset_s, next_change_s, next_offset_s (§5.11)
        # The last journal seq these counters hold; None: a file written before they named it (nothing recovered).
        self.counted_seq = data.get("counted", None if raw else 0)
        self._unsaved = []                          # sales counted in memory, not yet in the sales file
        self._mend_sales()

    def save(self):
        """Write what was counted: the new sales to the sales file, then the state atomically."""
        if self._unsaved:
            with open(self._path(_SALES), "ab") as f:
                for sale in self._unsaved:
                    f.write(struct.pack(">III", sale[0], sale[1], sale[2]))
                atomic.sync(f)
            self._unsaved = []
        atomic.write(self.folder, _NAME, json.dumps({
            "tag": self.tag, "staff": self.staff_no, "seq": self.open_seq, "shift": _values(self.totals),
            "day": self.day, "today": _values(self.day_totals), "reversed": self.reversed,
            "required": self.required, "zone": self.zone, "counted": self.counted_seq,
        }).encode())

    def _path(self, name):
        return self.folder + "/" + name

    def _mend_sales(self):
        # A power cut during an append leaves part of a sale at the end: keep the whole ones only.
        try:
            size = os.stat(self._path(_SALES))[6]
        except OSError:
            return
        if size % _SALE_SIZE:
            atomic.write(self.folder, _SALES, atomic.read(self.folder, _SALES)[:size - size % _SALE_SIZE])

    def is_open(self):
        """True while a staff member's shift is open."""
        return self.staff_no != 0

    def park_day(self, now):
        """The park's day of epoch time now, by the offset the hub last sent (UTC until it sent one)."""
        zone = self.zone
        return park_day(now, 0, zone[0], zone[1], zone[2])

    def today(self, now):
        """Today's totals as of now (a new park day starts from zero)."""
        return self.day_totals if self.park_day(now) == self.day else ShiftTotals()

    def allows(self, card_no):
        """True when staff card card_no may open a shift here: on the merchant's list (any, while none came)."""
        cards = atomic.read(self.folder, _STAFF)
        return cards is None or staff_holds(cards, card_no)

    def take_staff(self, zone, cards):
        """Keep a T_STAFF list: the park's zone fields and the merchant's staff card numbers (u32 bytes)."""
        atomic.write(self.folder, _STAFF, cards)
        self.zone = list(zone)
        self.save()

    def open(self, wallet, info, uid, now):
        """Open the shift of staff card info (tapped with uid): journal the opening record; return its seq."""
        tag = next_tag(self.tag)
        seq = self._journal(wallet, info.card_no, uid, PHASE_OPEN, now, None, 0, tag)
        self._opened(seq, tag, info.card_no)
        self.save()
        return seq

    def _opened(self, seq, tag, staff_no):
        self.tag, self.staff_no, self.open_seq, self.counted_seq = tag, staff_no, seq, seq
        self.totals = ShiftTotals()
        self.reversed = []
        self._unsaved = []
        atomic.remove(self._path(_SALES))

    def close(self, wallet, uid, now):
        """Close the open shift: journal the closing record with its totals; return its seq."""
        seq = self._journal(wallet, self.staff_no, uid, PHASE_CLOSE, now, self.totals, self.open_seq, self.tag)
        self._closed(seq)
        self.save()
        return seq

    def _closed(self, seq):
        self.staff_no = 0
        self.counted_seq = seq
        self.reversed = []

    def _journal(self, wallet, staff_no, uid, phase, now, totals, open_seq, tag):
        """Append a shift record, committed (it writes no card), and tell the uploader."""
        online = wallet.link is not None and wallet.link.connected
        rec = shift_record(wallet.terminal_id, wallet.journal.last_seq() + 1, now, staff_no, uid, tag, phase,
                           wallet.config.version, 0 if online else 1, totals, open_seq)
        wallet.journal.append(rec.seq, now, rec.encode(wallet.record_mac))
        wallet.commit(rec.seq)
        return rec.seq

    def count(self, result, now, reversal=False, sale_seq=0):
        """Count an approved sale, or the reversal of sale_seq, into the shift's and today's totals, in memory
        (save() writes them)."""
        self._count(result.seq, result.card_no, result.amount_cents, now, reversal, sale_seq, self.is_open())

    def _count(self, seq, card_no, amount_cents, now, reversal, sale_seq, in_shift):
        day = self.park_day(now)
        if day != self.day:
            self.day, self.day_totals = day, ShiftTotals()
        for t in ((self.totals, self.day_totals) if in_shift else (self.day_totals,)):
            if reversal:
                t.reversals += 1
                t.reversals_cents += amount_cents
            else:
                t.sales += 1
                t.sales_cents += amount_cents
        if in_shift and reversal:
            self.mark_reversed(sale_seq)
        elif in_shift:
            self._unsaved.append((seq, card_no, amount_cents))
        if self.counted_seq is None or seq > self.counted_seq:
            self.counted_seq = seq

    def counted(self, result, now, reversal=False, sale_seq=0):
        """count() and save() at once."""
        self.count(result, now, reversal, sale_seq)
        self.save()

    def mark_reversed(self, sale_seq):
        """Sale sale_seq is given back (or its reversal's outcome is open): no second reversal of it."""
        if sale_seq not in self.reversed:
            self.reversed.append(sale_seq)

    def reversals_full(self):
        """True when the shift keeps no further reversal (REVERSALS_MAX)."""
        return len(self.reversed) >= REVERSALS_MAX

    def sale(self, seq):
        """(seq, card_no, amount_cents) of this shift's sale seq, or None: read from the sales file by seq."""
        for kept in self._unsaved:
            if kept[0] == seq:
                return kept
        if not self.is_open() or seq <= self.open_seq:
            return None
        buf = bytearray(_SALE_SIZE * _SALES_READ)
        try:
            f = open(self._path(_SALES), "rb")
        except OSError:
            return None
        try:
            while True:
                got = f.readinto(buf)
                if not got:
                    return None
                for at in range(0, got - got % _SALE_SIZE, _SALE_SIZE):
                    found = struct.unpack_from(">III", buf, at)
                    if found[0] == seq:
                        return found
                    if found[0] > seq:
                        return None         # appended in seq order
        finally:
            f.close()

    def recover(self, journal):
        """Count what the journal holds after the last seq these counters hold (a power cut came between a sale's
        journal commit and their save): the approved sales and reversals, and shift records; return how many
        records were read. A file from before the counters named a seq takes the journal as counted."""
        if self.counted_seq is None:
            self.counted_seq = journal.last_seq()
            self.save()
            return 0
        if journal.last_seq() <= self.counted_seq:
            return 0
        found = []
        journal.each_after(self.counted_seq, lambda seq, buf, at: found.append(bytes(buf[at:at + RECORD_SIZE])))
        for raw in found:
            rec = Record.decode(raw)
            status = journal.status(rec.seq)
            tag = S.tag_of(rec)
            in_shift = self.is_open() and tag == self.tag
            if rec.kind == KIND_SHIFT and rec.item == PHASE_OPEN:
                self._opened(rec.seq, tag, rec.card_no)
            elif rec.kind == KIND_SHIFT and rec.item == PHASE_CLOSE:
                self._closed(rec.seq)
            elif rec.kind == KIND_DEBIT and status == COMMITTED:
                self._count(rec.seq, rec.card_no, rec.amount_cents, rec.time_s, False, 0, in_shift)
            elif rec.kind == KIND_REVERSAL and status == COMMITTED:
                self._count(rec.seq, rec.card_no, rec.amount_cents, rec.time_s, True, rec.seq - rec.item, in_shift)
            elif rec.kind == KIND_REVERSAL and status != VOIDED and in_shift:
                self.mark_reversed(rec.seq - rec.item)      # its outcome is open: the card's next tap settles it
        self.counted_seq = journal.last_seq()
        self.save()
        return len(found)
