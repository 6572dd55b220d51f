"""The front desk's posting rules: exact cents, every transaction sums to zero, bad amounts refused."""

import pytest

from parkcard.domain import ledger
from parkcard.domain import refund_rules as RR
from parkcard.domain.purses import Purse


def test_a_refund_takes_the_amount_off_the_card_keeps_the_fee_and_pays_the_rest():
    quote = RR.quote_refund(RR.RefundRules(fee_bps=250, fee_fixed_cents=100), Purse(5000, 500), 2000)
    assert ledger.refund_payout(42, quote.amount_cents, quote.fee_cents) == [
        ("card:42", -2000), ("park:refund_fees", 150), ("desk:cash", 1850)]
    assert ledger.refund_payout(42, 2000, 0) == [("card:42", -2000), ("desk:cash", 2000)]


def test_a_returned_cards_unspent_bonus_goes_back_to_the_park():
    assert ledger.bonus_forfeit(42, 300) == [("card:42", -300), ("park:bonus", 300)]
    assert ledger.bonus_forfeit(42, 0) == []


@pytest.mark.parametrize("make, message", [
    (lambda: ledger.refund_payout(42, 100, 101), "fee 101 over the amount 100"),
    (lambda: ledger.refund_payout(42, -1, 0), "amount_cents must be a whole number of at least 0, not -1"),
    (lambda: ledger.bonus_forfeit(42, 1.5), "bonus_cents must be a whole number of at least 0, not 1.5"),
    (lambda: ledger.late_debit_cover(42, -1, 0), "covered_cents"),
    (lambda: ledger.hold_release(42, 43, -1), "released_cents"),
    (lambda: ledger.cash_over_short(-1, 0), "expected_cents"),
])
def test_bad_amounts_are_refused_with_a_stable_reason(make, message):
    with pytest.raises(ledger.PostingError, match=message) as refused:
        make()
    assert refused.value.reason == "bad_amounts"
