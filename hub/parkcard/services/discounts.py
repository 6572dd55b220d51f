"""The park's discount rules (tier rates, category and item overrides) and who bears a merchant's discounts.

Every change is a new version of the park's rules (parkcard.domain.discounts); each merchant's terminals
receive their share of it (T_DISCOUNTS, SPEC.md §7.2) and price offline with it, and the hub re-prices a
sale with the version its record names. The stacking and rounding policy is POLICY, shown with the rules.
"""

import json

from protocol.pricing import TIERS_MAX

from parkcard.domain.discounts import ParkRules, RulesError
from parkcard.services import versions
from parkcard.services.errors import Refusal
from parkcard.services.inputs import checked
from parkcard.services.privileges import MERCHANTS, MERCHANTS_READ, PARK_READ, TIERS, requires
from parkcard.store import audited
from parkcard.store.booth import DISCOUNT_BEARERS
from parkcard.transport import notify


async def park_rules(store, version=None):
    """Return (version, ParkRules) in force (version 0 and no discount before the first change), or of `version`."""
    return versions.read(await store.discount_rules(version), version, "discount rules", ParkRules(), _from_json)


async def merchant_rules(store, merchant_id, version=None):
    """The protocol.pricing.Discounts one merchant's terminals price with (at `version`, else the newest)."""
    number, park = await park_rules(store, version)
    return park.for_merchant(merchant_id, number)


@requires(PARK_READ)
async def rules(store, actor, version=None):
    """Return (version, ParkRules) for people to read; POLICY says how they combine."""
    return await park_rules(store, version)


@requires(TIERS)
async def set_tier(store, actor, tier, sale_bp=None, total_bp=None):
    """Set a tier's rate on every sale and/or on the total (basis points); return the new version."""
    def change(park):
        if sale_bp is not None:
            park.sale_bp[tier] = sale_bp
        if total_bp is not None:
            park.total_bp[tier] = total_bp
    if not 0 <= tier < TIERS_MAX:
        raise Refusal("out_of_range", "tier %(tier)r: the card's tier is 0..%(most)d", tier=tier, most=TIERS_MAX - 1)
    return await _change(store, actor, change, "discount.tier", tier=tier, sale_bp=sale_bp, total_bp=total_bp)


@requires(TIERS)
async def set_override(store, actor, tier, rate_bp, category=None, merchant_id=None, item=None):
    """Set tier's rate on a category (park-wide) or on one merchant's item; return the new version."""
    key = _override_key(tier, category, merchant_id, item)

    def change(park):
        (park.categories if category is not None else park.items)[key] = rate_bp
    return await _change(store, actor, change, "discount.override", tier=tier, rate_bp=rate_bp, category=category,
                         merchant_id=merchant_id, item=item)


@requires(TIERS)
async def remove_override(store, actor, tier, category=None, merchant_id=None, item=None):
    """Remove an override (the tier's rate on every sale applies again); return the new version."""
    key = _override_key(tier, category, merchant_id, item)

    def change(park):
        table = park.categories if category is not None else park.items
        if key not in table:
            raise Refusal("override_not_found", "there is no such override: see `parkcard discount show`")
        del table[key]
    return await _change(store, actor, change, "discount.remove", tier=tier, category=category,
                         merchant_id=merchant_id, item=item)


@requires(MERCHANTS_READ)
async def bearer(store, actor, merchant_id):
    """Return who bears the merchant's discounts: 'park' or 'merchant'."""
    found = await store.discount_bearer(merchant_id)
    if found is None:
        raise Refusal("merchant_not_found", "there is no merchant %(merchant)d (see `parkcard merchant list`)",
                      merchant=merchant_id)
    return found


@requires(MERCHANTS)
async def set_bearer(store, actor, merchant_id, bearer):
    """Set who bears the merchant's discounts for sales applied from now on (SPEC.md §7.5); return the one before."""
    checked(merchant_id=merchant_id)
    if bearer not in DISCOUNT_BEARERS:
        raise Refusal("out_of_range", "the discount is borne by one of %(bearers)s, not %(bearer)r",
                      bearers=", ".join(DISCOUNT_BEARERS), bearer=bearer)
    try:
        was = await store.set_discount_bearer(merchant_id, bearer, audit=audited(
            actor.name, "discount.bearer", when=lambda was: was != bearer, merchant_id=merchant_id, bearer=bearer))
    except ValueError as exc:
        raise Refusal("merchant_not_found", "%(problem)s (see `parkcard merchant list`)", problem=exc) from None
    if was != bearer:
        await actor.told(notify.TERMINALS)    # the ledger posts by the bearer: the hub reloads the merchant's terminals
    return was


def _override_key(tier, category, merchant_id, item):
    """(tier, category) or (merchant, tier, item): exactly one of the two must be named."""
    if (category is None) == (item is None) or (item is not None) != (merchant_id is not None):
        raise Refusal("bad_override", "name either --category N, or --merchant M with --item CODE")
    return (tier, category) if category is not None else (merchant_id, tier, item)


async def _change(store, actor, change, action, **detail):
    """Apply change(ParkRules) to the newest rules and store them as the next version."""
    version, park = await park_rules(store)
    change(park)
    try:
        park.check()
    except RulesError as exc:
        raise Refusal("out_of_range", "%(problem)s: nothing changed", problem=exc) from None
    return await versions.add_next(store.add_discount_rules, actor, version, _to_json(park), notify.PRICES, action,
                                   **{k: v for k, v in detail.items() if v is not None})


def _to_json(park):
    """ParkRules as the JSON text the store keeps (sorted: the same rules give the same text)."""
    return json.dumps({"sale_bp": park.sale_bp, "total_bp": park.total_bp,
                       "categories": sorted([t, c, bp] for (t, c), bp in park.categories.items()),
                       "items": sorted([m, t, i, bp] for (m, t, i), bp in park.items.items())},
                      sort_keys=True, separators=(",", ":"))


def _from_json(text):
    """ParkRules from the store's JSON text."""
    data = json.loads(text)
    return ParkRules(data["sale_bp"], data["total_bp"], {(t, c): bp for t, c, bp in data["categories"]},
                     {(m, t, i): bp for m, t, i, bp in data["items"]})
