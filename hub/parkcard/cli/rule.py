"""`parkcard rule set|list|clear`: consumption rules (消费规则) per terminal category or merchant."""

import click

from protocol.spend_rules import TIERS_ALL

from parkcard.bounds import MERCHANT_ID, BoundParam
from parkcard.cli.common import UserError, amount_cents, in_store, options, table
from parkcard.domain.spend_rules import (CATEGORY, MERCHANT, RuleError, card_type_names, card_types_mask,
                                         tier_numbers, tiers_mask)
from parkcard.money import format_cents
from parkcard.services import spend_rules

_CENTS_MAX = (1 << 23) - 1     # a card's balance maximum (SPEC.md §3.4): no cap above it means anything
_scoped = options(click.option("--category", type=click.IntRange(0, spend_rules.CATEGORY_MAX), default=None,
                               help="the terminals of this category"),
                  click.option("--merchant", "merchant_id", type=BoundParam(MERCHANT_ID), default=None,
                               help="the terminals of this merchant (before their category's rule)"))


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
@click.option("--tx-cap", default=None, help="most one sale may take, in the park's currency, e.g. 50 or 12.50 "
              "(0: the park's cap)")
@click.option("--daily-cap", default=None,
              help="most a card may spend a day, in the park's currency (0: the park's cap)")
@click.option("--card-types", default=None, help="cards that may pay: visitor,staff")
@click.option("--tiers", default=None, help="card tiers that may pay, e.g. 0,1,2")
@click.option("--offline", default=None,
              help="most a card may spend at one terminal while it is offline, in the park's currency (0: no limit)")
@click.option("--member-tier", type=click.IntRange(0, 15), default=None,
              help="lowest tier that may buy member-only items")
@click.pass_obj
def rule_set(obj, category, merchant_id, tx_cap, daily_cap, card_types, tiers, offline, member_tier):
    """Set the rule of a category's or a merchant's terminals; fields not given keep their value."""
    scope, ident = _scope(category, merchant_id)
    types = _list(card_types, card_types_mask, "card-types")
    tier_bits = _list(tiers, lambda parts: tiers_mask([int(p) for p in parts]), "tiers")

    async def run(s, actor):
        currency = await s.park_currency()
        amounts = {name: _amount(text, currency, name) for name, text in
                   (("tx-cap", tx_cap), ("daily-cap", daily_cap), ("offline", offline))}
        version, found = await spend_rules.set_rule(
            s, actor, scope, ident, tx_cap_cents=amounts["tx-cap"], daily_cap_cents=amounts["daily-cap"],
            card_types=types, tiers=tier_bits, offline_cents=amounts["offline"], member_tier=member_tier)
        return version, found, currency
    version, found, currency = in_store(obj, run)
    click.echo("consumption rules version %d: %s %d now %s; its terminals get it with their next config"
               % (version, scope, ident, _describe(found, currency)))


def _amount(text, currency, name):
    """Cents of an option's amount in the park's currency (None when not given); UserError past the card maximum."""
    return None if text is None else amount_cents(text, currency, "--" + name, _CENTS_MAX)


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
    table(("scope", "id", "per sale", "per day", "cards", "tiers", "offline", "member tier"),
          [(scope, ident, _money(r.tx_cap_cents, currency), _money(r.daily_cap_cents, currency),
            ",".join(card_type_names(r.card_types)), _tiers(r.tiers), _money(r.offline_cents, currency), r.member_tier)
           for scope, ident, r in rows])


def _tiers(mask):
    """The tiers a rule lets pay: 'all', or their numbers."""
    return "all" if mask == TIERS_ALL else ",".join(map(str, tier_numbers(mask)))


def _money(cents, currency):
    """A rule's amount for people: in the park's currency, '-' for 0 (no limit of its own)."""
    return format_cents(cents, currency) if cents else "-"


def _describe(r, currency):
    """A rule in one line."""
    return ("per sale %s, per day %s, cards %s, tiers %s, offline %s, member tier %d (-: none)"
            % (_money(r.tx_cap_cents, currency), _money(r.daily_cap_cents, currency),
               ",".join(card_type_names(r.card_types)), _tiers(r.tiers), _money(r.offline_cents, currency),
               r.member_tier))
