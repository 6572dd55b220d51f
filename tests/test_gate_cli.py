"""`parkcard ticket ...`, `parkcard gate ...` and `parkcard occupancy` on a park with a gate's passages."""

import asyncio
import sqlite3
import time

import pytest
from click.testing import CliRunner

from protocol import card_write, frames, record as R, ticket as t

from parkcard.app import Hub
from parkcard.cli import main
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued

GATE = 41


async def _populate(db):
    """A desk, a gate and two cards: both entered through the gate, one left, one was refused once."""
    hub = await Hub(db).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Gates", 0)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    key = await hub.register_terminal(GATE, MERCHANT_ICE, frames.ROLE_GATE, "north gate")
    cards = [(await desk_issued(hub, uid, 1000)).card_no for uid in (b"\x04\x01\x02\x03", b"\x04\x01\x02\x04")]
    mac = R.record_mac_for(key)
    now = int(time.time())
    entries = []
    for seq, (kind, card_no, reason) in enumerate([(R.KIND_ENTRY, cards[0], 0), (R.KIND_ENTRY, cards[1], 0),
                                                   (R.KIND_REFUSAL, cards[1], t.REASON_ALREADY_INSIDE),
                                                   (R.KIND_EXIT, cards[0], 0)], start=1):
        rec = R.Record(kind, GATE, seq, now - 600 + seq, card_no, b"\x04\x01\x02\x03", 2, 0, 1000, item=1,
                       discount_cents=R.passage_detail(reason, 2, 0xFFFF))
        entries.append((R.STATUS_COMMITTED, rec.encode(mac)))
    await hub.ingest.apply_local(GATE, entries)
    await hub.stop()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "hub.db"
    asyncio.run(_populate(path))
    return str(path)


def cli(db, *args):
    return CliRunner().invoke(main, ["--db", db, *[str(a) for a in args]])


def test_products_gates_and_occupancy_from_the_command_line(db):
    added = cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1",
                "--price", "120.00")
    assert added.exit_code == 0 and "ticket product 1 Day pass (day)" in added.output
    timed = cli(db, "ticket", "product", "add", "--name", "Car park", "--type", "timed", "--included-min", "60",
                "--interval-min", "30", "--interval-price", "5.00")
    assert timed.exit_code == 0, timed.output
    listed = cli(db, "ticket", "product", "list")
    assert "Day pass" in listed.output and "60 min free" in listed.output and "120.00" in listed.output
    set_ = cli(db, "gate", "set", "--terminal", GATE, "--direction", "both", "--area", "2", "--reset", "04:30",
               "--product", "1", "--product", "2")
    assert set_.exit_code == 0 and "gate config version 1" in set_.output, set_.output
    gates = cli(db, "gate", "list")
    assert "04:30" in gates.output and "1, 2" in gates.output
    now = cli(db, "occupancy", "--hours", "1")
    assert now.exit_code == 0, now.output
    assert "already_inside" in now.output
    csv_out = cli(db, "occupancy", "--csv").output.splitlines()
    assert csv_out[0] == "area,inside,last reset" and csv_out[1].startswith("2,1,")
    check = cli(db, "gate", "check")
    assert check.exit_code == 0 and "4 passage records, occupancy agrees" in check.output
    reset = cli(db, "gate", "reset", "--area", "2")
    assert reset.exit_code == 0
    after = cli(db, "occupancy", "--csv").output.splitlines()    # the area stays, at 0, with its reset
    assert after[0] == "area,inside,last reset" and after[1].startswith("2,0,") and len(after) == 2


