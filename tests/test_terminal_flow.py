"""The terminal's tap flow (terminal/app.py) on SimBoard: scripted keypad, the real RC522 driver
on the virtual chip, a real journal and blacklist, and the recorded screen and buzzer.

The coroutines are driven directly: keys are fed and cards placed before a step, and
where the flow must be caught while it waits (for a card, for the card to leave) the
test takes event-loop turns with ``asyncio.sleep(0)`` against a bounded count of turns,
never against the clock.
"""

import asyncio
import os
import runpy
import sys
import types

import pytest

from conftest import FIRMWARE
from protocol import card, card_issue, frames, hub_frames
from protocol.config import ROLE_GATE, ROLE_POS, ROLE_RIDE, Config
from protocol.record import FLAG_OFFLINE, RECORD_SIZE, Record, record_mac_for
from sim.board import RecordingRelay, SimBoard
from sim.cards import card_balance, issued_card
from terminal import app as terminal_app
from terminal import journal as jr
from terminal import ui
from terminal.app import TerminalApp
from terminal.blacklist import Blacklist
from terminal.journal import Journal
from terminal.roles import pos
from terminal.wallet import Wallet

PARK = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"C" * 32)
TERMINAL_KEY = b"K" * 32
NOW = 1795600000
TODAY = card.day_of(NOW)
CARD_NO = 500
TURNS_MAX = 500
IDLE_POS = ("ParkCard pos", "Ready")


@pytest.fixture(autouse=True)
def fast_loops(monkeypatch):
    """Polls and result screens take no time: every sleep is one event-loop turn."""
    monkeypatch.setattr(terminal_app, "POLL_MS", 0)
    monkeypatch.setattr(terminal_app, "RESULT_MS", 0)


class Terminal:
    """One terminal assembled as terminal/runtime.py does, on a SimBoard."""

    def __init__(self, tmp_path, role=ROLE_POS, price_cents=0, authorised=True, configured=True, **cfg):
        self.board = SimBoard(str(tmp_path / "board"))
        self.field = self.board.field
        self.display = self.board.display()
        self.keypad = self.board.keypad()
        self.buzzer = self.board.buzzer()
        data = self.board.data_dir()
        self.journal = Journal(data + "/journal", RECORD_SIZE, 4096, 8)
        self.blacklist = Blacklist(data + "/blacklist")
        self.wallet = Wallet(self.board.reader(), self.journal, self.blacklist, 12, record_mac_for(TERMINAL_KEY),
                             lambda: NOW)
        if authorised:
            self.wallet.park_keys = PARK
        if configured:
            self.wallet.config = Config(version=3, role=role, fixed_price_cents=price_cents, category=1, **cfg)
        self.wallet.last_hub_contact_s = NOW
        self.wallet.blacklist_updated_s = NOW
        self.app = TerminalApp(self.wallet, ui.UI(self.display, self.buzzer), self.keypad)
        self.role = self.app.role(role)  # the role module the config names

    def tap(self, virtual):
        """A card comes into the field (a fresh tap; any other card leaves)."""
        for other in list(self.field.cards):
            self.field.remove(other)
        self.field.add(virtual)
        return virtual

    def lift(self, virtual):
        """The card leaves the field."""
        self.field.remove(virtual)


def new_card(balance_cents=10000, card_no=CARD_NO, uid=bytes.fromhex("04a1b2c3d4e5f6"), **info):
    fields = dict(tier=0, flags=0, expiry_day=TODAY + 30, perms=0xFFFF, issue_day=TODAY, deposit_cents=0)
    fields.update(info)
    return issued_card(PARK, uid, card.CardInfo(card_no, **fields), balance_cents, NOW - 86400)


def balance_of(virtual):
    return card_balance(PARK, virtual).balance_cents


def blocks_of(virtual):
    return [bytes(b) for b in virtual.blocks]


async def until(condition, turns_max=TURNS_MAX):
    """Give the other tasks event-loop turns until condition() holds; fail after turns_max turns."""
    for _ in range(turns_max):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held within %d turns" % turns_max)


