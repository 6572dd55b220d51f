"""Loss and replacement with offline terminals: a hold for late debits, losses beyond it, release; no value made
or lost."""

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import record as R
from protocol.card import SECONDS_PER_DAY

from parkcard.domain import ledger
from parkcard.domain import replacement as RP
from parkcard.domain.replacement import ReplacementError, ReplacementSettings

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)
OLD, NEW, MERCHANT, RATE_BPS = 100001, 100002, 3, 250
DAY = SECONDS_PER_DAY
NOON = 20000 * DAY + DAY // 2                  # a report at 12:00 UTC
PARK = ReplacementSettings(offline_window_s=DAY, daily_cap_cents=20000)


def test_the_hold_is_the_daily_cap_times_the_days_unsent_spending_may_lie_in():
    # a terminal last seen at 08:00 today can serve until 08:00 tomorrow; offline spending fits today and tomorrow
    assert RP.hold_cents(PARK, 100000, NOON, NOON - 4 * 3600) == 2 * 20000
    # one last seen yesterday 23:00 adds yesterday
    assert RP.hold_cents(PARK, 100000, NOON, NOON - 13 * 3600) == 3 * 20000
    assert RP.hold_cents(PARK, 30000, NOON, NOON - 4 * 3600) == 30000           # never more than the balance


def test_no_lagging_terminal_means_no_hold_and_no_daily_cap_means_the_whole_balance():
    assert RP.hold_cents(PARK, 100000, NOON, None) == 0
    no_cap = ReplacementSettings(offline_window_s=DAY, daily_cap_cents=0)
    assert RP.hold_cents(no_cap, 100000, NOON, NOON - 60) == 100000
    moved = RP.replace(PARK, OLD, NEW, 5000, NOON, None)
    assert (moved.moved_cents, moved.hold_cents, moved.released) == (5000, 0, True)


def test_late_debits_come_off_the_hold_then_are_a_loss_with_an_alarm():
    rep = RP.replace(PARK, OLD, NEW, 30000, NOON, NOON - 3600)
    assert (rep.hold_cents, rep.moved_cents, rep.release_at_s) == (30000, 0, NOON + DAY)
    rep, first = RP.settle_late_debit(rep, 25000)
    assert (first.covered_cents, first.loss_cents, first.alarm) == (25000, 0, False)
    rep, second = RP.settle_late_debit(rep, 8000)
    assert (second.covered_cents, second.loss_cents, second.alarm) == (5000, 3000, True)
    assert (rep.hold_left_cents, rep.covered_cents, rep.loss_cents) == (0, 30000, 3000)


def test_the_rest_of_the_hold_is_released_once_no_terminal_lags_or_the_window_is_over():
    rep = RP.replace(PARK, OLD, NEW, 50000, NOON, NOON - 3600)
    rep, _ = RP.settle_late_debit(rep, 1200)
    assert not RP.release_due(rep, NOON + DAY - 1, lagging_terminals=2)
    with pytest.raises(ReplacementError, match="2 terminal\\(s\\) may still hold debits of card 100001"):
        RP.release(rep, NOON + DAY - 1, 2)
    early, released = RP.release(rep, NOON + 60, 0)
    assert released == 40000 - 1200 and early.hold_left_cents == 0
    late, released = RP.release(rep, NOON + DAY, 2)
    assert released == 38800
    with pytest.raises(ReplacementError, match="already released"):
        RP.release(late, NOON + 2 * DAY, 0)
    # a record arriving after the release is still a fact: all of it a loss
    late, after = RP.settle_late_debit(late, 700)
    assert (after.covered_cents, after.loss_cents, after.alarm) == (0, 700, True)


@pytest.mark.parametrize("make, message", [
    (lambda: ReplacementSettings(offline_window_s=0, daily_cap_cents=1), "offline window"),
    (lambda: ReplacementSettings(offline_window_s=DAY, daily_cap_cents=-1), "daily cap"),
    (lambda: ReplacementSettings(offline_window_s=DAY, daily_cap_cents=1, release_after_s=DAY - 1),
     "release after at least the offline window"),
    (lambda: RP.replace(PARK, OLD, OLD, 100, NOON, None), "cannot replace itself"),
    (lambda: RP.replace(PARK, OLD, NEW, -1, NOON, None), "the balance"),
    (lambda: RP.replace(PARK, OLD, NEW, 100, NOON, NOON + 1), "after the report"),
    (lambda: RP.settle_late_debit(RP.replace(PARK, OLD, NEW, 100, NOON, None), 1.5), "late debit"),
])
def test_bad_replacement_input_is_refused(make, message):
    with pytest.raises(ReplacementError, match=message):
        make()


