"""A booth's shifts rebuilt from its records, and the terminal's own totals set against them (SPEC.md §4.14).

Pure: the records come in as (terminal_id, seq, raw) of the applied debits, reversals and shift records, in
seq order per terminal. A shift is the booth's seqs from its opening record to its closing one; a debit or
reversal inside it with the shift's tag is the shift's, anything else (no shift open, another tag) is sold
with no shift. The hub's figures are what it holds; the terminal's are what its closing record says it
counted. Reconciliation lists every shift where the two differ, and every shift not closed.
"""

from typing import NamedTuple, Optional

from protocol import record as R
from protocol import staff as S


class Shift(NamedTuple):
    """One shift at one booth: who, when, what the hub holds and what the terminal counted (None: not closed)."""

    terminal_id: int
    tag: int
    staff_no: int
    open_seq: int
    opened_s: int
    close_seq: Optional[int]
    closed_s: Optional[int]
    hub: S.ShiftTotals
    terminal: Optional[S.ShiftTotals]


class Difference(NamedTuple):
    """A shift whose terminal totals are not what the hub holds (or that was not closed): what to look at."""

    terminal_id: int
    open_seq: int
    staff_no: int
    what: str           # "not_closed", "sales", "reversals"
    terminal_count: int
    terminal_cents: int
    hub_count: int
    hub_cents: int


def _add(totals, rec):
    """Count a debit or reversal record into totals."""
    if rec.kind == R.KIND_DEBIT:
        totals.sales += 1
        totals.sales_cents += rec.amount_cents
    else:
        totals.reversals += 1
        totals.reversals_cents += rec.amount_cents


def shifts(records):
    """([Shift], {terminal_id: ShiftTotals sold with no shift}) from (terminal_id, seq, raw), in seq order per
    terminal."""
    done = []
    unshifted = {}
    open_by_terminal = {}
    for terminal_id, _seq, raw in records:
        rec = R.Record.decode(raw)
        current = open_by_terminal.get(terminal_id)
        if rec.kind == R.KIND_SHIFT:
            phase, tag, totals, open_seq = S.shift_fields(rec)
            if phase == S.PHASE_CLOSE and current is not None and current["tag"] == tag \
                    and open_seq == current["open_seq"]:
                done.append(_shift(current, rec.seq, rec.time_s, totals))
                del open_by_terminal[terminal_id]
            elif phase == S.PHASE_OPEN:
                if current is not None:
                    done.append(_shift(current, None, None, None))    # never closed: a new one opened
                open_by_terminal[terminal_id] = {"terminal_id": terminal_id, "tag": tag, "staff_no": rec.card_no,
                                                 "open_seq": rec.seq, "opened_s": rec.time_s, "hub": S.ShiftTotals()}
            continue
        if current is not None and S.tag_of(rec) == current["tag"]:
            _add(current["hub"], rec)
        else:
            _add(unshifted.setdefault(terminal_id, S.ShiftTotals()), rec)
    done.extend(_shift(current, None, None, None) for current in open_by_terminal.values())
    done.sort(key=lambda s: (s.terminal_id, s.open_seq))
    return done, unshifted


def _shift(current, close_seq, closed_s, terminal_totals):
    return Shift(current["terminal_id"], current["tag"], current["staff_no"], current["open_seq"],
                 current["opened_s"], close_seq, closed_s, current["hub"], terminal_totals)


def differences(shift_list):
    """[Difference] of every shift not closed or whose terminal totals are not the hub's, in shift order."""
    out = []
    for s in shift_list:
        if s.terminal is None:
            out.append(Difference(s.terminal_id, s.open_seq, s.staff_no, "not_closed", 0, 0, s.hub.sales,
                                  s.hub.sales_cents))
            continue
        if (s.terminal.sales, s.terminal.sales_cents) != (s.hub.sales, s.hub.sales_cents):
            out.append(Difference(s.terminal_id, s.open_seq, s.staff_no, "sales", s.terminal.sales,
                                  s.terminal.sales_cents, s.hub.sales, s.hub.sales_cents))
        if (s.terminal.reversals, s.terminal.reversals_cents) != (s.hub.reversals, s.hub.reversals_cents):
            out.append(Difference(s.terminal_id, s.open_seq, s.staff_no, "reversals", s.terminal.reversals,
                                  s.terminal.reversals_cents, s.hub.reversals, s.hub.reversals_cents))
    return out


def plus(a, b):
    """The ShiftTotals a + b."""
    return S.ShiftTotals(a.sales + b.sales, a.sales_cents + b.sales_cents, a.reversals + b.reversals,
                         a.reversals_cents + b.reversals_cents)


class StaffTotals(NamedTuple):
    """One staff member's shifts and what the hub holds of them."""

    staff_no: int
    shifts: int
    totals: S.ShiftTotals


def by_staff(shift_list):
    """[StaffTotals] summed per staff card over the shifts, by staff card number."""
    summed = {}
    for s in shift_list:
        count, totals = summed.get(s.staff_no, (0, S.ShiftTotals()))
        summed[s.staff_no] = (count + 1, plus(totals, s.hub))
    return [StaffTotals(no, count, totals) for no, (count, totals) in sorted(summed.items())]
