"""`parkcard member add|show|list|tier`: the park's members, found by phone, card or member number."""

import click

from parkcard.bounds import CARD_NO, BoundParam
from parkcard.cli.common import UserError, in_store, table, utc
from parkcard.money import format_cents
from parkcard.services import members as member_service


@click.group("member")
def member_group():
    """Members: a name and a phone number, a tier, their cards."""


@member_group.command("add")
@click.option("--name", required=True, help="the member's name as they give it")
@click.option("--phone", required=True, help="a phone number to find them by (unique)")
@click.option("--note", default="", help="a short note for the desk")
@click.option("--tier", default="standard", show_default=True, help="the tier's name or code (standard, silver, gold)")
@click.pass_obj
def member_add(obj, name, phone, note, tier):
    """Register a member; issue them a card with `parkcard card issue --member N`."""
    member = in_store(obj, lambda s, actor: member_service.register(s, actor, name, phone, note, tier))
    click.echo("member %d: %s, phone %s, tier %d" % (member.member_no, member.name, member.phone, member.tier))


@member_group.command("show")
@click.argument("member_no", type=int, required=False)
@click.option("--phone", default=None, help="find the member by phone number")
@click.option("--card", "card_no", type=BoundParam(CARD_NO), default=None, help="find the member by one of their cards")
@click.pass_obj
def member_show(obj, member_no, phone, card_no):
    """A member (by MEMBER_NO, --phone or --card) and their cards with status and balance."""
    if sum(x is not None for x in (member_no, phone, card_no)) != 1:
        raise UserError("name the member by one of: their member number, --phone, --card")

    async def show(storage, actor):
        member = await member_service.find_member(storage, actor, member_no=member_no, phone=phone, card_no=card_no)
        return member, await member_service.member_cards(storage, actor, member.member_no), \
            await storage.park_currency()
    member, cards, currency = in_store(obj, show)
    click.echo("member %d: %s, phone %s, tier %d, since %s%s" % (
        member.member_no, member.name, member.phone, member.tier, utc(member.created_at),
        "" if not member.note else " (%s)" % member.note))
    table(("card", "status", "balance", "loss"), [
        (card.card_no, card.status, format_cents(balance, currency), "" if loss is None else loss.state)
        for card, balance, loss in cards])


@member_group.command("list")
@click.pass_obj
def member_list(obj):
    """Every member, by number."""
    rows = in_store(obj, member_service.members)
    table(("member", "name", "phone", "tier", "since"),
          [(m.member_no, m.name, m.phone, m.tier, utc(m.created_at)) for m in rows])


@member_group.command("tier")
@click.argument("member_no", type=int)
@click.argument("tier")
@click.pass_obj
def member_tier(obj, member_no, tier):
    """Set a member's TIER (name or code): the tier the desk gives their cards from now on."""
    async def setting(s, actor):
        changed = await member_service.set_tier(s, actor, member_no, tier)
        return changed, sorted(await member_service.tiers_pending(s, actor, member_no))
    changed, pending = in_store(obj, setting)
    click.echo("member %d is tier %s now (%d card%s)" % (member_no, tier, changed, "" if changed == 1 else "s"))
    if pending:
        click.echo("card%s %s still hold%s the old tier: it is written at the next top-up or refund at a desk, or "
                   "now with `parkcard card write-tier --desk N` and the card on the desk"
                   % ("" if len(pending) == 1 else "s", ", ".join(str(n) for n in pending),
                      "s" if len(pending) == 1 else ""))
