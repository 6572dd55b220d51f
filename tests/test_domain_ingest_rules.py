"""The ingest rules on their own (parkcard.domain.ingest_rules): no broker, no database.

FakeView is the rules' own port (IngestView) over dicts: what the store's
write transaction answers, given as data.
"""

import pytest

from protocol import frames
from protocol import record as R

from parkcard.domain import ingest_rules as rules
from parkcard.domain.lifecycle import QuarantineReason, RecordStatus, UncertainOutcome

KEY = bytes(range(32))
CARD_NO = 100001
UID = b"\x04\x01\x02\x03"
BOOTH, OTHER_BOOTH = 5, 6


class FakeView:
    """IngestView over dicts: stored records, counter claims and refund claims."""

    def __init__(self, claims=None, records=None, refunds=None):
        self.claims = dict(claims or {})        # counter -> (terminal_id, seq, delta, balance_after) of CARD_NO
        self.records = dict(records or {})      # (terminal_id, seq) -> (id, raw, status, card_no, counter)
        self.refunds = dict(refunds or {})      # (terminal_id, sale_seq) -> refund seq

    def record(self, terminal_id, seq):
        """The stored record, or None."""
        return self.records.get((terminal_id, seq))

    def counter_rows(self, card_no, counters):
        """The claims among these counters."""
        return {c: rules.Claim(*self.claims[c]) for c in counters if card_no == CARD_NO and c in self.claims}

    def refund_of(self, terminal_id, sale_seq):
        """The refund that claimed the sale, or None."""
        return self.refunds.get((terminal_id, sale_seq))


def record(counter, amount_cents, balance_after_cents, kind=R.KIND_DEBIT, seq=1, terminal_id=BOOTH, ref_seq=0):
    """A record of CARD_NO (version 2 when it refers to a sale)."""
    return R.Record(kind, terminal_id, seq, 1796000000 + seq, CARD_NO, UID, counter, amount_cents,
                    balance_after_cents, ref_seq=ref_seq, version=R.RECORD_V2 if ref_seq else R.RECORD_VERSION)


def raw(rec):
    """The record's bytes under the booth key."""
    return rec.encode(R.record_mac_for(KEY))


# -- duplicate and conflict
def test_the_same_bytes_again_are_a_duplicate_that_settles_nothing():
    rec = record(2, 100, 900)
    stored = rules.StoredRecord(1, raw(rec), RecordStatus.APPLIED, CARD_NO, 2)
    assert rules.resent(stored, raw(rec), R.STATUS_COMMITTED) == (rules.DUPLICATE, None)


@pytest.mark.parametrize("upload_status, happened", [(R.STATUS_COMMITTED, True), (R.STATUS_VOIDED, False),
                                                     (R.STATUS_UNCERTAIN, None)])
def test_a_settled_copy_of_a_stored_uncertain_record_settles_it(upload_status, happened):
    rec = record(2, 100, 900)
    stored = rules.StoredRecord(1, raw(rec), RecordStatus.UNCERTAIN, CARD_NO, 2)
    assert rules.resent(stored, raw(rec), upload_status) == (rules.DUPLICATE, happened)


def test_other_bytes_for_a_stored_seq_are_a_conflict_whatever_their_status():
    stored = rules.StoredRecord(1, raw(record(2, 100, 900)), RecordStatus.UNCERTAIN, CARD_NO, 2)
    assert rules.resent(stored, raw(record(2, 150, 850)), R.STATUS_COMMITTED) == (rules.CONFLICT, None)


def test_an_attempt_uploaded_uncertain_is_applied_and_an_unknown_status_refused():
    attempt = record(2, 0, 900, kind=R.KIND_ATTEMPT)
    assert rules.new_status(attempt, R.STATUS_UNCERTAIN) is RecordStatus.APPLIED
    assert rules.new_status(record(2, 100, 900), R.STATUS_UNCERTAIN) is RecordStatus.UNCERTAIN
    assert rules.new_status(record(2, 100, 900), 7) is None


# -- clone and chain
def test_a_counter_held_by_another_record_is_a_clone():
    view = FakeView(claims={2: (OTHER_BOOTH, 9, -200, 800)})
    write = rules.card_write(view, record(2, 100, 900))
    assert write.clone_of == (OTHER_BOOTH, 9, -200, 800)
    assert rules.clone_detail(record(2, 100, 900), write.clone_of) == (
        "card 100001 counter 2 used by term-6 seq 9 and term-5 seq 1")


def test_a_write_that_continues_both_neighbours_breaks_no_chain():
    view = FakeView(claims={1: (BOOTH, 1, 1000, 1000), 3: (BOOTH, 3, -50, 850)})
    write = rules.card_write(view, record(2, 100, 900, seq=2))
    assert write == (2, -100, None, [])


