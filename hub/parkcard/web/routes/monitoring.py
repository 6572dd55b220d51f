"""What ingest flagged and refused (alarms, the quarantine) and the card trace (追踪分析): read-only pages."""

from fastapi import APIRouter, Depends, Request

from parkcard.domain import record_kinds
from parkcard.services import monitoring, trace
from parkcard.services import privileges as P
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (gettext, operator, park_of, refusable_page, refusal_page, refused_text, render, state,
                                whole_number)

router = APIRouter()
# The newest entries a page lists; the CLI and the API list every one.
SHOWN_MAX = 200
RAW_SHOWN_BYTES = 32         # of a quarantined frame: its first bytes in hex, enough to recognise it
# What the trace calls each record kind: the domain's one table (the desk page shows it too).
KIND_NAMES = record_kinds.KIND_NAMES


@router.get("/alarms")
async def alarms_page(request: Request, session=Depends(operator)):
    """The newest alarms first: clones, chain breaks, conflicts, storage outages (privilege fleet.read)."""
    async def read():
        return list(reversed(await monitoring.alarms(state(request).store, session.actor)))[:SHOWN_MAX]
    return await refusable_page(request, session, "alarms.html", read)


@router.get("/quarantine")
async def quarantine_page(request: Request, session=Depends(operator)):
    """What ingest refused, newest first, with its reason and the count per reason (privilege fleet.read)."""
    store = state(request).store
    try:
        counts, _newest = await monitoring.quarantine_summary(store, session.actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)

    async def read():
        return [(q, q.raw[:RAW_SHOWN_BYTES].hex(" "))
                for q in reversed(await monitoring.quarantine(store, session.actor))][:SHOWN_MAX]
    return await refusable_page(request, session, "quarantine.html", read, counts=sorted(counts.items()))


@router.get("/trace")
async def trace_page(request: Request, session=Depends(operator)):
    """Where and when a card was used (?card=N), newest first (privilege cards.query in the service)."""
    asked = request.query_params.get("card", "").strip()
    uses, error, park = [], None, None
    try:
        park = await park_of(request, session)
        if asked:
            card_no = whole_number({"card": asked}, "card", gettext(request, session, "the card number"))
            uses = await trace.card_trace(state(request).store, session.actor, card_no, SHOWN_MAX)
    except ServiceError as exc:
        error = refused_text(request, session, exc)
    # The menu shows the page to whom the service serves; anyone else sees its refusal, form or not.
    if P.CARD_QUERY not in session.actor.privileges:
        return render(request, "refused.html", session, status=403, message=error or gettext(
            request, session, "You may not trace cards: ask an operator with the role cashier, finance or technician."))

    def kind_name(kind):
        return record_kinds.kind_name(kind, lambda text: gettext(request, session, text))
    return render(request, "trace.html", session, park=park, rows=uses, card=asked, error=error, kind_name=kind_name,
                  status=200 if error is None else 400)
