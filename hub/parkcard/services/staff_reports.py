"""Staff sales reports and the terminal-vs-hub reconciliation of booth shifts (SPEC.md §4.14).

Shifts are rebuilt from the records the hub holds (parkcard.domain.staff_shifts); a shift belongs to the
period its opening falls in, and the records around the period are read too so that a shift running over
midnight is counted whole.
"""

from typing import NamedTuple

from protocol import staff as S

from parkcard.domain import staff_shifts
from parkcard.services.privileges import REPORTS, requires
from parkcard.services.sales import DAY_S, checked_period

SHIFT_REACH_S = DAY_S       # a shift is read whole when it opened at most this long before its period ends


class StaffRow(NamedTuple):
    """A staff member's sales over a period (staff_id None: sales with no shift, or an unknown staff card)."""

    staff_id: object
    name: str
    merchant_id: object
    staff_no: object
    shifts: int
    totals: S.ShiftTotals


class ShiftRow(NamedTuple):
    """One shift with its staff member's name."""

    name: str
    shift: staff_shifts.Shift


class Reconciliation(NamedTuple):
    """One day's booth shifts: each shift, the differences found, what was sold with no shift."""

    shifts: list
    differences: list
    unshifted: dict


async def _shifts(store, start_s, end_s):
    """([Shift] opened in [start_s, end_s), {terminal_id: ShiftTotals} sold with no shift in it)."""
    wide = await store.shift_records(max(0, start_s - SHIFT_REACH_S), end_s + SHIFT_REACH_S)
    shift_list, _ = staff_shifts.shifts([(r.terminal_id, r.seq, r.raw) for r in wide])
    inside = [r for r in wide if start_s <= r.time_s < end_s]
    _, unshifted = staff_shifts.shifts([(r.terminal_id, r.seq, r.raw) for r in inside])
    opened = [s for s in shift_list if start_s <= s.opened_s < end_s]
    return opened, unshifted


async def _names(store):
    """{staff card_no: StaffMember}."""
    return {m.card_no: m for m in await store.staff() if m.card_no is not None}


@requires(REPORTS)
async def sales_by_staff(store, actor, start_s, end_s):
    """[StaffRow] of the shifts opened in [start_s, end_s), per staff member, then one row of sales with no shift."""
    checked_period(start_s, end_s)
    shift_list, unshifted = await _shifts(store, int(start_s), int(end_s))
    names = await _names(store)
    rows = []
    for summed in staff_shifts.by_staff(shift_list):
        member = names.get(summed.staff_no)
        rows.append(StaffRow(member.id if member else None, member.name if member else "(unknown staff card)",
                             member.merchant_id if member else None, summed.staff_no, summed.shifts, summed.totals))
    if unshifted:
        none = S.ShiftTotals()
        for totals in unshifted.values():
            none = staff_shifts.plus(none, totals)
        rows.append(StaffRow(None, "(no shift)", None, None, 0, none))
    return rows


@requires(REPORTS)
async def sales_by_shift(store, actor, start_s, end_s):
    """[ShiftRow] of every shift opened in [start_s, end_s), by terminal and opening seq."""
    checked_period(start_s, end_s)
    shift_list, _ = await _shifts(store, int(start_s), int(end_s))
    names = await _names(store)
    return [ShiftRow(names[s.staff_no].name if s.staff_no in names else "(unknown staff card)", s)
            for s in shift_list]


@requires(REPORTS)
async def reconcile(store, actor, day_start_s, day_end_s=None):
    """Reconciliation of the shifts opened in [day_start_s, day_end_s) (a park day; without day_end_s the UTC day
    starting at day_start_s): the terminals' own totals against the records the hub holds."""
    if day_end_s is None:
        day_start_s = int(day_start_s) // DAY_S * DAY_S
        day_end_s = day_start_s + DAY_S
    checked_period(day_start_s, day_end_s)
    shift_list, unshifted = await _shifts(store, int(day_start_s), int(day_end_s))
    return Reconciliation(shift_list, staff_shifts.differences(shift_list), unshifted)
