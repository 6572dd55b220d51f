"""The fleet view tells the truth: each status report supersedes the last, the terminal reports what
changed when it changes, last seen is the latest frame of any kind, silence means offline, and
`parkcard terminals --watch` redraws until Ctrl-C."""

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from test_sync import FRAME_MAC, config, down, term  # noqa: F401 - term is a fixture

from protocol import frames, hub_frames
from protocol import record as R

from parkcard.cli import main
from parkcard.ingest import fleet
from parkcard.park_sim import ParkSim
from parkcard.testing import connect_booth, start_hub
from store_kit import read

PARKCARD = Path(sys.executable).parent / "parkcard"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _table(output):
    """{terminal id: {column: cell}} of the fleet table (cells split on two or more spaces)."""
    import re
    lines = output.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    out = {}
    for line in lines[1:]:
        starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        out[int(cells[0])] = dict(zip(header, cells))
    return out


def test_every_online_status_supersedes_the_last_and_carries_what_changed(term):  # noqa: F811
    will = frames.decode(FRAME_MAC, term.sync.status_frame(0))
    first = frames.decode(FRAME_MAC, term.sync.status_frame(1))
    term.receive(down(frames.T_CONFIG, config(3), counter=1))
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [4242], []),
                      counter=2))
    second = frames.decode(FRAME_MAC, term.sync.status_frame(1))
    assert will.counter == 0 < first.counter < second.counter
    report = hub_frames.parse_status(second.body)
    assert (report.config_version, report.blacklist_version) == (3, 1)
    assert fleet.supersedes(report, report.boot, hub_frames.parse_status(first.body).uptime_s)


class _Client:
    """Records publishes and wakes a waiter on each."""

    connected = True

    def __init__(self):
        self.published = []
        self.changed = asyncio.Event()

    async def publish(self, topic, payload, qos=1, retain=False, timeout_ms=None):
        self.published.append((topic, payload))
        self.changed.set()


def test_the_terminal_reports_a_change_at_once_not_at_the_next_round(term):  # noqa: F811
    async def check():
        client = _Client()
        term.sync.client = client
        loop = asyncio.create_task(term.sync.status_loop())
        try:
            term.sync.on_message(term.down, down(frames.T_BLACKLIST, hub_frames.blacklist_body(
                0, 1, frames.BL_DELTA, 0, 1, [4242], []), counter=1), False)
            term.sync.set_authorised(True)
            while not client.published:
                client.changed.clear()
                await asyncio.wait_for(client.changed.wait(), 10)   # STATUS_INTERVAL_S is 30
        finally:
            loop.cancel()
        [(topic, payload)] = client.published      # the status only: no T_SYNC off the periodic round
        report = hub_frames.parse_status(frames.decode(FRAME_MAC, payload).body)
        assert topic == term.sync.status_topic
        assert (report.blacklist_version, report.authorised) == (1, 1)
    asyncio.run(check())


def test_online_means_no_last_will_and_heard_from_within_two_status_intervals():
    now = 1_800_000_000
    assert fleet.SILENT_OFFLINE_S == 2 * frames.STATUS_INTERVAL_S
    assert fleet.online(SimpleNamespace(online=1, last_seen=now - fleet.SILENT_OFFLINE_S), now)
    assert not fleet.online(SimpleNamespace(online=1, last_seen=now - fleet.SILENT_OFFLINE_S - 1), now)
    assert not fleet.online(SimpleNamespace(online=0, last_seen=now), now)          # the last will
    assert not fleet.online(SimpleNamespace(online=1, last_seen=None), now)


@pytest.mark.broker
def test_last_seen_follows_uploads_and_a_silent_terminal_shows_offline(tmp_path, broker):
    db = tmp_path / "hub.db"
    long_ago = time.time() - 10 * fleet.SILENT_OFFLINE_S

    async def check():
        hub = await start_hub(db, broker.host, broker.port)
        try:
            term = await connect_booth(hub, broker.host, broker.port, 5)
            try:
                term.status(boot=1, online=1, config_version=1, blacklist_version=0, free_heap=51000,
                            uptime_s=40, authorised=1)
                await hub.wait_until(lambda: hub.fleet.stats["status_applied"] == 1)
                await hub.storage.set_terminal(5, last_seen=long_ago)    # as if silent for ten minutes
                silent = await asyncio.to_thread(cli, "--db", db, "terminals")
                term.record(R.KIND_DEBIT, 100001, 2, 100, 900)
                term.upload()
                await asyncio.to_thread(term.wait_acked, 1)
                heard = await asyncio.to_thread(cli, "--db", db, "terminals")
            finally:
                term.close()
        finally:
            await hub.stop()
        return silent, heard
    silent, heard = asyncio.run(check())
    assert silent.exit_code == 0, silent.output
    row = _table(silent.output)[5]
    assert (row["online"], row["heap"], row["uptime"], row["locked"], row["authorised"]) == (
        "no", "51000", "40s", "no", "no (terminal: yes)")
    row = _table(heard.output)[5]
    assert row["online"] == "yes" and row["last seen"].endswith("s ago") and int(row["last seen"][:-5]) < 60


@pytest.mark.broker
@pytest.mark.slow
def test_the_fleet_table_shows_what_firmware_terminals_hold(tmp_path):
    async def scenario():
        async with ParkSim(tmp_path / "park", terminals=2, cards=2) as sim:
            version = await sim.hub.blacklist_add(sim.visitors[0].card_no, "lost")
            await sim.wait_for(lambda: all(t.wallet.blacklist.version == version for t in sim.terminals), 30,
                               "the blacklist did not reach the terminals")
            db = sim.hub.storage.path

            def reported():
                return _table(cli("--db", db, "terminals").output)
            # Each status report the terminals send lands after a batch; wait on batches, not on time.
            deadline = time.monotonic() + 30
            while True:
                rows = await asyncio.to_thread(reported)
                if all(rows[t.terminal_id]["bl"] == str(version) for t in sim.terminals):
                    return rows, sim.terminals, version
                batches = sim.hub.batches
                await sim.hub.wait_until(lambda: sim.hub.batches > batches, deadline - time.monotonic())
    rows, terminals, version = asyncio.run(scenario())
    for t in terminals:
        row = rows[t.terminal_id]
        assert (row["online"], row["cfg"], row["bl"], row["authorised"], row["locked"]) == (
            "yes", "1", str(version), "yes", "no"), row


def test_watch_redraws_until_ctrl_c_and_exits_0(tmp_path):
    db = tmp_path / "hub.db"
    assert cli("--db", db, "merchant", "add", "--id", 2, "--name", "Ice", "--commission-bps", 0).exit_code == 0
    proc = subprocess.Popen([str(PARKCARD), "--db", str(db), "terminals", "--watch"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        headers = 0
        while headers < 2:          # two redraws seen: it keeps going by itself
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            headers += line.startswith("id ")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert read(db, lambda s: s.schema_version()) >= 4
