"""terminal/sync.py on CPython: downlink refusals one by one, and what survives a reboot.

The same Sync runs on the terminal; tests/test_sync_micropython.py drives it
under MicroPython against Mosquitto. Here the MQTT client is a stand-in that
records what Sync publishes, so every refusal reason can be reached exactly.
"""

import asyncio
import gc

import pytest

from protocol import frames, hub_frames, topics
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.mqtt import MQTTError
from terminal.state import TerminalState
from terminal.sync import Sync

TID = 7
KEY = b"k" * 32
FRAME_MAC = frames.frame_mac_for(KEY)
NOW = 1795600000


class Client:
    connected = True

    def __init__(self):
        self.published = []  # (topic, payload, qos, retain)

    async def publish(self, topic, payload, qos=1, retain=False, timeout_ms=None):
        self.published.append((topic, payload, qos, retain))


class Board:
    def __init__(self):
        self.now = NOW

    def clock(self):
        return self.now

    def set_clock(self, epoch):
        self.now = epoch

    def free_heap(self):
        return 0


class Wallet:
    config = None
    last_hub_contact_s = 0
    blacklist_updated_s = 0


class Terminal:
    """The pieces runtime.Terminal gives Sync, on a host directory."""

    def __init__(self, path):
        self.path = path
        self.state = TerminalState(str(path))
        self.journal = Journal(str(path / "journal"), 56, 4096, 8)
        self.blacklist = Blacklist(str(path / "blacklist"))
        self.board = Board()
        self.wallet = Wallet()
        self.commands = []
        self.sync = Sync(TID, FRAME_MAC, self.wallet, self.journal, self.blacklist, self.state, self.board,
                         lambda *c: self.commands.append(c))
        self.client = Client()
        self.sync.attach(self.client)
        self.down = topics.topic(TID, topics.DOWN)

    def receive(self, payload, topic=None):
        async def deliver():
            self.sync.on_message(topic or self.down, payload, False)
            await asyncio.sleep(0)  # let a T_SYNC it asked for go out
        asyncio.run(deliver())

    def close(self):
        self.journal.close()
        self.blacklist.close()


@pytest.fixture
def term(tmp_path):
    running = Terminal(tmp_path)
    yield running
    running.close()


def down(ftype, body=b"", counter=1, time_s=NOW, key=KEY, terminal_id=TID):
    return frames.encode(frames.frame_mac_for(key), ftype, terminal_id, counter, time_s, body)


def config(version=3):
    return frames.Config(version=version, role=frames.ROLE_RIDE).encode()


@pytest.mark.parametrize("payload, topic, reason", [
    (down(frames.T_CONFIG, config()), topics.topic(TID + 1, topics.DOWN), "wrong_topic"),
    (down(frames.T_CONFIG, config(), key=b"x" * 32), None, "bad_mac"),
    (down(frames.T_CONFIG, config())[:-1], None, "malformed"),
    (b"PK", None, "malformed"),
    (b"XY" + down(frames.T_CONFIG, config())[2:], None, "malformed"),
    (bytes([0x50, 0x4B, 2]) + down(frames.T_CONFIG, config())[3:], None, "unsupported"),
    (down(0x30), None, "unsupported"),
    (down(frames.T_CONFIG, config(), terminal_id=TID + 1), None, "wrong_terminal"),
    (down(frames.T_STATUS, b""), None, "wrong_terminal"),
], ids=["other_topic", "forged", "truncated", "short", "magic", "version", "type", "other_terminal", "uplink_type"])
def test_refused_before_anything_changes(term, payload, topic, reason):
    term.receive(payload, topic)
    assert term.sync.rejected == {reason: 1}
    assert (term.state.down_counter, term.wallet.config, term.wallet.last_hub_contact_s) == (0, None, 0)


def test_replay_of_the_same_or_an_older_counter(term):
    term.receive(down(frames.T_CONFIG, config(3), counter=5))
    term.receive(down(frames.T_CONFIG, config(4), counter=5))
    term.receive(down(frames.T_CONFIG, config(4), counter=4))
    assert term.sync.rejected == {"replay": 2}
    assert (term.wallet.config.version, term.state.down_counter) == (3, 5)


