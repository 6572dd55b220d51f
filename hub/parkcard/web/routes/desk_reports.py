"""The desks' reports: one day's desk operations per operator or desk, what the park owes now (bonus purses
apart), a closed cashier shift's Z report, and the list of Z reports by day and desk; the day's, the liabilities'
and the Z reports' CSV (amounts in cents, times on the park's clock)."""

import datetime
import time

from fastapi import APIRouter, Depends, Request

from parkcard.domain import park_time
from parkcard.services import reports, shifts
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (N_, csv_download, gettext, operator, optional_number, park_of, refusable_csv,
                                refusal_page, refused_text, render, state)
from parkcard.web.routes.reports import LIABILITY_LABELS

router = APIRouter()
DESK_CSV_COLUMNS = ("day", "group", "kind", "count", "amount_cents", "bonus_cents", "deposit_cents")
LIABILITY_CSV_COLUMNS = ("liability", "amount_cents")
BONUS_LABEL = N_("of it in the cards' bonus purses")
# What a page calls each group of the desk report (parkcard.services.reports.DESK_GROUPS).
GROUP_LABELS = {"operator": N_("by operator"), "desk": N_("by desk")}
Z_CSV_COLUMNS = ("z_report", "shift", "desk", "opened_by", "opened", "closed_by", "closed", "expected_cents",
                 "counted_cents", "difference_cents")


def _park_day(request, session, text):
    """(date, park day) of a YYYY-MM-DD date (the park's day from its daily reset, as its gates count it)."""
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise ServiceError(gettext(request, session, "The day must be a date like 2026-07-01, not %(text)r.")
                           % {"text": text}) from None
    return day.isoformat(), park_time.day_of_date(day)


def _desk_day(request, session, park):
    """(date, by, park day) of ?day=&by= (today on the park's clock by default)."""
    by = request.query_params.get("by") or "operator"
    if by not in reports.DESK_GROUPS:
        raise ServiceError(gettext(request, session, "Choose a desk report by operator or by desk."))
    date, park_day = _park_day(request, session, (request.query_params.get("day") or "").strip() or
                               park.day(time.time()))
    return date, by, park_day


async def _owed(store, actor):
    """[(label, cents)] of the liabilities now, and the part of the cards' funds in their bonus purses."""
    owed = await reports.liabilities(store, actor)
    return [(label, getattr(owed, name)) for name, label in LIABILITY_LABELS], await reports.bonus_purses(store, actor)


@router.get("/reports/desk")
async def desk_page(request: Request, session=Depends(operator)):
    """A day's desk operations, the liabilities, and the Z report ?z= (privilege reports.view in the services;
    a Z report as shifts.z_report allows)."""
    store, actor = state(request).store, session.actor
    z, z_error = None, None
    try:
        park = await park_of(request, session)
        day, by, park_day = _desk_day(request, session, park)
        _bounds, lines = await reports.desk_day(store, actor, park_day, by)
        owed, bonus_cents = await _owed(store, actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    try:
        z_no = optional_number(request.query_params, "z", gettext(request, session, "the Z report number"))
        if z_no is not None:
            z = await shifts.z_report(store, actor, z_no)
    except ServiceError as exc:
        z_error = refused_text(request, session, exc)
    return render(request, "desk_report.html", session, park=park, day=day, by=by, groups=reports.DESK_GROUPS,
                  group_labels=GROUP_LABELS, lines=lines, owed=owed, owed_total=sum(c for _l, c in owed),
                  bonus_cents=bonus_cents, bonus_label=BONUS_LABEL, z=z, z_asked=request.query_params.get("z", ""),
                  z_error=z_error, status=200 if z_error is None else 400)


@router.get("/reports/desk.csv")
async def desk_csv(request: Request, session=Depends(operator)):
    """The day's desk operations as CSV (amounts in cents): the file `parkcard report desk --csv` writes."""
    async def made():
        park = await park_of(request, session)
        day, by, park_day = _desk_day(request, session, park)
        _bounds, lines = await reports.desk_day(state(request).store, session.actor, park_day, by)
        return (reports.table_csv(DESK_CSV_COLUMNS, [(day,) + tuple(line) for line in lines]),
                "desk-%s-by-%s.csv" % (day, by))
    return await refusable_csv(request, session, made)


@router.get("/reports/liabilities.csv")
async def liabilities_csv(request: Request, session=Depends(operator)):
    """What the park owes now as CSV (amounts in cents)."""
    async def made():
        owed, bonus_cents = await _owed(state(request).store, session.actor)
        rows = [(label, cents) for label, cents in owed] + [(BONUS_LABEL, bonus_cents)]
        return reports.table_csv(LIABILITY_CSV_COLUMNS, rows), "liabilities.csv"
    return await refusable_csv(request, session, made)


async def _z_listed(request, session, answer):
    """answer(park, date or "", desk or None, [(StoredZReport, Shift, ZReport)]) of the Z reports of ?day=&desk=
    (every day and desk when left empty), newest first: a cashier's own, every one for shifts.review
    (services.shifts.z_reports); the page of a wrong input (400) or of a refusal (403) instead."""
    status = 400
    try:
        park = await park_of(request, session)
        text = (request.query_params.get("day") or "").strip()
        date, park_day = _park_day(request, session, text) if text else ("", None)
        desk_id = optional_number(request.query_params, "desk", gettext(request, session, "the desk terminal"))
        status = 403
        listed = await shifts.z_reports(state(request).store, session.actor, park_day, desk_id)
    except ServiceError as exc:
        return refusal_page(request, session, exc, status)
    return answer(park, date, desk_id, listed)


@router.get("/reports/z")
async def z_list_page(request: Request, session=Depends(operator)):
    """The Z reports, newest first, by day and desk, each linked to its printable page."""
    return await _z_listed(request, session, lambda park, date, desk_id, listed: render(
        request, "z_list.html", session, park=park, day=date, desk=desk_id, listed=listed, limit=shifts.Z_LISTED_MAX))


def _z_csv(park, date, desk_id, listed):
    """The Z reports as CSV (amounts in cents, times on the park's clock)."""
    rows = [(stored.z_no, shift.shift_no, shift.desk_terminal_id, shift.opened_by, park.when(shift.opened_at),
             shift.closed_by, park.when(shift.closed_at), z.cash_expected_cents, z.cash_counted_cents,
             z.difference_cents) for stored, shift, z in listed]
    name = "z-reports%s%s.csv" % ("-" + date if date else "", "-desk-%d" % desk_id if desk_id is not None else "")
    return csv_download(reports.table_csv(Z_CSV_COLUMNS, rows), name)


@router.get("/reports/z.csv")
async def z_list_csv(request: Request, session=Depends(operator)):
    """The Z reports of the list as CSV, the file of the page's filters."""
    return await _z_listed(request, session, _z_csv)
