"""Shift records and booth reversals (SPEC.md §4.14, §4.15): the vectors on CPython and under MicroPython, and
the codec's own rules."""

import pytest

from conftest import REPO, run_cpython
from protocol import record as R
from protocol import staff as S

VECTORS = REPO / "protocol" / "vectors" / "staff.json"
CHECK = REPO / "tests" / "mpy" / "staff_check.py"


def test_staff_vectors_on_cpython():
    assert run_cpython(CHECK, VECTORS).stdout.startswith("staff vectors ok")


@pytest.mark.micropython
def test_staff_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.startswith("staff vectors ok")
    assert proc.stdout == run_cpython(CHECK, VECTORS).stdout  # the same checks passed on both


def test_tags_cycle_1_to_255_and_never_0():
    assert [S.next_tag(t) for t in (S.TAG_NONE, 1, 254, 255)] == [1, 2, 255, 1]


def test_tag_is_read_only_from_the_tagged_kinds():
    line = R.Record(R.KIND_SALE_LINE, 1, 1, 0, 5, b"\x01\x02\x03\x04", 1, 100, 0)
    line.quantity = 3
    assert S.tag_of(line) == S.TAG_NONE     # byte 27 of a sale line is its quantity
    sale = S.tagged(R.Record(R.KIND_DEBIT, 1, 2, 0, 5, b"\x01\x02\x03\x04", 1, 100, 0), 9)
    assert S.tag_of(R.Record.decode(sale.encode(R.record_mac_for(bytes(32))))) == 9


def test_counts_over_the_field_are_capped_not_wrapped():
    rec = S.shift_record(1, 5, 0, 100001, b"\x01\x02\x03\x04", 1, S.PHASE_CLOSE, 0,
                         totals=S.ShiftTotals(70000, 7000000, 2, 300), open_seq=1)
    assert S.shift_fields(rec)[2] == S.ShiftTotals(S.COUNT_MAX, 7000000, 2, 300)


def test_shift_and_reversal_are_version_1_records():
    mac = R.record_mac_for(bytes(32))
    rec = S.shift_record(1, 5, 0, 100001, b"\x01\x02\x03\x04", 1, S.PHASE_OPEN, 0)
    assert len(rec.encode(mac)) == R.RECORD_SIZE    # fits the journal's slots as every terminal record does
