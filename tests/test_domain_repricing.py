"""parkcard.domain.repricing: pairing a debit with its sale lines (SPEC.md §4.11) and pricing it again."""

import struct

from protocol import pricing, record as R, sale_line as SL
from protocol.price_list import Item

from parkcard.domain.repricing import lines_of, reprice

UID = b"\x04\x01\x02\x03"
ITEMS = {11: Item(11, "Cola", 350, category=2), 12: Item(12, "Cake", 1200)}
RULES = pricing.Discounts(4, [0, 0, 1000], [0, 0, 500])


def sale_and_lines(pay=1625, discount=275, counter=5, lines=((11, 2, 350, 70), (12, 1, 1200, 120)), seq=10):
    sale = R.Record(R.KIND_DEBIT, 3, seq, 1000, 77, UID, counter, pay, 5000, 11, discount)
    made = [SL.sale_line(sale, code, q, q * unit, off, 2, i, len(lines), 6, 4)
            for i, (code, q, unit, off) in enumerate(lines)]
    return sale, made


def test_lines_pair_with_the_debit_just_above_them():
    sale, lines = sale_and_lines()
    below = {line.seq: line for line in lines}
    assert [line.seq for line in lines] == [8, 9] and lines_of(sale, below) == lines
    assert lines_of(sale, {9: lines[1]}) is None                     # the basket is not whole
    other, _ = sale_and_lines(counter=6)
    assert lines_of(other, below) is None                            # lines of another write of the card
    assert lines_of(R.Record(R.KIND_DEBIT, 3, 11, 1000, 77, UID, 6, 100, 4900), below) is None   # no lines
    lines[0].quantity = 0
    assert lines_of(sale, below) is None                             # a line without a quantity


def test_the_same_versions_give_the_same_cents():
    sale, lines = sale_and_lines()
    got = reprice(sale, lines, ITEMS, False, RULES)
    assert (got.hub_pay_cents, got.hub_discount_cents, got.difference) == (1625, 275, None)
    assert (got.list_version, got.rules_version, got.tier) == (6, 4, 2)


def test_a_different_figure_is_a_difference_with_both_figures():
    sale, lines = sale_and_lines(pay=1600, discount=300)
    got = reprice(sale, lines, ITEMS, False, RULES)
    assert got.difference == ("term-3 seq 10: terminal charged 1600 cents with 300 off, list 6 and rules 4 give "
                              "1625 with 275 off")
    sale, lines = sale_and_lines(lines=((11, 2, 350, 60), (12, 1, 1200, 130)))    # same total, other split
    assert "line discounts [60, 130], list 6 and rules 4 give [70, 120]" in reprice(sale, lines, ITEMS, False,
                                                                                  RULES).difference


def test_an_item_the_list_version_does_not_hold_cannot_be_priced_again():
    sale, lines = sale_and_lines(lines=((13, 1, 500, 0),), pay=500, discount=0)
    got = reprice(sale, lines, ITEMS, False, RULES)
    assert got.hub_pay_cents is None and got.difference == "term-3 seq 10: item 13 is not in price list version 6"


def test_a_free_amount_line_is_priced_at_its_keyed_amount_where_the_list_allows_it():
    sale, lines = sale_and_lines(lines=((0, 1, 1000, 100),), pay=855, discount=145)
    assert reprice(sale, lines, ITEMS, True, RULES).difference is None
    assert reprice(sale, lines, ITEMS, False, RULES).difference == (
        "term-3 seq 10: the hub refuses the basket: this booth sells by item code only: key an item")


def test_rules_version_travels_in_the_card_mac_field():
    _sale, lines = sale_and_lines()
    assert lines[0].card_mac == struct.pack(">I", 4) and SL.line_fields(lines[0])[4] == 4
