"""Consumption rules (消费规则): the park's limits per terminal category and per merchant, pure.

One park-wide set, versioned as a whole (every change a new version, SPEC.md §5.10). A pos or ride terminal
takes its merchant's rule if the merchant has one, else its category's, else none: the rule rides in its
T_CONFIG tail (protocol.spend_rules) and the terminal enforces it offline (SPEC.md §3.6).
"""

import json
from typing import NamedTuple

from protocol.errors import Malformed
from protocol.spend_rules import TIERS_ALL, TYPE_STAFF, TYPE_VISITOR, TYPES_ALL, SpendRules

from parkcard.domain.explained import Explained

CATEGORY = "category"
MERCHANT = "merchant"
SCOPES = (CATEGORY, MERCHANT)
CARD_TYPE_NAMES = {"visitor": TYPE_VISITOR, "staff": TYPE_STAFF}


class RuleError(Explained):
    """A rule with a field out of its range."""


class Rule(NamedTuple):
    """One scope's limits; 0 = none (SPEC.md §5.10)."""

    tx_cap_cents: int = 0
    daily_cap_cents: int = 0
    card_types: int = TYPES_ALL         # bits of protocol.spend_rules TYPE_*
    tiers: int = TIERS_ALL              # bit t: tier t may pay
    offline_cents: int = 0              # per card at one terminal while offline, not yet acknowledged
    member_tier: int = 1                # lowest tier that buys member-only items

    def wire(self, version):
        """The protocol SpendRules of this rule at a rules version; RuleError for a field out of range."""
        rules = SpendRules(version, *self)
        try:
            rules.encode()
        except Malformed as exc:
            raise RuleError("%(problem)s: caps 0..8,388,607 cents, at least one card type and one tier, member tier "
                            "0..15", problem=exc) from None
        return rules


def card_types_mask(names):
    """The card_types bits of names ('visitor', 'staff'); RuleError for an unknown one."""
    mask = 0
    for name in names:
        if name not in CARD_TYPE_NAMES:
            raise RuleError("card type %(name)r: one of %(types)s", name=name, types=", ".join(sorted(CARD_TYPE_NAMES)))
        mask |= CARD_TYPE_NAMES[name]
    return mask


def card_type_names(mask):
    """The names of the card_types bits set."""
    return [name for name, bit in sorted(CARD_TYPE_NAMES.items()) if mask & bit]


def tiers_mask(tiers):
    """The tiers bits of tier numbers 0..15; RuleError outside."""
    mask = 0
    for tier in tiers:
        if not 0 <= tier <= 15:
            raise RuleError("tier %(tier)r: tiers are 0..15", tier=tier)
        mask |= 1 << tier
    return mask


def tier_numbers(mask):
    """The tier numbers of a tiers mask."""
    return [t for t in range(16) if (mask >> t) & 1]


class ParkSpendRules:
    """{(scope, id): Rule} of the park; one version for all of them."""

    def __init__(self, rules=None):
        self.rules = dict(rules or {})

    def for_terminal(self, merchant_id, category):
        """The Rule a terminal of this merchant and category spends by (the merchant's first), or None."""
        return self.rules.get((MERCHANT, merchant_id)) or self.rules.get((CATEGORY, category))

    def tail(self, version, merchant_id, category):
        """The T_CONFIG tail of a pos or ride terminal at this rules version: b"" when no rule applies."""
        rule = self.for_terminal(merchant_id, category)
        return rule.wire(version).encode() if rule is not None else b""

    def to_json(self):
        """The store's JSON text (sorted: the same rules give the same text)."""
        return json.dumps(sorted([scope, ident, list(rule)] for (scope, ident), rule in self.rules.items()),
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text):
        """ParkSpendRules from the store's JSON text."""
        return cls({(scope, ident): Rule(*fields) for scope, ident, fields in json.loads(text)})