def test_the_replacement_postings_balance():
    assert ledger.replacement_move(OLD, NEW, 30000, 12000) == [("card:100001", -30000), ("hold:100001", 12000),
                                                               ("card:100002", 18000)]
    assert ledger.late_debit_cover(OLD, 500, 200) == [("hold:100001", -500), ("park:losses", -200),
                                                      ("card:100001", 700)]
    assert ledger.hold_release(OLD, NEW, 11500) == [("hold:100001", -11500), ("card:100002", 11500)]
    with pytest.raises(ledger.PostingError, match="hold 2 over the balance 1"):
        ledger.replacement_move(OLD, NEW, 1, 2)


@pytest.mark.parametrize("bonus, moved, taken", [(500, 5000, 500), (500, 300, 300), (0, 5000, 0), (-20, 100, 0)])
def test_the_lost_card_s_bonus_goes_with_the_balance_moved_up_to_it(bonus, moved, taken):
    assert ledger.bonus_moved(bonus, moved) == taken
    assert ledger.replacement_bonus(OLD, NEW, taken) == ([("bonus:100001", -taken), ("bonus:100002", taken)]
                                                         if taken else [])


def _late_debit(amount, seq):
    """A booth's DEBIT record of the old card, uploaded after the report."""
    return R.Record(R.KIND_DEBIT, 9, seq, NOON, OLD, b"\x01\x02\x03\x04", seq, amount, 0, version=R.RECORD_V2)


def _replaced_books(balance, lag_s, cap):
    """(books, post, replacement): the ledger as a Counter from the old card's account at report time, post(entries)
    adding one balanced transaction to it, and the replacement with its move posted."""
    books = collections.Counter({"card:%d" % OLD: balance})

    def post(entries):
        assert sum(cents for _, cents in entries) == 0
        books.update(dict(entries))
    settings_ = ReplacementSettings(offline_window_s=DAY, daily_cap_cents=cap)
    rep = RP.replace(settings_, OLD, NEW, balance, NOON, None if lag_s is None else NOON - lag_s)
    post(ledger.replacement_move(OLD, NEW, balance, rep.hold_cents))
    return books, post, rep


@DETERMINISTIC
@given(st.integers(0, 80000), st.one_of(st.none(), st.integers(1, 3 * DAY)), st.integers(0, 50000),
       st.lists(st.integers(1, 15000), max_size=25), st.integers(0, 25))
def test_late_debit_sequences_never_create_or_lose_money(balance, lag_s, cap, debits, release_after):
    books, post, rep = _replaced_books(balance, lag_s, cap)
    late_total = 0
    for index, amount in enumerate(debits, 1):
        if index == release_after and not rep.released:
            rep, released = RP.release(rep, rep.release_at_s, 1)
            post(ledger.hold_release(OLD, NEW, released))
        post(ledger.postings(_late_debit(amount, index), MERCHANT, RATE_BPS))
        rep, settled = RP.settle_late_debit(rep, amount)
        post(ledger.late_debit_cover(OLD, settled.covered_cents, settled.loss_cents))
        late_total += amount
        assert books["card:%d" % OLD] == 0                       # the old card is settled after every record
        assert settled.alarm == (settled.loss_cents > 0)
        assert settled.covered_cents + settled.loss_cents == amount
    if not rep.released:
        rep, released = RP.release(rep, rep.release_at_s, 1)
        post(ledger.hold_release(OLD, NEW, released))
    held = books["hold:%d" % OLD]
    merchants = books["merchant:%d" % MERCHANT] + books["park:commission"]
    assert held == rep.hold_left_cents == 0
    assert merchants == late_total
    # old card + new card + hold + what late debits paid out - the park's loss == the balance at report
    assert books["card:%d" % OLD] + books["card:%d" % NEW] + held + merchants + books["park:losses"] == balance
    assert rep.moved_cents + rep.released_cents + rep.hold_left_cents + rep.covered_cents == balance
    assert rep.covered_cents + rep.loss_cents == late_total
    assert -books["park:losses"] == rep.loss_cents
    assert books["card:%d" % NEW] == balance - rep.covered_cents


