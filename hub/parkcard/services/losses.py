"""Lost cards: report a loss (挂失) and un-report it (解挂) before the card is replaced (补卡).

Reporting blacklists the card at once, in the same transaction that keeps the loss and its
reason; the running hub pushes the new blacklist version to every online terminal (as
parkcard.services.blacklist does), offline ones get it when they reconnect. Its balance
stays on the card's account until the desk replaces it (parkcard.services.desk.replacement).
"""

from parkcard.services import blacklist
from parkcard.services.desk.replacement import pending_replacement
from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import CARD_LOSS, CARD_QUERY, requires
from parkcard.store import audited
from parkcard.store.members import LOST

REASON_LENGTH_MAX = 200


def _reason(reason):
    text = (reason or "").strip()
    if not text or len(text) > REASON_LENGTH_MAX or not text.isprintable():
        raise Refusal("bad_reason", "give a reason of 1 to %(most)d printable characters on one line (lost, stolen "
                                    "...)", most=REASON_LENGTH_MAX)
    return text


async def _cards_of(store, card_no, member_no):
    if (card_no is None) == (member_no is None):
        raise Refusal("card_or_member", "name the lost card by its number or by its member (--member), one of them")
    if card_no is not None:
        checked(card_no=card_no)
        if await store.card(card_no) is None:
            raise Refusal("card_not_issued", "card %(card)d was never issued here: check the number (nothing was "
                                             "reported)", card=card_no)
        return card_no
    if await store.member(member_no=member_no) is None:
        raise Refusal("member_unknown", "there is no member %(member)s: nothing was reported", member=member_no)
    cards = []
    for no in await store.member_cards(member_no):
        loss = await store.card_loss(no)
        if loss is None or loss.state not in (LOST, "replaced"):
            cards.append(no)
    if len(cards) != 1:
        if not cards:
            raise Refusal("member_cards", "member %(member)s has no card in use: name the lost card by its number",
                          member=member_no)
        raise Refusal("member_cards", "member %(member)s has cards %(cards)s in use: name the lost card by its number",
                      member=member_no, cards=", ".join(map(str, cards)))
    return cards[0]


@requires(CARD_LOSS)
async def report(store, actor, reason, card_no=None, member_no=None):
    """Report a card lost (by number, or a member's one card in use): blacklisted at once; return rows.CardLoss."""
    reason = _reason(reason)
    card_no = await _cards_of(store, card_no, member_no)
    try:
        loss, version = await store.report_loss(card_no, reason, actor.name, audit=audited(
            actor.name, "card.lost", when=lambda _: True, card_no=card_no, reason=reason,
            extra=lambda r: {"blacklist_version": r[0].blacklist_version}))
    except ValueError as exc:
        raise Refusal("card_replaced", "%(problem)s: nothing was reported", problem=exc) from None
    await blacklist.announce(actor, version)
    return loss


@requires(CARD_LOSS)
async def unreport(store, actor, card_no, reason="found by its holder"):
    """Un-report a lost card that was not replaced: off the blacklist again; return the blacklist version."""
    checked(card_no=card_no)
    reason = _reason(reason)
    replacing = await pending_replacement(store, card_no)
    if replacing is not None:
        raise Refusal("card_being_replaced", "card %(card)d is being replaced (operation %(op)s is pending): finish "
                                             "that replacement; its balance is going to the new card", card=card_no,
                      op=replacing.op_id)
    try:
        version = await store.report_found(card_no, reason, audit=audited(
            actor.name, "card.found", when=lambda _: True, card_no=card_no, reason=reason))
    except ValueError as exc:
        raise Refusal("card_not_lost", "%(problem)s: nothing changed (a replaced card stays blacklisted: its balance "
                                       "is on its replacement)", problem=exc) from None
    return await blacklist.announce(actor, version)


@requires(CARD_QUERY)
async def replacement_of(store, actor, card_no):
    """The rows.Replacement a card is in (as the lost card or its replacement), or None: the hold and its release."""
    checked(card_no=card_no)
    return (await store.replacement(old_card_no=card_no)) or (await store.replacement(new_card_no=card_no))


@requires(CARD_QUERY)
async def loss_of(store, actor, card_no):
    """The rows.CardLoss of a card reported lost (lost, found or replaced), or None."""
    checked(card_no=card_no)
    return await store.card_loss(card_no)
