"""Tier discounts and the price list codec (SPEC.md §7): the reference table and the vectors on CPython
and under MicroPython, and the bounds named beside the codec."""

import json

import pytest

from conftest import REPO, run_cpython
from protocol import card, hub_price_list, price_list, pricing
from protocol.errors import Malformed

TABLE = REPO / "protocol" / "vectors" / "pricing.jsonl"
PRICING_CHECK = REPO / "tests" / "mpy" / "pricing_check.py"
LIST_VECTORS = REPO / "protocol" / "vectors" / "price_list.json"
LIST_CHECK = REPO / "tests" / "mpy" / "price_list_check.py"
LINE_VECTORS = REPO / "protocol" / "vectors" / "sale_lines.json"
LINE_CHECK = REPO / "tests" / "mpy" / "sale_line_check.py"


def table():
    with open(TABLE) as f:
        head = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    assert head["cases"] == len(rows)
    return rows


def test_the_table_covers_every_tier_override_total_and_rounding_case():
    names = {row["n"] for row in table()}
    for tier in (0, 1, 2, 15):
        for override in ("none", "category", "item", "item_and_category", "item_zero"):
            for total in (0, 250, 3333, 10000):
                assert f"t{tier} {override} total{total} exact x1" in names
        # a rate with fractions of a cent (tier 15: 33.33 %) meets every rounding case
        for rounding in ("below_half", "half", "above_half", "high"):
            assert f"t15 none total0 {rounding} x3" in names
    # ... and so does the total discount, at every tier and override, for the rates that leave fractions
    for tier in (0, 1, 2, 15):
        for override in ("none", "category", "item", "item_and_category", "item_zero"):
            for total in (250, 3333):
                for rounding in ("exact", "below_half", "half", "above_half", "high"):
                    assert f"t{tier} {override} total{total} total_{rounding} x3" in names
    refused = {row["refused"] for row in table() if "refused" in row}
    assert refused == {"bad_basket", "bad_line", "free_amount", "over_max"}


def test_reference_table_on_cpython():
    proc = run_cpython(PRICING_CHECK, TABLE)
    assert proc.stdout.startswith("pricing vectors ok") and f"cases {len(table())}" in proc.stdout


@pytest.mark.micropython
def test_reference_table_on_micropython(micropython):
    proc = micropython(PRICING_CHECK, TABLE)
    assert proc.stdout.splitlines()[0] == run_cpython(PRICING_CHECK, TABLE).stdout.strip()


def test_price_list_vectors_on_cpython():
    assert run_cpython(LIST_CHECK, LIST_VECTORS).stdout.startswith("price list vectors ok")


@pytest.mark.micropython
def test_price_list_vectors_on_micropython(micropython):
    proc = micropython(LIST_CHECK, LIST_VECTORS)
    assert proc.stdout.startswith("price list vectors ok")
    assert proc.stdout == run_cpython(LIST_CHECK, LIST_VECTORS).stdout  # the same checks passed on both


def test_sale_line_vectors_on_cpython():
    assert run_cpython(LINE_CHECK, LINE_VECTORS).stdout.startswith("sale line vectors ok")


@pytest.mark.micropython
def test_sale_line_vectors_on_micropython(micropython):
    proc = micropython(LINE_CHECK, LINE_VECTORS)
    assert proc.stdout.startswith("sale line vectors ok")
    assert proc.stdout == run_cpython(LINE_CHECK, LINE_VECTORS).stdout  # the same checks passed on both


def test_discounts_stack_multiplicatively_and_floor_each_discount():
    rules = pricing.Discounts(1, [0, 1000], [0, 500])
    rules.set_override(1, pricing.OVERRIDE_CATEGORY, 2, 2000)
    price = pricing.price_basket(rules, 1, [(5, 2, 3, 333), (6, 1, 1, 999)])
    # 999 cents at 20 % = 199.8 -> 199; 999 at 10 % = 99.9 -> 99; total (800 + 900) at 5 % = 85
    assert (price.gross_cents, price.line_discounts, price.total_discount_cents) == (1998, [199, 99], 85)
    assert (price.discount_cents, price.pay_cents) == (383, 1615)
    # 100 % on the line and on the total never goes below zero
    full = pricing.Discounts(1, [10000], [10000])
    assert pricing.price_basket(full, 0, [(1, 0, 99, card.BALANCE_MAX_CENTS // 99)]).pay_cents == 0


def test_discount_arithmetic_is_exact_at_the_card_maximum():
    for amount in (0, 1, 9999, 10000, 10001, card.BALANCE_MAX_CENTS):
        for rate in (0, 1, 3333, 5000, 9999, 10000):
            assert pricing.discount_of(amount, rate) == amount * rate // 10000


def test_a_refusal_says_what_to_change():
    rules = pricing.Discounts(1)
    with pytest.raises(pricing.Refused) as e:
        pricing.price_basket(rules, 0, [(0, 0, 1, 500)])
    assert e.value.reason == "free_amount" and "key an item" in str(e.value)
    with pytest.raises(pricing.Refused) as e:
        pricing.price_basket(rules, 0, [(1, 0, 99, 90000)])
    assert e.value.reason == "over_max" and "8388607" in str(e.value)


@pytest.mark.parametrize("rules", [pricing.Discounts(1, [10001]), pricing.Discounts(1, [], [0, -1]),
                                   pricing.Discounts(1, overrides={pricing.rate_key(16, 0, 1): 5}),
                                   pricing.Discounts(1, overrides={pricing.rate_key(0, 1, 256): 5}),
                                   pricing.Discounts(1, overrides={pricing.rate_key(0, 0, 0): 5}),
                                   pricing.Discounts(1, overrides={pricing.rate_key(0, 0, c): 5 for c in
                                                                   range(1, pricing.OVERRIDES_MAX + 2)})])
def test_rules_out_of_range_are_not_encoded(rules):
    with pytest.raises(pricing.Refused):
        hub_price_list.discounts_body(1, rules)


def test_bounds_beside_the_codec():
    assert price_list.PRICE_MAX_CENTS == card.BALANCE_MAX_CENTS
    assert price_list.ENTRY_SIZE == 32 and price_list.CHUNK_HEAD_SIZE == 13
    items = [price_list.Item(c, "i%d" % c, 100) for c in range(1, price_list.ITEMS_MAX + 1)]
    bodies = hub_price_list.price_list_bodies(1, 1, items)
    assert len(bodies) == price_list.ITEMS_MAX // price_list.ITEMS_PER_CHUNK_MAX == 16
    assert all(len(b) == 13 + 32 * 256 for b in bodies)
    with pytest.raises(Malformed):
        hub_price_list.price_list_bodies(1, 1, items + [price_list.Item(5000, "one more", 1)])
    with pytest.raises(Malformed):
        hub_price_list.price_list_bodies(1, 1, [price_list.Item(2, "b", 1), price_list.Item(1, "a", 1)])
