"""The park's tiers (parkcard.domain.tiers) as park configuration: listed, added, changed, audited.

A tier is named on the card by its code (the card's 4-bit tier, SPEC.md §3.3);
the desk's recharge bonus is read from this table, and the discount rules
(parkcard.services.discounts) name the same codes.
"""

import json

from parkcard.domain.tiers import TierError, tiers_from_config, tiers_to_config
from parkcard.services.privileges import PARK_ADMIN, PARK_READ, ServiceError, requires
from parkcard.store import audited
from parkcard.store.rows import TierRow

CARD_TIER_MAX = 15          # the card info holds the tier in 4 bits (SPEC.md §3.3)


async def park_tiers(storage):
    """The park's tier table as a parkcard.domain.tiers.Tiers, read from the store."""
    return tiers_from_config([dict(code=t.code, name=t.name, bonus_bps=t.bonus_bps, steps=json.loads(t.steps))
                              for t in await storage.tiers()])


@requires(PARK_READ)
async def list_tiers(store, actor):
    """The park's tiers (parkcard.domain.tiers.Tier), by code."""
    return list(await park_tiers(store))


@requires(PARK_ADMIN)
async def add_tier(store, actor, code, name, bonus_bps=None, steps=None):
    """Add tier `code` called `name` (no bonus unless given); return the Tier as stored."""
    return await _kept(store, actor, code, name, bonus_bps, steps, new=True)


@requires(PARK_ADMIN)
async def change_tier(store, actor, code, name=None, bonus_bps=None, steps=None):
    """Change tier `code`: what is given replaces its name, bonus or steps; return the Tier as stored."""
    return await _kept(store, actor, code, name, bonus_bps, steps, new=False)


async def _kept(store, actor, code, name, bonus_bps, steps, new):
    """Add (new) or change a tier in the store, validated by parkcard.domain.tiers and audited."""
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= CARD_TIER_MAX:
        raise ServiceError("a tier code is 0..%(most)d (the card holds it in 4 bits), not %(code)r", most=CARD_TIER_MAX,
                           code=code)
    table = {t.code: t for t in await park_tiers(store)}
    if not new and code not in table:
        raise ServiceError("no tier has code %(code)d: the park's tiers are %(tiers)s; add it with `parkcard tier add`",
                           code=code, tiers=", ".join("%d %s" % (t.code, t.name) for t in table.values()))
    entry = tiers_to_config([table[code]])[0] if not new else {"code": code, "name": name, "bonus_bps": 0,
                                                                 "steps": []}
    entry.update({k: v for k, v in (("name", name), ("bonus_bps", bonus_bps), ("steps", steps)) if v is not None})
    try:
        tier = tiers_from_config([entry]).tier(code)
    except TierError as exc:
        raise ServiceError("%(problem)s: nothing changed", problem=exc) from None
    row = TierRow(tier.code, tier.name, tier.bonus_bps, json.dumps(tiers_to_config([tier])[0]["steps"]))
    try:
        await store.put_tier(row, new, audit=audited(actor.name, "tier.add" if new else "tier.set", code=tier.code,
                                                     name=tier.name, bonus_bps=tier.bonus_bps, steps=row.steps))
    except ValueError as exc:
        raise ServiceError("%(problem)s: nothing changed", problem=exc) from None
    return tier