def test_a_late_credit_makes_the_losses_good_first_then_goes_into_the_hold_for_the_new_card():
    rep = RP.replace(PARK, OLD, NEW, 30000, NOON, NOON - 3600)
    rep, _ = RP.settle_late_debit(rep, 33000)               # 30,000 covered, 3,000 the park's loss
    rep, back, now = RP.settle_late_credit(rep, 5000)       # a booth gives 5,000 of it back onto the old card
    assert (back.covered_cents, back.loss_cents, back.alarm, now) == (-2000, -3000, False, 0)
    assert (rep.hold_left_cents, rep.loss_cents) == (2000, 0)
    rep, released = RP.release(rep, NOON + 60, 0)
    assert released == 2000                                 # with the hold, onto the new card
    rep, after, now = RP.settle_late_credit(rep, 700)       # after the release: to the new card at once
    assert (after.covered_cents, after.loss_cents, now) == (-700, 0, 700)
    assert (rep.hold_left_cents, rep.released_cents) == (0, 2700)
    assert ledger.late_settlement(OLD, -2000, -3000) == [("hold:100001", 2000), ("park:losses", 3000),
                                                         ("card:100001", -5000)]
    assert ledger.late_settlement(OLD, 500, 200) == ledger.late_debit_cover(OLD, 500, 200)
    with pytest.raises(ReplacementError, match="late credit"):
        RP.settle_late_credit(rep, -1)
    with pytest.raises(ledger.PostingError):
        ledger.late_settlement(OLD, -5, 3)                  # a settlement is a debit's or a credit's, not both


def _late_refund(amount, seq):
    """A booth's REFUND record onto the old card, uploaded after the report."""
    return R.Record(R.KIND_REFUND, 9, seq, NOON, OLD, b"\x01\x02\x03\x04", seq, amount, 0, ref_seq=seq - 1,
                    version=R.RECORD_V2)


@DETERMINISTIC
@given(st.integers(0, 80000), st.one_of(st.none(), st.integers(1, 3 * DAY)), st.integers(0, 50000),
       st.lists(st.tuples(st.integers(1, 15000), st.integers(0, 100)), max_size=25), st.integers(0, 25))
def test_late_debits_and_give_backs_never_create_or_lose_money(balance, lag_s, cap, sales, release_after):
    """Each late sale is given back by refund_pct % of it right after it; the new card ends with the balance less
    what the old card spent for good, the park's loss is what went beyond the hold and was not given back."""
    books, post, rep = _replaced_books(balance, lag_s, cap)
    spent = 0
    for index, (amount, refund_pct) in enumerate(sales, 1):
        if index == release_after and not rep.released:
            rep, released = RP.release(rep, rep.release_at_s, 1)
            post(ledger.hold_release(OLD, NEW, released))
        post(ledger.postings(_late_debit(amount, 2 * index), MERCHANT, RATE_BPS))
        rep, settled = RP.settle_late_debit(rep, amount)
        post(ledger.late_settlement(OLD, settled.covered_cents, settled.loss_cents))
        back = amount * refund_pct // 100
        if back:
            post(ledger.postings(_late_refund(back, 2 * index + 1), MERCHANT, RATE_BPS))
            rep, settled, now = RP.settle_late_credit(rep, back)
            post(ledger.late_settlement(OLD, settled.covered_cents, settled.loss_cents))
            post(ledger.hold_release(OLD, NEW, now))        # a pending credit of the new card, in these books
            assert settled.covered_cents + settled.loss_cents == -back and not settled.alarm
        spent += amount - back
        assert books["card:%d" % OLD] == 0
        assert rep.hold_left_cents >= 0 and rep.loss_cents >= 0
    if not rep.released:
        rep, released = RP.release(rep, rep.release_at_s, 1)
        post(ledger.hold_release(OLD, NEW, released))
    held = books["hold:%d" % OLD]
    merchants = books["merchant:%d" % MERCHANT] + books["park:commission"]
    assert held == rep.hold_left_cents == 0 and merchants == spent
    assert books["card:%d" % OLD] + books["card:%d" % NEW] + held + merchants + books["park:losses"] == balance
    assert rep.moved_cents + rep.released_cents + rep.covered_cents == balance
    assert books["card:%d" % NEW] == balance - rep.covered_cents and -books["park:losses"] == rep.loss_cents
    assert rep.covered_cents + rep.loss_cents == spent
