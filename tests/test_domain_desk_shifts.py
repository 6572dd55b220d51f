"""Cashier shift arithmetic: float, operations by payment method, the close's over/short and the Z report."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parkcard.domain import ledger
from parkcard.domain import refund_rules as RR
from parkcard.domain import shifts as S
from parkcard.domain.purses import Purse
from parkcard.domain.shifts import DeskOp, MethodTotal, ShiftError

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=200)


def _day():
    shift = S.open_shift(17, 20000)
    for op in (DeskOp(S.ISSUE, S.CASH, load_cents=5000, bonus_cents=500, deposit_in_cents=2000),
               DeskOp(S.ISSUE, "wechat", load_cents=10000, deposit_in_cents=2000),
               DeskOp(S.TOP_UP, S.CASH, load_cents=3000, bonus_cents=300),
               DeskOp(S.TOP_UP, "card", load_cents=7000),
               DeskOp(S.TOP_UP, S.CASH, load_cents=1000),
               S.refund_op(S.CASH, RR.quote_refund(RR.RefundRules(fee_fixed_cents=100), Purse(4000), 1500)),
               S.return_op(S.CASH, RR.quote_return(RR.RefundRules(fee_fixed_cents=100), Purse(800, 250), 2000))):
        shift = S.record(shift, op)
    return shift


def test_cash_expected_is_float_plus_cash_in_less_cash_out_and_other_methods_leave_the_drawer():
    shift = _day()
    cash_in = 5000 + 2000 + 3000 + 1000
    cash_out = (1500 - 100) + (800 - 100 + 2000)
    assert shift.cash_expected_cents == 20000 + cash_in - cash_out == 26900


def test_the_z_report_has_every_figure_from_the_operations():
    report = S.close_shift(_day(), counted_cents=26850)
    assert report.shift_number == 17 and report.float_cents == 20000
    assert report.issues == 2
    assert report.issue_loads == (("cash", MethodTotal(1, 5000)), ("wechat", MethodTotal(1, 10000)))
    assert report.top_ups == (("card", MethodTotal(1, 7000)), ("cash", MethodTotal(2, 4000)))
    assert report.bonus_given_cents == 800
    assert (report.refunds, report.refunds_paid_cents) == (1, 1400)
    assert (report.returns, report.returns_paid_cents) == (1, 700)
    assert report.fees_cents == 200 and report.bonus_back_cents == 250
    assert (report.deposits_in_cents, report.deposits_out_cents) == (4000, 2000)
    assert (report.cash_expected_cents, report.cash_counted_cents) == (26900, 26850)
    assert report.difference_cents == -50                                            # short
    assert S.close_shift(_day(), 26900).difference_cents == 0
    assert S.close_shift(_day(), 27000).difference_cents == 100                      # over


def test_over_short_posts_the_difference_against_the_desks_cash():
    assert ledger.cash_over_short(26900, 26850) == [("desk:cash", 50), ("desk:over_short", -50)]
    assert ledger.cash_over_short(26900, 27000) == [("desk:cash", -100), ("desk:over_short", 100)]
    assert ledger.cash_over_short(26900, 26900) == []


def test_a_shift_does_not_close_while_an_operation_is_pending():
    with pytest.raises(ShiftError, match="1 operation\\(s\\) of shift 17 are pending: finish them"):
        S.close_shift(_day(), 26900, pending_ops=1)


def test_a_cash_payout_beyond_the_drawer_is_refused():
    shift = S.open_shift(1, 500)
    with pytest.raises(ShiftError, match="the drawer holds 500 cents, not the 600 cents to pay out"):
        S.record(shift, DeskOp(S.REFUND, S.CASH, paid_out_cents=600))
    assert S.record(shift, DeskOp(S.REFUND, "wechat", paid_out_cents=600)).cash_expected_cents == 500


@pytest.mark.parametrize("make, message", [
    (lambda: DeskOp("sale", S.CASH), "not a desk operation"),
    (lambda: DeskOp(S.TOP_UP, " "), "needs a payment method"),
    (lambda: DeskOp(S.TOP_UP, S.CASH), "top-up loads a positive amount"),
    (lambda: DeskOp(S.TOP_UP, S.CASH, load_cents=-1), "load_cents must be a whole number of at least 0, not -1"),
    (lambda: DeskOp(S.TOP_UP, S.CASH, load_cents=1.5), "load_cents must be a whole number of at least 0, not 1.5"),
    (lambda: DeskOp(S.ISSUE, S.CASH, load_cents=100, paid_out_cents=1), "moves money one way only"),
    (lambda: DeskOp(S.RETURN, S.CASH, deposit_in_cents=1), "moves money one way only"),
    (lambda: DeskOp(S.REFUND, S.CASH, paid_out_cents=5, deposit_out_cents=1), "cash balance only"),
    (lambda: S.open_shift(0, 100), "a shift number must be a whole number of at least 1, not 0"),
    (lambda: S.open_shift(1, -1), "the float \\(cents\\) must be a whole number"),
    (lambda: S.record(S.open_shift(1, 0), ("top_up", 5)), "records DeskOp values"),
    (lambda: S.close_shift(S.open_shift(1, 0), -3), "the counted cash \\(cents\\) must be a whole number"),
])
def test_bad_shift_input_is_refused_with_what_to_do(make, message):
    with pytest.raises(ShiftError, match=message):
        make()


_OP = st.one_of(
    st.builds(lambda m, load, bonus, dep: DeskOp(S.ISSUE, m, load_cents=load, bonus_cents=bonus, deposit_in_cents=dep),
              st.sampled_from([S.CASH, "card"]), st.integers(0, 9000), st.integers(0, 900), st.integers(0, 2000)),
    st.builds(lambda m, load, bonus: DeskOp(S.TOP_UP, m, load_cents=load, bonus_cents=bonus),
              st.sampled_from([S.CASH, "card"]), st.integers(1, 9000), st.integers(0, 900)),
    st.builds(lambda m, paid, fee: DeskOp(S.REFUND, m, paid_out_cents=paid, fee_cents=fee),
              st.sampled_from([S.CASH, "card"]), st.integers(0, 9000), st.integers(0, 200)),
    st.builds(lambda m, paid, dep, back: DeskOp(S.RETURN, m, paid_out_cents=paid, deposit_out_cents=dep,
                                                bonus_back_cents=back),
              st.sampled_from([S.CASH, "card"]), st.integers(0, 9000), st.integers(0, 2000), st.integers(0, 900)))


@DETERMINISTIC
@given(st.integers(0, 50000), st.lists(_OP, max_size=30), st.integers(-3000, 3000))
def test_the_drawer_never_goes_negative_and_the_report_adds_up(float_cents, ops, miscount):
    shift = S.open_shift(3, float_cents)
    for op in ops:
        try:
            shift = S.record(shift, op)
        except ShiftError:
            assert op.method == S.CASH and op.paid_cents > shift.cash_expected_cents
        assert shift.cash_expected_cents >= 0
    counted = max(0, shift.cash_expected_cents + miscount)
    report = S.close_shift(shift, counted)
    cash = [op for op in shift.ops if op.method == S.CASH]
    assert report.cash_expected_cents == float_cents + sum(o.received_cents - o.paid_cents for o in cash)
    loads = sum(t.cents for _, t in report.issue_loads + report.top_ups)
    assert loads + report.deposits_in_cents == sum(o.received_cents for o in shift.ops)
    assert report.refunds_paid_cents + report.returns_paid_cents + report.deposits_out_cents == sum(
        o.paid_cents for o in shift.ops)
    assert sum(dict(ledger.cash_over_short(report.cash_expected_cents, counted)).values()) == 0
    assert dict(ledger.cash_over_short(report.cash_expected_cents, counted)).get(
        "desk:over_short", 0) == report.difference_cents
