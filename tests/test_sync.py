"""terminal/sync.py on CPython: downlink refusals one by one, and what survives a reboot.

The same Sync runs on the terminal; tests/test_sync_micropython.py drives it
under MicroPython against Mosquitto. Here the MQTT client is a stand-in that
records what Sync publishes, so every refusal reason can be reached exactly.
"""

import asyncio
import gc
import struct

import pytest

from protocol import admin_card, card, card_issue, frames, hub_frames, topics
from protocol.card import BALANCE_MAX_CENTS
from protocol.hub_frames import OFFLINE_S_MAX, PRICE_MAX_CENTS
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.mqtt import MQTTError
from terminal.state import TerminalState
from terminal.sync import _CLOCK_AHEAD_MAX_S as CLOCK_AHEAD_MAX_S
from terminal.sync import _CLOCK_OFF_MAX_S as CLOCK_OFF_MAX_S
from terminal.sync import _COUNTER_STEP_MAX as COUNTER_STEP_MAX
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



def test_frames_read_into_the_links_one_buffer_are_applied_and_a_components_body_outlives_it(term):
    """As the MicroPython client delivers them: each payload a memoryview of one read buffer, overwritten by the
    next packet. Sync's own frames are applied from the view; a component's handler keeps a body of its own."""
    read_buffer = bytearray(1024)

    def deliver(frame):
        read_buffer[:len(frame)] = frame
        term.receive(memoryview(read_buffer)[:len(frame)])
        read_buffer[:] = bytes(len(read_buffer))    # the next packet lands where this one was

    kept = []
    term.sync.handle(frames.T_PRICE_LIST, lambda frame: kept.append(frame.body))
    prices = bytes(range(40))
    deliver(down(frames.T_PRICE_LIST, prices, counter=1))
    deliver(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 1, frames.BL_DELTA, 0, 1, [5, 9], []), counter=2))
    deliver(down(frames.T_CONFIG, config(6), counter=3))
    assert [bytes(body) for body in kept] == [prices]
    assert (term.sync.rejected, term.blacklist.version, term.blacklist.count) == ({}, 1, 2)
    assert (term.blacklist.contains(5), term.blacklist.contains(7), term.wallet.config.version) == (True, False, 6)
    assert term.state.config_hex == config(6).hex()


# ---------------------------------------------------------------- what one authentic downlink may change

YEAR_S = 365 * 86400
ESP32_RESTART_S = 946684800  # 2000-01-01: where an ESP32's clock restarts after a power cut


def set_clock(term, time_s=NOW, counter=1):
    term.receive(down(frames.T_TIME, counter=counter, time_s=time_s))


@pytest.mark.parametrize("time_s, reason", [
    (NOW - 1, "time_backwards"),
    (NOW - 10 * YEAR_S, "time_backwards"),
    (NOW + CLOCK_AHEAD_MAX_S + 1, "time_ahead"),
    (0xFFFFFFFF, "time_ahead"),
], ids=["a_second_back", "ten_years_back", "over_a_day_ahead", "end_of_epoch"])
def test_a_time_frame_past_the_bounds_is_refused_and_the_next_good_one_taken(term, time_s, reason):
    set_clock(term)
    term.receive(down(frames.T_TIME, counter=2, time_s=time_s))
    assert term.sync.rejected == {reason: 1}
    assert (term.board.now, term.wallet.last_hub_contact_s, term.state.down_counter) == (NOW, NOW, 2)
    term.receive(down(frames.T_TIME, counter=3, time_s=NOW + 60))
    assert (term.sync.rejected, term.board.now, term.state.last_hub_contact_s) == ({reason: 1}, NOW + 60, NOW + 60)


def test_a_counter_far_ahead_is_refused_and_left_unspent(term):
    term.receive(down(frames.T_CONFIG, config(3), counter=10))
    term.receive(down(frames.T_CONFIG, config(4), counter=10 + COUNTER_STEP_MAX + 1))
    term.receive(down(frames.T_CONFIG, config(5), counter=0xFFFFFFFF))
    assert term.sync.rejected == {"counter_jump": 2}
    assert (term.state.down_counter, term.wallet.config.version) == (10, 3)
    term.receive(down(frames.T_CONFIG, config(6), counter=10 + COUNTER_STEP_MAX))  # the hub's next frame
    assert (term.sync.rejected, term.state.down_counter, term.wallet.config.version) == (
        {"counter_jump": 2}, 10 + COUNTER_STEP_MAX, 6)


