"""Gate occupancy: who is inside per area, live over Server-Sent Events, and today's passages by hour."""

import time

from fastapi import APIRouter, Depends, Request

from parkcard.services import occupancy
from parkcard.services.privileges import ServiceError
from parkcard.web import charts
from parkcard.web.pages import N_, gettext, operator, park_of, refusal_page, render, state
from parkcard.web.streams import live_events

router = APIRouter()
# Occupancy changes only with a commit (a passage, a reset); the stream re-reads this often all the same.
OCCUPANCY_REFRESH_S = 30.0
SERIES = (N_("entries"), N_("exits"), N_("refusals"))


async def occupancy_view(request, session):
    """What the live part shows: {"total": n, "areas": [[area, n]]} (privilege occupancy.read in the service)."""
    now = await occupancy.occupancy(state(request).store, session.actor)
    return {"total": now.total, "areas": sorted([area, n] for area, n in now.areas.items())}


def hourly_chart(rows, park, title, translate):
    """(SVG, legend, [(hour label, entries, exits, refusals)]) of the passages summed over gates per hour."""
    per_hour = {}
    for _terminal_id, hour, *counts in rows:
        sums = per_hour.setdefault(hour, [0, 0, 0])
        for i, n in enumerate(counts):
            sums[i] += n
    hours = sorted(per_hour)
    labels = [park.hour(h) for h in hours]
    series = [(translate(name), [per_hour[h][i] for h in hours]) for i, name in enumerate(SERIES)]
    return (charts.stacked_bars(labels, series, str, title, axis_label=str), charts.legend(series),
            [(label, *per_hour[h]) for label, h in zip(labels, hours)])


@router.get("/occupancy")
async def occupancy_page(request: Request, session=Depends(operator)):
    """Who is inside now (kept live by /occupancy/events), today's passages by hour and refusals by reason."""
    store = state(request).store
    try:
        park = await park_of(request, session)
        now = await occupancy_view(request, session)
        today = await occupancy.since_reset(store, session.actor, time.time())   # the park day: from the reset
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    title = gettext(request, session, "Passages today by hour")
    chart, legend, hours = hourly_chart(today.per_hour, park, title, lambda text: gettext(request, session, text))
    return render(request, "occupancy.html", session, park=park, now=now, chart=chart, legend=legend, hours=hours,
                  refusals=today.refusals, title=title, per_gate=today.per_hour, since_s=today.start_s)


@router.get("/occupancy/events")
async def occupancy_events(request: Request, session=Depends(operator)):
    """Server-Sent Events: the occupancy as JSON each time the hub commits a change."""
    return await live_events(request, session, "occupancy", lambda: occupancy_view(request, session),
                             OCCUPANCY_REFRESH_S)
