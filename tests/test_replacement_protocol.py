"""A replacement's bytes (SPEC.md §4.13): the new card's first write and its transfer-in record, and a late offline
debit of the lost card, checked by the same script on CPython and MicroPython."""

import pytest

from conftest import REPO, run_cpython

VECTORS = REPO / "protocol" / "vectors" / "replacement.json"
CHECK = REPO / "tests" / "mpy" / "replacement_check.py"


def test_replacement_vectors_on_cpython():
    assert run_cpython(CHECK, VECTORS).stdout.startswith("replacement vectors ok")


@pytest.mark.micropython
def test_replacement_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.startswith("replacement vectors ok")
    assert proc.stdout == run_cpython(CHECK, VECTORS).stdout  # the same checks passed on both
