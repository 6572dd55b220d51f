"""The blacklist: listed cards with the taps seen since, add a card, take one off."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import blacklist
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (back, gettext, operator, refusable_page, refused_text, session_form, state,
                                whole_number)

router = APIRouter()
ATTEMPTS_SHOWN = 3


@router.get("/blacklist")
async def blacklist_page(request: Request, session=Depends(operator)):
    """Every listed card (privilege blacklist.read in the service)."""
    return await refusable_page(request, session, "blacklist.html",
                                lambda: blacklist.entries(state(request).store, session.actor, ATTEMPTS_SHOWN),
                                "entries")


@router.post("/blacklist")
async def blacklist_add(request: Request, session=Depends(operator)):
    """Blacklist a card: every online terminal gets it at once (privilege and audit in the service)."""
    form = await session_form(request, session)
    try:
        card_no = whole_number(form, "card_no", "the card number")
        version = await blacklist.add(state(request).store, session.actor, card_no,
                                      form.get("reason", "").strip() or "blacklisted on the web", bool(form.get("force")))
    except ServiceError as exc:
        return back("/blacklist", session, refused_text(request, session, exc), "error")
    return back("/blacklist", session, (gettext(request, session, "Card %(card)d is blacklisted.") if version else
                gettext(request, session, "Card %(card)d was listed already.")) % {"card": card_no})


@router.post("/blacklist/{card_no}/remove")
async def blacklist_remove(request: Request, card_no: int, session=Depends(operator)):
    """Take a card off the blacklist (privilege and audit in the service)."""
    form = await session_form(request, session)
    try:
        version = await blacklist.remove(state(request).store, session.actor, card_no,
                                         form.get("reason", "").strip() or "removed on the web")
    except ServiceError as exc:
        return back("/blacklist", session, refused_text(request, session, exc), "error")
    said = (gettext(request, session, "Card %(card)d is off the blacklist.") if version else
            gettext(request, session, "Card %(card)d was not listed."))
    return back("/blacklist", session, said % {"card": card_no})
