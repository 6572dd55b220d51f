"""Consumption rules (消费规则) per terminal category or merchant: the rules in force, set and cleared."""

from fastapi import APIRouter, Depends, Request

from parkcard.domain.spend_rules import (CARD_TYPE_NAMES, CATEGORY, MERCHANT, TIERS_ALL, RuleError, card_types_mask,
                                         tier_numbers, tiers_mask)
from parkcard.services import merchants, spend_rules
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (N_, amount, back, gettext, operator, optional_number, park_of, refusal_page,
                                refused_text, render, session_form, state, whole_number)

router = APIRouter()
PAGE = "/rules"
SCOPES = (CATEGORY, MERCHANT)
# The rule's amounts, typed in the park's currency (empty: keep), with the label an error names.
AMOUNT_FIELDS = (("tx_cap_cents", N_("the cap per sale")), ("daily_cap_cents", N_("the daily cap per card")),
                 ("offline_cents", N_("the offline limit")))
# What a page calls each card type of a rule (parkcard.domain.spend_rules.CARD_TYPE_NAMES).
TYPE_LABELS = {"visitor": N_("visitor cards"), "staff": N_("staff cards")}


@router.get("/rules")
async def rules_page(request: Request, session=Depends(operator)):
    """The consumption rules in force and the merchants they may name (privilege park.read in the service)."""
    store, actor = state(request).store, session.actor
    try:
        park = await park_of(request, session)
        version, rows = await spend_rules.listing(store, actor)
        names = {m[0]: m[2] for m in await merchants.listing(store, actor)}
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    shown = [(scope, ident, names.get(ident, "") if scope == MERCHANT else "", rule,
              [n for n, bit in sorted(CARD_TYPE_NAMES.items()) if rule.card_types & bit],
              None if rule.tiers == TIERS_ALL else ",".join(map(str, tier_numbers(rule.tiers))))
             for scope, ident, rule in rows]
    return render(request, "rules.html", session, park=park, version=version, rules=shown, scopes=SCOPES,
                  card_types=sorted(CARD_TYPE_NAMES), type_labels=TYPE_LABELS, merchants=sorted(names.items()))


def _scope(request, session, form):
    """(scope, id) a rule form names; ServiceError for another scope."""
    scope = form.get("scope")
    if scope not in SCOPES:
        raise ServiceError(gettext(request, session, "Choose a terminal category or a merchant."))
    return scope, whole_number(form, "ident", gettext(request, session, "the category or merchant number"))


def _rule_fields(request, session, form, park):
    """The rule fields a form sets (None: keep): amounts in the park's currency, card types, tiers, member tier."""
    fields = {name: amount(form, name, gettext(request, session, label), park) if (form.get(name) or "").strip()
              else None for name, label in AMOUNT_FIELDS}
    try:
        types = [name for name in CARD_TYPE_NAMES if form.get("type_" + name)]
        fields["card_types"] = card_types_mask(types) if types else None
        tiers_text = (form.get("tiers") or "").strip()
        fields["tiers"] = tiers_mask([int(t) for t in tiers_text.split(",")]) if tiers_text else None
    except ValueError as exc:       # RuleError, or a tier that is no number
        message = refused_text(request, session, exc) if isinstance(exc, RuleError) else gettext(
            request, session, "The tiers are numbers 0 to 15 separated by commas, e.g. 0,1,2.")
        raise ServiceError(message) from None
    fields["member_tier"] = optional_number(form, "member_tier", gettext(request, session, "the member tier"))
    return fields


@router.post("/rules")
async def rule_set(request: Request, session=Depends(operator)):
    """Set a category's or merchant's rule: a new version (privilege tiers.manage and audit in the service)."""
    form = await session_form(request, session)
    try:
        park = await park_of(request, session)
        scope, ident = _scope(request, session, form)
        version, _rule = await spend_rules.set_rule(state(request).store, session.actor, scope, ident,
                                                    **_rule_fields(request, session, form, park))
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "Consumption rules version %(version)d: its terminals get "
                                                         "it with their next config.") % {"version": version})


@router.post("/rules/clear")
async def rule_clear(request: Request, session=Depends(operator)):
    """Remove a category's or merchant's rule (privilege tiers.manage and audit in the service)."""
    form = await session_form(request, session)
    try:
        scope, ident = _scope(request, session, form)
        version = await spend_rules.clear_rule(state(request).store, session.actor, scope, ident)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "Consumption rules version %(version)d: the rule is "
                                                         "removed.") % {"version": version})