async def turns(n):
    """Give the other tasks n event-loop turns (n polls of a waiting loop)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def stop(task):
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- pos: keyed amount, then a tap -------------------------------------------------------------


def test_pos_sale_approved_shows_amount_balance_and_beeps(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card(10000))
    t.keypad.feed("1250#")
    result = asyncio.run(t.role.sale_once())
    assert result.ok and result.amount_cents == 1250 and result.balance_cents == 8750
    assert t.display.history == [
        IDLE_POS,
        ("Amount", "0.00"), ("Amount", "0.01"), ("Amount", "0.12"), ("Amount", "1.25"), ("Amount", "12.50"),
        ("Pay 12.50", "Tap card"),
        ("APPROVED 12.50", "#1 Bal 87.50"),
    ]
    assert t.buzzer.played == [ui.BEEP_APPROVED]
    assert balance_of(vc) == 8750
    assert t.journal.status(result.seq) == jr.COMMITTED
    assert t.app.taps == 1


def test_pos_waits_for_the_card_then_charges_it(tmp_path):
    t = Terminal(tmp_path)
    vc = new_card(10000)
    t.keypad.feed("500#")

    async def scenario():
        sale = asyncio.create_task(t.role.sale_once())
        await until(lambda: t.display.lines == ("Pay 5.00", "Tap card"))
        await turns(20)  # twenty polls with an empty field
        assert not sale.done() and t.buzzer.played == []
        t.tap(vc)
        return await sale

    result = asyncio.run(scenario())
    assert result.ok and t.display.lines == ("APPROVED 5.00", "#1 Bal 95.00")
    assert balance_of(vc) == 9500


def test_pos_card_pulled_mid_read_keeps_the_sale_for_a_second_tap(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card(10000))
    t.field.remove_after(3)  # the card leaves during its select: READ_FAILED
    t.keypad.feed("1250#")

    async def scenario():
        sale = asyncio.create_task(t.role.sale_once())
        await until(lambda: t.display.lines == ("REFUSED", "Tap again"))
        await turns(20)
        assert not sale.done()  # still this sale: the vendor does not key the amount again
        t.tap(vc)
        return await sale

    result = asyncio.run(scenario())
    assert result.ok and t.display.lines == ("APPROVED 12.50", "#1 Bal 87.50")
    assert balance_of(vc) == 8750 and t.app.taps == 1


@pytest.mark.parametrize("card_setup,blacklisted,text", [
    (dict(balance_cents=1000), False, "Low balance"),
    (dict(expiry_day=TODAY - 1), False, "Card expired"),
    (dict(), True, "Card blocked"),
    (dict(perms=0b1), False, "Not valid here"),   # this terminal's category is 1
])
def test_pos_refusal_shows_the_reason_and_takes_nothing(tmp_path, card_setup, blacklisted, text):
    t = Terminal(tmp_path)
    if blacklisted:
        t.blacklist.apply_delta(0, 1, [CARD_NO], [])
    vc = t.tap(new_card(**card_setup))
    before = balance_of(vc)
    t.keypad.feed("1250#")
    result = asyncio.run(t.role.sale_once())
    assert not result.ok
    assert t.display.lines == ("REFUSED", text)
    assert t.buzzer.played == [ui.BEEP_REFUSED]
    assert balance_of(vc) == before
    assert t.app.taps == 1


def test_pos_blocked_card_is_locked_when_tapped(tmp_path):
    t = Terminal(tmp_path)
    t.blacklist.apply_delta(0, 1, [CARD_NO], [])
    vc = t.tap(new_card())
    t.keypad.feed("100#")
    asyncio.run(t.role.sale_once())
    slot = card_balance(PARK, vc)
    assert slot.locked and slot.balance_cents == 10000


def test_pos_over_the_transaction_cap_is_refused(tmp_path):
    t = Terminal(tmp_path, tx_cap_cents=1000)
    vc = t.tap(new_card())
    t.keypad.feed("1001#")
    asyncio.run(t.role.sale_once())
    assert t.display.lines == ("REFUSED", "Over limit")
    assert balance_of(vc) == 10000


def test_clear_on_an_empty_amount_cancels_the_sale(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card())
    before = blocks_of(vc)
    t.keypad.feed("*")
    assert asyncio.run(t.role.sale_once()) is None
    assert t.display.history == [IDLE_POS, ("Amount", "0.00")]
    assert blocks_of(vc) == before and t.journal.last_seq() == 0 and t.buzzer.played == []


def test_clear_on_an_amount_resets_it_and_a_second_clear_cancels(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card())
    t.keypad.feed("12*3#")
    result = asyncio.run(t.role.sale_once())
    assert result.ok and result.amount_cents == 3
    assert ("Amount", "0.12") in t.display.history
    assert t.display.history[-4:] == [("Amount", "0.00"), ("Amount", "0.03"), ("Pay 0.03", "Tap card"),
                                      ("APPROVED 0.03", "#1 Bal 99.97")]
    t.keypad.feed("45**")
    assert asyncio.run(t.role.sale_once()) is None
    assert t.display.lines == ("Amount", "0.00")
    assert balance_of(vc) == 9997


@pytest.mark.parametrize("keys,cents", [
    ("#0#5#", 5),       # enter on an empty amount is ignored
    ("12A5#", 125),     # the balance key only works on an empty amount
    ("12BCD5#", 125),   # keys without a meaning here are ignored
])
def test_keys_without_effect_during_amount_entry(tmp_path, keys, cents):
    t = Terminal(tmp_path)
    t.tap(new_card())
    t.keypad.feed(keys)
    result = asyncio.run(t.role.sale_once())
    assert result.ok and result.amount_cents == cents
    assert ("Balance", "Tap card") not in t.display.history


def test_cancel_while_waiting_for_the_card(tmp_path):
    t = Terminal(tmp_path)
    vc = new_card()
    t.keypad.feed("1250#")

    async def scenario():
        sale = asyncio.create_task(t.role.sale_once())
        await until(lambda: t.display.lines == ("Pay 12.50", "Tap card"))
        await turns(5)
        t.keypad.feed("*")
        cancelled = await sale
        t.tap(vc)  # the card arrives after the cancel: nobody is charging it
        await turns(5)
        return cancelled

    assert asyncio.run(scenario()) is None
    assert t.display.lines == ("Cancelled", "")
    assert balance_of(vc) == 10000 and t.journal.last_seq() == 0 and t.buzzer.played == []


def test_waiting_for_the_card_times_out_as_cancelled(tmp_path, monkeypatch):
    monkeypatch.setattr(terminal_app, "POLL_MS", 1)
    monkeypatch.setattr(terminal_app, "CARD_WAIT_MS", 3)
    t = Terminal(tmp_path)
    t.keypad.feed("100#")
    assert asyncio.run(t.role.sale_once()) is None
    assert t.display.lines == ("Cancelled", "")


def test_amount_digits_are_capped(tmp_path):
    t = Terminal(tmp_path, tx_cap_cents=0, daily_cap_cents=0)
    vc = t.tap(new_card(5000000))
    digits_max = pos.AMOUNT_DIGITS_MAX
    t.keypad.feed("123456789"[:digits_max + 2] + "#")
    result = asyncio.run(t.role.sale_once())
    assert digits_max == 7
    assert result.ok and result.amount_cents == 1234567
    assert ("Amount", "12345.67") in t.display.history
    assert ("Amount", "123456.78") not in t.display.history
    assert t.display.lines == ("APPROVED 12345.67", "#1 Bal 37654.33")
    assert balance_of(vc) == 5000000 - 1234567


# -- tap to see the balance --------------------------------------------------------------------


async def check_balance(t, shown):
    """'A' on an empty amount, the card's answer shown, back to amount entry, then '*' ends the sale."""
    t.keypad.feed("A")
    sale = asyncio.create_task(t.role.sale_once())
    await until(lambda: shown in t.display.history)
    await until(lambda: t.display.lines == ("Amount", "0.00"))
    t.keypad.feed("*")
    return await sale


