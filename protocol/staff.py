"""Staff shifts and booth reversals as records (SPEC.md §4.14, §4.15): the shift tag a booth's records carry in
byte 27, the shift record (kind 18) with the shift's totals, and the reversal (kind 19) that gives one sale of
the open shift back to its card. Only a booth and the hub import this.
"""

import struct

from protocol.record import KIND_DEBIT, KIND_REVERSAL, KIND_SHIFT, Record

PHASE_OPEN = 1      # a shift record's item: the staff card opened the shift
PHASE_CLOSE = 2     # ... or closed it; the record then carries the shift's totals
TAG_NONE = 0        # byte 27 of a debit sold with no shift open
TAG_MAX = 255       # tags go 1, 2 .. 255, 1 ..: one per shift, never 0
COUNT_MAX = 0xFFFF  # sales or reversals counted in one shift record's field (SPEC.md §4.14)
TAGGED_KINDS = (KIND_DEBIT, KIND_SHIFT, KIND_REVERSAL)


def next_tag(tag):
    """The tag of the shift after the one tagged `tag` (TAG_NONE: the terminal's first shift)."""
    return tag % TAG_MAX + 1


def tag_of(rec):
    """The shift tag of a booth's debit, shift or reversal record (TAG_NONE for every other kind)."""
    return rec.quantity if rec.kind in TAGGED_KINDS else TAG_NONE


def tagged(rec, tag):
    """rec with byte 27 set to the shift tag (a debit, shift or reversal record); returns rec."""
    if tag:
        rec.quantity = tag
    return rec


class ShiftTotals:
    """What a shift took: sales and reversals, counted and in cents (a closing shift record's figures)."""

    def __init__(self, sales=0, sales_cents=0, reversals=0, reversals_cents=0):
        self.sales = sales
        self.sales_cents = sales_cents
        self.reversals = reversals
        self.reversals_cents = reversals_cents

    def net_cents(self):
        """Sales less reversals: what the shift's staff member took."""
        return self.sales_cents - self.reversals_cents

    def __eq__(self, other):
        return (self.sales, self.sales_cents, self.reversals, self.reversals_cents) == (
            other.sales, other.sales_cents, other.reversals, other.reversals_cents)

    def __repr__(self):
        return "ShiftTotals(%d, %d, %d, %d)" % (self.sales, self.sales_cents, self.reversals, self.reversals_cents)


def shift_record(terminal_id, seq, time_s, staff_no, staff_uid, tag, phase, config_version, flags=0,
                 totals=None, open_seq=0):
    """The shift record (kind 18, SPEC.md §4.14) of staff card staff_no opening or closing shift `tag`.

    A closing record carries the shift's totals and the seq of its opening record."""
    t = totals or ShiftTotals()
    if t.sales > COUNT_MAX or t.reversals > COUNT_MAX:
        t = ShiftTotals(min(t.sales, COUNT_MAX), t.sales_cents, min(t.reversals, COUNT_MAX), t.reversals_cents)
    rec = Record(KIND_SHIFT, terminal_id, seq, time_s, staff_no, staff_uid, 0, t.sales_cents, t.reversals_cents,
                 phase, (t.sales << 16) | t.reversals, flags, config_version, struct.pack(">I", open_seq))
    return tagged(rec, tag)


def shift_fields(rec):
    """(phase, tag, ShiftTotals, open_seq) of a shift record."""
    m = rec.card_mac
    counts = rec.discount_cents
    totals = ShiftTotals(counts >> 16, rec.amount_cents, counts & 0xFFFF, rec.balance_after_cents)
    return rec.item, rec.quantity, totals, (m[0] << 24) | (m[1] << 16) | (m[2] << 8) | m[3]


def reversal_of(rec):
    """(sale seq, authorising staff card_no) of a reversal record (kind 19, SPEC.md §4.15)."""
    return rec.seq - rec.item, rec.discount_cents

