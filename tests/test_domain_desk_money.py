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
