"""The booth reversal rule on its own (parkcard.domain.ingest_rules.reversal_refusal, SPEC.md §4.15): the
hub's view of a booth's shift as data, every refusal in its order of precedence."""

import pytest

from protocol import record as R
from protocol import staff as S

from parkcard.domain import ingest_rules as rules
from parkcard.domain import ledger
from parkcard.domain.lifecycle import QuarantineReason as Q
from parkcard.domain.lifecycle import RecordStatus

KEY = bytes(range(32))
BOOTH, MERCHANT = 5, 3
CARD_NO, UID = 100001, b"\x04\x01\x02\x03"
STAFF_NO, STAFF_UID = 100050, b"\x05\x06\x07\x08"
TAG = 4


class ShiftView:
    """IngestView of one booth: its stored records, staff cards and the sales already given back."""

    def __init__(self, records, staff=None, refunds=None):
        self.records = {r.seq: r for r in records}
        self.staff = {STAFF_NO: MERCHANT} if staff is None else staff
        self.refunds = dict(refunds or {})

    def record(self, terminal_id, seq):
        rec = self.records.get(seq) if terminal_id == BOOTH else None
        return None if rec is None else (seq, rec.encode(R.record_mac_for(KEY)), RecordStatus.APPLIED, rec.card_no, 0)

    def refund_of(self, terminal_id, sale_seq):
        return self.refunds.get(sale_seq)

    def last_shift_seq(self, terminal_id, below_seq):
        seqs = [s for s, r in self.records.items() if r.kind == R.KIND_SHIFT and s < below_seq]
        return max(seqs) if seqs else None

    def staff_merchant(self, card_no):
        return self.staff.get(card_no)


def opening(seq=10, tag=TAG, staff_no=STAFF_NO):
    return S.shift_record(BOOTH, seq, 0, staff_no, STAFF_UID, tag, S.PHASE_OPEN, 1)


def sale(seq=11, amount=450, tag=TAG, card_no=CARD_NO):
    return S.tagged(R.Record(R.KIND_DEBIT, BOOTH, seq, 0, card_no, UID, 7, amount, 1000 - amount), tag)


def reversal(seq=12, back=1, amount=450, tag=TAG, staff_no=STAFF_NO):
    return S.tagged(R.Record(R.KIND_REVERSAL, BOOTH, seq, 0, CARD_NO, UID, 8, amount, 1000, back, staff_no), tag)


def refusal(view, rec):
    return rules.reversal_refusal(view, BOOTH, MERCHANT, rec)[0]


def test_a_whole_sale_of_the_open_shift_with_its_staff_card_is_given_back():
    assert refusal(ShiftView([opening(), sale()]), reversal()) is None
    assert rules.given_back_seq(reversal()) == 11


@pytest.mark.parametrize("rec, why", [
    (reversal(back=0), "item 0 names no sale"),
    (reversal(back=2), "seq 10 is the shift record, not a sale"),
    (reversal(back=12), "seq 0: nothing"),
])
def test_no_applied_sale_of_that_card_is_unmatched(rec, why):
    assert refusal(ShiftView([opening(), sale()]), rec) == Q.REVERSAL_UNMATCHED, why


def test_another_cards_sale_is_unmatched():
    assert refusal(ShiftView([opening(), sale(card_no=CARD_NO + 1)]), reversal()) == Q.REVERSAL_UNMATCHED


@pytest.mark.parametrize("amount", [449, 451])
def test_only_the_whole_sale_is_given_back(amount):
    assert refusal(ShiftView([opening(), sale()]), reversal(amount=amount)) == Q.REVERSAL_AMOUNT


def test_a_sale_of_a_closed_shift_is_refused():
    closed = S.shift_record(BOOTH, 12, 0, STAFF_NO, STAFF_UID, TAG, S.PHASE_CLOSE, 1, open_seq=10)
    view = ShiftView([opening(), sale(), closed, opening(13, S.next_tag(TAG))])
    assert refusal(view, reversal(14, 3, tag=S.next_tag(TAG))) == Q.REVERSAL_SHIFT
    assert refusal(view, reversal(14, 3)) == Q.REVERSAL_SHIFT     # the old tag: the shift is closed all the same


@pytest.mark.parametrize("records, rec", [
    ([opening(), sale(tag=S.TAG_NONE)], reversal()),        # sold with no shift
    ([opening(), sale()], reversal(tag=TAG + 1)),           # another tag than the sale's
    ([sale()], reversal()),                                 # no shift record below the sale
    ([opening(tag=TAG + 1), sale()], reversal()),           # the shift open is another one
])
def test_a_sale_outside_the_open_shift_is_refused(records, rec):
    assert refusal(ShiftView(records), rec) == Q.REVERSAL_SHIFT


def test_only_the_shifts_staff_card_of_this_merchant_authorises():
    assert refusal(ShiftView([opening(), sale()]), reversal(staff_no=STAFF_NO + 1)) == Q.REVERSAL_STAFF
    assert refusal(ShiftView([opening(), sale()], staff={STAFF_NO: MERCHANT + 1}), reversal()) == Q.REVERSAL_STAFF
    assert refusal(ShiftView([opening(), sale()], staff={}), reversal()) == Q.REVERSAL_STAFF


def test_one_give_back_per_sale():
    assert refusal(ShiftView([opening(), sale()], refunds={11: 12}), reversal(13, 2)) == Q.REFUND_TWICE


def test_a_reversal_posts_the_sale_back_commission_too():
    entries = dict(ledger.postings(reversal(), MERCHANT, 500))
    assert entries == {"card:%d" % CARD_NO: 450, "merchant:%d" % MERCHANT: -428, "park:commission": -22}
    assert ledger.card_delta(reversal()) == 450


def test_shift_records_move_no_value_and_are_never_uncertain():
    assert ledger.postings(opening(), MERCHANT, 500) == [] and R.KIND_SHIFT in ledger.NO_WALLET_KINDS
    assert rules.new_status(opening(), R.STATUS_UNCERTAIN) == RecordStatus.APPLIED
