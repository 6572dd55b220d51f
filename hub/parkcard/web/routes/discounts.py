"""The park's discount rules: tier rates, category and item overrides, who bears them, and how they stack."""

from fastapi import APIRouter, Depends, Request

from parkcard.domain.discounts import POLICY
from parkcard.services import discounts, merchants
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (N_, back, gettext, operator, optional_number, park_of, refusal_page, refused_text,
                                render, session_form, state, whole_number)

router = APIRouter()
PAGE = "/discounts"
# The pages a tier's rates may be changed from, and so returned to (the member tiers page shows them too).
BACK_TO = {"/tiers": "/tiers"}


@router.get("/discounts")
async def discounts_page(request: Request, session=Depends(operator)):
    """The rules in force (?version= for an older one), each merchant's bearer, and the stacking policy."""
    store, actor = state(request).store, session.actor
    try:
        park = await park_of(request, session)
        asked = optional_number(request.query_params, "version", gettext(request, session, "the version"))
        version, rules = await discounts.rules(store, actor, asked)
        bearers = [(m[0], m[2], await discounts.bearer(store, actor, m[0]))
                   for m in await merchants.listing(store, actor)]
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    tiers = [(tier, sale, total) for tier, (sale, total) in enumerate(zip(rules.sale_bp, rules.total_bp))]
    return render(request, "discounts.html", session, park=park, version=version, tiers=tiers,
                  categories=sorted(rules.categories.items()), items=sorted(rules.items.items()), bearers=bearers,
                  policy=POLICY)


def _override_of(request, session, form):
    """(tier, category, merchant_id, item) named by an override form (None where left empty but the tier)."""
    def number(name, label):
        return optional_number(form, name, gettext(request, session, label))
    return (whole_number(form, "tier", gettext(request, session, "the tier")), number("category", N_("the category")),
            number("merchant", N_("the merchant number")), number("item", N_("the item code")))


@router.post("/discounts/tier")
async def tier_set(request: Request, session=Depends(operator)):
    """Set a tier's rates (basis points): a new version of the rules (privilege and audit in the service)."""
    form = await session_form(request, session)
    page = BACK_TO.get(form.get("next"), PAGE)
    try:
        tier = whole_number(form, "tier", gettext(request, session, "the tier"))
        version = await discounts.set_tier(
            state(request).store, session.actor, tier,
            optional_number(form, "sale_bp", gettext(request, session, "the rate on every sale")),
            optional_number(form, "total_bp", gettext(request, session, "the rate on the total")))
    except ServiceError as exc:
        return back(page, session, refused_text(request, session, exc), "error")
    return back(page, session, gettext(request, session, "Tier %(tier)d is changed: discount rules version "
                                                         "%(version)d.") % {"tier": tier, "version": version})


@router.post("/discounts/override")
async def override_set(request: Request, session=Depends(operator)):
    """Set an override's rate on a category or a merchant's item (privilege and audit in the service)."""
    form = await session_form(request, session)
    try:
        tier, category, merchant_id, item = _override_of(request, session, form)
        rate = whole_number(form, "rate_bp", gettext(request, session, "the rate"))
        version = await discounts.set_override(state(request).store, session.actor, tier, rate, category,
                                               merchant_id, item)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "The override is set: discount rules version %(version)d.")
                % {"version": version})


@router.post("/discounts/override/remove")
async def override_remove(request: Request, session=Depends(operator)):
    """Remove an override (privilege and audit in the service)."""
    form = await session_form(request, session)
    try:
        tier, category, merchant_id, item = _override_of(request, session, form)
        version = await discounts.remove_override(state(request).store, session.actor, tier, category,
                                                  merchant_id, item)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "The override is removed: discount rules version "
                                                         "%(version)d.") % {"version": version})
