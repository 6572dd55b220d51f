"""Pending credits: value granted to a card that is not present, delivered at its next tap on any terminal.

The hub numbers a card's credits and sends those not yet delivered to every terminal (SPEC.md §8);
the card carries the highest number it has received, so a credit lands once. Granting books the
value from its source (cash at the desk, a payment through the API, a replaced card's hold) into
park:pending_credits; the tap's record moves it onto the card.
"""

from parkcard.domain import accounts, ledger
from parkcard.services import shifts
from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import CREDITS_GRANT, CREDITS_READ, requires
from parkcard.store import NotIssued, audited
from parkcard.store.credits import GrantedBefore, GrantIdReused, NotCancellable
from parkcard.store.shifts import NoOpenShift, ShiftOfAnother
from parkcard.transport import notify

REASON_LENGTH_MAX = 200
GRANT_ID_MAX = 100


def _reason(reason):
    text = (reason or "").strip()
    if not text or len(text) > REASON_LENGTH_MAX or not text.isprintable():
        raise Refusal("bad_reason", "give a reason of 1 to %(most)d printable characters on one line (what the credit "
                                    "is for: the card holder and the audit log read it)", most=REASON_LENGTH_MAX)
    return text


@requires(CREDITS_GRANT)
async def grant_credit(store, actor, card_no, amount_cents, reason, source=accounts.CASH, desk_terminal_id=None,
                       grant_id=None):
    """Grant amount_cents to card_no, landing at its next tap; return the PendingCredit.

    source: the account that funds it (desk cash by default; park:api_payments for the API; a replaced
    card's hold:<card_no>). desk_terminal_id: the desk where it is paid in cash: the grant is part of that
    desk's open shift. grant_id: the caller's id of this grant (a form's, an API request's), made before the
    first send and sent again on a retry: the same id is the same grant, even after a hub restart (a
    GrantedBefore is returned, nothing granted twice). Refused for a card not issued or blacklisted, an amount
    that is not a whole number of cents within what a card holds, an unknown source, a grant id used for
    another grant, or a desk with no open shift.
    """
    checked(card_no=card_no, amount_cents=amount_cents)
    if grant_id is not None and not (isinstance(grant_id, str) and 1 <= len(grant_id) <= GRANT_ID_MAX
                                     and grant_id.isprintable()):
        raise Refusal("bad_grant_id", "a grant id is 1 to %(most)d printable characters: make one per grant and send "
                                      "it again only to retry that grant", most=GRANT_ID_MAX)
    reason = _reason(reason)
    if not ledger.credit_source_ok(source):
        raise Refusal("bad_source", "%(source)r cannot fund a credit: use %(sources)s or hold:<card number>",
                      source=source, sources=" or ".join(ledger.CREDIT_SOURCES))
    if desk_terminal_id is not None and source != accounts.CASH:
        raise Refusal("bad_source", "a credit paid at a desk is paid in cash there: leave --desk out for %(source)s",
                      source=source)
    if card_no in await store.blacklist_cards():
        replaced = await store.replacement(old_card_no=card_no)
        if replaced is not None:
            raise Refusal("card_blacklisted", "card %(card)d was lost and replaced by card %(new_card)d: grant the "
                                              "credit to card %(new_card)d (nothing was granted)", card=card_no,
                          new_card=replaced.new_card_no)
        raise Refusal("card_blacklisted", "card %(card)d is blacklisted: no terminal would serve it; grant the credit "
                                          "to its replacement", card=card_no)
    try:
        credit = await store.add_pending_credit(card_no, amount_cents, reason, source, actor.name, audit=audited(
            actor.name, "credit.grant", when=lambda c: not isinstance(c, GrantedBefore), card_no=card_no,
            amount_cents=amount_cents, reason=reason, source=source, extra=lambda c: {"credit_no": c.credit_no}),
            desk_terminal_id=desk_terminal_id, grant_id=grant_id, shift_owner=shifts.shift_owner(actor))
    except NoOpenShift:
        raise shifts.no_shift(desk_terminal_id) from None
    except ShiftOfAnother as exc:
        raise Refusal.of(exc, "not_your_shift") from None
    except NotIssued:
        raise Refusal("card_not_issued", "card %(card)d was never issued here: check the number (nothing was "
                                         "granted)", card=card_no) from None
    except GrantIdReused as exc:
        raise Refusal("grant_id_reused", "%(problem)s, not this one: nothing was granted; make a new grant id for a "
                                         "new grant", problem=exc) from None
    except ValueError as exc:
        raise Refusal("too_many_credits", "%(problem)s: nothing was granted", problem=exc) from None
    if not isinstance(credit, GrantedBefore):
        await actor.told(notify.CREDITS)
    return credit


@requires(CREDITS_READ)
async def pending_credits(store, actor, card_no=None):
    """[PendingCredit] of one card (or all), delivered and cancelled ones included, by card and number."""
    checked(card_no=card_no)
    return await store.pending_credits(card_no)


@requires(CREDITS_GRANT)
async def cancel_credit(store, actor, card_no, credit_no):
    """Cancel a credit no terminal has been sent yet; its value goes back to its source. Return the amount."""
    checked(card_no=card_no, credit_no=credit_no)
    try:
        amount = await store.cancel_pending_credit(card_no, credit_no, audit=audited(
            actor.name, "credit.cancel", when=lambda _: True, card_no=card_no, credit_no=credit_no))
    except NotCancellable as exc:
        raise Refusal("credit_not_cancellable", "%(problem)s: only a credit still `granted` (no terminal has it yet) "
                                                "can be cancelled; a sent one lands at the card's next tap, refund it "
                                                "at the desk after", problem=exc) from None
    await actor.told(notify.CREDITS)
    return amount
