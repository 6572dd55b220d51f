"""The whole terminal on an ESP32's heap: main.main() under MicroPython at WHOLE_HEAP, as parkcard-flash
installs it, against a real hub over a TLS Mosquitto and the virtual RC522 (tests/terminal_whole.py)."""

import pytest

from terminal_whole import (BLACKLISTED, CARD_NO, RIDE_PRICE_CENTS, TERMINAL_ID, WHOLE_HEAP, Park,
                            WholeTerminal)

pytestmark = [pytest.mark.micropython, pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def park(tmp_path):
    running = Park(tmp_path / "park")
    yield running
    running.close()


def test_the_whole_terminal_serves_syncs_and_takes_a_new_config_at_the_budget_heap(park, tmp_path):
    term = WholeTerminal(park, tmp_path, "300k")
    try:
        term.expect(r"screen ParkCard ride\|Price 2\.50")
        assert term.tap() == "screen APPROVED 2.50|Balance 97.50"
        park.wait(lambda: park.hub.registry.get(TERMINAL_ID).acked_upto >= 1, "the tap's record acked")
        row = park.terminal_row()
        print("row", row)
        print("heap after tap", term.heap())
        version = park.change_config(fixed_price_cents=300)
        term.expect(r"screen ParkCard ride\|Price 3\.00")
        print("heap after config", term.heap())
    finally:
        term.close()
        print("\n".join(term.lines[:400]))
