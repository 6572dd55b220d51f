"""Pending credits: value granted to a card not present, landing at its next tap; grant (once per form), cancel."""

from fastapi import APIRouter, Depends, Request

from parkcard.services import credits
from parkcard.services.privileges import ServiceError
from parkcard.web.pages import (N_, back, card_amount, gettext, operator, optional_number, park_of,
                               refusal_page, refused_text, render, session_form, state, whole_number)
from parkcard.web.sessions import IN_FLIGHT, new_token

router = APIRouter()
PAGE = "/credits"
FORM_TOKEN_MAX = 64
# What the page calls each state of a credit (parkcard.store.rows.PendingCredit.state).
STATE_LABELS = {"granted": N_("granted"), "sent": N_("sent to the terminals"), "delivered": N_("on the card"),
                "cancelled": N_("cancelled")}


@router.get("/credits")
async def credits_page(request: Request, session=Depends(operator)):
    """Every pending credit, or one card's (?card=), newest first (privilege credits.read in the service)."""
    try:
        park = await park_of(request, session)
        card_no = optional_number(request.query_params, "card", gettext(request, session, "the card number"))
        rows = await credits.pending_credits(state(request).store, session.actor, card_no)
    except ServiceError as exc:
        return refusal_page(request, session, exc)
    return render(request, "credits.html", session, park=park, rows=list(reversed(rows)), card=card_no,
                  once=new_token(), states=STATE_LABELS)


@router.post("/credits")
async def credit_grant(request: Request, session=Depends(operator)):
    """Grant a credit once per form: the same form sent again shows its first answer and grants nothing more."""
    form = await session_form(request, session)
    once = (form.get("once") or "")[:FORM_TOKEN_MAX]
    if not once:
        return back(PAGE, session, gettext(request, session, "The form came without its token: reload the page and "
                                                             "send it again."), "error")
    first = session.claim(once)
    if first == IN_FLIGHT:
        return back(PAGE, session, gettext(request, session, "This credit is being granted already: wait for its "
                                                             "answer."), "error")
    if first is not None:
        return back(PAGE, session, first[1], first[0])
    try:
        park = await park_of(request, session)
        card_no = whole_number(form, "card_no", gettext(request, session, "the card number"))
        cents = card_amount(form, "amount", gettext(request, session, "the amount"), park)
        # The form's token is the grant's id: sent again after a hub restart forgot this answer, the same credit.
        credit = await credits.grant_credit(state(request).store, session.actor, card_no, cents, form.get("reason"),
                                            grant_id="web-" + once)
        kind, said = "ok", gettext(request, session, "Credit %(no)d of %(amount)s is granted to card %(card)d: it "
                                                     "lands at the card's next tap.") % {
            "no": credit.credit_no, "amount": park.money(credit.amount_cents), "card": card_no}
    except ServiceError as exc:
        kind, said = "error", refused_text(request, session, exc)
    session.answer(once, kind, said)
    return back(PAGE, session, said, kind)


@router.post("/credits/{card_no}/{credit_no}/cancel")
async def credit_cancel(request: Request, card_no: int, credit_no: int, session=Depends(operator)):
    """Cancel a credit no terminal has yet; its value goes back to its source (privilege and audit in the service)."""
    await session_form(request, session)
    try:
        park = await park_of(request, session)
        cents = await credits.cancel_credit(state(request).store, session.actor, card_no, credit_no)
    except ServiceError as exc:
        return back(PAGE, session, refused_text(request, session, exc), "error")
    return back(PAGE, session, gettext(request, session, "Credit %(no)d of card %(card)d is cancelled: %(amount)s "
                                                         "goes back to its source.") % {
        "no": credit_no, "card": card_no, "amount": park.money(cents)})