def test_the_first_frame_may_carry_any_counter(term):
    term.receive(down(frames.T_CONFIG, config(3), counter=0xFFFFFFF0))  # a terminal flashed again, the hub's
    assert (term.sync.rejected, term.state.down_counter) == ({}, 0xFFFFFFF0)  # counter long running


def test_a_time_frame_within_a_day_of_a_running_clock_is_taken(term):
    set_clock(term)
    term.board.now += 10
    term.receive(down(frames.T_TIME, counter=2, time_s=NOW + 10 + CLOCK_AHEAD_MAX_S))
    assert (term.sync.rejected, term.board.now) == ({}, NOW + 10 + CLOCK_AHEAD_MAX_S)


def test_the_first_time_frame_sets_any_clock_after_2020(term):
    term.receive(down(frames.T_TIME, counter=1, time_s=1500000000))  # 2017: no hub runs that far back
    assert (term.sync.rejected, term.board.now, term.state.last_hub_contact_s) == ({"time_backwards": 1}, NOW, 0)
    set_clock(term, NOW + 5 * YEAR_S, counter=2)
    assert (term.sync.rejected, term.board.now) == ({"time_backwards": 1}, NOW + 5 * YEAR_S)


def test_after_a_power_cut_the_clock_takes_a_time_up_to_two_years_on(term, tmp_path):
    set_clock(term)
    term.close()
    rebooted = Terminal(tmp_path)
    try:
        rebooted.board.now = ESP32_RESTART_S  # the clock restarted behind the last contact
        rebooted.receive(down(frames.T_TIME, counter=2, time_s=NOW + CLOCK_OFF_MAX_S + 1))
        assert (rebooted.sync.rejected, rebooted.board.now) == ({"time_ahead": 1}, ESP32_RESTART_S)
        rebooted.receive(down(frames.T_TIME, counter=3, time_s=NOW + 90 * 86400))  # off for a season
        assert (rebooted.sync.rejected, rebooted.board.now) == ({"time_ahead": 1}, NOW + 90 * 86400)
        # The blacklist confirmed before the clock was set counted for nothing: ask for it again.
        (topic, payload, _qos, _retain), = rebooted.client.published
        assert frames.decode(FRAME_MAC, payload).type == frames.T_SYNC
    finally:
        rebooted.close()


@pytest.mark.parametrize("ftype, body", [
    (frames.T_ACK, hub_frames.ack_body(0, 0, 0)),
    (frames.T_CONFIG, config()),
    (frames.T_COMMAND, hub_frames.command_body(frames.CMD_REPORT_STATUS)),
    (frames.T_BLACKLIST, hub_frames.blacklist_body(0, 0, frames.BL_DELTA, 0, 1, [], [])),
], ids=["ack", "config", "command", "blacklist_confirmed"])
@pytest.mark.parametrize("time_s", [NOW - 10 * YEAR_S, 0xFFFFFFFF], ids=["past", "future"])
def test_other_frames_count_as_contact_at_most_up_to_the_terminals_clock(term, tmp_path, ftype, body, time_s):
    set_clock(term)
    term.receive(down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 0, frames.BL_DELTA, 0, 1, [], []),
                      counter=2))
    term.board.now += 60
    term.receive(down(ftype, body, counter=3, time_s=time_s))
    assert term.sync.rejected == {}
    at_most_now = NOW + 60 if time_s > NOW else NOW
    assert (term.wallet.last_hub_contact_s, term.state.last_hub_contact_s) == (at_most_now, at_most_now)
    updated = at_most_now if ftype == frames.T_BLACKLIST else NOW
    assert (term.wallet.blacklist_updated_s, term.state.blacklist_updated_s) == (updated, updated)
    term.close()
    rebooted = Terminal(tmp_path)
    try:
        assert NOW <= rebooted.wallet.last_hub_contact_s <= at_most_now  # an ack alone is not written to flash
        assert rebooted.wallet.blacklist_updated_s == updated
    finally:
        rebooted.close()


def config_with(**fields):
    """A T_CONFIG body with these fields, packed by hand: the hub's encoder refuses what is out of range."""
    cfg = frames.Config(version=4, role=frames.ROLE_RIDE, fixed_price_cents=450)
    cfg.__dict__.update(fields)
    return struct.pack(">HBHIIIIIHH", cfg.version, cfg.role, cfg.merchant_id, cfg.fixed_price_cents, cfg.tx_cap_cents,
                       cfg.daily_cap_cents, cfg.max_offline_s, cfg.blacklist_max_age_s, cfg.category, cfg.park_id)


