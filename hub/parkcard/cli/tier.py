"""`parkcard tier list|add|set`: the park's tiers, each with its recharge bonus (parkcard.services.tiers)."""

import click

from parkcard.cli.common import UserError, amount_cents, in_park_currency, in_store, table
from parkcard.money import format_cents
from parkcard.services import tiers as tier_service


@click.group("tier")
def tier_group():
    """The park's tiers: the code on the card, a name, the bonus on each top-up."""


def _steps(texts, currency):
    """--step MIN:BONUS options (amounts in the park's currency) as [[min_cash_cents, bonus_cents]]."""
    steps = []
    for text in texts:
        low, sep, bonus = text.partition(":")
        if not sep:
            raise UserError("--step %s: write it as MIN:BONUS, e.g. 500:50" % text)
        steps.append([amount_cents(low, currency, "--step %s" % text), amount_cents(bonus, currency, "--step %s" % text)])
    return steps


def _show(tiers, currency):
    table(("code", "name", "bonus", "steps"), [
        (t.code, t.name, "%d bps" % t.bonus_bps, ", ".join("pay %s get %s" % (
            format_cents(s.min_cash_cents, currency), format_cents(s.bonus_cents, currency)) for s in t.steps) or "-")
        for t in tiers])


@tier_group.command("list")
@click.pass_obj
def tier_list(obj):
    """The park's tiers and their bonus rules."""
    async def listing(storage, actor):
        return await tier_service.list_tiers(storage, actor), await storage.park_currency()
    _show(*in_store(obj, listing))


def _put(obj, new, code, name, bonus_bps, steps, no_steps):
    change = tier_service.add_tier if new else tier_service.change_tier
    tier, currency = in_park_currency(obj, lambda storage, actor, currency: change(
        storage, actor, code, name, bonus_bps, [] if no_steps else (_steps(steps, currency) if steps else None)),
        create=True)
    _show([tier], currency)


_BONUS = click.option("--bonus-bps", type=int, default=None,
                      help="bonus in basis points of the cash paid (1000 = 10 %)")
_STEP = click.option("--step", "steps", multiple=True, help="a fixed bonus MIN:BONUS, e.g. 500:50 (repeat for more)")


@tier_group.command("add")
@click.argument("code", type=int)
@click.argument("name")
@_BONUS
@_STEP
@click.pass_obj
def tier_add(obj, code, name, bonus_bps, steps):
    """Add tier CODE (the card's 0..15) called NAME."""
    _put(obj, True, code, name, bonus_bps, steps, False)


@tier_group.command("set")
@click.argument("code", type=int)
@click.option("--name", default=None, help="a new name")
@_BONUS
@_STEP
@click.option("--no-steps", is_flag=True, help="remove every fixed bonus step")
@click.pass_obj
def tier_set(obj, code, name, bonus_bps, steps, no_steps):
    """Change tier CODE: what is not given stays as it is."""
    _put(obj, False, code, name, bonus_bps, steps, no_steps)
