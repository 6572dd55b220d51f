"""Members (会员) at the desk: register, find by phone, member or card number, change details and tier.

Each form calls one service of parkcard.services.members as the operator (privileges members.manage to
change, cards.query to find) and comes back to the member's page with the service's answer.
"""

from fastapi import APIRouter, Depends, Request

from parkcard.services import members
from parkcard.services.privileges import ServiceError
from parkcard.services.tiers import park_tiers
from parkcard.web.pages import (N_, back, gettext, operator, park_of, refusal_page, refused_text, render, session_form,
                                state, whole_number)

router = APIRouter()
PAGE = "/members"
# How the find form looks a member up: its field's value is the service's keyword.
FIND_BY = (("phone", N_("Phone")), ("member_no", N_("Member number")), ("card_no", N_("Card number")))


def _member_page(member_no):
    return "%s?by=member_no&q=%d" % (PAGE, member_no)


async def _found(request, session, by, text):
    """The member the find form names, or None when it names none; ServiceError for a wrong entry."""
    if not text:
        return None
    if by not in dict(FIND_BY):
        raise ServiceError(gettext(request, session, "Find a member by phone, member number or card number."))
    label = gettext(request, session, dict(FIND_BY)[by])
    value = text if by == "phone" else whole_number(request.query_params, "q", label)
    return await members.find_member(state(request).store, session.actor, **{by: value})


@router.get("/members")
async def members_page(request: Request, session=Depends(operator)):
    """Every member, a member found (?by=phone|member_no|card_no&q=) with their cards, and the register form."""
    web = state(request)
    by, text = request.query_params.get("by", "phone"), (request.query_params.get("q") or "").strip()
    found, cards, refused, status = None, [], None, 200
    try:
        listed = await members.members(web.store, session.actor)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    try:
        found = await _found(request, session, by, text)
        if found is not None:
            cards = await members.member_cards(web.store, session.actor, found.member_no)
    except ServiceError as exc:
        refused, status = refused_text(request, session, exc), 404
    park = await park_of(request, session)
    return render(request, "members.html", session, status=status, park=park, members=listed, found=found,
                  cards=cards, refused=refused, by=by, q=text, find_by=FIND_BY,
                  tiers={t.code: t.name for t in await park_tiers(web.store)})


@router.post("/members")
async def member_register(request: Request, session=Depends(operator)):
    """Register a member: services.members.register (a phone number another member has is refused)."""
    form = await session_form(request, session)
    try:
        member = await members.register(state(request).store, session.actor, form.get("name"), form.get("phone"),
                                        form.get("note"), form.get("tier") or 0)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(_member_page(member.member_no), session, gettext(
        request, session, "%(name)s is member %(no)d now: issue their card at the desk.") % {
        "name": member.name, "no": member.member_no})


@router.post("/members/{member_no}/details")
async def member_details(request: Request, member_no: int, session=Depends(operator)):
    """Change a member's name, phone and note: services.members.change_details."""
    form = await session_form(request, session)
    try:
        await members.change_details(state(request).store, session.actor, member_no, form.get("name"),
                                     form.get("phone"), form.get("note"))
    except ServiceError as exc:
        return back(_member_page(member_no), session, refused_text(request, session, exc), "error")
    return back(_member_page(member_no), session, gettext(request, session, "Member %(no)d's details are changed.")
                % {"no": member_no})


@router.post("/members/{member_no}/tier")
async def member_tier(request: Request, member_no: int, session=Depends(operator)):
    """Change a member's tier, which their cards' top-ups then get: services.members.set_tier."""
    form = await session_form(request, session)
    try:
        changed = await members.set_tier(state(request).store, session.actor, member_no, form.get("tier"))
    except ServiceError as exc:
        return back(_member_page(member_no), session, refused_text(request, session, exc), "error")
    return back(_member_page(member_no), session, gettext(
        request, session, "Member %(no)d's tier is changed, and %(cards)d of their cards with it.") % {
        "no": member_no, "cards": changed})
