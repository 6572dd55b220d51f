"""The operator audit log: its newest entries and the verification of its hash chain."""

import json

from fastapi import APIRouter, Depends, Request

from parkcard.services import audit
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import operator, park_of, refusal_page, render, state, worded

router = APIRouter()


@router.get("/audit")
async def audit_page(request: Request, session=Depends(operator)):
    """The newest entries, newest first, and whether the chain verifies (privilege audit.view)."""
    try:
        entries, verdict, ok = await audit.recent(state(request).store, session.actor)
        park = await park_of(request, session)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    shown = [(e["seq"], park.when(e["time"]), e["actor"], e["action"],
              json.dumps(e["details"], sort_keys=True, ensure_ascii=False)) for e in entries]
    return render(request, "audit.html", session, park=park, entries=shown, verdict=worded(request, session, verdict), ok=ok)