def test_balance_check_with_A_shows_the_card_and_writes_nothing(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card(4321))
    before = blocks_of(vc)
    assert asyncio.run(check_balance(t, ("Card %d" % CARD_NO, "Balance 43.21"))) is None
    i = t.display.history.index(("Balance", "Tap card"))
    assert t.display.history[i:i + 2] == [("Balance", "Tap card"), ("Card %d" % CARD_NO, "Balance 43.21")]
    assert t.buzzer.played == [ui.BEEP_APPROVED]
    assert blocks_of(vc) == before and t.journal.last_seq() == 0


def test_balance_check_then_pay_needs_the_card_to_come_back(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card(4321))
    t.keypad.feed("A")

    async def scenario():
        sale = asyncio.create_task(t.role.sale_once())
        await until(lambda: t.display.lines == ("Amount", "0.00") and t.buzzer.played)
        t.keypad.feed("321#")
        await until(lambda: t.display.lines == ("Pay 3.21", "Tap card"))
        await turns(20)  # the card still lies on the reader, halted after the balance check
        assert not sale.done() and balance_of(vc) == 4321
        t.lift(vc)
        t.tap(vc)
        return await sale

    result = asyncio.run(scenario())
    assert result.ok and t.display.lines == ("APPROVED 3.21", "#1 Bal 40.00")
    assert balance_of(vc) == 4000


