"""Merchants (booth owners): the list with commissions and terminals, add one, change one."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import merchants
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (back, gettext, operator, refusable_page, refused_text, session_form, state,
                                whole_number)

router = APIRouter()


@router.get("/merchants")
async def merchant_page(request: Request, session=Depends(operator)):
    """Every merchant (privilege merchants.read in the service)."""
    return await refusable_page(request, session, "merchants.html",
                                lambda: merchants.listing(state(request).store, session.actor), "merchants")


@router.post("/merchants")
async def merchant_add(request: Request, session=Depends(operator)):
    """Create a merchant (privilege merchants.manage and the audit entry in the service)."""
    form = await session_form(request, session)
    try:
        merchant_id = whole_number(form, "id", "the merchant number")
        bps = whole_number(form, "commission_bps", "the commission")
        changed = await merchants.add(state(request).store, session.actor, merchant_id, form.get("name", ""), bps)
    except ServiceError as exc:
        return back("/merchants", session, refused_text(request, session, exc), "error")
    return back("/merchants", session, (gettext(request, session, "Merchant %(id)d is added.") if changed else
                gettext(request, session, "Merchant %(id)d exists with these values: nothing changed."))
                % {"id": merchant_id})


@router.post("/merchants/{merchant_id}")
async def merchant_change(request: Request, merchant_id: int, session=Depends(operator)):
    """Change a merchant's name and commission (privilege merchants.manage in the service)."""
    form = await session_form(request, session)
    try:
        bps = whole_number(form, "commission_bps", "the commission")
        before, after = await merchants.change(state(request).store, session.actor, merchant_id,
                                               form.get("name") or None, bps)
    except ServiceError as exc:
        return back("/merchants", session, refused_text(request, session, exc), "error")
    said = (gettext(request, session, "Merchant %(id)d is changed.") if before != after else
            gettext(request, session, "Merchant %(id)d already had these values: nothing changed."))
    return back("/merchants", session, said % {"id": merchant_id})
