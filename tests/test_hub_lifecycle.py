"""A hub that cannot serve stops and releases everything (link, database, lock) and its process exits
non-zero with the reason; the broker it starts can take more terminals than a default open-file limit."""

import asyncio
import resource
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from parkcard.app import EXIT_HUB_FAILED, Hub, HubFailed
from parkcard.hub_lock import HubLock
from parkcard.transport import notify
from parkcard.transport.broker import OPEN_FILES_RESERVE, OPEN_FILES_TARGET, Broker, free_port

HUB_ROOT = Path(__file__).resolve().parent.parent / "hub"
EXIT_BOUND_S = 60      # bounds a failure only: a hub that hangs instead of exiting fails here

# A hub process whose notice listener fails for good once it runs (the socket broke under it):
# the registry-poll and consume tasks are fine, so only the lifecycle can end the process.
FAILING_NOTICES = """
import sys
from parkcard.transport import notify
async def broken(self):
    raise OSError("notice socket broke")
notify.Listener.wait = broken
sys.argv[0] = {prog!r}
from {module} import main
main(sys.argv[1:])
"""


CLIENT_ID = "hub-lifecycle-test"     # names the hub's paho thread (paho-mqtt-client-<client id>)


def _link_threads():
    """The paho network threads of the hub under test that still run."""
    return [t for t in threading.enumerate() if t.name == "paho-mqtt-client-" + CLIENT_ID and t.is_alive()]


def _released(db):
    """True when no one holds the hub lock of db (a new hub could start on it)."""
    lock = HubLock(db)
    lock.acquire()
    lock.release()
    return True


async def _broken_notices(self):
    raise OSError("notice socket broke")


def test_a_failed_task_stops_the_hub_and_releases_link_database_and_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(notify.Listener, "wait", _broken_notices)
    db = tmp_path / "hub.db"

    async def scenario():
        hub = Hub(db, broker_port=free_port(), client_id=CLIENT_ID)    # no broker: the link keeps retrying, it must not matter
        with pytest.raises(HubFailed, match="task notices failed: OSError: notice socket broke"):
            await asyncio.wait_for(hub.run(), EXIT_BOUND_S)
        return hub
    hub = asyncio.run(scenario())
    assert not hub.storage.is_open
    assert not hub.lock.held and _released(db)
    assert _link_threads() == []


def test_a_broker_link_that_cannot_start_releases_the_database_and_lock(tmp_path, monkeypatch):
    db = tmp_path / "hub.db"

    async def link_refused(self):
        raise OSError("cannot resolve broker host")

    async def scenario():
        hub = Hub(db, broker_port=free_port())
        monkeypatch.setattr(type(hub.link), "start", link_refused)
        with pytest.raises(HubFailed, match="start-up failed: OSError: cannot resolve broker host"):
            await hub.start()
        return hub
    hub = asyncio.run(scenario())
    assert not hub.storage.is_open and not hub.lock.held and _released(db)


def _run_failing(module, prog, args, cwd):
    script = FAILING_NOTICES.format(prog=prog, module=module)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=EXIT_BOUND_S)


def test_the_hub_process_exits_non_zero_with_the_reason_when_a_task_fails(tmp_path):
    db = tmp_path / "hub.db"
    proc = _run_failing("parkcard.app", "python -m parkcard.app",
                        ["--db", str(db), "--broker-port", str(free_port())], HUB_ROOT)
    assert proc.returncode == EXIT_HUB_FAILED, proc.stderr
    assert "event=hub_failed reason='task notices failed: OSError: notice socket broke'" in proc.stderr
    assert "error: the hub stopped: task notices failed: OSError: notice socket broke" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _released(db)


@pytest.mark.broker
def test_up_exits_non_zero_with_the_reason_and_stops_its_broker_when_the_hub_fails(tmp_path):
    db = tmp_path / "hub.db"
    port = free_port()
    proc = _run_failing("parkcard.cli", "parkcard", ["--db", str(db), "up", "--insecure", "--broker-port", str(port)],
                        tmp_path)
    assert proc.returncode == EXIT_HUB_FAILED, proc.stderr
    assert "mosquitto listening on 127.0.0.1:%d" % port in proc.stdout
    assert "terminal connections (open-file limit" in proc.stdout
    assert "event=hub_failed reason=" in proc.stderr
    assert "Error: the hub stopped: task notices failed: OSError: notice socket broke" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(ConnectionRefusedError):      # its broker went with it
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def _soft_open_files(pid):
    with open("/proc/%d/limits" % pid) as fh:
        for line in fh:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc/%d/limits" % pid)


@pytest.mark.broker
def test_the_broker_gets_a_raised_open_file_limit_even_under_a_parent_limited_to_1024(tmp_path):
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = before[1]
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip("the hard open-file limit is %d: nothing to raise to" % hard)
    expected = OPEN_FILES_TARGET if hard == resource.RLIM_INFINITY else min(OPEN_FILES_TARGET, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        with Broker(tmp_path / "broker") as broker:
            assert _soft_open_files(broker.process.pid) == expected
            assert (broker.open_files_max, broker.connections_max) == (expected, expected - OPEN_FILES_RESERVE)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (1024, hard)     # this process keeps its own
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)