def test_balance_check_of_a_tampered_card_shows_the_refusal(tmp_path):
    t = Terminal(tmp_path)
    vc = new_card()
    vc.blocks[5][3] ^= 0x01  # the only valid slot is broken
    t.tap(vc)
    assert asyncio.run(check_balance(t, ("REFUSED", "Card invalid"))) is None
    assert t.buzzer.played == [ui.BEEP_REFUSED]


# -- ride: fixed price, one tap one ride ------------------------------------------------------


def test_ride_debits_the_fixed_price_and_a_held_card_is_charged_once(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=300)
    vc = t.tap(new_card(10000))

    async def scenario():
        first = await t.role.ride_once(300)
        assert first.ok and t.display.lines == ("APPROVED 3.00", "Balance 97.00")
        second = asyncio.create_task(t.role.ride_once(300))
        await turns(50)  # fifty polls with the card still on the reader
        assert not second.done()
        assert balance_of(vc) == 9700 and t.display.lines == ("ParkCard ride", "Price 3.00")
        t.lift(vc)
        await turns(5)
        t.tap(vc)  # the next ride: the card left and came back
        return await second

    second = asyncio.run(scenario())
    assert second.ok and t.display.lines == ("APPROVED 3.00", "Balance 94.00")
    assert balance_of(vc) == 9400
    assert t.buzzer.played == [ui.BEEP_APPROVED, ui.BEEP_APPROVED]
    assert t.journal.last_seq() == 2 and t.app.taps == 2


def test_ride_role_under_run_serves_taps_until_cancelled(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=250)
    vc = t.tap(new_card(1000))

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.app.taps == 1)
        await turns(50)
        assert t.app.taps == 1  # held on the reader: one ride
        for taps in (2, 3, 4, 5):
            t.lift(vc)
            t.tap(vc)
            await until(lambda: t.app.taps == taps)
        await stop(loop)

    asyncio.run(scenario())
    # four rides of 2.50 from 10.00, then the fifth is refused for the balance
    assert balance_of(vc) == 0
    assert t.display.lines == ("REFUSED", "Low balance")
    assert t.buzzer.played == [ui.BEEP_APPROVED] * 4 + [ui.BEEP_REFUSED]


def test_ride_refusal_is_not_repeated_while_the_card_is_held(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=300)
    t.tap(new_card(100))

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.app.taps == 1)
        await turns(50)
        await stop(loop)

    asyncio.run(scenario())
    assert t.app.taps == 1 and t.buzzer.played == [ui.BEEP_REFUSED]


def test_ride_charges_the_new_price_from_the_next_rider_on(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=300)
    vc = t.tap(new_card(10000))

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.app.taps == 1)
        t.lift(vc)
        await until(lambda: t.display.lines == ("ParkCard ride", "Price 3.00"))  # waiting for the next rider
        t.wallet.config = Config(version=4, role=ROLE_RIDE, fixed_price_cents=500, category=1)  # T_CONFIG
        await until(lambda: t.display.lines == ("ParkCard ride", "Price 5.00"))
        t.tap(vc)
        await until(lambda: t.app.taps == 2)
        await stop(loop)

    asyncio.run(scenario())
    assert balance_of(vc) == 10000 - 300 - 500


