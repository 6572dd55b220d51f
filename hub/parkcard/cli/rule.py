"""`parkcard rule set|list|clear`: consumption rules (消费规则) per terminal category or merchant."""

import click

from protocol.spend_rules import TIERS_ALL

from parkcard.bounds import MERCHANT_ID, BoundParam
from parkcard.cli.common import UserError, in_store, table
from parkcard.domain.spend_rules import (CATEGORY, MERCHANT, RuleError, card_type_names, card_types_mask,
                                         tier_numbers, tiers_mask)
from parkcard.money import format_cents
from parkcard.services import spend_rules

_CENTS = click.IntRange(0, (1 << 23) - 1)
_SCOPE = (click.option("--category", type=click.IntRange(0, spend_rules.CATEGORY_MAX), default=None,
                       help="the terminals of this category"),
          click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), default=None,
                       help="the terminals of this merchant (before their category's rule)"))


def _scoped(fn):
    for option in reversed(_SCOPE):
        fn = option(fn)
    return fn


def _scope(category, merchant_id):
    """(scope, id) of exactly one of --category and --merchant."""
    if (category is None) == (merchant_id is None):
        raise UserError("name the terminals: either --category N or --merchant M")
    return (CATEGORY, category) if category is not None else (MERCHANT, merchant_id)


def _list(text, parse, name):
    """A comma-separated option's value through parse; None when not given."""
    if text is None:
        return None
    try:
        return parse([part.strip() for part in text.split(",") if part.strip()])
    except (RuleError, ValueError) as exc:
        raise UserError("--%s %s: %s" % (name, text, exc)) from None


@click.group()
def rule():
    """Consumption rules: caps, allowed cards and member-only items, enforced by terminals offline."""


@rule.command("set")
@_scoped
@click.option("--tx-cap-cents", type=_CENTS, default=None, help="most one sale may take (0: the park's cap)")
@click.option("--daily-cap-cents", type=_CENTS, default=None, help="most a card may spend a day (0: the park's cap)")
@click.option("--card-types", default=None, help="cards that may pay: visitor,staff")
@click.option("--tiers", default=None, help="card tiers that may pay, e.g. 0,1,2")
@click.option("--offline-cents", type=_CENTS, default=None,
              help="most a card may spend at one terminal while it is offline (0: no limit)")
@click.option("--member-tier", type=click.IntRange(0, 15), default=None,
              help="lowest tier that may buy member-only items")
@click.pass_obj
def rule_set(obj, category, merchant_id, tx_cap_cents, daily_cap_cents, card_types, tiers, offline_cents,
             member_tier):
    """Set the rule of a category's or a merchant's terminals; fields not given keep their value."""
    scope, ident = _scope(category, merchant_id)
    types = _list(card_types, card_types_mask, "card-types")
    tier_bits = _list(tiers, lambda parts: tiers_mask([int(p) for p in parts]), "tiers")
    version, found = in_store(obj, lambda s, actor: spend_rules.set_rule(
        s, actor, scope, ident, tx_cap_cents=tx_cap_cents, daily_cap_cents=daily_cap_cents, card_types=types,
        tiers=tier_bits, offline_cents=offline_cents, member_tier=member_tier))
    click.echo("consumption rules version %d: %s %d now %s; its terminals get it with their next config"
               % (version, scope, ident, _describe(found)))


@rule.command("clear")
@_scoped
@click.pass_obj
def rule_clear(obj, category, merchant_id):
    """Remove the rule of a category's or a merchant's terminals."""
    scope, ident = _scope(category, merchant_id)
    version = in_store(obj, lambda s, actor: spend_rules.clear_rule(s, actor, scope, ident))
    click.echo("consumption rules version %d: %s %d has no rule" % (version, scope, ident))


@rule.command("list")
@click.pass_obj
def rule_list(obj):
    """Every rule in force, merchant rules first in effect, then category rules."""
    async def read(s, actor):
        return await spend_rules.listing(s, actor), await s.park_currency()
    (version, rows), currency = in_store(obj, read)
    click.echo("consumption rules version %d" % version)

    def cents(value):
        return format_cents(value, currency) if value else "-"
    table(("scope", "id", "per sale", "per day", "cards", "tiers", "offline", "member tier"),
          [(scope, ident, cents(r.tx_cap_cents), cents(r.daily_cap_cents), ",".join(card_type_names(r.card_types)),
            _tiers(r.tiers), cents(r.offline_cents), r.member_tier)
           for scope, ident, r in rows])


def _tiers(mask):
    """The tiers a rule lets pay: 'all', or their numbers."""
    return "all" if mask == TIERS_ALL else ",".join(map(str, tier_numbers(mask)))


def _describe(r):
    """A rule in one line."""
    return ("per sale %d, per day %d, cards %s, tiers %s, offline %d, member tier %d (cents; 0: none)"
            % (r.tx_cap_cents, r.daily_cap_cents, ",".join(card_type_names(r.card_types)),
               _tiers(r.tiers), r.offline_cents, r.member_tier))
