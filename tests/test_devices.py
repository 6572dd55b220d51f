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