def test_ride_turned_pos_waits_for_an_amount(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=300)

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.display.lines == ("ParkCard ride", "Price 3.00"))
        t.wallet.config = Config(version=4, role=ROLE_POS, category=1)
        await until(lambda: t.display.lines == ("Amount", "0.00"))
        vc = t.tap(new_card(10000))
        await turns(20)
        await stop(loop)
        return vc

    vc = asyncio.run(scenario())
    assert balance_of(vc) == 10000 and t.app.taps == 0


def test_ride_locked_without_a_card_is_no_tap_and_no_beep(tmp_path):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=300)

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.display.lines == ("ParkCard ride", "Price 3.00"))
        t.wallet.park_keys = None  # what CMD_LOCK does (terminal/authorise.py)
        await until(lambda: t.display.lines == ("Not authorised", "Tap admin card"))
        await stop(loop)

    asyncio.run(scenario())
    assert t.app.taps == 0 and t.buzzer.played == []


# -- not authorised, other roles ----------------------------------------------------------------


@pytest.mark.parametrize("authorised,configured", [(False, True), (True, False), (False, False)])
def test_terminal_without_keys_or_config_shows_not_authorised(tmp_path, authorised, configured):
    t = Terminal(tmp_path, authorised=authorised, configured=configured)
    vc = t.tap(new_card())
    t.keypad.feed("100#")

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.display.lines == ("Not authorised", "Tap admin card"))
        await turns(20)
        await stop(loop)

    asyncio.run(scenario())
    assert t.display.lines == ("Not authorised", "Tap admin card")
    assert t.keypad.pending == list("100#")  # no amount entry was offered
    assert balance_of(vc) == 10000 and t.journal.last_seq() == 0 and t.app.taps == 0


def test_sale_refused_when_the_keys_are_withdrawn_mid_flow(tmp_path):
    t = Terminal(tmp_path)
    vc = t.tap(new_card())
    t.wallet.park_keys = None  # a hub CMD_DEAUTHORISE between the loop's check and the tap
    t.keypad.feed("100#")
    result = asyncio.run(t.role.sale_once())
    assert not result.ok and t.display.lines == ("REFUSED", "Not authorised")
    assert balance_of(vc) == 10000


def test_a_gate_without_its_gate_config_says_so_and_takes_nothing(tmp_path):
    t = Terminal(tmp_path, role=ROLE_GATE)
    t.app.relay = RecordingRelay()
    vc = t.tap(new_card())

    async def scenario():
        loop = asyncio.create_task(t.app.run())
        await until(lambda: t.display.lines == ("Gate", "No gate config"))
        await stop(loop)

    asyncio.run(scenario())
    assert balance_of(vc) == 10000 and t.app.relay.openings == []


# -- a write whose outcome is unknown (SPEC.md §3.5) ----------------------------------------------


@pytest.mark.parametrize("keep,charged", [(16, True), (0, False)])
def test_ride_retap_after_an_uncertain_write_charges_one_ride(tmp_path, keep, charged):
    t = Terminal(tmp_path, role=ROLE_RIDE, price_cents=300)
    vc = t.tap(new_card(10000))
    t.field.tear_next_write(keep)  # the card leaves during the write: landed (16) or not (0)

    async def scenario():
        ride = asyncio.create_task(t.role.ride_once(300))
        await until(lambda: t.display.lines == ("REFUSED", "Tap card again"))
        assert balance_of(vc) == (9700 if charged else 10000)
        t.tap(vc)
        return await ride

    result = asyncio.run(scenario())
    assert result.ok and t.display.lines == ("APPROVED 3.00", "Balance 97.00")
    assert balance_of(vc) == 9700
    assert [t.journal.status(s) for s in range(1, t.journal.last_seq() + 1)] == (
        [jr.COMMITTED] if charged else [jr.VOIDED, jr.COMMITTED])


