"""Booth staff and their shifts: the staff list, a new staff member, a booth that needs a shift open, and one park
day's sales per staff member and per shift with the reconciliation of the booths' own totals against the hub's."""

import time

from fastapi import APIRouter, Depends, Request

from parkcard.services import merchants, reports, staff, staff_reports
from parkcard.services import privileges as P
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (back, gettext, operator, park_of, refusable_csv, refusal_page, refused_text, render,
                                session_form, state, whole_number)
from parkcard.web.routes.reports import net_sales_chart

router = APIRouter()
PAGE = "/staff"
SHIFT_CSV_COLUMNS = ("terminal", "opened_seq", "staff_card", "name", "opened", "closed", "hub_sales",
                     "hub_sales_cents", "hub_reversals", "hub_reversals_cents", "terminal_sales",
                     "terminal_sales_cents", "terminal_reversals", "terminal_reversals_cents", "result")


async def _day_of(request, session):
    """(park, date, start_s, end_s) of the page's ?day= (today on the park's clock when none)."""
    park = await park_of(request, session)
    date, start_s, end_s = park.day_bounds(request.query_params.get("day"), gettext(request, session, "the day"),
                                           time.time())
    return park, date, start_s, end_s


@router.get("/staff")
async def staff_page(request: Request, session=Depends(operator)):
    """Staff members, and one park day's sales by staff and by shift, reconciled (privileges merchants.read,
    reports.view in the services)."""
    store, actor = state(request).store, session.actor
    try:
        park, date, start_s, end_s = await _day_of(request, session)
        members = await staff.listing(store, actor)
        names = {m[0]: m[2] for m in await merchants.listing(store, actor)}
        by_staff = await staff_reports.sales_by_staff(store, actor, start_s, end_s)
        by_shift = await staff_reports.sales_by_shift(store, actor, start_s, end_s)
        reconciled = await staff_reports.reconcile(store, actor, start_s, end_s)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    title = gettext(request, session, "Net sales by staff member on %(day)s") % {"day": date}
    chart, legend = net_sales_chart([r.name for r in by_staff], [r.totals.net_cents() for r in by_staff], park,
                                    title, lambda text: gettext(request, session, text))
    return render(request, "staff.html", session, park=park, day=date, members=members, merchants=names,
                  chart=chart, legend=legend, by_staff=by_staff, by_shift=by_shift, reconciled=reconciled,
                  differing={(d.terminal_id, d.open_seq) for d in reconciled.differences},
                  may_card={P.MERCHANTS, P.CARD_ISSUE} <= session.actor.privileges)


@router.get("/staff/shifts.csv")
async def shifts_csv(request: Request, session=Depends(operator)):
    """The day's shifts with the hub's and the terminal's totals, as CSV (amounts in cents)."""
    async def made():
        park, date, start_s, end_s = await _day_of(request, session)
        reconciled = await staff_reports.reconcile(state(request).store, session.actor, start_s, end_s)
        names = {s.staff_no: name for name, s in await staff_reports.sales_by_shift(
            state(request).store, session.actor, start_s, end_s)}
        rows = []
        for s in reconciled.shifts:
            t = s.terminal
            rows.append((s.terminal_id, s.open_seq, s.staff_no, names.get(s.staff_no, ""), park.when(s.opened_s),
                         park.when(s.closed_s), s.hub.sales, s.hub.sales_cents, s.hub.reversals, s.hub.reversals_cents)
                        + ((t.sales, t.sales_cents, t.reversals, t.reversals_cents) if t else ("", "", "", ""))
                        + ("not closed" if t is None else "ok" if t == s.hub else "different",))
        return reports.table_csv(SHIFT_CSV_COLUMNS, rows), "shifts-%s.csv" % date
    return await refusable_csv(request, session, made)


@router.post("/staff")
async def staff_add(request: Request, session=Depends(operator)):
    """Add a staff member to a merchant (privilege merchants.manage and the audit entry in the service)."""
    form = await session_form(request, session)
    try:
        merchant_id = whole_number(form, "merchant", gettext(request, session, "the merchant number"))
        member = await staff.add(state(request).store, session.actor, (form.get("name") or "").strip(), merchant_id)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "Staff member %(id)d (%(name)s) is added: issue their "
                                                         "staff card on the front desk page, with a stock card on "
                                                         "the desk.") % {"id": member.id, "name": member.name})


@router.post("/staff/require-shift")
async def require_shift(request: Request, session=Depends(operator)):
    """Make a booth refuse sales while no shift is open, or take them again (privilege terminals.manage)."""
    form = await session_form(request, session)
    try:
        terminal_id = whole_number(form, "terminal", gettext(request, session, "the terminal number"))
        required = form.get("required") == "1"
        _before, after = await staff.require_shift(state(request).store, session.actor, terminal_id, required)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    text = (gettext(request, session, "Booth %(id)d refuses sales while no shift is open.") if after
            else gettext(request, session, "Booth %(id)d takes sales with no shift open."))
    return back(PAGE, session, text % {"id": terminal_id})