@pytest.mark.parametrize("args,message", [
    (("gate", "set", "--terminal", DESK_ID, "--direction", "entry", "--product", "1"), "not a registered gate"),
    (("gate", "set", "--terminal", GATE, "--direction", "entry", "--product", "9"), "no ticket product 9"),
    (("gate", "set", "--terminal", GATE, "--direction", "entry", "--product", "1", "--reset", "25:00"), "HH:MM"),
    (("ticket", "product", "add", "--name", "Ten", "--type", "count"), "count card holds 1"),
])
def test_user_mistakes_are_one_clear_line(db, args, message):
    cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1")
    result = cli(db, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def _sell(db, *args):
    return cli(db, "ticket", "sell", "--desk", DESK_ID, "--product", 1, *args)


@pytest.mark.parametrize("args,message", [
    (("ticket", "sell", "--desk", GATE, "--product", "1", "--card", "1"), "terminal 41 is not a registered desk"),
    (("ticket", "sell", "--desk", DESK_ID, "--product", "9", "--card", "1"), "no ticket product 9"),
    (("ticket", "sell", "--desk", DESK_ID, "--product", "1", "--card", "77"), "card 77 is not issued"),
    (("ticket", "sell", "--desk", DESK_ID, "--product", "1", "--card", "1", "--from", "1.1.2027"),
     "does not match the format '%Y-%m-%d'"),
])
def test_a_ticket_sale_the_desk_cannot_make_is_refused_before_anything_is_queued(db, args, message):
    cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1")
    result = cli(db, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert asyncio.run(_sale_requests(db)) == []


async def _first_card(db):
    hub = await Hub(db).open()
    try:
        return min(await hub.storage.card_numbers())
    finally:
        await hub.stop()


async def _sale_requests(db):
    hub = await Hub(db).open()
    try:
        return [await hub.storage.ticket_sale_request(i) for i in (1, 2, 3)
                if await hub.storage.ticket_sale_request(i) is not None]
    finally:
        await hub.stop()


def test_a_ticket_sale_no_running_hub_answers_is_cancelled_and_never_written_later(db):
    cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1")
    result = _sell(db, "--card", asyncio.run(_first_card(db)), "--wait", 1)
    assert result.exit_code == 2 and "the sale is cancelled and nothing was recorded" in result.output

    async def later_hub():
        hub = await Hub(db).open()
        try:
            return await hub.run_ticket_sales(), await hub.storage.tickets()
        finally:
            await hub.stop()
    assert asyncio.run(later_hub()) == (0, [])


def test_a_ticket_sale_the_desk_fails_takes_no_money_and_one_it_writes_books_its_cash_price(tmp_path, db):
    from parkcard.ingest.pipeline import BatchResult
    from parkcard.security import secure
    park, _ = secure.init_park(tmp_path)
    cli(db, "ticket", "product", "add", "--name", "Day pass", "--type", "day", "--days", "1", "--price", "120.00")
    card_no = asyncio.run(_first_card(db))

    async def desk_answers(status):
        """The running hub starts the queued sale; the desk terminal answers status to its T_CARD_WRITE."""
        hub = await Hub(db, park_keys=park.park_keys).open()
        hub.downlink.publish = lambda topic, payload: None
        try:
            selling = asyncio.create_task(asyncio.to_thread(_sell, db, "--card", card_no, "--from", "2027-01-02"))
            while not await hub.run_ticket_sales():
                await asyncio.sleep(0.05)
            await hub.wait_until(lambda: hub._card_writes)
            [(write_id, (_desk, uid, _done))] = hub._card_writes.items()
            result = BatchResult()
            result.card_results = [(DESK_ID, write_id, uid, status, 12)]
            await hub._after_commit(result)
            told = await selling                    # the CLI heard the end: the sale is settled
            money = [await hub.storage.account_balance(a) for a in ("desk:cash", "park:ticket_revenue")]
            return told, await hub.storage.tickets(), money
        finally:
            await hub.stop()
    failed, after_failure, money = asyncio.run(desk_answers(card_write.CARD_NOT_BLANK))
    assert failed.exit_code == 2 and "could not write the card (not a blank card, block 12)" in failed.output
    assert [(x.serial, x.state) for x in after_failure] == [(1, "failed")]
    assert money == [-1000 * 2, 0]          # the two cards' issue top-ups only: the failed write took nothing
    sold, after_sale, money = asyncio.run(desk_answers(card_write.CARD_OK))
    assert money == [-1000 * 2 - 12000, 12000]
    check = cli(db, "ledger", "check")
    assert check.exit_code == 0, check.output
    with sqlite3.connect(db) as conn:               # the ticket's price changed behind the hub's back
        conn.execute("UPDATE tickets SET price_cents = 9000 WHERE serial = 2")
    check = cli(db, "ledger", "check")
    assert check.exit_code == 1 and "ticket 2 sold onto card %d): posted" % card_no in check.output, check.output
    assert sold.exit_code == 0, sold.output
    assert ("ticket 2 (product 1) written onto card %d at desk terminal %d: take CNY 120.00 in cash"
            % (card_no, DESK_ID)) in sold.output
    assert [(x.serial, x.state, x.from_day) for x in after_sale] == [(1, "failed", 20820), (2, "written", 20820)]



async def _uncertain_then_settled(db, settle):
    """A gate's entry uploaded uncertain (ticket counter 2); with settle, the card's exit at another gate after it."""
    hub = await Hub(db).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Gates", 0)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    uid = b"\x04\x01\x02\x07"
    card_no = (await desk_issued(hub, uid, 1000)).card_no
    now = int(time.time())
    for terminal_id, kind, counter, status in [(GATE, R.KIND_ENTRY, 2, R.STATUS_UNCERTAIN),
                                               (GATE + 1, R.KIND_EXIT, 3, R.STATUS_COMMITTED)][:1 + settle]:
        key = await hub.register_terminal(terminal_id, MERCHANT_ICE, frames.ROLE_GATE, "gate %d" % terminal_id)
        rec = R.Record(kind, terminal_id, 1, now - 600 + counter, card_no, uid, counter, 0, 1000, item=1,
                       discount_cents=R.passage_detail(0, 2, 0xFFFF), card_mac=bytes([counter]) * 4)
        await hub.ingest.apply_local(terminal_id, [(status, rec.encode(R.record_mac_for(key)))])
    await hub.stop()


@pytest.mark.parametrize("settle", [False, True])
def test_gate_check_counts_the_passages_still_uncertain_until_the_cards_next_passage_settles_them(tmp_path, settle):
    db = str(tmp_path / "hub.db")
    asyncio.run(_uncertain_then_settled(db, settle))
    check = cli(db, "gate", "check")
    assert check.exit_code == 0, check.output
    assert ("1 passages uncertain" in check.output) is not settle
    areas = [row.split(",")[:2] for row in cli(db, "occupancy", "--csv").output.splitlines()[1:]]
    assert areas == ([["2", "0"]] if settle else [])       # settled: its entry and the exit after it both count