@pytest.mark.parametrize("keep,charged", [(16, True), (0, False)])
def test_pos_retap_after_an_uncertain_write_completes_the_same_sale(tmp_path, keep, charged):
    t = Terminal(tmp_path)
    vc = t.tap(new_card(10000))
    t.field.tear_next_write(keep)
    t.keypad.feed("1250#")

    async def scenario():
        sale = asyncio.create_task(t.role.sale_once())
        await until(lambda: t.display.lines == ("REFUSED", "Tap card again"))
        t.tap(vc)
        return await sale

    result = asyncio.run(scenario())
    # The seq shown is the one the re-tap settled: the first when its write landed, else the second attempt.
    assert result.ok and t.display.lines == ("APPROVED 12.50", "#%d Bal 87.50" % (1 if charged else 2))
    assert balance_of(vc) == 8750
    assert t.buzzer.played == [ui.BEEP_REFUSED, ui.BEEP_APPROVED]


# -- runtime: the wallet and sync as terminal/runtime.py wires them -----------------------------


def _runtime(tmp_path):
    from terminal.runtime import Terminal as Runtime

    board = SimBoard(str(tmp_path / "board"), clock=lambda: NOW)
    board.keystore().set("terminal_key", TERMINAL_KEY)
    return Runtime(board, {"terminal_id": 12, "broker_host": "127.0.0.1", "broker_port": 9})


def test_a_tap_wakes_the_uploader_at_once(tmp_path):
    runtime = _runtime(tmp_path)
    runtime.wallet.park_keys = PARK
    runtime.wallet.config = Config(version=3, role=ROLE_POS, category=1)
    runtime.wallet.last_hub_contact_s = runtime.wallet.blacklist_updated_s = NOW
    runtime.board.field.add(new_card(10000))
    runtime.sync._work.clear()
    assert runtime.wallet.debit(100).ok
    assert runtime.sync._work.is_set()  # not left for the next STATUS_INTERVAL_S round
    runtime.client.close()


def test_a_task_out_of_memory_is_started_again_and_reported_in_the_status(tmp_path, monkeypatch):
    from terminal import runtime as rt

    runtime = _runtime(tmp_path)
    monkeypatch.setattr(rt, "_TASK_RESTART_MS", 0)
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise MemoryError("memory allocation failed")  # what a fragmented heap raises anywhere
        await asyncio.Event().wait()  # then it runs as a long-lived task does

    runtime._task_starts = [("flaky", flaky)]

    async def scenario():
        tasks = runtime.start()
        await until(lambda: len(runs) == 3)
        assert runtime.healthy()  # recovered: the watchdog keeps being fed
        tasks["flaky"].cancel()

    asyncio.run(scenario())
    status = hub_frames.parse_status(frames.decode(frames.frame_mac_for(TERMINAL_KEY),
                                                   runtime.sync.status_frame(1)).body)
    assert status.memory_errors == 2
    runtime.client.close()


def test_the_tap_loop_out_of_memory_mid_debit_serves_on_and_the_next_tap_settles_the_record(tmp_path, monkeypatch):
    from terminal import runtime as rt

    runtime = _runtime(tmp_path)
    monkeypatch.setattr(rt, "_TASK_RESTART_MS", 0)
    runtime._task_starts = []  # the tap loop alone
    runtime.wallet.park_keys = PARK
    runtime.wallet.config = Config(version=3, role=ROLE_POS, category=1)
    runtime.wallet.last_hub_contact_s = runtime.wallet.blacklist_updated_s = NOW
    vc = new_card(10000)
    runtime.board.field.add(vc)
    write = runtime.wallet.card.write

    def out_of_memory(*args):
        raise MemoryError("memory allocation failed")  # after the journal, before the card is written

    runs = []

    async def taps():
        runs.append(len(runs))
        if len(runs) == 1:
            monkeypatch.setattr(runtime.wallet.card, "write", out_of_memory)
            runtime.wallet.debit(100)
        monkeypatch.setattr(runtime.wallet.card, "write", write)
        runtime.board.field.remove(vc)   # the visitor taps again
        runtime.board.field.add(vc)
        runs.append(runtime.wallet.debit(250))

    runtime.app.run = taps
    asyncio.run(runtime.run())
    assert runs[:2] == [0, 1] and runtime.sync.memory_errors == 1   # started again, and reported
    assert runs[2].ok and card_balance(PARK, vc).balance_cents == 9750  # the lost write took nothing
    assert [runtime.journal.status(seq) for seq in (1, 2)] == [jr.VOIDED, jr.COMMITTED]  # settled by the card
    runtime.client.close()


