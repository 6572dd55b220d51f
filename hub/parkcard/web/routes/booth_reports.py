"""Booth sales reports: sales by merchant, terminal, item (best sellers), category or day over park days, with a
chart, and the discounts given by tier with who bore them; each downloads as the CSV `parkcard report` writes."""

import datetime
import time

from fastapi import APIRouter, Depends, Request

from parkcard.domain.sales_report import BY
from parkcard.services import reports
from parkcard.services.privileges import ServiceError
from parkcard.web import charts
from parkcard.web.pages import N_, gettext, operator, park_of, refusable_csv, refusal_page, render, state
from parkcard.web.routes.settlement import day_labels

router = APIRouter()
# What a page calls each grouping of the sales report (parkcard.domain.sales_report.BY).
BY_LABELS = {"merchant": N_("by merchant"), "terminal": N_("by terminal"), "item": N_("by item (best sellers)"),
             "category": N_("by category"), "day": N_("by day")}
DEFAULT_BY = "item"
DEFAULT_DAYS = 7


async def _period(request, session):
    """(park, by, first date, last date, start_s, end_s, offset_s) of ?by=&from=&to= (park dates, both included)."""
    park = await park_of(request, session)
    by = request.query_params.get("by") or DEFAULT_BY
    if by not in BY:
        raise ServiceError(gettext(request, session, "Choose how to group the sales: by merchant, terminal, item, "
                                                     "category or day."))
    now = time.time()
    last, _start, end_s = park.day_bounds(request.query_params.get("to"), gettext(request, session, "the last day"),
                                          now)
    first_default = (datetime.date.fromisoformat(last) - datetime.timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    first, start_s, _end = park.day_bounds(request.query_params.get("from") or first_default,
                                           gettext(request, session, "the first day"), now)
    offset_s = int(park.zone.utcoffset(datetime.datetime.fromtimestamp(start_s, park.zone)).total_seconds())
    return park, by, first, last, start_s, end_s, offset_s


def _label(by, row):
    """What the table and the chart call a row: its day's date, or its key and name."""
    if by == "day":
        return day_labels(row.key, row.key)[0]
    return ("%s %s" % (row.key, row.name)).strip()


@router.get("/reports/sales")
async def sales_page(request: Request, session=Depends(operator)):
    """Booth sales grouped ?by= over park days, and the discounts by tier (privilege settlement.read in the
    services: a merchant login sees its own booths only)."""
    store, actor = state(request).store, session.actor
    try:
        park, by, first, last, start_s, end_s, offset_s = await _period(request, session)
        rows = await reports.booth_sales(store, actor, by, start_s, end_s, offset_s)
        given = await reports.discounts_given(store, actor, start_s, end_s)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    title = gettext(request, session, "Booth sales %(by)s: paid and discounts") % {
        "by": gettext(request, session, BY_LABELS[by])}
    series = [(gettext(request, session, "paid"), [max(r.paid_cents, 0) for r in rows]),
              (gettext(request, session, "discounts"), [max(r.discount_cents, 0) for r in rows])]
    chart = charts.stacked_bars([_label(by, r) for r in rows], series, park.money, title, axis_label=str)
    return render(request, "sales_report.html", session, park=park, by=by, choices=BY, by_labels=BY_LABELS,
                  first=first, last=last, rows=[(_label(by, r), r) for r in rows], given=given, chart=chart,
                  legend=charts.legend(series), title=title)


@router.get("/reports/sales.csv")
async def sales_csv(request: Request, session=Depends(operator)):
    """The booth sales report as CSV: the file `parkcard report sales --csv` writes."""
    async def made():
        park, by, first, last, start_s, end_s, offset_s = await _period(request, session)
        rows = await reports.booth_sales(state(request).store, session.actor, by, start_s, end_s, offset_s)
        return reports.sales_csv(rows, park.currency), "sales-by-%s-%s-%s.csv" % (by, first, last)
    return await refusable_csv(request, session, made)


@router.get("/reports/discounts.csv")
async def discounts_csv(request: Request, session=Depends(operator)):
    """The discounts by tier as CSV: the file `parkcard report discounts --csv` writes."""
    async def made():
        park, _by, first, last, start_s, end_s, _offset = await _period(request, session)
        rows = await reports.discounts_given(state(request).store, session.actor, start_s, end_s)
        return reports.discounts_csv(rows, park.currency), "discounts-%s-%s.csv" % (first, last)
    return await refusable_csv(request, session, made)