@pytest.mark.parametrize("fields, reason", [
    (dict(role=0), "malformed"), (dict(role=9), "malformed"), (dict(category=16), "malformed"),
] + [(fields, "config_range") for fields in [
    dict(fixed_price_cents=BALANCE_MAX_CENTS + 1), dict(tx_cap_cents=BALANCE_MAX_CENTS + 1),
    dict(daily_cap_cents=0xFFFFFFFF),
    dict(max_offline_s=0), dict(max_offline_s=OFFLINE_S_MAX + 1), dict(max_offline_s=0xFFFFFFFF),
    dict(blacklist_max_age_s=0), dict(blacklist_max_age_s=OFFLINE_S_MAX + 1),
]], ids=lambda v: "-".join("%s=%d" % kv for kv in v.items()) if isinstance(v, dict) else v)
def test_a_config_out_of_range_is_refused_and_the_one_in_force_kept(term, tmp_path, fields, reason):
    term.receive(down(frames.T_CONFIG, config(3), counter=1))
    term.receive(down(frames.T_CONFIG, config_with(**fields), counter=2))
    assert term.sync.rejected == {reason: 1}
    assert (term.wallet.config.version, term.state.config_hex, term.state.down_counter) == (3, config(3).hex(), 2)
    term.close()
    rebooted = Terminal(tmp_path)
    try:
        assert rebooted.wallet.config.version == 3
        rebooted.receive(down(frames.T_CONFIG, config_with(version=5), counter=3))
        assert (rebooted.sync.rejected, rebooted.wallet.config.version) == ({}, 5)
    finally:
        rebooted.close()


def test_a_config_price_may_be_what_a_card_can_hold():
    assert PRICE_MAX_CENTS == BALANCE_MAX_CENTS  # the bound the config codec keeps without the card codec


@pytest.mark.parametrize("fields", [
    dict(tx_cap_cents=0, daily_cap_cents=0),  # no cap: the card's balance is the limit
    dict(fixed_price_cents=BALANCE_MAX_CENTS, tx_cap_cents=BALANCE_MAX_CENTS, daily_cap_cents=BALANCE_MAX_CENTS),
    dict(max_offline_s=1, blacklist_max_age_s=1), dict(max_offline_s=OFFLINE_S_MAX, blacklist_max_age_s=OFFLINE_S_MAX),
], ids=["no_caps", "caps_at_the_balance_maximum", "one_second", "a_week"])
def test_a_config_at_the_bounds_is_taken(term, fields):
    term.receive(down(frames.T_CONFIG, config_with(**fields), counter=1))
    assert (term.sync.rejected, term.wallet.config.version) == ({}, 4)


def test_a_stored_config_out_of_range_is_dropped_at_boot(tmp_path):
    state = TerminalState(str(tmp_path))
    state.config_hex = config_with(max_offline_s=0).hex()  # taken by a firmware without the bounds
    state.save()
    booted = Terminal(tmp_path)
    try:
        assert (booted.wallet.config, booted.state.config_hex) == (None, "")
        booted.receive(down(frames.T_CONFIG, config(3), counter=1))  # what the first T_SYNC brings
        assert booted.wallet.config.version == 3
    finally:
        booted.close()


PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)


