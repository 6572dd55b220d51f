"""terminal/devices.py under CPython with a stand-in `esp32` module: the NVS key store."""

import sys
import types

import pytest

from terminal import devices

NOT_FOUND = -0x1102       # what MicroPython's esp32.NVS raises (ESP-IDF nvs.h, negated)
INVALID_LENGTH = -0x110C


class FakeNVS:
    """esp32.NVS as the ESP-IDF behaves: a buffer shorter than the blob is an error, not a short read."""

    blobs = {}

    def __init__(self, namespace):
        self.namespace = namespace

    def get_blob(self, name, buf):
        if name not in self.blobs:
            raise OSError(NOT_FOUND)
        value = self.blobs[name]
        if len(buf) < len(value):
            raise OSError(INVALID_LENGTH)
        buf[:len(value)] = value
        return len(value)


@pytest.fixture
def keystore(monkeypatch):
    monkeypatch.setitem(sys.modules, "esp32", types.SimpleNamespace(NVS=FakeNVS))
    FakeNVS.blobs = {}
    return devices.NvsKeyStore("parkcard")


@pytest.mark.parametrize("size", [0, 32, 128, 129, 300, 1000, 4096])
def test_a_secret_of_any_size_is_read_whole(keystore, size):
    FakeNVS.blobs["k"] = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert keystore.get("k") == FakeNVS.blobs["k"]


def test_an_absent_secret_is_none_and_nvs_trouble_is_not(keystore):
    assert keystore.get("missing") is None
    FakeNVS.blobs["huge"] = bytes(5000)
    with pytest.raises(OSError):
        keystore.get("huge")


class FakePin:
    """machine.Pin as far as the board uses it: remembers each pin's construction and level."""

    OUT, IN, PULL_UP = 1, 2, 3
    made = []

    def __init__(self, number, mode=None, pull=None, value=None):
        self.number, self.mode, self.pull, self.level = number, mode, pull, value
        FakePin.made.append(self)

    def value(self, level=None):
        if level is not None:
            self.level = level
        return self.level


def test_the_relay_is_off_gpio_2_and_driven_inactive_before_the_terminal_reads_its_settings(monkeypatch, tmp_path):
    from terminal import assemble, board as boards
    monkeypatch.setitem(sys.modules, "machine", types.SimpleNamespace(Pin=FakePin))
    monkeypatch.chdir(tmp_path)            # no provisioning here: assemble stops at the settings
    FakePin.made = []
    calls = []

    class Board(boards.Board):
        def display(self):
            calls.append("display")
            return types.SimpleNamespace(show=lambda *lines: None)

        def network(self, *args):
            calls.append("network")

    board = Board()
    assert assemble.assemble(board) is None and calls == ["display"]
    relay_pin = [p for p in FakePin.made if p.number == boards.DEFAULT_PINS["relay"]["pin"]]
    assert boards.DEFAULT_PINS["relay"]["pin"] not in (0, 2, 5, 12, 15)      # no strapping pin
    assert [(p.mode, p.level) for p in relay_pin] == [(FakePin.OUT, 0)]      # output, released
    assert board.relay() is board.relay() and len(FakePin.made) == 1          # one relay, not a second driver


def test_a_keypad_column_on_an_input_only_pin_asks_for_no_internal_pull_up(monkeypatch):
    from terminal import board as boards
    monkeypatch.setitem(sys.modules, "machine", types.SimpleNamespace(Pin=FakePin))
    FakePin.made = []
    made = {}
    monkeypatch.setattr(boards, "MatrixKeypad", lambda rows, cols, layout: made.update(cols=cols))
    boards.Board().keypad()
    up = FakePin.PULL_UP
    assert {p.number: (p.mode, p.pull) for p in made["cols"]} == {
        35: (FakePin.IN, None), 21: (FakePin.IN, up), 32: (FakePin.IN, up), 33: (FakePin.IN, up)}
