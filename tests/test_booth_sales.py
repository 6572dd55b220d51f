"""Sales by item at a booth (roles/pos.py) on SimBoard: the vendor keys an item code and a quantity, the card's
tier prices it offline with the pushed rules (SPEC.md §7.3), the record carries the item and the discount.

The rig is tests/test_terminal_flow.py's (real RC522 driver on the virtual chip, real journal), with the
price list and rules the booth keeps in its data folder.
"""

import asyncio
from types import SimpleNamespace

import pytest

from conftest import REPO
from protocol import card, hub_price_list, price_list, pricing
from protocol.card import TIER_GOLD, TIER_STANDARD
from protocol.config import ROLE_POS
from protocol.record import KIND_DEBIT, KIND_SALE_LINE, Record
from protocol.sale_line import line_fields, sale_seq_of
from sim.cards import card_balance, issued_card
from sim.chip_server import ChipServer
from terminal import journal as jr
from test_firmware_micropython import NOW, PARK, parse
from test_terminal_flow import Terminal, balance_of, fast_loops, new_card  # noqa: F401 - fast_loops: autouse

MERCHANT = 4
COLA, CAKE, GONE = 11, 12, 13
SNACK = 2


def gold_rules():
    """Gold: 10 % on every sale and 5 % on the total; 20 % on snacks; standard: none."""
    rules = pricing.Discounts(7, [0, 0, 1000], [0, 0, 500])
    rules.set_override(TIER_GOLD, pricing.OVERRIDE_CATEGORY, SNACK, 2000)
    return rules


def booth(tmp_path, free_amount=False, rules=None):
    """A pos terminal holding a price list (Cola 3.50 snack, Cake 12.00, Gone not sold) and discount rules."""
    t = Terminal(tmp_path)
    sync = SimpleNamespace(handle=lambda *a: None, client=None, prices_versions=None, watch_config=lambda w: None,
                           unwatch_config=lambda w: None)
    t.app.runtime = SimpleNamespace(board=t.board, sync=sync)
    t.app._role = None
    t.role = t.app.role(ROLE_POS)
    listed = [price_list.Item(COLA, "Cola", 350, SNACK), price_list.Item(CAKE, "Cake", 1200),
              price_list.Item(GONE, "Gone", 100, active=False)]
    (body,) = hub_price_list.price_list_bodies(MERCHANT, 3, listed, price_list.LIST_FREE_AMOUNT if free_amount else 0)
    assert t.role.prices.take(price_list.parse_price_list(body))
    assert t.role.rules.take(hub_price_list.discounts_body(MERCHANT, rules or gold_rules()))
    return t


def last_record(t, seq):
    """The record of seq as the booth journalled it."""
    return Record.decode(dict((s, raw) for s, _status, raw in t.journal.unsynced(64))[seq])


def test_a_gold_card_buys_two_colas_with_its_discounts_offline(tmp_path):
    t = booth(tmp_path)
    vc = t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed("11C2#")
    result = asyncio.run(t.role.sale_once())
    # 2 x 3.50 = 7.00; snacks 20 %: 1.40 off; 5 % on the 5.60 left: 0.28 off; to pay 5.32.
    assert result.ok and result.amount_cents == 532 and balance_of(vc) == 10000 - 532
    record = last_record(t, result.seq)
    assert (record.item, record.amount_cents, record.discount_cents) == (COLA, 532, 168)
    assert t.journal.status(result.seq) == jr.COMMITTED
    assert ("Cola", "2 x 3.50") in t.display.history
    assert t.display.history[-3:] == [("Pay 7.00", "Tap card"), ("Cola 7.00", "Discount -1.68"),
                                      ("APPROVED 5.32", "#2 Bal 94.68")]


def test_a_standard_card_pays_the_list_price(tmp_path):
    t = booth(tmp_path)
    vc = t.tap(new_card(10000, tier=TIER_STANDARD))
    t.keypad.feed("12C#")
    result = asyncio.run(t.role.sale_once())
    assert result.ok and result.amount_cents == 1200 and balance_of(vc) == 8800
    record = last_record(t, result.seq)
    assert (record.item, record.discount_cents) == (CAKE, 0)
    assert t.display.history[-2:] == [("Pay 12.00", "Tap card"), ("APPROVED 12.00", "#2 Bal 88.00")]


@pytest.mark.parametrize("keys, screen", [
    ("99C*", ("No item 99", "Key again")),
    ("13C*", ("Gone", "Not sold")),
    ("500#", ("REFUSED", "Key item + C")),         # this merchant sells by item only
])
def test_what_cannot_be_sold_is_said_and_charges_nothing(tmp_path, keys, screen):
    t = booth(tmp_path)
    vc = t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed(keys + "*")
    assert asyncio.run(t.role.sale_once()) is None
    assert screen in t.display.history
    assert balance_of(vc) == 10000 and t.journal.last_seq() == 0


def test_a_keyed_amount_where_allowed_takes_the_tiers_rate_on_every_sale(tmp_path):
    t = booth(tmp_path, free_amount=True)
    vc = t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed("1000#")
    result = asyncio.run(t.role.sale_once())
    # 10.00: 10 % on every sale (no override for a keyed amount), then 5 % of 9.00.
    assert result.ok and result.amount_cents == 855 and balance_of(vc) == 10000 - 855
    assert (last_record(t, result.seq).item, last_record(t, result.seq).discount_cents) == (0, 145)


