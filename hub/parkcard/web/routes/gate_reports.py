"""Tickets and gates reports: tickets sold and used by product, and one park day's passages per gate and hour (a
chart) and refusals by reason, each as CSV like `parkcard report tickets|passages|refusals --csv`."""

import datetime
import time

from fastapi import APIRouter, Depends, Request

from parkcard.domain import park_time
from parkcard.services import occupancy, reports, tickets
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (gettext, operator, park_of, refusable_csv, refusal_page, refused_text, render,
                                state)
from parkcard.web.routes.occupancy import hourly_chart

router = APIRouter()
TICKETS_CSV_COLUMNS = ("product", "name", "sold", "revenue_cents", "entries_made", "entries_left", "unlimited_tickets")
PASSAGES_CSV_COLUMNS = ("gate", "hour", "entries", "exits", "refusals")
REFUSALS_CSV_COLUMNS = ("reason", "refusals")


async def _day_report(request, session):
    """(park, date, DayReport) of ?day= (the park's day from its daily reset; today's on its clock by default)."""
    park = await park_of(request, session)
    date, start_s, _end_s = park.day_bounds(request.query_params.get("day"), gettext(request, session, "the day"),
                                            time.time())
    return park, date, await occupancy.day_report(state(request).store, session.actor,
                                                  park_time.day_of_date(datetime.date.fromisoformat(date)))


@router.get("/reports/gates")
async def gates_page(request: Request, session=Depends(operator)):
    """Tickets by product (privilege reports.view) and a park day's passages and refusals (occupancy.read): each
    part shows its own refusal to an operator without its privilege."""
    store, actor = state(request).store, session.actor
    try:
        park = await park_of(request, session)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    products, products_error, day, passages_error = [], None, None, None
    try:
        products = await tickets.report(store, actor)
    except ServiceError as exc:
        products_error = refused_text(request, session, exc)
    try:
        park, date, day = await _day_report(request, session)
    except ServiceError as exc:
        date = request.query_params.get("day") or park.day(time.time())
        passages_error = refused_text(request, session, exc)
    if products_error and passages_error:
        return render(request, "refused.html", session, status=403, message=products_error)
    title = gettext(request, session, "Passages of %(day)s by hour") % {"day": date}
    chart, legend, hours = hourly_chart(day.per_hour if day else [], park, title,
                                        lambda text: gettext(request, session, text))
    return render(request, "gate_report.html", session, park=park, products=products, products_error=products_error,
                  day=day, date=date, passages_error=passages_error, chart=chart, legend=legend, hours=hours,
                  title=title)


@router.get("/reports/tickets.csv")
async def tickets_csv(request: Request, session=Depends(operator)):
    """Tickets sold and used by product as CSV (revenue in cents)."""
    async def made():
        lines = await tickets.report(state(request).store, session.actor)
        return reports.table_csv(TICKETS_CSV_COLUMNS, [tuple(x) for x in lines]), "tickets.csv"
    return await refusable_csv(request, session, made)


@router.get("/reports/passages.csv")
async def passages_csv(request: Request, session=Depends(operator)):
    """A park day's entries, exits and refusals per gate and hour as CSV (hours on the park's clock)."""
    async def made():
        park, date, day = await _day_report(request, session)
        rows = [(gate, park.when(hour), e, x, r) for gate, hour, e, x, r in day.per_hour]
        return reports.table_csv(PASSAGES_CSV_COLUMNS, rows), "passages-%s.csv" % date
    return await refusable_csv(request, session, made)


@router.get("/reports/refusals.csv")
async def refusals_csv(request: Request, session=Depends(operator)):
    """A park day's gate refusals by reason as CSV."""
    async def made():
        _park, date, day = await _day_report(request, session)
        return reports.table_csv(REFUSALS_CSV_COLUMNS, day.refusals), "refusals-%s.csv" % date
    return await refusable_csv(request, session, made)