@pytest.mark.parametrize("damaged, line1", [("journal/state", "Journal damaged"),
                                            ("blacklist/blacklist", "Blacklist bad")])
def test_main_shows_damaged_flash_instead_of_dropping_to_the_repl(tmp_path, monkeypatch, damaged, line1):
    from terminal import assemble

    board = SimBoard(str(tmp_path / "board"))
    board.keystore().set("terminal_key", TERMINAL_KEY)
    path = board.data_dir() + "/" + damaged
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\xff" * 16)  # does not check: not something a power cut leaves
    fake_board = types.ModuleType("terminal.board")
    fake_board.Board = lambda: board
    monkeypatch.setitem(sys.modules, "terminal.board", fake_board)
    monkeypatch.setattr(assemble, "load_settings",
                        lambda: {"terminal_id": 12, "broker_host": "127.0.0.1", "broker_port": 9})
    monkeypatch.setattr(board, "network", lambda *a: None, raising=False)
    runpy.run_path(str(FIRMWARE / "main.py"), run_name="__main__")  # returns instead of raising into the REPL
    assert board.display().lines == (line1, "See technician")


@pytest.mark.parametrize("command, lines", [(frames.CMD_LOCK, ("Terminal locked", "Call technician")),
                                            (frames.CMD_DEAUTHORISE, ("Not authorised", "Call technician"))],
                         ids=["lock", "deauthorise"])
def test_a_locked_terminal_keeps_saying_why(tmp_path, command, lines):
    runtime = _runtime(tmp_path)
    runtime.board.keystore().set("transport_key", b"T" * 32)
    runtime.wallet.config = Config(version=3, role=ROLE_POS, category=1)
    runtime.on_command(command, 0)

    async def scenario():
        loop = asyncio.create_task(runtime.app.run())
        await turns(20)  # twenty rounds of the prompt, each tapping for an admin card
        await stop(loop)

    asyncio.run(scenario())
    assert runtime.board.display().lines == lines
    runtime.client.close()


def test_a_record_is_offline_as_soon_as_the_link_drops(tmp_path):
    runtime = _runtime(tmp_path)
    runtime.wallet.park_keys = PARK
    runtime.wallet.config = Config(version=3, role=ROLE_POS, category=1)
    runtime.wallet.last_hub_contact_s = runtime.wallet.blacklist_updated_s = NOW
    vc = new_card(10000)
    for connected in (True, False):  # False: the link dropped, the upload loop has not noticed yet
        runtime.client.connected = connected
        runtime.board.field.add(vc)
        assert runtime.wallet.debit(100).ok
        runtime.board.field.remove(vc)
    assert [Record.decode(raw).flags for _seq, _status, raw in runtime.journal.unsynced(2)] == [0, FLAG_OFFLINE]
    runtime.client.close()


# -- the SSD1306 display (terminal/devices.py) on a stand-in framebuf and I2C bus ---------------


class FakeFrameBuffer:
    def __init__(self, buffer, width, height, mode):
        pass

    def fill(self, colour):
        pass

    def text(self, text, x, y, colour):
        pass


class FakeI2C:
    """Counts the framebuffer transfers (writevto); the command bytes (writeto) are not counted."""

    def __init__(self):
        self.frames = 0

    def writeto(self, address, data):
        pass

    def writevto(self, address, parts):
        self.frames += 1


def test_the_display_redraws_only_when_the_text_changes(monkeypatch):
    from terminal.devices import TextDisplay

    monkeypatch.setitem(sys.modules, "framebuf", types.SimpleNamespace(FrameBuffer=FakeFrameBuffer, MONO_VLSB=0))
    i2c = FakeI2C()
    display = TextDisplay(i2c, 0x3C, 128, 64)
    drawn = []
    for lines in (("", ""), ("", ""), ("Amount", "0.00"), ("Amount", "0.00"), ("Amount", "0.01")):
        display.show(*lines)
        drawn.append(i2c.frames)
    # The first screen is drawn even when blank: the SSD1306's RAM holds noise at power-up.
    assert drawn == [1, 1, 2, 2, 3]