def test_hostile_downlinks_leave_the_terminal_serving_cards_also_after_a_reboot(tmp_path):
    """The whole terminal (runtime, wallet, a virtual card): authentic frames with hostile values."""
    from sim.board import SimBoard
    from sim.cards import issued_card
    from terminal.runtime import Terminal as Runtime

    clock = [NOW]
    today = card.day_of(NOW)
    visitor = issued_card(PARK, bytes.fromhex("04a1b2c3d4e5f6"),
                          card.CardInfo(500, expiry_day=today + 30, issue_day=today), 10000, NOW - 86400)

    def boot():
        board = SimBoard(str(tmp_path / "board"), clock=lambda: clock[0])  # an RTC that kept time
        keys = board.keystore()
        keys.set("terminal_key", KEY)
        keys.set("park_keys", admin_card.booth_keys(PARK).pack())  # authorised before
        return Runtime(board, {"terminal_id": TID, "broker_host": "127.0.0.1", "broker_port": 9})

    def deliver(runtime, *payloads):
        async def go():
            for payload in payloads:
                runtime.sync.on_message(runtime.sync.down_topic, payload, False)
        asyncio.run(go())

    def tap(runtime):
        runtime.board.field.add(visitor)
        try:
            return runtime.wallet.debit(100)
        finally:
            runtime.board.field.remove(visitor)

    def shut_down(runtime):
        runtime.journal.close()
        runtime.blacklist.close()

    past, future = NOW - 10 * YEAR_S, NOW + 10 * YEAR_S
    pos = frames.Config(version=3, role=frames.ROLE_POS, category=1).encode()
    terminal = boot()
    deliver(terminal, down(frames.T_TIME, counter=1), down(frames.T_CONFIG, pos, counter=2),
            down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 0, frames.BL_DELTA, 0, 1, [], []), counter=3))
    assert tap(terminal).ok
    deliver(terminal,
            down(frames.T_TIME, counter=4, time_s=past),
            down(frames.T_TIME, counter=5, time_s=future),
            down(frames.T_CONFIG, config_with(max_offline_s=0, role=frames.ROLE_POS), counter=6, time_s=past),
            down(frames.T_ACK, hub_frames.ack_body(0, 0, 0), counter=7, time_s=past),
            down(frames.T_BLACKLIST, hub_frames.blacklist_body(0, 0, frames.BL_DELTA, 0, 1, [], []), counter=8,
                 time_s=past))
    assert terminal.sync.rejected == {"time_backwards": 1, "time_ahead": 1, "config_range": 1}
    clock[0] += 60
    result = tap(terminal)
    assert result.ok, result
    shut_down(terminal)

    clock[0] += 3600
    terminal = boot()
    try:
        assert (terminal.wallet.config.version, terminal.wallet.config.max_offline_s) == (3, 86400)
        result = tap(terminal)
        assert result.ok, result
        deliver(terminal, down(frames.T_TIME, counter=9, time_s=clock[0]))  # the hub's next good frame
        assert terminal.sync.rejected == {} and tap(terminal).ok
    finally:
        shut_down(terminal)


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
    assert (topic, frame.type, hub_frames.parse_sync(frame.body)) == (topics.topic(TID, topics.UP), frames.T_SYNC, (2, 0, 128))


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
    monkeypatch.setattr("terminal.sync.sleep_ms", lambda ms: asyncio.sleep(0))

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
    status = hub_frames.parse_status(frames.decode(FRAME_MAC, term.sync.status_frame(1)).body)
    assert status.memory_errors == 1  # reported (SPEC.md §5.3), and the round was tried again
    assert term.journal.depth() == 1  # trimmed only by the hub's ack


@pytest.mark.parametrize("password, flags", [(None, 0), (b"secret", 0xC0)], ids=["open_broker", "password"])
def test_a_terminal_sends_a_user_name_only_with_a_password(tmp_path, password, flags):
    """MQTT 3.1.1 §3.1.2.8-9: the server may refuse a user name with no password (RabbitMQ does)."""
    from sim.board import SimBoard
    from terminal import mqtt, mqtt_codec
    from terminal.runtime import Terminal as Runtime

    board = SimBoard(str(tmp_path / "board"))
    board.keystore().set("terminal_key", KEY)
    if password is not None:
        board.keystore().set("broker_password", password)

    async def connect_flags():
        connects = asyncio.Queue()

        async def handle(reader, writer):
            await connects.put(await reader.read(4096))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        runtime = Runtime(board, {"terminal_id": TID, "broker_host": "127.0.0.1",
                                  "broker_port": server.sockets[0].getsockname()[1]})
        task = asyncio.create_task(runtime.client.run())
        packet = await asyncio.wait_for(connects.get(), 10)
        runtime.client.close()
        await asyncio.wait_for(task, 5)
        server.close()
        runtime.journal.close()
        runtime.blacklist.close()
        _length, body = mqtt_codec.decode_remaining_length(packet)
        assert packet[0] == 0x10 and packet[body:body + 7] == b"\x00\x04MQTT\x04"  # CONNECT, 3.1.1 (§3.1.2)
        return packet[body + 7]

    assert asyncio.run(connect_flags()) & 0xC0 == flags  # §3.1.2.8 User Name, §3.1.2.9 Password flags


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
