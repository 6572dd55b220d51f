"""The bonus purse, the desk payout and the card return as postings: exact cents, every transaction sums to zero
(SPEC.md §4.12)."""

import pytest

from protocol import record as R

from parkcard.domain import ledger
from test_domain_ledger import rec


@pytest.mark.parametrize("bonus, kind, amount, after, change", [
    (500, R.KIND_DEBIT, 1000, 1500, 0),         # cash first: 1,500 left covers the 500 of bonus
    (500, R.KIND_DEBIT, 1000, 200, -300),       # the debit reached into the bonus: 200 of it is left
    (500, R.KIND_DEBIT, 700, 0, -500),
    (0, R.KIND_TOPUP, 2200, 2200, 200),         # a top-up's bonus (its discount) lands in the purse
    (300, R.KIND_CREDIT, 1000, 1400, 0),        # a credit is cash
    (500, R.KIND_PAYOUT, 400, 900, 0),          # a payout takes cash only
    (500, R.KIND_LOCK, 0, 100, 0),              # moves no value: the purse stays, even above the balance
])
def test_the_bonus_purse_is_spent_after_the_cash(bonus, kind, amount, after, change):
    discount = 200 if kind == R.KIND_TOPUP else 0
    record = rec(kind, amount, after, discount=discount)
    assert ledger.bonus_change(record, bonus) == change
    entries = dict(ledger.postings(record, 3, 0, bonus))
    assert (entries.get("bonus:42", 0), entries.get("park:bonus_purses", 0)) == (change, -change)
    assert sum(entries.values()) == 0


@pytest.mark.parametrize("kind", ledger.GIVE_BACK_KINDS)
@pytest.mark.parametrize("bonus, sale_bonus, amount, after, change", [
    (0, 600, 1000, 1000, 600),          # the sale spent 600 of bonus: that comes back first, 400 as cash
    (0, 600, 450, 450, 450),            # a partial give-back is bonus up to what the sale spent
    (200, 300, 800, 1200, 300),         # bonus left before: the purse grows by what the sale took of it
    (0, 0, 1000, 1000, 0),              # a sale paid in cash gives cash back
    (0, -50, 1000, 1000, 0),            # a purse entry the other way round gives no bonus back
])
def test_a_give_back_restores_the_bonus_its_sale_spent_first(kind, bonus, sale_bonus, amount, after, change):
    record = rec(kind, amount, after, item=1 if kind == R.KIND_REVERSAL else 0,
                 ref_seq=1 if kind == R.KIND_REFUND else 0)
    assert ledger.bonus_given_back(record, sale_bonus) == max(0, min(sale_bonus, amount))
    assert ledger.bonus_change(record, bonus, sale_bonus) == change
    entries = dict(ledger.postings(record, 3, 0, bonus, sale_bonus_cents=sale_bonus))
    assert (entries.get("bonus:42", 0), entries.get("park:bonus_purses", 0)) == (change, -change)
    assert entries["card:42"] == amount and sum(entries.values()) == 0


def test_a_sale_spending_bonus_then_given_back_leaves_no_more_cash_than_was_paid_in():
    # Gold top-up: 2,000 paid, 200 bonus. A 2,100 sale spends all the cash and 100 of the bonus; refunded whole,
    # the card holds 2,200 again, of which 200 bonus: a desk payout can reach 2,000 at most, as before the sale.
    top_up = rec(R.KIND_TOPUP, 2200, 2200, discount=200)
    sale = rec(R.KIND_DEBIT, 2100, 100)
    back = rec(R.KIND_REFUND, 2100, 2200, ref_seq=1)
    bonus = ledger.bonus_change(top_up, 0)
    spent = -ledger.bonus_change(sale, bonus)
    bonus += -spent
    bonus += ledger.bonus_change(back, bonus, spent)
    assert (spent, bonus) == (100, 200) and ledger.bonus_change(back, 100) == 0    # the old rule gave 2,100 as cash
    assert ledger.bonus_forfeited(rec(R.KIND_CASHOUT, 2200, 0), bonus) == 200
    assert ledger.bonus_change(rec(R.KIND_PAYOUT, 2000, 200), bonus) == 0


@pytest.mark.parametrize("kind", [R.KIND_DEBIT, R.KIND_TOPUP, R.KIND_PAYOUT])
def test_only_a_give_back_reads_its_sale_s_bonus(kind):
    record = rec(kind, 500, 500)
    assert ledger.bonus_given_back(record, 300) == 0
    assert ledger.bonus_change(record, 0, 300) == ledger.bonus_change(record, 0)


def test_a_credit_brings_its_bonus_part_within_its_amount():
    # A credit funded from a replaced card's hold carries the bonus it held (SPEC.md §8.1): bonus stays bonus.
    record = rec(R.KIND_CREDIT, 500, 500)
    assert ledger.bonus_given_back(record, 300) == 0
    assert (ledger.bonus_change(record, 0), ledger.bonus_change(record, 0, 300)) == (0, 300)
    assert ledger.bonus_change(record, 0, 900) == 500


def test_a_payout_pays_the_amount_less_the_fee_and_books_the_fee():
    entries = ledger.postings(rec(R.KIND_PAYOUT, 1000, 4000, discount=120), 1, 0, bonus_before_cents=500)
    assert dict(entries) == {"card:42": -1000, "park:refund_fees": 120, "desk:cash": 880}


def test_a_return_pays_cash_less_fee_and_the_deposit_and_gives_the_bonus_back_to_the_park():
    record = rec(R.KIND_CASHOUT, 3000, 0, discount=150, deposit=2000)
    assert dict(ledger.postings(record, 1, 0, bonus_before_cents=800)) == {
        "card:42": -3000, "park:deposits": -2000, "park:refund_fees": 150, "park:bonus": 800,
        "desk:cash": 3000 - 800 - 150 + 2000, "bonus:42": -800, "park:bonus_purses": 800}
    assert dict(ledger.postings(record, 1, 0)) == {      # no bonus: the whole balance less the fee is cash
        "card:42": -3000, "park:deposits": -2000, "park:refund_fees": 150, "desk:cash": 4850}


def test_a_purse_the_hub_holds_over_the_cash_out_forfeits_no_more_than_the_amount_less_the_fee():
    record = rec(R.KIND_CASHOUT, 1000, 0, discount=100)
    assert ledger.bonus_forfeited(record, 5000) == 900
    entries = dict(ledger.postings(record, 1, 0, bonus_before_cents=5000))
    assert "desk:cash" not in entries and entries["park:bonus"] == 900 and entries["bonus:42"] == -5000
    assert sum(entries.values()) == 0


@pytest.mark.parametrize("kind", [R.KIND_PAYOUT, R.KIND_CASHOUT])
def test_a_fee_over_the_amount_is_refused(kind):
    with pytest.raises(ledger.PostingError) as refused:
        ledger.postings(rec(kind, 100, 0, discount=101), 1, 0)
    assert refused.value.reason == "bad_amounts"