def test_a_bad_body_with_a_good_mac_is_refused_and_its_counter_spent(term):
    term.receive(down(frames.T_ACK, b"\x00\x01", counter=2))
    term.receive(down(frames.T_CONFIG, b"\x00" * 29, counter=3))  # role 0 is not a role
    assert term.sync.rejected == {"malformed": 2}
    assert (term.state.down_counter, term.wallet.config) == (3, None)


@pytest.mark.parametrize("ftype, body", [
    (frames.T_TIME, b""),
    (frames.T_CONFIG, config()),
    (frames.T_COMMAND, hub_frames.command_body(frames.CMD_REPORT_STATUS)),
    (frames.T_BLACKLIST, hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [9], [])),
], ids=["time", "config", "command", "blacklist"])
def test_an_accepted_frame_stays_refused_after_a_reboot(term, tmp_path, ftype, body):
    frame = down(ftype, body, counter=11, time_s=NOW + 60)
    term.receive(frame)
    assert term.sync.rejected == {}
    term.close()
    rebooted = Terminal(tmp_path)
    try:
        assert (rebooted.state.boot, rebooted.state.down_counter) == (2, 11)
        rebooted.board.now = NOW + 3600
        rebooted.receive(frame)
        assert rebooted.sync.rejected == {"replay": 1}
        assert rebooted.board.now == NOW + 3600  # a replayed T_TIME cannot wind the clock back
    finally:
        rebooted.close()


def test_time_config_and_command_are_applied(term):
    term.receive(down(frames.T_TIME, counter=1, time_s=NOW + 500))
    term.receive(down(frames.T_CONFIG, config(6), counter=2))
    term.receive(down(frames.T_COMMAND, hub_frames.command_body(frames.CMD_LOCK, 77), counter=3))
    assert term.board.now == NOW + 500
    assert (term.wallet.config.version, term.wallet.config.role) == (6, frames.ROLE_RIDE)
    assert term.commands == [(frames.CMD_LOCK, 77)]
    assert term.state.config_hex == config(6).hex()


def test_uptime_does_not_jump_when_the_hub_sets_the_clock(term):
    term.board.now += 60                   # a minute after boot, on a clock that restarted near 2000
    term.receive(down(frames.T_TIME, counter=1, time_s=NOW + 10 ** 8))
    term.board.now += 5
    status = hub_frames.parse_status(frames.decode(FRAME_MAC, term.sync.status_frame()).body)
    assert status.uptime_s == 65


def test_version_gap_is_refused_and_asks_from_the_version_held(term):
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 2, frames.BL_DELTA, 0, 1, [5], []), counter=1))
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(4, 5, frames.BL_DELTA, 0, 1, [6], []), counter=2))
    assert term.sync.rejected == {"blacklist": 1}
    assert (term.blacklist.version, term.blacklist.contains(5), term.blacklist.contains(6)) == (2, True, False)
    (topic, payload, _qos, _retain), = term.client.published
    frame = frames.decode(FRAME_MAC, payload)
    assert (topic, frame.type, hub_frames.parse_sync(frame.body)) == (topics.topic(TID, topics.UP), frames.T_SYNC, (2, 0))


def test_a_sync_request_that_cannot_go_out_is_dropped_quietly(term):
    timeouts, unhandled = [], []

    async def publish(topic, payload, qos=1, retain=False, timeout_ms=None):
        timeouts.append(timeout_ms)
        raise MQTTError("link down")

    async def deliver():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unhandled.append(context))
        term.client.publish = publish
        gap = hub_frames.blacklist_body(4, 5, frames.BL_DELTA, 0, 1, [6], [])
        term.sync.on_message(term.down, down(frames.T_BLACKLIST, gap), False)
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()  # a task's unretrieved exception is reported when the task is freed

    asyncio.run(deliver())
    assert timeouts and None not in timeouts  # bounded: never held for a link that stays down
    assert unhandled == []


