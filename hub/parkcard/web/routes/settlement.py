"""Settlement: sales per day and per merchant as a chart, the closed periods, and closing a period."""

import datetime
import time

from fastapi import APIRouter, Depends, Query, Request

from parkcard.services import sales, settlement
from parkcard.services.privileges import ServiceError
from parkcard.web import charts
from parkcard.web.pages import (back, gettext, operator, park_of, refusable_csv, refusal_page, refused_text, render,
                                session_form, state)

router = APIRouter()
CHART_DAYS = 14
CHART_DAYS_MAX = 92


def day_labels(first_day, end_day):
    """The ISO dates of the day numbers first_day..end_day (days from the epoch)."""
    return [(datetime.date(1970, 1, 1) + datetime.timedelta(days=d)).isoformat() for d in range(first_day, end_day + 1)]


def sales_chart(rows, park, days, end_day, title):
    """(SVG, legend, totals by merchant) of sales per day stacked by merchant for the days up to end_day."""
    first = end_day - days + 1
    labels = day_labels(first, end_day)
    names = {}
    for row in rows:
        names.setdefault(row.merchant_id, row.merchant_name)
    series = []
    for merchant_id, name in sorted(names.items()):
        by_day = {r.day: r.sales_cents for r in rows if r.merchant_id == merchant_id}
        series.append((name, [max(by_day.get(d, 0), 0) for d in range(first, end_day + 1)]))
    totals = [(name, park.money(sum(values))) for name, values in series]
    return charts.stacked_bars(labels, series, park.money, title), charts.legend(series), totals


def recent_days(park, days, now):
    """(offset_s, end_day, start_s): the park's UTC offset now, today's day number, the start of the first day."""
    offset_s = int(park.zone.utcoffset(datetime.datetime.fromtimestamp(now, park.zone)).total_seconds())
    end_day = (int(now) + offset_s) // sales.DAY_S
    return offset_s, end_day, (end_day - days + 1) * sales.DAY_S - offset_s


@router.get("/settlement")
async def settlement_page(request: Request, days: int = Query(CHART_DAYS, ge=1, le=CHART_DAYS_MAX),
                          session=Depends(operator)):
    """The chart of the last `days` days and every closed settlement (privilege settlement.read)."""
    store = state(request).store
    try:
        park = await park_of(request, session)
        now = time.time()
        offset_s, end_day, start_s = recent_days(park, days, now)
        rows = await sales.by_day(store, session.actor, start_s, int(now) + 1, offset_s)
        closed = await settlement.listing(store, session.actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    title = gettext(request, session, "Sales per day and merchant")
    chart, legend, totals = sales_chart(rows, park, days, end_day, title)
    return render(request, "settlement.html", session, park=park, chart=chart, legend=legend, totals=totals,
                  days=days, settlements=closed, today=park.day(now))


@router.get("/settlement.csv")
async def settlement_csv(request: Request, session=Depends(operator)):
    """Every closed settlement the operator may read, as the CSV file `parkcard settle --csv` writes."""
    async def made():
        return settlement.csv_text(await settlement.listing(state(request).store, session.actor)), "settlements.csv"
    return await refusable_csv(request, session, made)


@router.post("/settlement/close")
async def settlement_close(request: Request, session=Depends(operator)):
    """Close [from, to) for every merchant, all or none (privilege settlement.close and audit in the service)."""
    form = await session_form(request, session)
    store = state(request).store
    try:
        park = await park_of(request, session)
        start_s = park.date_start(form.get("from"), "the first day")
        end_s = park.date_start(form.get("to"), "the day after the period")
        closed = await settlement.close_period(store, session.actor, None, start_s, end_s)
    except ServiceError as exc:
        return back("/settlement", session, refused_text(request, session, exc), "error")
    return back("/settlement", session, gettext(request, session, "%(new)d settlements closed, %(old)d were "
                                                "closed already.") % {"new": sum(1 for _s, new in closed if new),
                                                                      "old": sum(1 for _s, new in closed if not new)})
