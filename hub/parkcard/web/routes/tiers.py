"""Member tiers: each tier's recharge bonus and discounts (the discount rules' rates), added and changed."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import discounts, tiers
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (back, gettext, operator, optional_number, park_of, refusal_page, refused_text, render,
                                session_form, state, whole_number)

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
        return refusal_page(request, session, exc)
    return render(request, "tiers.html", session, park=park, tiers=rows, version=version,
                  sale_bp=rules.sale_bp, total_bp=rules.total_bp)


async def _kept(request, session, service):
    """Run service(store, actor, code, name, bonus_bps) with a tier form's fields; back to the page with the Tier
    as stored, or with the service's refusal."""
    form = await session_form(request, session)
    try:
        code = whole_number(form, "code", gettext(request, session, "the tier code"))
        name = (form.get("name") or "").strip() or None
        bonus_bps = optional_number(form, "bonus_bps", gettext(request, session, "the bonus (bp)"))
        return await service(state(request).store, session.actor, code, name, bonus_bps), None
    except ServiceError as exc:
        return None, back(PAGE, session, refused_text(request, session, exc), "error")


@router.post("/tiers")
async def tier_add(request: Request, session=Depends(operator)):
    """Add a tier (privilege park.admin and the audit entry in the service)."""
    tier, refused = await _kept(request, session, tiers.add_tier)
    return refused or back(PAGE, session, gettext(request, session, "Tier %(code)d (%(name)s) is added.")
                           % {"code": tier.code, "name": tier.name})


@router.post("/tiers/change")
async def tier_change(request: Request, session=Depends(operator)):
    """Change a tier's name or bonus: what is left empty stays (privilege park.admin and audit in the service)."""
    tier, refused = await _kept(request, session, tiers.change_tier)
    return refused or back(PAGE, session, gettext(request, session, "Tier %(code)d (%(name)s) is changed.")
                           % {"code": tier.code, "name": tier.name})
