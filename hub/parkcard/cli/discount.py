"""`parkcard discount show|tier|override|remove|bearer`: the park's discount rules."""

import click

from protocol.pricing import CATEGORY_MAX, ITEM_CODE_MAX, RATE_BP_MAX, TIERS_MAX

from parkcard.bounds import MERCHANT_ID, BoundParam
from parkcard.cli.common import UserError, in_store, options, table
from parkcard.domain.discounts import POLICY
from parkcard.services import discounts

_RATE = click.IntRange(0, RATE_BP_MAX)
_TIER = click.option("--tier", type=click.IntRange(0, TIERS_MAX - 1), required=True,
                     help="the card's tier: 0 standard, 1 silver, 2 gold, ...")
_target = options(click.option("--category", type=click.IntRange(0, CATEGORY_MAX), default=None,
                               help="a category, park-wide"),
                  click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), default=None,
                               help="with --item: the merchant whose item it is"),
                  click.option("--item", type=click.IntRange(1, ITEM_CODE_MAX), default=None, help="an item code"))


@click.group()
def discount():
    """Member discounts: per tier on every sale and on the total, overrides per category or item."""


@discount.command("show")
@click.option("--version", type=click.IntRange(1), default=None, help="an older version [default: the newest]")
@click.pass_obj
def discount_show(obj, version):
    """The discount rules in force (or of a version), and how they combine."""
    number, park = in_store(obj, lambda s, actor: discounts.rules(s, actor, version))
    click.echo("discount rules version %d" % number)
    click.echo(POLICY)
    table(("tier", "every sale bp", "total bp"),
          [(t, park.sale_bp[t], park.total_bp[t]) for t in range(TIERS_MAX) if park.sale_bp[t] or park.total_bp[t]])
    if park.categories or park.items:
        table(("tier", "merchant", "category", "item", "rate bp"),
              sorted([(t, "any", c, "", bp) for (t, c), bp in park.categories.items()]
                     + [(t, m, "", i, bp) for (m, t, i), bp in park.items.items()], key=str))


@discount.command("tier")
@_TIER
@click.option("--sale-bp", type=_RATE, default=None, help="rate on every sale, basis points (1000 = 10 %)")
@click.option("--total-bp", type=_RATE, default=None, help="further rate on the basket's total, basis points")
@click.pass_obj
def discount_tier(obj, tier, sale_bp, total_bp):
    """Set a tier's rate on every sale and/or its further rate on the total."""
    if sale_bp is None and total_bp is None:
        raise UserError("say what to change: --sale-bp N and/or --total-bp N")
    version = in_store(obj, lambda s, actor: discounts.set_tier(s, actor, tier, sale_bp, total_bp))
    click.echo("tier %d: discount rules version %d" % (tier, version))


@discount.command("override")
@_TIER
@_target
@click.option("--rate-bp", type=_RATE, required=True, help="the line's rate instead of the tier's (0: no discount)")
@click.pass_obj
def discount_override(obj, tier, category, merchant_id, item, rate_bp):
    """Give a tier another rate on a category, or on one merchant's item."""
    version = in_store(obj, lambda s, actor: discounts.set_override(s, actor, tier, rate_bp, category, merchant_id,
                                                                    item))
    click.echo("tier %d override %d bp: discount rules version %d" % (tier, rate_bp, version))


@discount.command("remove")
@_TIER
@_target
@click.pass_obj
def discount_remove(obj, tier, category, merchant_id, item):
    """Remove an override: the tier's rate on every sale applies again."""
    version = in_store(obj, lambda s, actor: discounts.remove_override(s, actor, tier, category, merchant_id, item))
    click.echo("tier %d override removed: discount rules version %d" % (tier, version))


@discount.command("bearer")
@click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), required=True)
@click.option("--by", "bearer", type=click.Choice(["park", "merchant"]), default=None,
              help="who pays for the merchant's discounts [default: show it]")
@click.pass_obj
def discount_bearer(obj, merchant_id, bearer):
    """Show or set who bears a merchant's discounts (settlement takes the merchant's share off its payout)."""
    if bearer is None:
        click.echo("merchant %d: discounts borne by the %s"
                   % (merchant_id, in_store(obj, lambda s, actor: discounts.bearer(s, actor, merchant_id))))
        return
    was = in_store(obj, lambda s, actor: discounts.set_bearer(s, actor, merchant_id, bearer))
    click.echo("merchant %d: discounts borne by the %s (was the %s)" % (merchant_id, bearer, was))
