"""Shared fixtures: the MicroPython unix port runner and a private Mosquitto broker."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from parkcard.broker import Broker

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
VENV_BIN = Path(sys.executable).parent
MICROPYTHON = VENV_BIN / "micropython"
# The ESP32's free heap with the application loaded is about 110 KB; the
# firmware must live within this budget on the host too.
MICROPYTHON_HEAP = "100k"


class MicroPythonError(AssertionError):
    """A MicroPython script exited non-zero."""


def run_micropython(script, *args, heap=MICROPYTHON_HEAP, timeout=120, cwd=None, check=True):
    """Run a MicroPython script file (or code with -c) with protocol/ and firmware/ importable."""
    env = dict(os.environ)
    # On the terminal protocol/ and the firmware packages sit at the root of
    # the filesystem; on the host the repo root and firmware/ play that part.
    env["MICROPYPATH"] = os.pathsep.join([str(REPO), str(FIRMWARE), ".frozen"])
    cmd = [str(MICROPYTHON), "-X", f"heapsize={heap}"]
    if isinstance(script, Path) or (isinstance(script, str) and script.endswith(".py")):
        cmd.append(str(script))
    else:
        cmd += ["-c", script]
    cmd += [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise MicroPythonError(
            f"micropython exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def micropython():
    """Return the runner for scripts under the real MicroPython unix port."""
    if not MICROPYTHON.exists():
        pytest.fail(f"{MICROPYTHON} missing: run ./setup.sh")
    return run_micropython


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto process on a free loopback port, stopped after the test."""
    with Broker(tmp_path / "broker") as running:
        yield running
