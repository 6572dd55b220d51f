"""A booth's staff shift and its totals, kept in flash (protocol/SPEC.md §4.14, §5.11). Only a booth imports this.

A staff card of the booth's merchant (the list the hub sends, T_STAFF) tapped on the booth opens its member's
shift; the same card tapped again closes it. Each opening and closing is a shift record (kind 18) in the
journal, uploaded like any record; the closing one carries the shift's totals. Every debit and reversal
journalled while the shift is open carries its tag.

The counters (this shift's and today's sales and reversals, counted and in cents; today is the park's day, by
the UTC offset T_STAFF carries) are one small file replaced atomically (terminal/atomic.py). A sale is counted
in memory first and saved once its approved screen is up, so the visitor never waits for the flash. The file
names the last journal seq it counted: at start the booth counts the records the journal holds after it (a
power cut between a sale's journal commit and the save; terminal/shift_recovery.py), so its totals stay those
of its journal, and the hub's (`parkcard report reconcile`).

The open shift's sales are appended to a file of their own (seq, card_no, amount: 12 bytes each), which a
reversal reads back by seq in a small buffer (terminal/reversal.py): any sale of the shift, however old, in
bounded memory.
"""

import json
import os
import struct

from protocol.park_day import park_day
from protocol.staff import PHASE_CLOSE, PHASE_OPEN, ShiftTotals, next_tag, shift_record
from terminal import atomic
from terminal.compat import const

_NAME = const("shift.json")
SALES = "sales"                 # the open shift's sales: seq, card_no, amount_cents (u32 each), appended
SALE_SIZE = 12
_STAFF = const("staff")         # the merchant's staff card numbers (T_STAFF), u32 each, ascending
REVERSALS_MAX = const(64)       # reversals one shift keeps track of; past it the desk gives money back
_COMPARE_BYTES = const(64)


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
        self.unsaved = []           # sales counted in memory, not yet in the sales file
        self._mend_sales()

    def save(self):
        """Write what was counted: the new sales to the sales file, then the state atomically."""
        if self.unsaved:
            with open(self.path(SALES), "ab") as f:
                for sale in self.unsaved:
                    f.write(struct.pack(">III", sale[0], sale[1], sale[2]))
                atomic.sync(f)
            self.unsaved = []
        atomic.write(self.folder, _NAME, json.dumps({
            "tag": self.tag, "staff": self.staff_no, "seq": self.open_seq, "shift": _values(self.totals),
            "day": self.day, "today": _values(self.day_totals), "reversed": self.reversed,
            "required": self.required, "zone": self.zone, "counted": self.counted_seq,
        }).encode())

    def path(self, name):
        """The path of a file of the shift's folder."""
        return self.folder + "/" + name

    def _mend_sales(self):
        # A power cut during an append leaves part of a sale at the end: keep the whole ones only.
        try:
            size = os.stat(self.path(SALES))[6]
        except OSError:
            return
        if size % SALE_SIZE:
            atomic.write(self.folder, SALES, atomic.read(self.folder, SALES)[:size - size % SALE_SIZE])

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
        if cards is None:
            return True
        from protocol.staff_list import staff_holds     # at a staff tap only
        return staff_holds(cards, card_no)

    def holds_staff(self, zone, cards):
        """True when the zone fields and staff card numbers (u32 bytes) are the T_STAFF list kept already."""
        if list(zone) != self.zone:
            return False
        try:
            if os.stat(self.path(_STAFF))[6] != len(cards):
                return False
        except OSError:
            return False
        buf = bytearray(_COMPARE_BYTES)     # compared piecewise: no second copy of a 2 KB list on the heap
        view = memoryview(cards)
        at = 0
        with open(self.path(_STAFF), "rb") as f:
            while at < len(cards):
                n = f.readinto(buf)
                if not n or buf[:n] != view[at:at + n]:
                    return False
                at += n
        return True

    def take_staff(self, zone, cards):
        """Keep a T_STAFF list: the park's zone fields and the merchant's staff card numbers (u32 bytes)."""
        atomic.write(self.folder, _STAFF, cards)
        self.zone = list(zone)
        self.save()

    def open(self, wallet, info, uid, now):
        """Open the shift of staff card info (tapped with uid): journal the opening record; return its seq."""
        tag = next_tag(self.tag)
        seq = self._journal(wallet, info.card_no, uid, PHASE_OPEN, now, None, 0, tag)
        self.begin(seq, tag, info.card_no)
        self.save()
        return seq

    def begin(self, seq, tag, staff_no):
        """The shift tagged tag opened by staff card staff_no at journal seq: empty totals, no sales yet."""
        self.tag, self.staff_no, self.open_seq, self.counted_seq = tag, staff_no, seq, seq
        self.totals = ShiftTotals()
        self.reversed = []
        self.unsaved = []
        atomic.remove(self.path(SALES))

    def close(self, wallet, uid, now):
        """Close the open shift: journal the closing record with its totals; return its seq."""
        seq = self._journal(wallet, self.staff_no, uid, PHASE_CLOSE, now, self.totals, self.open_seq, self.tag)
        self.end(seq)
        self.save()
        return seq

    def end(self, seq):
        """The open shift closed at journal seq."""
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
        self.tally(result.seq, result.card_no, result.amount_cents, now, reversal, sale_seq, self.is_open())

    def tally(self, seq, card_no, amount_cents, now, reversal, sale_seq, in_shift):
        """Count journal seq (a sale of card_no, or the reversal of sale_seq) at time now, into the shift's
        totals too when in_shift, in memory."""
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
            self.unsaved.append((seq, card_no, amount_cents))
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

    def behind(self, journal):
        """True when the journal holds records after the last seq these counters hold (terminal/shift_recovery.py
        counts them), or when they name none."""
        return self.counted_seq is None or journal.last_seq() > self.counted_seq
