"""Member tiers: each tier's recharge bonus and discounts (the discount rules' rates), added and changed."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import discounts, tiers
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (back, gettext, operator, optional_number, park_of, render, session_form, state,
                                whole_number)

router = APIRouter()
PAGE = "/tiers"


@router.get("/tiers")
async def tiers_page(request: Request, session=Depends(operator)):
    """Every tier with its bonus and its discount rates in force (privilege park.read in the services)."""
    store, actor = state(request).store, session.actor
    try:
        park = await park_of(request, session)
        rows = await tiers.list_tiers(store, actor)
        version, rules = await discounts.rules(store, actor)
    except ServiceError as exc:
        return render(request, "refused.html", session, status=403, message=str(exc))
    return render(request, "tiers.html", session, park=park, tiers=rows, version=version,
                  sale_bp=rules.sale_bp, total_bp=rules.total_bp)


def _fields(request, session, form):
    """(code, name or None, bonus_bps or None) of a tier form."""
    code = whole_number(form, "code", gettext(request, session, "the tier code"))
    name = (form.get("name") or "").strip() or None
    return code, name, optional_number(form, "bonus_bps", gettext(request, session, "the bonus (bp)"))


@router.post("/tiers")
async def tier_add(request: Request, session=Depends(operator)):
    """Add a tier (privilege park.admin and the audit entry in the service)."""
    form = await session_form(request, session)
    try:
        code, name, bonus_bps = _fields(request, session, form)
        tier = await tiers.add_tier(state(request).store, session.actor, code, name, bonus_bps)
    except ServiceError as exc:
        return back(PAGE, session, str(exc), "error")
    return back(PAGE, session, gettext(request, session, "Tier %(code)d (%(name)s) is added.")
                % {"code": tier.code, "name": tier.name})


@router.post("/tiers/change")
async def tier_change(request: Request, session=Depends(operator)):
    """Change a tier's name or bonus: what is left empty stays (privilege park.admin and audit in the service)."""
    form = await session_form(request, session)
    try:
        code, name, bonus_bps = _fields(request, session, form)
        tier = await tiers.change_tier(state(request).store, session.actor, code, name, bonus_bps)
    except ServiceError as exc:
        return back(PAGE, session, str(exc), "error")
    return back(PAGE, session, gettext(request, session, "Tier %(code)d (%(name)s) is changed.")
                % {"code": tier.code, "name": tier.name})
