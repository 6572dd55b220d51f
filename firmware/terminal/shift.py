"""A booth's staff shift and its totals, kept in flash (protocol/SPEC.md §4.14). Only a booth imports this.

A staff card tapped on the booth opens its member's shift; the same card tapped again closes it. Each
opening and closing is a shift record (kind 18) in the journal, uploaded like any record; the closing one
carries the shift's totals. Every debit and reversal journalled while the shift is open carries its tag.

The counters (this shift's and today's sales and reversals, counted and in cents) and the shift's last
sales are one small file replaced atomically (terminal/atomic.py) after each approved tap, so a power cut
leaves the counters before or after that tap, never half of it; they are never rebuilt by reading the
journal back. A sale approved just before a power cut may miss the counters; the hub's reconciliation
lists the difference (`parkcard report reconcile`).
"""

import json

from protocol import card
from protocol.staff import PHASE_CLOSE, PHASE_OPEN, ShiftTotals, next_tag, shift_record
from terminal import atomic
from terminal.compat import const

_NAME = const("shift.json")
SALES_KEPT_MAX = const(32)      # the shift's last sales a reversal may name; older ones go to the desk


def _totals(values):
    return ShiftTotals(values[0], values[1], values[2], values[3])


def _values(totals):
    return [totals.sales, totals.sales_cents, totals.reversals, totals.reversals_cents]


class Shift:
    """The booth's shift state: who holds it, its tag and counters, the day's counters, its last sales."""

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
        self.sales = data.get("sales", [])          # [[seq, card_no, amount_cents, reversed 0/1]], newest last
        self.required = data.get("required", False)   # refuse sales with no shift open (hub's setting)

    def save(self):
        """Write the state atomically."""
        atomic.write(self.folder, _NAME, json.dumps({
            "tag": self.tag, "staff": self.staff_no, "seq": self.open_seq, "shift": _values(self.totals),
            "day": self.day, "today": _values(self.day_totals), "sales": self.sales, "required": self.required,
        }).encode())

    def is_open(self):
        """True while a staff member's shift is open."""
        return self.staff_no != 0

    def today(self, now):
        """Today's totals as of now (a new day starts from zero)."""
        return self.day_totals if card.day_of(now) == self.day else ShiftTotals()

    def open(self, wallet, info, uid, now):
        """Open the shift of staff card info (tapped with uid): journal the opening record; return its seq."""
        self.tag = next_tag(self.tag)
        seq = self._journal(wallet, info.card_no, uid, PHASE_OPEN, now, None, 0)
        self.staff_no = info.card_no
        self.open_seq = seq
        self.totals = ShiftTotals()
        self.sales = []
        self.save()
        return seq

    def close(self, wallet, uid, now):
        """Close the open shift: journal the closing record with its totals; return its seq."""
        seq = self._journal(wallet, self.staff_no, uid, PHASE_CLOSE, now, self.totals, self.open_seq)
        self.staff_no = 0
        self.sales = []
        self.save()
        return seq

    def _journal(self, wallet, staff_no, uid, phase, now, totals, open_seq):
        """Append a shift record, committed (it writes no card), and tell the uploader."""
        online = wallet.link is not None and wallet.link.connected
        rec = shift_record(wallet.terminal_id, wallet.journal.last_seq() + 1, now, staff_no, uid, self.tag, phase,
                           wallet.config.version, 0 if online else 1, totals, open_seq)
        wallet.journal.append(rec.seq, now, rec.encode(wallet.record_mac))
        wallet.commit(rec.seq)
        return rec.seq

    def counted(self, result, now, reversal=False):
        """Count an approved sale or reversal into the shift's and today's totals, and keep the sale."""
        day = card.day_of(now)
        if day != self.day:
            self.day, self.day_totals = day, ShiftTotals()
        for t in ((self.totals, self.day_totals) if self.is_open() else (self.day_totals,)):
            if reversal:
                t.reversals += 1
                t.reversals_cents += result.amount_cents
            else:
                t.sales += 1
                t.sales_cents += result.amount_cents
        if self.is_open() and not reversal:
            self.sales.append([result.seq, result.card_no, result.amount_cents, 0])
            if len(self.sales) > SALES_KEPT_MAX:
                self.sales.pop(0)
        self.save()

    def sale(self, seq):
        """[seq, card_no, amount_cents, reversed] of this shift's sale seq, or None (not this shift's, or too old)."""
        for kept in self.sales:
            if kept[0] == seq:
                return kept
        return None