def test_a_booth_without_rules_sells_at_list_price(tmp_path):
    t = booth(tmp_path, rules=pricing.Discounts(1))
    t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed("11C3#")
    result = asyncio.run(t.role.sale_once())
    assert result.ok and result.amount_cents == 1050 and last_record(t, result.seq).discount_cents == 0


@pytest.mark.micropython
def test_a_sale_by_item_with_a_2000_item_list_needs_under_32_kb_above_idle(micropython, tmp_path):
    gold = issued_card(PARK, b"\x04\x11\x22\x33\x44\x55\x66", card.CardInfo(43, tier=TIER_GOLD, perms=0xFFFF),
                       500000, NOW)
    with ChipServer([gold]) as chip:
        proc = micropython(REPO / "tests" / "mpy" / "booth_sale_check.py", tmp_path, chip.port, 2000, 10,
                           heap="256k", timeout=300)
        slot = card_balance(PARK, chip.cards[0])
    got = parse(proc.stdout)
    assert got["sales_ok"] == "10", proc.stdout
    assert int(got["discounted"]) > 0 and slot.balance_cents == 500000 - int(got["paid"]) - 100
    assert 0 < int(got["heap_peak_above_idle"]) < 32 * 1024
    # The offline limit refuses once the unacknowledged sales reach it, and serves again once acknowledged.
    assert got["offline_limit"] == "offline_limit,offline_limit,ok"


def test_a_sale_a_tier_gets_free_takes_nothing_off_the_card(tmp_path):
    free = pricing.Discounts(2, [0, 0, pricing.RATE_BP_MAX])
    t = booth(tmp_path, rules=free)
    vc = t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed("12C#")
    result = asyncio.run(t.role.sale_once())
    assert not result.ok and result.reason == "bad_amount" and ("REFUSED", "Bad amount") in t.display.history
    assert balance_of(vc) == 10000 and t.journal.last_seq() == 0


def journalled(t):
    """Every record the booth journalled, in seq order, with its status."""
    return [(Record.decode(raw), status) for _seq, status, raw in t.journal.unsynced(64)]


def test_a_basket_is_one_debit_with_its_lines_journalled_before_it(tmp_path):
    t = booth(tmp_path)
    vc = t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed("11C2B12C#")
    result = asyncio.run(t.role.sale_once())
    # Cola 2 x 3.50 = 7.00, snack 20 %: 1.40; Cake 12.00, 10 %: 1.20; 5 % on the 16.40 left: 0.82 (floor of 0.82).
    assert result.ok and result.amount_cents == 1900 - 140 - 120 - 82 and balance_of(vc) == 10000 - 1558
    (first, s1), (second, s2), (sale, s3) = journalled(t)
    assert (s1, s2, s3) == (jr.COMMITTED, jr.COMMITTED, jr.COMMITTED)
    assert sale.kind == KIND_DEBIT and sale.seq == result.seq == 3 and sale.discount_cents == 342
    assert [(r.kind, r.seq, r.item, r.quantity, r.amount_cents, r.discount_cents) for r in (first, second)] == [
        (KIND_SALE_LINE, 1, COLA, 2, 700, 140), (KIND_SALE_LINE, 2, CAKE, 1, 1200, 120)]
    assert line_fields(first) == (TIER_GOLD, 0, 2, 3, 7) and line_fields(second) == (TIER_GOLD, 1, 2, 3, 7)
    assert sale_seq_of(first) == sale_seq_of(second) == sale.seq
    assert first.card_counter == second.card_counter == sale.card_counter and first.card_no == sale.card_no
    assert ("Basket 7.00", "1/8 next, # pay") in t.display.history
    assert t.display.history[-3:] == [("Pay 19.00", "Tap card"), ("Basket 19.00", "Discount -3.42"),
                                      ("APPROVED 15.58", "#3 Bal 84.42")]


def test_a_single_item_sale_carries_its_line_and_versions(tmp_path):
    t = booth(tmp_path)
    t.tap(new_card(10000, tier=TIER_STANDARD))
    t.keypad.feed("12C3#")
    result = asyncio.run(t.role.sale_once())
    (line, _), (sale, _) = journalled(t)
    assert (line.kind, line.item, line.quantity, line.amount_cents, line.discount_cents) == (
        KIND_SALE_LINE, CAKE, 3, 3600, 0)
    assert line_fields(line) == (TIER_STANDARD, 0, 1, 3, 7) and sale_seq_of(line) == sale.seq == result.seq


def test_clearing_an_empty_entry_drops_the_whole_basket(tmp_path):
    t = booth(tmp_path)
    vc = t.tap(new_card(10000, tier=TIER_GOLD))
    t.keypad.feed("11C2B**")
    assert asyncio.run(t.role.sale_once()) is None
    assert balance_of(vc) == 10000 and t.journal.last_seq() == 0


def test_a_basket_holds_at_most_eight_lines(tmp_path):
    t = booth(tmp_path)
    t.tap(new_card(100000, tier=TIER_STANDARD))
    t.keypad.feed("11CB" * 9 + "#")
    result = asyncio.run(t.role.sale_once())
    records = journalled(t)
    assert result.ok and result.amount_cents == 8 * 350 and len(records) == 9 and records[-1][0].seq == result.seq