def test_a_chain_break_is_named_on_the_record_that_does_not_add_up():
    view = FakeView(claims={1: (BOOTH, 1, 1000, 1000), 3: (OTHER_BOOTH, 7, -50, 750)})
    write = rules.card_write(view, record(2, 100, 880, seq=2))
    assert write.chain_breaks == [(BOOTH, 2, "counter 2: 1000 -100 != 880"),
                                  (OTHER_BOOTH, 7, "counter 3: 880 -50 != 750")]


def test_an_issue_must_leave_its_first_load_on_the_card():
    write = rules.card_write(FakeView(), record(1, 1000, 1200, kind=R.KIND_ISSUE))
    assert write.chain_breaks == [(BOOTH, 1, "issue balance 1200 != first load 1000")]


def test_counters_wrap_at_16_bits():
    view = FakeView(claims={65535: (BOOTH, 1, -100, 900)})
    assert rules.card_write(view, record(0, 100, 800, seq=2)).chain_breaks == []
    assert rules.next_counter(65535) == 0 and rules.previous_counter(0) == 65535


# -- uncertain (SPEC.md §4.8)
def test_an_uncertain_record_whose_counter_another_record_holds_did_not_happen():
    view = FakeView(claims={2: (OTHER_BOOTH, 1, -200, 800)})
    assert rules.decide_uncertain(view, record(2, 100, 900)) is UncertainOutcome.VOIDED


def test_an_uncertain_record_the_next_counter_continues_happened():
    view = FakeView(claims={3: (BOOTH, 2, -50, 850)})      # 900 - 50 = 850: read with the write in force
    assert rules.decide_uncertain(view, record(2, 100, 900)) is UncertainOutcome.HAPPENED


def test_a_next_counter_that_does_not_continue_it_leaves_it_open_for_the_record_holding_its_counter():
    # Seed 13: counter 3 left 800 -> 750, so counter 2 left 800, not this record's 900; the record that
    # holds counter 2 is still on its way from another terminal.
    view = FakeView(claims={3: (BOOTH, 2, -50, 750)})
    assert rules.decide_uncertain(view, record(2, 100, 900)) is UncertainOutcome.OPEN
    view.claims[2] = (OTHER_BOOTH, 1, -200, 800)               # ... and here it is
    assert rules.decide_uncertain(view, record(2, 100, 900)) is UncertainOutcome.VOIDED


def test_a_newer_counter_alone_decides_nothing():
    view = FakeView(claims={5: (BOOTH, 4, -50, 500)})          # counters 2..4 not (yet) known
    assert rules.decide_uncertain(view, record(2, 100, 900)) is UncertainOutcome.OPEN
    assert rules.decide_uncertain(FakeView(), record(2, 100, 900)) is UncertainOutcome.OPEN


def test_the_uncertain_rule_reads_across_the_counter_wrap():
    view = FakeView(claims={0: (BOOTH, 2, -50, 850)})
    assert rules.decide_uncertain(view, record(65535, 100, 900)) is UncertainOutcome.HAPPENED


# -- booth refunds (SPEC.md §4.4)
def _sale_view(status=RecordStatus.APPLIED, refunded_by=None):
    sale = record(2, 300, 700, seq=4)
    refunds = {} if refunded_by is None else {(BOOTH, 4): refunded_by}
    return FakeView(records={(BOOTH, 4): (1, raw(sale), status, CARD_NO, 2)}, refunds=refunds)


def test_a_booth_refund_of_its_own_applied_sale_is_allowed():
    refund = record(3, 300, 1000, kind=R.KIND_REFUND, seq=5, ref_seq=4)
    assert rules.booth_refusal(_sale_view(), frames.ROLE_POS, BOOTH, refund) == (None, None)


@pytest.mark.parametrize("view, amount, reason", [
    (_sale_view(RecordStatus.UNCERTAIN), 300, QuarantineReason.REFUND_UNMATCHED),
    (FakeView(), 300, QuarantineReason.REFUND_UNMATCHED),
    (_sale_view(), 301, QuarantineReason.REFUND_OVER_SALE),
    (_sale_view(refunded_by=6), 300, QuarantineReason.REFUND_TWICE)])
def test_a_booth_refund_must_match_one_applied_sale_once(view, amount, reason):
    refund = record(3, amount, 1000, kind=R.KIND_REFUND, seq=5, ref_seq=4)
    assert rules.booth_refusal(view, frames.ROLE_POS, BOOTH, refund)[0] is reason


def test_a_booth_may_not_top_up_and_a_desk_is_not_matched():
    topup = record(3, 500, 1200, kind=R.KIND_TOPUP)
    assert rules.booth_refusal(FakeView(), frames.ROLE_RIDE, BOOTH, topup) == (
        QuarantineReason.CREDIT_FROM_BOOTH, "kind 2 from a ride terminal")
    assert rules.booth_refusal(FakeView(), frames.ROLE_DESK, BOOTH, topup) == (None, None)
