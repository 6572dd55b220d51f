"""Members (会员): a name and a phone to find them by, a tier their cards are issued with, their cards.

Minimal personal data: a name, a phone number, an optional note, nothing else. A card is linked to a
member when it is issued for them (parkcard.services.desk.issue member_no=) and its replacement
inherits the link (parkcard.services.desk.replacement).
"""

import re

from parkcard.domain.tiers import DEFAULT_TIERS, TierError
from parkcard.services.tiers import park_tiers
from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import CARD_QUERY, MEMBERS, requires
from parkcard.store import audited
from parkcard.store.members import MemberTaken

NAME_LENGTH_MAX = 80
NOTE_LENGTH_MAX = 200
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def phone_of(text):
    """A phone number as the park keeps it (digits, an optional leading +); Refusal when it is none."""
    phone = _PHONE_SEPARATORS.sub("", str(text or ""))
    if not _PHONE.match(phone):
        raise Refusal("bad_phone", "%(text)r is not a phone number: give 5 to 20 digits, an optional leading + "
                                   "(spaces and dashes are left out)", text=text)
    return phone


def _text(value, what, length_max, required=True):
    text = (value or "").strip()
    if (required and not text) or len(text) > length_max or not text.isprintable():
        if what == "name":      # the name is required, the note is not
            raise Refusal("bad_name", "give the name as 1 to %(most)d printable characters on one line",
                          most=length_max)
        raise Refusal("bad_note", "give the note as at most %(most)d printable characters on one line",
                      most=length_max)
    return text


def tier_code(tier, table=DEFAULT_TIERS):
    """The card tier code of `tier` (a code or a tier's name, e.g. gold); Refusal naming the park's tiers."""
    try:
        if isinstance(tier, int) or str(tier).isdigit():
            return table.tier(int(tier)).code
        return table.named(tier).code
    except TierError as exc:
        raise Refusal.of(exc, "bad_tier") from None


@requires(MEMBERS)
async def register(store, actor, name, phone, note="", tier=0):
    """Register a member; return the rows.Member. Refused for a phone number another member has."""
    name = _text(name, "name", NAME_LENGTH_MAX)
    note = _text(note, "note", NOTE_LENGTH_MAX, required=False)
    phone = phone_of(phone)
    code = tier_code(tier, await park_tiers(store))
    try:
        return await store.add_member(name, phone, note, code, audit=audited(
            actor.name, "member.add", extra=lambda m: {"member_no": m.member_no}, tier=code))
    except MemberTaken as exc:
        raise Refusal("member_exists", "%(problem)s: nothing was added; look them up with `parkcard member show "
                                       "--phone %(phone)s`", problem=exc, phone=phone) from None


@requires(MEMBERS)
async def change_details(store, actor, member_no, name, phone, note=""):
    """Change a member's name, phone and note; return the rows.Member. Refused for another member's phone."""
    name = _text(name, "name", NAME_LENGTH_MAX)
    note = _text(note, "note", NOTE_LENGTH_MAX, required=False)
    phone = phone_of(phone)
    try:
        member = await store.set_member_details(member_no, name, phone, note, audit=audited(
            actor.name, "member.details", when=lambda m: m is not None, member_no=member_no))
    except MemberTaken as exc:
        raise Refusal("member_exists", "%(problem)s: nothing changed", problem=exc) from None
    if member is None:
        raise Refusal("member_unknown", "there is no member %(member)s: nothing changed", member=member_no)
    return member


@requires(CARD_QUERY)
async def find_member(store, actor, member_no=None, phone=None, card_no=None):
    """The rows.Member by number, phone or card; Refusal when there is none."""
    checked(card_no=card_no)
    if phone is not None:
        phone = phone_of(phone)
    member = await store.member(member_no=member_no, phone=phone, card_no=card_no)
    if member is None:
        if phone is not None:
            raise Refusal("member_unknown", "no member has phone %(phone)s: check it, or list them with `parkcard "
                                            "member list`", phone=phone)
        if card_no is not None:
            raise Refusal("member_unknown", "no member has card %(card)d: check it, or list them with `parkcard "
                                            "member list`", card=card_no)
        raise Refusal("member_unknown", "no member has number %(member)s: check it, or list them with `parkcard "
                                        "member list`", member=member_no)
    return member


@requires(CARD_QUERY)
async def members(store, actor):
    """[rows.Member] by number."""
    return await store.members()


@requires(CARD_QUERY)
async def member_cards(store, actor, member_no):
    """[(rows.Card, balance in the ledger, rows.CardLoss or None)] of a member's cards, oldest first."""
    out = []
    for card_no in await store.member_cards(member_no):
        out.append((await store.card(card_no), await store.account_balance("card:%d" % card_no),
                    await store.card_loss(card_no)))
    return out


@requires(MEMBERS)
async def set_tier(store, actor, member_no, tier):
    """Set a member's tier (the tier the desk gives their cards' top-ups); return how many cards took it."""
    code = tier_code(tier, await park_tiers(store))
    changed = await store.set_member_tier(member_no, code, audit=audited(
        actor.name, "member.tier", when=lambda n: n is not None, member_no=member_no, tier=code))
    if changed is None:
        raise Refusal("member_unknown", "there is no member %(member)s: nothing changed", member=member_no)
    return changed


@requires(CARD_QUERY)
async def tiers_pending(store, actor, member_no=None):
    """{card_no: tier the card itself holds} of the cards (a member's when given) whose hub tier the desk has not
    written onto them yet: written at their next top-up or refund at a desk, or by parkcard.services.desk.
    write_tier (booths give the tier the card holds, SPEC.md §3.3)."""
    cards = await store.member_cards(member_no) if member_no is not None else None
    return await store.tiers_on_cards(cards)
