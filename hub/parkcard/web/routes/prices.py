"""Each merchant's price list: its items and versions, and the changes (each a new version for its booths)."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import discounts, items, merchants
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (amount, back, gettext, operator, optional_number, park_of, refusal_page, refused_text,
                                render, session_form, state, whole_number)

router = APIRouter()


def _page(merchant_id):
    """The price list page of a merchant."""
    return "/prices?merchant=%d" % merchant_id


@router.get("/prices")
async def prices_page(request: Request, session=Depends(operator)):
    """A merchant's price list (?merchant=, ?version=; privilege merchants.read in the services)."""
    store, actor = state(request).store, session.actor
    try:
        shown = await merchants.listing(store, actor)
        park = await park_of(request, session)
        chosen = optional_number(request.query_params, "merchant", gettext(request, session, "the merchant number"))
        version = optional_number(request.query_params, "version", gettext(request, session, "the version"))
        merchant_id = chosen if chosen is not None else (shown[0][0] if shown else None)
        price_list, entries, history, bearer = None, [], [], None
        if merchant_id is not None:
            price_list, entries = await items.listing(store, actor, merchant_id, version)
            history = await items.versions(store, actor, merchant_id)
            bearer = await discounts.bearer(store, actor, merchant_id)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    return render(request, "prices.html", session, park=park, merchants=shown, merchant_id=merchant_id,
                  price_list=price_list, entries=entries, history=history, bearer=bearer,
                  newest=history[-1][0] if history else None)


@router.post("/prices/{merchant_id}/items")
async def item_set(request: Request, merchant_id: int, session=Depends(operator)):
    """Add or change an item: the merchant's next price list version (privilege and audit in the service)."""
    form = await session_form(request, session)
    try:
        park = await park_of(request, session)
        code = whole_number(form, "code", gettext(request, session, "the item code"))
        price = amount(form, "price", gettext(request, session, "the price"), park) if form.get("price") else None
        version, before, _after = await items.set_item(
            state(request).store, session.actor, merchant_id, code, name=form.get("name") or None, price_cents=price,
            category=optional_number(form, "category", gettext(request, session, "the category")),
            active=bool(form.get("active")), member_only=bool(form.get("member_only")))
    except ServiceError as exc:
        return back(_page(merchant_id), session, refused_text(request, session, exc), "error")
    said = (gettext(request, session, "Item %(code)d is added: price list version %(version)d.") if before is None
            else gettext(request, session, "Item %(code)d is changed: price list version %(version)d."))
    return back(_page(merchant_id), session, said % {"code": code, "version": version})


@router.post("/prices/{merchant_id}/items/{code}/remove")
async def item_remove(request: Request, merchant_id: int, code: int, session=Depends(operator)):
    """Take an item off the list (privilege and audit in the service)."""
    await session_form(request, session)
    try:
        version = await items.remove_item(state(request).store, session.actor, merchant_id, code)
    except ServiceError as exc:
        return back(_page(merchant_id), session, refused_text(request, session, exc), "error")
    return back(_page(merchant_id), session, gettext(
        request, session, "Item %(code)d is removed: price list version %(version)d.") % {"code": code,
                                                                                           "version": version})


@router.post("/prices/{merchant_id}/free-amount")
async def free_amount(request: Request, merchant_id: int, session=Depends(operator)):
    """Allow or forbid keyed amounts at the merchant's booths: a new version (privilege and audit in the service)."""
    form = await session_form(request, session)
    allowed = form.get("allowed") == "1"
    try:
        version = await items.allow_free_amount(state(request).store, session.actor, merchant_id, allowed)
    except ServiceError as exc:
        return back(_page(merchant_id), session, refused_text(request, session, exc), "error")
    said = (gettext(request, session, "Keyed amounts are allowed: price list version %(version)d.") if allowed else
            gettext(request, session, "Keyed amounts are forbidden: price list version %(version)d."))
    return back(_page(merchant_id), session, said % {"version": version})


@router.post("/prices/{merchant_id}/bearer")
async def bearer_set(request: Request, merchant_id: int, session=Depends(operator)):
    """Who bears the merchant's discounts, the park or the merchant (privilege and audit in the service)."""
    form = await session_form(request, session)
    try:
        await discounts.set_bearer(state(request).store, session.actor, merchant_id, form.get("bearer", ""))
    except ServiceError as exc:
        return back(_page(merchant_id), session, refused_text(request, session, exc), "error")
    return back(_page(merchant_id), session, gettext(request, session, "Merchant %(id)d's discounts are borne by: "
                                                                       "%(bearer)s.") % {"id": merchant_id,
                                                                                         "bearer": form["bearer"]})
