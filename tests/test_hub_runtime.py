"""The hub's lifecycle: one hub per database, a broker that cannot listen, user mistakes without
tracebacks, and CLI changes that reach a running hub (and its terminals) at once."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from protocol import frames

from parkcard import app
from parkcard.app import Hub
from parkcard.cli import main
from parkcard.hub_lock import HubLock, HubLockedError, lock_path_for
from parkcard.testing import connect_booth, start_hub
from parkcard.transport.broker import Broker, BrokerError, free_port

HUB_ROOT = Path(__file__).resolve().parent.parent / "hub"
PARKCARD = Path(sys.executable).parent / "parkcard"
CARD_NO = 4242


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_second_hub_on_one_database_is_refused_until_the_first_stops(tmp_path):
    db = tmp_path / "hub.db"

    async def check():
        first = await Hub(db).open()
        with pytest.raises(HubLockedError, match="another hub is running on .*hub.db .pid %d." % os.getpid()):
            await Hub(db).open()
        # The CLI's one-shot commands still work beside the running hub.
        result = await asyncio.to_thread(cli, "--db", db, "merchant", "add", "--id", 2, "--name", "Ice",
                                         "--commission-bps", 1000)
        assert result.exit_code == 0, result.output
        await first.stop()
        second = await Hub(db).open()      # released on stop
        await second.stop()
    asyncio.run(check())


def _wait_for_pid_in_lock(db, proc, timeout_s=30):
    """Wait (bounded) until the hub process wrote its pid into the lock file."""
    import time
    deadline = time.monotonic() + timeout_s
    path = lock_path_for(db)
    while not (path.exists() and path.read_text().strip() == str(proc.pid)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the hub process never took the lock (exit %r)" % proc.poll())
        time.sleep(0.02)   # polling interval of a bounded wait for another process


def test_a_second_hub_process_is_refused_and_a_killed_hub_leaves_no_lock(tmp_path):
    db = tmp_path / "hub.db"
    port = str(free_port())     # no broker: the hub keeps retrying, which is all this needs
    args = [sys.executable, "-m", "parkcard.app", "--db", str(db), "--broker-port", port]
    first = subprocess.Popen(args, cwd=HUB_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_pid_in_lock(db, first)
        second = subprocess.run(args, cwd=HUB_ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "another hub is running on %s (pid %d)" % (db, first.pid) in second.stderr
        assert "Traceback" not in second.stderr
        up = subprocess.run([str(PARKCARD), "--db", str(db), "up", "--insecure", "--no-broker"],
                            capture_output=True, text=True, timeout=60)
        assert up.returncode == 2 and "another hub is running" in up.stderr, up.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    async def after_crash():
        hub = await Hub(db).open()   # the stale lock file is no lock
        await hub.stop()
    asyncio.run(after_crash())


@pytest.mark.broker
def test_up_beside_a_running_hub_starts_no_broker(tmp_path):
    db = tmp_path / "hub.db"
    held = HubLock(db).acquire()
    try:
        result = cli("--db", db, "up", "--insecure")
    finally:
        held.release()
    assert result.exit_code == 2
    assert "another hub is running on %s (pid %d): stop it first" % (db, os.getpid()) in result.output
    assert "listening" not in result.output
    assert not (tmp_path / "broker").exists()


@pytest.mark.broker
def test_a_broker_port_already_taken_stops_up_with_the_reason(tmp_path, broker):
    with pytest.raises(BrokerError, match="Address already in use"):
        Broker(tmp_path / "second", port=broker.port).start()
    result = cli("--db", tmp_path / "hub.db", "up", "--insecure", "--broker-port", broker.port)
    assert result.exit_code == 2, result.output
    assert "Address already in use" in result.output and "listening" not in result.output
    # and the lock went with the failed `up`: a hub can start on the database
    HubLock(tmp_path / "hub.db").acquire().release()


def test_a_db_that_is_a_folder_is_a_user_error_for_every_command(tmp_path):
    folder = tmp_path / "var"
    folder.mkdir()
    for command in (["terminals"], ["init"], ["up", "--insecure", "--no-broker"]):
        proc = subprocess.run([str(PARKCARD), "--db", str(folder), *command], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "--db %s is a folder" % folder in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["var"] and os.listdir(folder) == []   # nothing written anywhere


def test_demo_refuses_a_folder_that_holds_files_before_writing_anything(tmp_path):
    park = tmp_path / "park"
    park.mkdir()
    (park / "notes.txt").write_text("an earlier run")
    result = cli("demo", "--dir", park, "--taps", 1)
    assert result.exit_code == 2, result.output
    assert "already holds files" in result.output and "Traceback" not in result.output
    assert os.listdir(park) == ["notes.txt"]


@pytest.fixture
def quiet_poll(monkeypatch):
    """The hub's safety-net poll out of the way: only a notification can bring a CLI change in time."""
    monkeypatch.setattr(app, "REGISTRY_POLL_S", 3600)


def _blacklisted(card_no):
    def holds(term):
        for frame in term.down:
            if frame.type == frames.T_BLACKLIST and card_no in frames.parse_blacklist(frame.body)[5]:
                return True
        return False
    return holds


@pytest.mark.broker
def test_a_blacklist_change_from_the_cli_reaches_a_connected_terminal_at_once(tmp_path, broker, quiet_poll):
    db = tmp_path / "hub.db"

    async def check():
        hub = await start_hub(db, broker.host, broker.port)
        try:
            term = await connect_booth(hub, broker.host, broker.port, 5)
            try:
                # The terminal never sends T_SYNC here: the push is the only way the entry can arrive.
                result = await asyncio.to_thread(cli, "--db", db, "blacklist", "add", CARD_NO, "--reason", "lost", "--force")
                await asyncio.to_thread(term.wait, _blacklisted(CARD_NO), 30)
                assert result.exit_code == 0, result.output
                assert "pushes it to every online terminal now" in result.output
                [frame] = [f for f in term.downlinks(frames.T_BLACKLIST)]
                assert frames.parse_blacklist(frame.body)[:2] == (0, 1)      # the delta 0 -> 1, once
                result = await asyncio.to_thread(cli, "--db", db, "terminal", "lock", 5)
                assert result.exit_code == 0, result.output
                await asyncio.to_thread(term.wait, lambda t: any(
                    frames.parse_command(f.body)[0] == frames.CMD_LOCK for f in t.downlinks(frames.T_COMMAND)), 30)
            finally:
                term.close()
        finally:
            await hub.stop()
    asyncio.run(check())


def test_a_cli_change_with_no_hub_running_says_so(tmp_path):
    db = tmp_path / "hub.db"
    assert cli("--db", db, "merchant", "add", "--id", 2, "--name", "Ice", "--commission-bps", 0).exit_code == 0
    result = cli("--db", db, "blacklist", "add", CARD_NO, "--reason", "lost", "--force")
    assert result.exit_code == 0, result.output
    assert "no hub is running" in result.output
