"""Member tiers as park configuration: a tier's name and its recharge bonus rule. Pure, integer cents.

A tier is identified on the card by its code (protocol.card TIER_*, one byte)
and named for people ("gold"). Its recharge bonus is the sum of two parts,
each optional:

- a percent of the cash paid, in basis points (1000 bps = 10 %), rounded
  down to the cent: the holder is never given a fraction of a cent;
- fixed steps: paying at least `min_cash_cents` in one top-up adds
  `bonus_cents`; only the highest step reached counts ("pay 500, get 50").

The default park configuration (DEFAULT_TIERS) is standard 0 %, silver 0 %,
gold 10 %: the same cents as the ledger's bonus has always been.
"""

import dataclasses

from protocol.card import BALANCE_MAX_CENTS as CENTS_MAX, TIER_GOLD, TIER_SILVER, TIER_STANDARD

from parkcard.domain.cents import whole
from parkcard.domain.explained import Cents, Explained

BPS_MAX = 10000                 # a bonus above 100 % of the cash paid is a typing error, not a rule
TIER_CODE_MAX = 255             # the card's tier byte


class TierError(Explained):
    """A tier configuration that cannot be used; the message says which value and what is allowed."""


def _cents(value, what, minimum=0):
    """value as whole cents from minimum to what a card can hold, or TierError naming `what`."""
    return whole(value, what + " (cents)", TierError, minimum, CENTS_MAX)


@dataclasses.dataclass(frozen=True)
class BonusStep:
    """A fixed bonus: a top-up of at least min_cash_cents adds bonus_cents."""

    min_cash_cents: int
    bonus_cents: int

    def __post_init__(self):
        """Validate both amounts (whole cents; the threshold at least 1 cent)."""
        _cents(self.min_cash_cents, "a bonus step's threshold", 1)
        _cents(self.bonus_cents, "a bonus step's bonus", 1)


@dataclasses.dataclass(frozen=True)
class Tier:
    """One member tier: card code, name, bonus in basis points of the cash paid, fixed bonus steps."""

    code: int
    name: str
    bonus_bps: int = 0
    steps: tuple = ()

    def __post_init__(self):
        """Validate the tier; steps are BonusStep or (min_cash_cents, bonus_cents) pairs, thresholds distinct."""
        code, name, bonus_bps = self.code, self.name, self.bonus_bps
        whole(code, "a tier code", TierError, 0, TIER_CODE_MAX)
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise TierError("tier %(code)d needs a name without leading or trailing spaces, not %(name)r", code=code,
                            name=name)
        whole(bonus_bps, "tier %s: the bonus in basis points (1000 = 10 %%)" % name, TierError, 0, BPS_MAX)
        made = sorted((s if isinstance(s, BonusStep) else BonusStep(*s) for s in self.steps),
                      key=lambda s: s.min_cash_cents)
        for low, high in zip(made, made[1:]):
            if low.min_cash_cents == high.min_cash_cents:
                raise TierError("tier %(name)s has two bonus steps at %(cents)s: keep one", name=name,
                                cents=Cents(low.min_cash_cents))
        object.__setattr__(self, "steps", tuple(made))   # frozen: the one normalisation, at construction

    def bonus_cents(self, cash_cents):
        """Bonus added to a top-up of cash_cents: percent part (rounded down) plus the highest step reached."""
        _cents(cash_cents, "the cash paid")
        fixed = 0
        for step in self.steps:
            if cash_cents >= step.min_cash_cents:
                fixed = step.bonus_cents
        return cash_cents * self.bonus_bps // BPS_MAX + fixed


