"""The hub's rule that settles an uncertain passage from the card's later passages (SPEC.md §4.17), pure."""

import pytest

from protocol import record as R, ticket as t

from parkcard.domain.tickets import evidence_counters, passage_landed

UID = b"\x01\x02\x03\x04"
T0 = 1795600800


def passage(kind, counter, mac, entries_left=4, time_s=T0, card_no=7, uid=UID, reason=0):
    return R.Record(kind, 41, 1, time_s, card_no, uid, counter, 0, 1000, item=1,
                    discount_cents=R.passage_detail(reason, 1, entries_left), card_mac=mac)


ENTRY = passage(R.KIND_ENTRY, 0, b"EEEE")       # counter 0: the one before it is 65535 (16-bit, SPEC.md §3.9)


@pytest.mark.parametrize("later,landed", [
    (passage(R.KIND_EXIT, 1, b"XXXX", time_s=T0 + 600), True),                  # the next write follows its entries
    (passage(R.KIND_ENTRY, 1, b"XXXX", 3, T0 + 600), True),                     # re-entry: one entry fewer
    (passage(R.KIND_ENTRY, 1, b"XXXX", 4, T0 + 600), None),                     # an entry that counted none
    (passage(R.KIND_EXIT, 1, b"XXXX", 3, T0 + 600), None),                      # entries that do not follow
    (passage(R.KIND_ENTRY, 0, b"BBBB", 4, T0 + 60), False),                     # another gate's write of counter 0
    (passage(R.KIND_ENTRY, 0, b"EEEE", 4, T0 + 60), True),
    (passage(R.KIND_REFUSAL, 0, b"EEEE", 4, T0 + 60, reason=t.REASON_ALREADY_INSIDE), True),
    (passage(R.KIND_REFUSAL, 0, b"ZZZZ", 4, T0 + 60, reason=t.REASON_NOT_INSIDE), False),
    (passage(R.KIND_REFUSAL, 0, bytes(4), 4, T0 + 60, reason=t.REASON_ALREADY_INSIDE), True),   # an older gate
    (passage(R.KIND_REFUSAL, 65535, bytes(4), 5, T0 + 60, reason=t.REASON_NOT_INSIDE), False),
    (passage(R.KIND_REFUSAL, 65535, bytes(4), 5, T0 - 60, reason=t.REASON_NOT_INSIDE), None),   # read before it
    (passage(R.KIND_EXIT_FINISHED, 0, b"QQQQ", 4, T0 + 60), False),             # the slot in force is another's
    (passage(R.KIND_EXIT, 2, b"XXXX", 4, T0 + 600), None),                      # two writes on: nothing proved
    (passage(R.KIND_EXIT, 1, b"XXXX", time_s=T0 + 600, card_no=8), None),       # another card
    (passage(R.KIND_EXIT, 1, b"XXXX", time_s=T0 + 600, uid=b"\x09\x09\x09\x09"), None),
])
def test_a_later_passage_settles_an_uncertain_one_only_as_its_ticket_counters_prove(later, landed):
    assert passage_landed(ENTRY, later) is landed


def test_a_refusal_is_never_settled_and_the_counters_looked_at_wrap():
    refusal = passage(R.KIND_REFUSAL, 5, b"RRRR")
    assert passage_landed(refusal, passage(R.KIND_EXIT, 6, b"XXXX", time_s=T0 + 60)) is None
    assert sorted(evidence_counters(ENTRY)) == [0, 1, 65535]
