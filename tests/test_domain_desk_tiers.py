"""Member tiers as park configuration: bonus rules in basis points and fixed steps, validated, today's numbers kept."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.card import BALANCE_MAX_CENTS, TIER_GOLD, TIER_SILVER, TIER_STANDARD

from parkcard.domain import ledger
from parkcard.domain.tiers import DEFAULT_TIERS, BonusStep, Tier, TierError, Tiers, tiers_from_config, tiers_to_config

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)


@DETERMINISTIC
@given(st.integers(0, BALANCE_MAX_CENTS), st.sampled_from([TIER_STANDARD, TIER_SILVER, TIER_GOLD]))
def test_the_default_park_gives_todays_bonus_0_0_10_percent(cash, tier):
    today = {TIER_STANDARD: 0, TIER_SILVER: 0, TIER_GOLD: 10}[tier]
    assert DEFAULT_TIERS.bonus_cents(tier, cash) == cash * today // 100
    assert ledger.bonus_cents(tier, cash) == cash * today // 100


def test_the_default_tiers_have_the_card_codes_and_names():
    assert [(t.code, t.name, t.bonus_bps) for t in DEFAULT_TIERS] == [(0, "standard", 0), (1, "silver", 0),
                                                                      (2, "gold", 1000)]
    assert DEFAULT_TIERS.named("GOLD ") is DEFAULT_TIERS.tier(TIER_GOLD)


def test_the_percent_part_rounds_down_to_the_cent():
    tier = Tier(5, "bronze", bonus_bps=333)            # 3.33 %
    assert tier.bonus_cents(1000) == 33                  # 33.3 -> 33
    assert tier.bonus_cents(2999) == 99                  # 99.87 -> 99
    assert tier.bonus_cents(0) == 0


def test_only_the_highest_step_reached_counts_and_adds_to_the_percent():
    tier = Tier(3, "platinum", bonus_bps=500, steps=[(50000, 8000), (10000, 1000)])
    assert tier.steps == (BonusStep(10000, 1000), BonusStep(50000, 8000))
    assert tier.bonus_cents(9999) == 499
    assert tier.bonus_cents(10000) == 500 + 1000
    assert tier.bonus_cents(49999) == 2499 + 1000
    assert tier.bonus_cents(50000) == 2500 + 8000


def test_a_bonus_table_from_park_configuration_reads_back_what_it_wrote():
    config = [{"code": 0, "name": "visitor"},
              {"code": 2, "name": "金卡", "bonus_bps": 1000, "steps": [[20000, 3000]]}]
    tiers = tiers_from_config(config)
    assert tiers.bonus_cents(2, 20000) == 2000 + 3000
    assert tiers.named("金卡").code == 2
    assert tiers_from_config(tiers_to_config(tiers)) == tiers
    assert ledger.bonus_cents(2, 20000, tiers) == 5000


@pytest.mark.parametrize("make, message", [
    (lambda: Tier(2, "gold", bonus_bps=10001),
     "tier gold: the bonus in basis points \\(1000 = 10 %\\) must be a whole number from 0 to 10000, not 10001"),
    (lambda: Tier(2, "gold", bonus_bps=-1), "bonus in basis points .* from 0 to 10000"),
    (lambda: Tier(2, "gold", bonus_bps=10.0), "bonus in basis points .* from 0 to 10000"),
    (lambda: Tier(2, "gold", bonus_bps=True), "bonus in basis points .* from 0 to 10000"),
    (lambda: Tier(256, "gold"), "a tier code must be a whole number from 0 to 255, not 256"),
    (lambda: Tier(-1, "gold"), "from 0 to 255"),
    (lambda: Tier(1, " silver"), "without leading or trailing spaces"),
    (lambda: Tier(1, ""), "needs a name"),
    (lambda: Tier(1, "silver", steps=[(0, 100)]), "threshold \\(cents\\) must be a whole number from 1 to .*, not 0"),
    (lambda: Tier(1, "silver", steps=[(100, 0)]), "a bonus step's bonus \\(cents\\) must be a whole number from 1"),
    (lambda: Tier(1, "silver", steps=[(100, 1.5)]), "bonus \\(cents\\) must be a whole number from 1 to .*, not 1.5"),
    (lambda: Tier(1, "silver", steps=[(100, BALANCE_MAX_CENTS + 1)]), "must be a whole number from 1 to 8388607"),
    (lambda: Tier(1, "silver", steps=[(100, 5), (100, 6)]), "two bonus steps at 100 cents"),
    (lambda: Tiers([Tier(1, "a"), Tier(1, "b")]), "tier code 1 is used by a and b"),
    (lambda: Tiers([Tier(1, "Gold"), Tier(2, "gold")]), "two tiers are named 'gold'"),
    (lambda: Tiers([]), "at least one tier"),
    (lambda: Tiers([{"code": 1}]), "holds Tier values"),
    (lambda: tiers_from_config({"gold": 10}), "a list of tiers"),
    (lambda: tiers_from_config([{"code": 2, "name": "gold", "percent": 10}]), "unknown settings percent"),
    (lambda: tiers_from_config([{"name": "gold"}]), "needs a code and a name"),
    (lambda: tiers_from_config([{"code": 2, "name": "gold", "steps": [100]}]), "pairs"),
])
def test_a_bad_tier_setting_is_refused_with_what_is_allowed(make, message):
    with pytest.raises(TierError, match=message):
        make()


def test_an_unknown_tier_or_a_bad_amount_is_a_clear_error():
    with pytest.raises(TierError, match="no tier has code 7: the park's tiers are 0 standard, 1 silver, 2 gold"):
        DEFAULT_TIERS.bonus_cents(7, 100)
    with pytest.raises(TierError, match="no tier is called 'diamond'"):
        DEFAULT_TIERS.named("diamond")
    with pytest.raises(TierError, match="the cash paid \\(cents\\) must be a whole number from 0 to 8388607, not 10.5"):
        DEFAULT_TIERS.bonus_cents(TIER_GOLD, 10.5)
    with pytest.raises(TierError, match="from 0 to 8388607, not -1"):
        DEFAULT_TIERS.bonus_cents(TIER_GOLD, -1)


def test_tiers_are_immutable_values():
    tier = DEFAULT_TIERS.tier(TIER_GOLD)
    with pytest.raises(AttributeError):
        tier.bonus_bps = 2000
    with pytest.raises(AttributeError):
        DEFAULT_TIERS.extra = 1
    assert Tier(2, "gold", 1000) == tier and hash(Tier(2, "gold", 1000)) == hash(tier)
