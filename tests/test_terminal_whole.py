"""The whole terminal on an ESP32's heap: main.main() under MicroPython at its budget heap, as parkcard-flash
installs it (as files on the filesystem, or as a ROMFS image mapped outside the heap), against a real hub over a
TLS Mosquitto and the virtual RC522 (tests/terminal_whole.py)."""

import pytest

from protocol import frames, record as R

from terminal_whole import (GATE_ROMFS_HEAP, INSTALL_FILES, INSTALL_ROMFS, ROMFS_HEAP, TERMINAL_ID, WHOLE_HEAP,
                            Park, run_whole, run_whole_gate)

pytestmark = [pytest.mark.micropython, pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def park(tmp_path):
    running = Park(tmp_path / "park")
    yield running
    running.close()


@pytest.mark.parametrize("install, heap", [(INSTALL_FILES, WHOLE_HEAP), (INSTALL_ROMFS, ROMFS_HEAP)],
                         ids=["files", "romfs"])
def test_the_whole_terminal_serves_syncs_and_takes_a_new_config_at_the_budget_heap(park, tmp_path, install, heap):
    lines, after_tap, after_config = run_whole(park, tmp_path, heap, install=install)
    print("heap after tap and sync", after_tap, "after the config change", after_config)
    assert lines.count("screen APPROVED 2.50|Balance 97.50") == 1  # one tap, one debit


def test_the_terminal_installed_in_romfs_imports_its_code_from_rom(park, tmp_path):
    from terminal_whole import WholeTerminal
    term = WholeTerminal(park, tmp_path, ROMFS_HEAP, install=INSTALL_ROMFS)
    try:
        term.expect(r"screen ParkCard ride\|Price 2\.50")
        assert not (term.root / "terminal").exists() and not (term.root / "protocol").exists()
        assert sorted(p.name for p in term.root.iterdir()) == ["boot.py", "ca.der", "data", "keys", "main.py",
                                                                 "terminal.json"]
        for module in ("terminal.wallet", "protocol.frames", "terminal.roles.ride"):
            path = "/rom/%s.mpy" % module.replace(".", "/")
            assert term.command("file " + module, r"file ") == "file " + path
    finally:
        term.close()


def test_the_whole_gate_lets_a_ticket_in_releases_its_relay_and_uploads_the_passage_at_the_budget_heap(tmp_path):
    park = Park(tmp_path / "park", role=frames.ROLE_GATE)
    try:
        lines, after_passage = run_whole_gate(park, tmp_path, GATE_ROMFS_HEAP, install=INSTALL_ROMFS)
        records = park.call(park.hub.storage.records(TERMINAL_ID))
    finally:
        park.close()
    print("gate heap after the passage is acked", after_passage)
    assert [(r.kind, r.status) for r in records] == [(R.KIND_ENTRY, "applied"), (R.KIND_REFUSAL, "applied")]
    assert lines.count("relay 1") == 1          # one passage, one release
