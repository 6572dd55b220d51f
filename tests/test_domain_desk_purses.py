"""A card's cash and bonus purses: cash spent first, cash + bonus == balance, never negative, bonus never refunded."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.card import BALANCE_MAX_CENTS

from parkcard.domain import purses
from parkcard.domain.purses import Purse, PurseError, Split

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def test_a_debit_takes_cash_first_then_bonus():
    purse = Purse(cash_cents=1000, bonus_cents=100)
    assert purses.split_debit(purse, 600) == Split(600, 0)
    assert purses.split_debit(purse, 1000) == Split(1000, 0)
    assert purses.split_debit(purse, 1050) == Split(1000, 50)
    assert purses.debit(purse, 1050) == Purse(0, 50)
    assert purses.debit(purse, 1100) == Purse(0, 0)


def test_a_top_up_adds_the_cash_and_the_bonus_each_to_its_purse():
    assert purses.top_up(Purse(200, 30), 1000, 100) == Purse(1200, 130)


def test_a_refund_pays_back_cash_only():
    purse = Purse(300, 100)
    assert purses.refundable_cents(purse) == 300
    assert purses.refund(purse, 300) == Purse(0, 100)
    with pytest.raises(PurseError, match="over the refundable 300 cents \\(bonus is never refunded\\)"):
        purses.refund(purse, 301)


def test_a_return_pays_the_cash_and_gives_the_bonus_back_to_the_park():
    closing = purses.close(Purse(300, 100))
    assert (closing.paid_out_cents, closing.bonus_to_park_cents) == (300, 100)


@pytest.mark.parametrize("make, message", [
    (lambda: Purse(-1, 0), "the cash purse \\(cents\\) must be a whole number of at least 0, not -1"),
    (lambda: Purse(0, -1), "the bonus purse \\(cents\\) must be a whole number of at least 0, not -1"),
    (lambda: Purse(1.5, 0), "cash purse \\(cents\\) must be a whole number"),
    (lambda: Purse(BALANCE_MAX_CENTS, 1), "a card holds at most"),
    (lambda: purses.split_debit(Purse(10, 5), 16), "debit of 16 cents is over the balance of 15"),
    (lambda: purses.debit(Purse(10, 5), -1), "a debit \\(cents\\) must be a whole number of at least 0"),
    (lambda: purses.top_up(Purse(), 100, -1), "the bonus \\(cents\\) must be a whole number of at least 0"),
    (lambda: purses.top_up(Purse(), True, 0), "the cash paid \\(cents\\) must be a whole number"),
    (lambda: purses.refund(Purse(10), -1), "a refund \\(cents\\) must be a whole number of at least 0"),
])
def test_a_bad_amount_is_refused(make, message):
    with pytest.raises(PurseError, match=message):
        make()


_STEP = st.one_of(st.tuples(st.just("top_up"), st.integers(0, 20000), st.integers(0, 2000)),
                  st.tuples(st.just("debit"), st.integers(0, 30000)),
                  st.tuples(st.just("refund"), st.integers(0, 30000)))


@DETERMINISTIC
@given(st.lists(_STEP, max_size=40))
def test_purses_always_sum_to_the_balance_and_never_refund_bonus(steps):
    purse, balance, cash_in, bonus_in, refunded, bonus_spent = Purse(), 0, 0, 0, 0, 0
    for step in steps:
        kind, amount = step[0], step[1]
        if kind == "top_up":
            if balance + amount + step[2] > BALANCE_MAX_CENTS:
                continue
            purse = purses.top_up(purse, amount, step[2])
            balance += amount + step[2]
            cash_in += amount
            bonus_in += step[2]
        elif kind == "debit":
            if amount > balance:
                with pytest.raises(PurseError):
                    purses.debit(purse, amount)
                continue
            part = purses.split_debit(purse, amount)
            # cash first: bonus is touched only once the cash is gone
            assert part.bonus_cents == 0 or part.cash_cents == purse.cash_cents
            bonus_spent += part.bonus_cents
            purse = purses.debit(purse, amount)
            balance -= amount
        else:
            if amount > purse.cash_cents:
                with pytest.raises(PurseError):
                    purses.refund(purse, amount)
                continue
            purse = purses.refund(purse, amount)
            balance -= amount
            refunded += amount
        assert purse.cash_cents + purse.bonus_cents == purse.balance_cents == balance
        assert purse.cash_cents >= 0 and purse.bonus_cents >= 0
        assert refunded <= cash_in
        assert purse.bonus_cents == bonus_in - bonus_spent      # bonus leaves only by being spent
    closing = purses.close(purse)
    assert closing.paid_out_cents + closing.bonus_to_park_cents == balance
    assert refunded + closing.paid_out_cents <= cash_in


def test_a_replaced_card_s_purse_is_its_hold_s_spent_cash_first():
    # A hold of 1,000 with 300 of bonus: 700 of cash go first, then the bonus.
    assert purses.held_bonus(300, 1000 - 600) == 300
    assert purses.held_bonus(300, 1000 - 800) == 200
    assert purses.held_bonus(200, 0) == 0               # the late debits used the whole hold up: its bonus is spent
    # Given back, a late sale brings back the bonus it spent, up to the amount, less what its record restored.
    assert purses.held_bonus(0, 200, 200, spent_cents=200) == 200
    assert purses.held_bonus(0, 700, 700) == 0           # a sale of the hold's cash comes back as cash
    assert purses.held_bonus(50, 300, 300, spent_cents=200, restored_cents=50) == 200
    assert purses.held_bonus(0, 100, 300, spent_cents=200) == 100     # never more than the hold holds


@DETERMINISTIC
@given(st.integers(0, 5000), st.integers(0, 5000), st.lists(st.integers(1, 2000), max_size=8))
def test_late_debits_spend_a_hold_as_a_purse_spends_cash_first(cash, bonus, debits):
    purse, held, held_bonus = Purse(cash, bonus), cash + bonus, bonus
    for amount in debits:
        taken = min(amount, held)       # beyond the hold a debit is the park's loss
        held -= taken
        purse = purses.debit(purse, taken)
        held_bonus = purses.held_bonus(held_bonus, held)
        assert held_bonus == purse.bonus_cents