class Tiers:
    """The park's tier table: every tier by code and by name."""

    __slots__ = ("_by_code", "_by_name")

    def __init__(self, tiers):
        """Validate that codes and names (case-insensitive) are each used once; at least one tier."""
        by_code, by_name = {}, {}
        for tier in tiers:
            if not isinstance(tier, Tier):
                raise TierError("a tier table holds Tier values, not %(tier)r", tier=tier)
            if tier.code in by_code:
                raise TierError("tier code %(code)d is used by %(one)s and %(other)s: give each tier its own code",
                                code=tier.code, one=by_code[tier.code].name, other=tier.name)
            if tier.name.lower() in by_name:
                raise TierError("two tiers are named %(name)r: give each tier its own name", name=tier.name)
            by_code[tier.code] = tier
            by_name[tier.name.lower()] = tier
        if not by_code:
            raise TierError("a park needs at least one tier")
        object.__setattr__(self, "_by_code", by_code)
        object.__setattr__(self, "_by_name", by_name)

    def __setattr__(self, name, value):
        raise AttributeError("a tier table is immutable")

    def __iter__(self):
        return iter(sorted(self._by_code.values(), key=lambda t: t.code))

    def __eq__(self, other):
        return isinstance(other, Tiers) and self._by_code == other._by_code

    def __hash__(self):
        return hash(tuple(self))

    def tier(self, code):
        """The tier with card code `code`, or TierError naming the codes there are."""
        try:
            return self._by_code[code]
        except (KeyError, TypeError):
            raise TierError("no tier has code %(code)r: the park's tiers are %(tiers)s", code=code,
                            tiers=self._listing()) from None

    def named(self, name):
        """The tier called `name` (any case), or TierError naming the tiers there are."""
        tier = self._by_name.get(str(name).strip().lower())
        if tier is None:
            raise TierError("no tier is called %(name)r: the park's tiers are %(tiers)s", name=name,
                            tiers=self._listing())
        return tier

    def bonus_cents(self, code, cash_cents):
        """Bonus for a top-up of cash_cents on a card of tier `code` (an unknown code is a TierError)."""
        return self.tier(code).bonus_cents(cash_cents)

    def _listing(self):
        return ", ".join("%d %s" % (t.code, t.name) for t in self)


def tiers_from_config(entries):
    """Tiers from park configuration: a list of {"code", "name", "bonus_bps", "steps": [[min, bonus], ...]}."""
    if not isinstance(entries, (list, tuple)):
        raise TierError("the tiers setting is a list of tiers, not %(entries)r", entries=entries)
    made = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise TierError("each tier is a table with code, name, bonus_bps and steps, not %(entry)r", entry=entry)
        unknown = set(entry) - {"code", "name", "bonus_bps", "steps"}
        if unknown:
            raise TierError("tier %(name)r has unknown settings %(unknown)s: use code, name, bonus_bps, steps",
                            name=entry.get("name"), unknown=", ".join(sorted(unknown)))
        if "code" not in entry or "name" not in entry:
            raise TierError("each tier needs a code and a name: %(entry)r", entry=entry)
        steps = entry.get("steps", ())
        if not isinstance(steps, (list, tuple)) or not all(isinstance(s, (list, tuple)) and len(s) == 2
                                                           for s in steps):
            raise TierError("tier %(name)r: steps are [min_cash_cents, bonus_cents] pairs, not %(steps)r",
                            name=entry["name"], steps=steps)
        made.append(Tier(entry["code"], entry["name"], entry.get("bonus_bps", 0), [tuple(s) for s in steps]))
    return Tiers(made)


def tiers_to_config(tiers):
    """The configuration form of a tier table (what tiers_from_config reads back)."""
    return [{"code": t.code, "name": t.name, "bonus_bps": t.bonus_bps,
             "steps": [[s.min_cash_cents, s.bonus_cents] for s in t.steps]} for t in tiers]


# A park that configures no tiers: the card's three tier codes, gold with 10 %.
DEFAULT_TIERS = Tiers((Tier(TIER_STANDARD, "standard"), Tier(TIER_SILVER, "silver"),
                      Tier(TIER_GOLD, "gold", bonus_bps=1000)))
