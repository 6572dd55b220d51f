"""The park's refund rules: minimum, fee as percent + fixed rounded down, bonus never refunded, refusals in order."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkcard.domain import refund_rules as RR
from parkcard.domain.purses import Purse
from parkcard.domain.refund_rules import RefundQuote, RefundRefused, RefundRules, RefundRulesError, ReturnQuote

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)
RULES = RefundRules(minimum_cents=1000, fee_bps=250, fee_fixed_cents=100)     # 2.5 % + 1.00, at least 10.00


def test_a_refund_pays_the_amount_less_a_fee_of_fixed_plus_percent_rounded_down():
    quote = RR.quote_refund(RULES, Purse(5000, 800), 1999)
    assert quote == RefundQuote(1999, 100 + 49)                  # 2.5 % of 19.99 is 0.49975 -> 0.49
    assert quote.paid_cents == 1999 - 149


def test_no_rules_refund_everything_asked_up_to_the_cash():
    assert RR.quote_refund(RefundRules(), Purse(5000, 800), 5000).paid_cents == 5000


@pytest.mark.parametrize("purse, amount, reason, message", [
    (Purse(5000), 10.0, RR.NOT_WHOLE_CENTS, "whole number of cents"),
    (Purse(5000), "10", RR.NOT_WHOLE_CENTS, "whole number of cents"),
    (Purse(5000), 0, RR.NOT_POSITIVE, "positive amount"),
    (Purse(5000), -5, RR.NOT_POSITIVE, "positive amount"),
    (Purse(0, 800), 1000, RR.NOTHING_REFUNDABLE, "no refundable cash \\(bonus 800 cents is never refunded\\)"),
    (Purse(5000), 999, RR.BELOW_MINIMUM, "smallest refund is 1000 cents, not 999 cents: refund more, or return"),
    (Purse(5000, 800), 5001, RR.OVER_REFUNDABLE, "over the refundable 5000 cents .*refund at most 5000"),
    (Purse(500), 400, RR.BELOW_MINIMUM, "smallest refund"),          # the minimum is asked before the cash
])
def test_a_refund_the_rules_refuse_names_the_first_rule_broken(purse, amount, reason, message):
    with pytest.raises(RefundRefused, match=message) as refused:
        RR.quote_refund(RULES, purse, amount)
    assert refused.value.reason == reason


def test_a_fee_larger_than_the_refund_is_refused():
    rules = RefundRules(fee_fixed_cents=500)
    with pytest.raises(RefundRefused, match="fee of 500 cents is more than the 400 cents") as refused:
        RR.quote_refund(rules, Purse(1000), 400)
    assert refused.value.reason == RR.FEE_EXCEEDS_AMOUNT
    assert RR.quote_refund(rules, Purse(1000), 500).paid_cents == 0


def test_a_return_pays_cash_less_fee_and_the_deposit_and_gives_the_bonus_to_the_park():
    quote = RR.quote_return(RULES, Purse(450, 120), 2000)        # below the minimum: a return has none
    assert quote == ReturnQuote(balance_cents=450, fee_cents=100 + 11, deposit_cents=2000, bonus_to_park_cents=120)
    assert quote.paid_cents == 450 - 111 + 2000


def test_a_return_fee_never_takes_the_deposit():
    quote = RR.quote_return(RULES, Purse(40, 0), 2000)
    assert (quote.fee_cents, quote.paid_cents) == (40, 2000)
    assert RR.quote_return(RULES, Purse(0, 300), 2000) == ReturnQuote(0, 0, 2000, 300)
    with pytest.raises(RefundRefused, match="deposit is whole non-negative cents"):
        RR.quote_return(RULES, Purse(), -1)


@pytest.mark.parametrize("settings_, message", [
    (dict(minimum_cents=-1), "minimum refund"), (dict(minimum_cents=1.5), "minimum refund"),
    (dict(fee_bps=10001), "basis points .* from 0 to 10000"), (dict(fee_bps=-1), "basis points"),
    (dict(fee_fixed_cents=-1), "fixed refund fee"), (dict(fee_fixed_cents=True), "fixed refund fee"),
])
def test_bad_refund_rules_are_refused_with_what_is_allowed(settings_, message):
    with pytest.raises(RefundRulesError, match=message):
        RefundRules(**settings_)


@DETERMINISTIC
@given(st.integers(0, 20000), st.integers(0, 20000), st.integers(1, 30000), st.integers(0, 3000),
       st.integers(0, 10000), st.integers(0, 500))
def test_a_refund_never_pays_bonus_nor_more_than_the_cash(cash, bonus, amount, minimum, bps, fixed):
    rules, purse = RefundRules(minimum, bps, fixed), Purse(cash, bonus)
    try:
        quote = RR.quote_refund(rules, purse, amount)
    except RefundRefused as refused:
        assert refused.reason in (RR.NOTHING_REFUNDABLE, RR.BELOW_MINIMUM, RR.OVER_REFUNDABLE,
                                  RR.FEE_EXCEEDS_AMOUNT)
        return
    assert minimum <= quote.amount_cents <= cash
    assert 0 <= quote.fee_cents <= quote.amount_cents
    assert quote.fee_cents == fixed + amount * bps // 10000
    assert quote.paid_cents + quote.fee_cents == amount
    back = RR.quote_return(rules, purse, 0)
    assert back.paid_cents + back.fee_cents + back.bonus_to_park_cents == cash + bonus
