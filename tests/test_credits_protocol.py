"""The pending-credit bytes (protocol/credits.py): card marker and T_CREDITS list, on both interpreters."""

import pytest

from conftest import REPO, run_cpython

VECTORS = REPO / "protocol" / "vectors" / "credits.json"
CHECK = REPO / "tests" / "mpy" / "credits_check.py"


def test_credit_vectors_on_cpython():
    assert run_cpython(CHECK, VECTORS).stdout.startswith("credits vectors ok")


@pytest.mark.micropython
def test_credit_vectors_on_micropython(micropython):
    proc = micropython(CHECK, VECTORS)
    assert proc.stdout.startswith("credits vectors ok")
    assert proc.stdout == run_cpython(CHECK, VECTORS).stdout  # the same checks passed on both

