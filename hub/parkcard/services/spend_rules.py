"""Consumption rules (消费规则) per terminal category or merchant: set, list, clear; pushed to pos and ride
terminals in their T_CONFIG tail (SPEC.md §5.10) and enforced there offline (SPEC.md §3.6).

Every change is a new version of the park's rules (parkcard.domain.spend_rules); a terminal's T_CONFIG
version moves with it, so a terminal that missed the push is sent its config at its next sync.
"""

from parkcard.domain.spend_rules import CATEGORY, MERCHANT, ParkSpendRules, Rule, RuleError
from parkcard.services import versions
from parkcard.services.errors import Refusal
from parkcard.services.privileges import PARK_READ, TIERS, requires
from parkcard.transport import notify

CATEGORY_MAX = 15       # a terminal's category: the bit of a card's perms it checks (SPEC.md §5.3)


async def park_spend_rules(store, version=None):
    """(version, ParkSpendRules) in force (0 and none before the first rule), or of `version`."""
    return versions.read(await store.spend_rules(version), version, "consumption rules", ParkSpendRules(),
                         ParkSpendRules.from_json)


async def terminal_tail(store, merchant_id, category):
    """(rules version, T_CONFIG tail) of a pos or ride terminal: (0, b"") while the park has no rules."""
    version, park = await park_spend_rules(store)
    return version, park.tail(version, merchant_id, category) if version else b""


@requires(PARK_READ)
async def listing(store, actor):
    """(version, [(scope, id, Rule)]) of the rules in force, by scope and id."""
    version, park = await park_spend_rules(store)
    return version, [(scope, ident, rule) for (scope, ident), rule in sorted(park.rules.items())]


@requires(TIERS)
async def set_rule(store, actor, scope, ident, **fields):
    """Set (or change the named fields of) the rule of a category or merchant; return (version, Rule)."""
    key = await _scope_key(store, scope, ident)
    version, park = await park_spend_rules(store)
    rule = (park.rules.get(key) or Rule())._replace(**{k: v for k, v in fields.items() if v is not None})
    try:
        rule.wire(version + 1)
    except RuleError as exc:
        raise Refusal("out_of_range", "%(problem)s: nothing changed", problem=exc) from None
    park.rules[key] = rule
    new = await _store(store, actor, version, park, "rule.set", scope=scope, id=ident, **rule._asdict())
    return new, rule


@requires(TIERS)
async def clear_rule(store, actor, scope, ident):
    """Remove the rule of a category or merchant (its terminals go back to the park's caps); return the version."""
    key = await _scope_key(store, scope, ident)
    version, park = await park_spend_rules(store)
    if key not in park.rules:
        raise Refusal("rule_not_found", "there is no rule for %(scope)s %(ident)d: see `parkcard rule list`",
                      scope=key[0], ident=key[1])
    del park.rules[key]
    return await _store(store, actor, version, park, "rule.clear", scope=scope, id=ident)


async def _scope_key(store, scope, ident):
    """(scope, id) of a category 0..15 or an existing merchant; Refusal otherwise."""
    if scope == CATEGORY and 0 <= ident <= CATEGORY_MAX:
        return scope, ident
    if scope == MERCHANT and ident in {m.id for m in await store.merchants()}:
        return scope, ident
    if scope == MERCHANT:
        raise Refusal("merchant_not_found", "there is no merchant %(merchant)d (see `parkcard merchant list`)",
                      merchant=ident)
    raise Refusal("out_of_range", "a rule is for a terminal category 0..%(most)d or a merchant, not %(scope)s "
                                  "%(ident)r", most=CATEGORY_MAX, scope=scope, ident=ident)


async def _store(store, actor, version, park, action, **detail):
    """Store park as the version after `version`, audited, and have the hub push the new configs."""
    return await versions.add_next(store.add_spend_rules, actor, version, park.to_json(), notify.RULES, action,
                                   **detail)
