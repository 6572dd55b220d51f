"""Posting rules: exact cents for every record kind, every transaction sums to zero."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import record as R
from protocol.card import TIER_GOLD, TIER_SILVER, TIER_STANDARD

from parkcard.domain import ledger

UID = b"\x01\x02\x03\x04"


def rec(kind, amount, balance_after=0, item=0, discount=0, card_no=42, deposit=0, version=R.RECORD_V2, ref_seq=0):
    return R.Record(kind, 7, 1, 0, card_no, UID, 2, amount, balance_after, item=item, discount_cents=discount,
                    deposit_cents=deposit, ref_seq=ref_seq, version=version)


def test_debit_pays_merchant_net_of_commission():
    entries = ledger.postings(rec(R.KIND_DEBIT, 1000, 4000), merchant_id=3, rate_bps=250)
    assert entries == [("card:42", -1000), ("merchant:3", 975), ("park:commission", 25)]


def test_commission_rounds_down_to_the_cent():
    entries = ledger.postings(rec(R.KIND_DEBIT, 999), merchant_id=3, rate_bps=250)
    assert dict(entries) == {"card:42": -999, "merchant:3": 975, "park:commission": 24}


def test_refund_reverses_a_debit():
    entries = ledger.postings(rec(R.KIND_REFUND, 1000, 5000), merchant_id=3, rate_bps=250)
    assert entries == [("card:42", 1000), ("merchant:3", -975), ("park:commission", -25)]


def test_zero_commission_merchant_has_no_commission_entry():
    assert ledger.postings(rec(R.KIND_DEBIT, 500), 1, 0) == [("card:42", -500), ("merchant:1", 500)]


@pytest.mark.parametrize("tier, cash, bonus", [(TIER_STANDARD, 5000, 0), (TIER_SILVER, 5000, 0),
                                               (TIER_GOLD, 5000, 500), (TIER_GOLD, 1999, 199)])
def test_topup_bonus_by_tier(tier, cash, bonus):
    assert ledger.bonus_cents(tier, cash) == bonus
    entries = ledger.postings(rec(R.KIND_TOPUP, cash + bonus, cash + bonus, discount=bonus), 1, 0)
    expected = {"desk:cash": -cash, "card:42": cash + bonus}
    if bonus:       # the bonus also lands in the card's bonus purse (SPEC.md §4.12)
        expected.update({"park:bonus": -bonus, "bonus:42": bonus, "park:bonus_purses": -bonus})
    assert dict(entries) == expected


def test_issue_takes_first_load_and_deposit():
    entries = ledger.postings(rec(R.KIND_ISSUE, 2200, 2200, item=7, deposit=500, discount=200), 1, 0)
    assert dict(entries) == {"desk:cash": -2500, "park:bonus": -200, "park:deposits": 500, "card:42": 2200,
                             "bonus:42": 200, "park:bonus_purses": -200}


def test_cashout_pays_balance_and_deposit():
    entries = ledger.postings(rec(R.KIND_CASHOUT, 1234, 0, item=7, deposit=500), 1, 0)
    assert dict(entries) == {"card:42": -1234, "park:deposits": -500, "desk:cash": 1734}


@pytest.mark.parametrize("kind", ledger.DEPOSIT_KINDS)
def test_a_version_1_deposit_kind_is_refused_and_its_item_is_never_money(kind):
    old = rec(kind, 1000, 0 if kind == R.KIND_CASHOUT else 1000, item=500, version=R.RECORD_VERSION)
    with pytest.raises(ledger.PostingError, match="deposit kinds need record version 2") as err:
        ledger.postings(old, 1, 0)
    assert err.value.reason == "record_unsupported"


def test_deposit_and_ref_seq_only_on_their_kinds():
    with pytest.raises(ledger.PostingError) as err:
        ledger.postings(rec(R.KIND_TOPUP, 1000, 1000, deposit=500), 1, 0)
    assert err.value.reason == "bad_amounts"
    with pytest.raises(ledger.PostingError) as err:
        ledger.postings(rec(R.KIND_DEBIT, 100, 0, ref_seq=3), 1, 0)
    assert err.value.reason == "bad_fields"


def test_transfer_goes_through_the_clearing_account():
    out = ledger.postings(rec(R.KIND_TRANSFER_OUT, 800, 0, card_no=1), 1, 0)
    into = ledger.postings(rec(R.KIND_TRANSFER_IN, 800, 800, card_no=2), 1, 0)
    assert out == [("card:1", -800), ("park:transfers", 800)]
    assert into == [("park:transfers", -800), ("card:2", 800)]


def test_lock_moves_no_value():
    assert ledger.postings(rec(R.KIND_LOCK, 0, 300), 1, 0) == []


@pytest.mark.parametrize("kind", R.KINDS)
@pytest.mark.parametrize("amount", [0, 1, 99, 12345, 8388607])
def test_every_kind_sums_to_zero(kind, amount):
    balance_after = 0 if kind == R.KIND_CASHOUT else amount
    entries = ledger.postings(rec(kind, amount, balance_after, deposit=300 if kind in ledger.DEPOSIT_KINDS else 0),
                              5, 333)
    assert sum(cents for _, cents in entries) == 0
    assert all(isinstance(cents, int) for _, cents in entries)


def test_card_delta_by_kind():
    assert ledger.card_delta(rec(R.KIND_DEBIT, 300)) == -300
    assert ledger.card_delta(rec(R.KIND_TOPUP, 300)) == 300
    assert ledger.card_delta(rec(R.KIND_LOCK, 300)) == 0


def test_bonus_over_amount_is_refused():
    with pytest.raises(ledger.PostingError) as err:
        ledger.postings(rec(R.KIND_TOPUP, 100, 100, discount=101), 1, 0)
    assert err.value.reason == "bad_amounts"


def test_cashout_must_empty_the_card():
    with pytest.raises(ledger.PostingError):
        ledger.postings(rec(R.KIND_CASHOUT, 100, 5), 1, 0)


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(kind=st.sampled_from(ledger.SALE_KINDS), amount=st.integers(0, 100_000), after=st.integers(0, 100_000),
       bonus_before=st.integers(0, 100_000), sale_bonus=st.integers(0, 100_000))
def test_a_sale_or_give_back_moves_the_bonus_purse_by_bonus_change_whatever_the_purse(kind, amount, after,
                                                                                       bonus_before, sale_bonus):
    record = rec(kind, amount, after)
    entries = dict(ledger.postings(record, 3, 250, bonus_before, 0, sale_bonus))
    change = ledger.bonus_change(record, bonus_before, sale_bonus)
    assert entries.get("bonus:42", 0) == change and entries.get("park:bonus_purses", 0) == -change
