"""The whole terminal on an ESP32's heap: main.main() under MicroPython at WHOLE_HEAP, as parkcard-flash
installs it, against a real hub over a TLS Mosquitto and the virtual RC522 (tests/terminal_whole.py)."""

import pytest

from terminal_whole import WHOLE_HEAP, Park, run_whole

pytestmark = [pytest.mark.micropython, pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def park(tmp_path):
    running = Park(tmp_path / "park")
    yield running
    running.close()


def test_the_whole_terminal_serves_syncs_and_takes_a_new_config_at_the_budget_heap(park, tmp_path):
    lines, after_tap, after_config = run_whole(park, tmp_path, WHOLE_HEAP)
    print("heap after tap and sync", after_tap, "after the config change", after_config)
    assert lines.count("screen APPROVED 2.50|Balance 97.50") == 1  # one tap, one debit
