"""The park's discount rules as configuration: per tier a rate on every sale and a rate on the total,
per tier overrides by category (park-wide) and by a merchant's item. Pure: no I/O.

A terminal prices with one merchant's share of these rules (protocol.pricing.Discounts, pushed as
T_DISCOUNTS, SPEC.md §7.2): the tier rates, every category override and that merchant's item
overrides. The park's rules have one version number; every merchant's share carries it, so a record's
rule version names the park's rules it was priced with.
"""

from protocol.pricing import (CATEGORY_MAX, ITEM_CODE_MAX, OVERRIDE_CATEGORY, OVERRIDE_ITEM, OVERRIDES_MAX,
                              RATE_BP_MAX, TIERS_MAX, Discounts)

from parkcard.domain.explained import Explained

# What operators are told, wherever the rules are shown (SPEC.md §7.3 states the same).
POLICY = ("Stacking: multiplicative. Each line takes one rate: the tier's override for the item, else for "
          "its category, else the tier's rate on every sale; the tier's rate on the total then applies to "
          "what the lines cost after their discounts. Rounding: every discount is rounded down to the cent "
          "(per line, then once on the total), so no discount is more than its stated rate.")


class RulesError(Explained):
    """Discount rules that cannot be used; the message says which value and what is allowed."""


def _rate(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= RATE_BP_MAX:
        raise RulesError("%(what)s: %(value)r is not a rate; give 0..%(most)d basis points (10000 = 100 %%)",
                         what=what, value=value, most=RATE_BP_MAX)
    return value


def _tier(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < TIERS_MAX:
        raise RulesError("tier %(tier)r: the card's tier is 0..%(most)d", tier=value, most=TIERS_MAX - 1)
    return value


class ParkRules:
    """Every discount rule of the park; `categories` {(tier, category): bp}, `items` {(merchant, tier, code): bp}."""

    def __init__(self, sale_bp=(), total_bp=(), categories=None, items=None):
        self.sale_bp = list(sale_bp) + [0] * (TIERS_MAX - len(sale_bp))
        self.total_bp = list(total_bp) + [0] * (TIERS_MAX - len(total_bp))
        self.categories = dict(categories or {})
        self.items = dict(items or {})

    def check(self):
        """Raise RulesError for a value out of its range, or a merchant whose share passes OVERRIDES_MAX."""
        if len(self.sale_bp) != TIERS_MAX or len(self.total_bp) != TIERS_MAX:
            raise RulesError("discount rules have %(tiers)d tiers", tiers=TIERS_MAX)
        for tier in range(TIERS_MAX):
            _rate(self.sale_bp[tier], "tier %d's rate on every sale" % tier)
            _rate(self.total_bp[tier], "tier %d's rate on the total" % tier)
        for (tier, category), bp in self.categories.items():
            _tier(tier)
            if not 0 <= category <= CATEGORY_MAX:
                raise RulesError("category %(category)r: categories are 0..%(most)d", category=category,
                                 most=CATEGORY_MAX)
            _rate(bp, "tier %d's rate on category %d" % (tier, category))
        per_merchant = {}
        for (merchant_id, tier, code), bp in self.items.items():
            _tier(tier)
            if not 0 < code <= ITEM_CODE_MAX:
                raise RulesError("item %(code)r: item codes are 1..%(most)d", code=code, most=ITEM_CODE_MAX)
            _rate(bp, "tier %d's rate on merchant %d's item %d" % (tier, merchant_id, code))
            per_merchant[merchant_id] = per_merchant.get(merchant_id, 0) + 1
        for merchant_id, count in per_merchant.items():
            if count + len(self.categories) > OVERRIDES_MAX:
                raise RulesError("merchant %(merchant)d would have %(overrides)d overrides (items and categories); "
                                 "a terminal holds at most %(most)d: remove some", merchant=merchant_id,
                                 overrides=count + len(self.categories), most=OVERRIDES_MAX)
        if len(self.categories) > OVERRIDES_MAX:
            raise RulesError("%(overrides)d category overrides; a terminal holds at most %(most)d",
                             overrides=len(self.categories), most=OVERRIDES_MAX)

    def for_merchant(self, merchant_id, version):
        """The Discounts one merchant's terminals price with (SPEC.md §7.2), at the park's rule version."""
        overrides = {}
        rules = Discounts(version, self.sale_bp, self.total_bp, overrides)
        for (tier, category), bp in self.categories.items():
            rules.set_override(tier, OVERRIDE_CATEGORY, category, bp)
        for (merchant, tier, code), bp in self.items.items():
            if merchant == merchant_id:
                rules.set_override(tier, OVERRIDE_ITEM, code, bp)
        return rules
