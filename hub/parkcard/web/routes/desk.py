"""The front desk's place in the app: issue, top-up, refund and the rest come with the desk's own pages."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import park
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import operator, render, state

router = APIRouter()


@router.get("/desk")
async def desk_page(request: Request, session=Depends(operator)):
    """The desk page (the menu shows it to operators who may issue cards)."""
    try:
        await park.currency(state(request).store, session.actor)
    except ServiceError as exc:
        return render(request, "refused.html", session, status=403, message=str(exc))
    return render(request, "desk.html", session)