def test_a_corrupt_list_refuses_deltas_and_a_snapshot_replaces_it(term):
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [5, 6], []), counter=1))
    with open(term.path / "blacklist" / "blacklist", "r+b") as f:
        f.truncate(4)  # flash damage under the open list: a merge reads short
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(1, 2, frames.BL_DELTA, 0, 1, [7], []), counter=2))
    assert term.sync.rejected == {"blacklist": 1}
    assert term.blacklist.version == 1
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 2, frames.BL_SNAPSHOT, 0, 1, [5, 6, 7], []),
                      counter=3))
    assert (term.blacklist.version, term.blacklist.count, term.blacklist.contains(7)) == (2, 3, True)


def test_a_delta_already_applied_is_taken_again_without_change(term):
    delta = hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [5], [])
    term.receive(down(frames.T_BLACKLIST, delta, counter=1))
    term.receive(down(frames.T_BLACKLIST, delta, counter=2))  # the hub sent it twice
    assert (term.sync.rejected, term.blacklist.version, term.blacklist.count) == ({}, 1, 1)


def test_snapshot_chunks_out_of_order_leave_the_list_in_force(term):
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [5], []), counter=1))
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 9, frames.BL_SNAPSHOT, 1, 2, [7], []), counter=2))
    assert term.sync.rejected == {"snapshot_order": 1}
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 9, frames.BL_SNAPSHOT, 0, 2, [7, 8], []), counter=3))
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 8, frames.BL_SNAPSHOT, 1, 2, [9], []), counter=4))
    assert term.sync.rejected == {"snapshot_order": 2}
    assert (term.blacklist.version, term.blacklist.contains(5), term.blacklist.contains(7)) == (1, True, False)
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 9, frames.BL_SNAPSHOT, 1, 2, [9], []), counter=5))
    assert (term.blacklist.version, term.blacklist.count, term.blacklist.contains(5)) == (9, 3, False)
    # A chunk skipped (lost, or overtaken): the list must not go in without it.
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 12, frames.BL_SNAPSHOT, 0, 3, [1], []), counter=6))
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 12, frames.BL_SNAPSHOT, 2, 3, [3], []), counter=7))
    assert term.sync.rejected == {"snapshot_order": 3}
    assert (term.blacklist.version, term.blacklist.count) == (9, 3)


# ---------------------------------------------------------------- the upload task survives


def test_an_upload_round_that_fails_is_tried_again_and_loses_nothing(term, monkeypatch):
    record = bytes((1,)) + bytes(range(1, 56))   # a version 1 record's size and version byte (SPEC.md §4.1)
    term.journal.append(1, NOW, record)
    term.journal.mark(1, 1)
    unsynced = term.journal.unsynced
    failures = [MemoryError("memory allocation failed")]  # what a fragmented heap raises mid-scan

    def flaky(limit):
        if failures:
            raise failures.pop()
        return unsynced(limit)

    monkeypatch.setattr(term.journal, "unsynced", flaky)
    monkeypatch.setattr("terminal.sync._sleep_ms", lambda ms: asyncio.sleep(0))

    async def run_until_uploaded():
        task = asyncio.create_task(term.sync.upload_loop())
        while not term.client.published:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(asyncio.wait_for(run_until_uploaded(), 5))
    [(topic, payload, qos, _retain)] = term.client.published
    frame = frames.decode(FRAME_MAC, payload)
    assert (topic, qos, frame.type) == (topics.topic(TID, topics.UP), 1, frames.T_UPLOAD)
    assert hub_frames.parse_upload(frame.body) == [(1, record)]
    assert (term.sync.upload_errors, type(term.sync.last_upload_error)) == (1, MemoryError)
    assert term.journal.depth() == 1  # trimmed only by the hub's ack


def test_the_watchdog_is_fed_only_while_every_task_runs(tmp_path):
    from sim.board import SimBoard
    from terminal.runtime import Terminal as Runtime

    board = SimBoard(str(tmp_path / "board"))
    board.keystore().set("terminal_key", KEY)
    runtime = Runtime(board, {"terminal_id": TID, "broker_host": "127.0.0.1", "broker_port": 9})

    async def check():
        runtime.start()
        await asyncio.sleep(0)
        assert runtime.healthy()
        runtime.tasks["upload"].cancel()  # a task that ended for any reason
        await asyncio.sleep(0)
        assert not runtime.healthy()
        await runtime.stop()

    asyncio.run(check())
