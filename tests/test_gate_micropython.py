"""The gate role under the real MicroPython unix port at the ESP32's heap budget, on the virtual RC522."""

import pytest

from conftest import REPO
from protocol import card, record as R, ticket as t
from protocol import card_issue
from sim.cards import card_balance, issued_card
from sim.chip_server import ChipServer
from test_firmware_micropython import parse

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
NOW = 1795600000 - 1795600000 % 86400 + 36000
TODAY = card.day_of(NOW)
CHECK = REPO / "tests" / "mpy" / "gate_check.py"


def ticket_card(uid, card_no, balance, info):
    vc = issued_card(PARK, uid, card.CardInfo(card_no, perms=0xFFFF), balance, NOW - 86400)
    for block, data in t.sale_blocks(card.CardKeys(PARK, uid), info, t.ENTRIES_UNLIMITED, NOW - 86400).items():
        vc.blocks[block][:] = data
    return vc


def chip_with_tickets():
    day_pass = ticket_card(b"\x04\x11\x22\x33\x44\x55\x66", 42, 500, t.TicketInfo(1, t.TYPE_DAY, 1, TODAY, TODAY))
    timed = ticket_card(b"\x01\x02\x03\x04", 43, 2200, t.TicketInfo(5, t.TYPE_TIMED, 0))
    return ChipServer([day_pass, timed])


def run_check(micropython, tmp_path, taps, heap):
    with chip_with_tickets() as chip:
        proc = micropython(CHECK, tmp_path, chip.port, taps, heap=heap, timeout=300)
        timed_balance = card_balance(PARK, chip.cards[1]).balance_cents
    return parse(proc.stdout), timed_balance


@pytest.mark.micropython
def test_gate_passages_on_micropython_at_the_esp32_heap(micropython, tmp_path):
    got, timed_balance = run_check(micropython, tmp_path, 20, "140k")
    assert got["passages_ok"] == "20" and got["relay_openings"] == "20"
    assert int(got["anti_passback_reason"]) == t.REASON_ALREADY_INSIDE
    assert (got["timed_entry_ok"], got["timed_exit_ok"], got["charge"], got["balance"]) == ("1", "1", "1000", "1200")
    assert (got["torn_reason"], got["torn_status"], got["retap_ok"]) == ("uncertain", "1", "1")
    # torn after the exit was written, finished after a reboot: charged once (SPEC.md §3.13)
    assert (got["torn_exit_reason"], got["finish_ok"], got["finish_charge"], got["finish_balance"]) == (
        "uncertain", "1", "1000", "200")
    assert timed_balance == 200
    assert (got["not_walked_ok"], got["not_walked_kind"]) == ("1", str(R.KIND_EXIT_FINISHED))     # SPEC.md §3.14


@pytest.mark.micropython
def test_a_gate_passage_needs_well_under_32_kb_above_idle(micropython, tmp_path):
    # With a roomy heap no collection runs inside a tap: everything it allocates, garbage included, is counted.
    got, _ = run_check(micropython, tmp_path, 6, "256k")
    assert 0 < int(got["heap_peak_per_passage"]) < 32 * 1024
    assert 0 < int(got["timed_exit_heap"]) < 32 * 1024
    assert 0 < int(got["finish_heap"]) < 32 * 1024
