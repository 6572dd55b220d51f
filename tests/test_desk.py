"""The front desk through the real path: service -> MQTT (Mosquitto) -> desk firmware on a virtual reader -> card
-> record of the desk source -> ledger, on SQLite and PostgreSQL; the card pulled at each step, the hub dying
between pending and posted, the desk terminal offline mid-operation."""

import asyncio
import json

import pytest

from protocol import card as C
from protocol import desk as D
from protocol import record as R
from sim.cards import card_balance
from terminal.rc522 import RC522Error

from parkcard.domain.lifecycle import DeskOpState
from parkcard.money import format_cents
from parkcard.services.desk import operations
from parkcard.services.privileges import Actor, ServiceError
from parkcard_devkit.park_sim import DESK_TERMINAL_ID, ParkSim


pytestmark = [pytest.mark.broker, pytest.mark.slow]

SHORT_S = 0.5       # how long the hub waits for a desk that cannot answer, in these tests


class HubDied(Exception):
    """The hub process ends here (what a kill leaves: the database as committed so far)."""


def in_park(tmp_path, scenario, db=None, cards=2):
    """Run `await scenario(sim)` in a freshly started park (one booth, `cards` cards issued at the desk)."""
    async def go():
        async with ParkSim(tmp_path / "park", terminals=1, cards=cards, db=db) as sim:
            sim.hub.desk_path.timeout_s = sim.hub.desk_path.read_back_timeout_s = SHORT_S
            await scenario(sim)
    asyncio.run(asyncio.wait_for(go(), 300))


async def at_desk(sim, virtual, operation, pull_at=None):
    """Run a desk operation with the card on the desk; pull it when the desk is given the order `pull_at`.

    Returns (the operation's result or the ServiceError it raised, whether the card was pulled).
    """
    desk = sim.desk.terminal.card_writer
    field = sim.desk.board.field
    field.add(virtual)
    task = asyncio.ensure_future(operation)
    pulled = False
    try:
        while not task.done():
            job = desk.job
            if pull_at is not None and job is not None and isinstance(job[2], tuple) and job[2][0] == pull_at:
                field.remove(virtual)
                pulled = True
            desk.poll()
            await asyncio.sleep(0.002)
    finally:
        field.remove(virtual)
    try:
        return task.result(), pulled
    except ServiceError as exc:
        return exc, pulled


async def balanced(sim):
    """Every card as the hub's shadow and ledger say, and the ledger check passes."""
    assert await sim.card_mismatches() == []
    for v in sim.visitors:
        on_card = card_balance(sim.park_keys, v.virtual).balance_cents
        assert await sim.hub.storage.account_balance("card:%d" % v.card_no) == on_card
    report = await sim.ledger_report()
    assert report.ok, "\n".join(report.lines())


async def desk_records(sim):
    return [R.Record.decode(bytes(r.raw)) for r in await sim.hub.storage.records(D.DESK_SOURCE_ID)]


def test_issue_and_top_up_are_posted_once_as_desk_source_records_after_the_card_holds_them(tmp_path, store_url):
    async def scenario(sim):
        gold, plain = sim.visitors           # card 0 is gold (10 % bonus), card 1 standard
        issued = await desk_records(sim)
        assert [(r.kind, r.terminal_id, r.item, r.card_counter) for r in issued] == [
            (R.KIND_ISSUE, D.DESK_SOURCE_ID, DESK_TERMINAL_ID, 1)] * 2
        before = card_balance(sim.park_keys, gold.virtual).balance_cents
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        done, _ = await at_desk(sim, gold.virtual, desk.top_up("top-up-1", 2000))
        assert (done.card_no, done.amount_cents, done.bonus_cents) == (gold.card_no, 2200, 200)
        assert card_balance(sim.park_keys, gold.virtual).balance_cents == before + 2200 == done.balance_cents
        again, _ = await at_desk(sim, gold.virtual, desk.top_up("top-up-1", 2000))   # a double click
        assert (again.record_seq, again.balance_cents) == (done.record_seq, done.balance_cents)
        other, _ = await at_desk(sim, gold.virtual, desk.top_up("top-up-1", 5000))
        assert isinstance(other, ServiceError) and "used for another request" in str(other)
        refused, _ = await at_desk(sim, plain.virtual, desk.top_up("top-up-2", 1250.5))
        assert isinstance(refused, ServiceError) and "whole number" in str(refused)
        top_ups = [r for r in await desk_records(sim) if r.kind == R.KIND_TOPUP]
        assert [(r.card_no, r.amount_cents, r.discount_cents) for r in top_ups] == [(gold.card_no, 2200, 200)]
        op = await sim.hub.storage.desk_operation("top-up-1")
        assert (op.state, op.actor, op.record_seq) == (DeskOpState.POSTED, "hub", top_ups[0].seq)
        await balanced(sim)
    in_park(tmp_path, scenario, db=None if store_url.endswith(".db") else store_url)


@pytest.mark.parametrize("pull_at", [D.OP_IDENTIFY, D.OP_READ, D.OP_WRITE])
def test_a_card_pulled_at_any_step_of_a_top_up_is_never_charged_and_a_retry_posts_it_once(tmp_path, pull_at):
    async def scenario(sim):
        visitor = sim.visitors[1]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        before = card_balance(sim.park_keys, visitor.virtual)
        failed, pulled = await at_desk(sim, visitor.virtual, desk.top_up("pulled", 3000), pull_at=pull_at)
        assert pulled and isinstance(failed, ServiceError)
        assert card_balance(sim.park_keys, visitor.virtual).counter == before.counter
        kept = await sim.hub.storage.desk_operation("pulled")
        if pull_at == D.OP_WRITE:
            # Kept before the write was asked for; the card never held it, and no report said so: pending.
            assert kept.state == DeskOpState.PENDING and "pending" in str(failed)
            assert "retry with the same operation id" in str(failed)
        else:
            assert kept is None         # refused before anything was kept
        await balanced(sim)
        done, _ = await at_desk(sim, visitor.virtual, desk.top_up("pulled", 3000))
        assert done.balance_cents == before.balance_cents + 3000
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == done.balance_cents
        assert len([r for r in await desk_records(sim) if r.kind == R.KIND_TOPUP]) == 1
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_a_torn_write_leaves_the_old_slot_and_a_retry_writes_it_again(tmp_path, monkeypatch):
    async def scenario(sim):
        visitor = sim.visitors[1]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        writer = sim.desk.terminal.card_writer
        reader = writer.reader
        write_block = reader.write_block

        def torn(block, data):          # the card leaves half-way through the slot's write
            write_block(block, data[:8] + bytes(8))
            raise RC522Error("the card left during the write")
        monkeypatch.setattr(reader, "write_block", torn)
        before = card_balance(sim.park_keys, visitor.virtual)
        failed, _ = await at_desk(sim, visitor.virtual, desk.top_up("torn", 1000))
        # The desk read the card back: the torn slot fails its MAC, the old one is in force: not written.
        assert isinstance(failed, ServiceError) and "nothing was charged" in str(failed)
        assert (await sim.hub.storage.desk_operation("torn")).state == DeskOpState.FAILED
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before.balance_cents
        monkeypatch.setattr(reader, "write_block", write_block)
        done, _ = await at_desk(sim, visitor.virtual, desk.top_up("torn", 1000))
        assert done.balance_cents == before.balance_cents + 1000
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_the_hub_dying_between_the_write_and_the_posting_posts_once_on_the_retry(tmp_path, monkeypatch):
    async def scenario(sim):
        visitor = sim.visitors[1]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        before = card_balance(sim.park_keys, visitor.virtual).balance_cents
        post = operations.post_confirmed

        async def dies(*args, **kwargs):
            raise HubDied("the hub died after the card was written")
        monkeypatch.setattr(operations, "post_confirmed", dies)
        with pytest.raises(HubDied):
            await at_desk(sim, visitor.virtual, desk.top_up("killed", 4000))
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before + 4000   # the card holds it
        kept = await sim.hub.storage.desk_operation("killed")
        assert kept.state == DeskOpState.PENDING
        assert [r for r in await desk_records(sim) if r.kind == R.KIND_TOPUP] == []
        monkeypatch.setattr(operations, "post_confirmed", post)
        done, _ = await at_desk(sim, visitor.virtual, desk.top_up("killed", 4000))   # resolved by reading the card
        assert done.balance_cents == before + 4000
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before + 4000   # not written twice
        assert len([r for r in await desk_records(sim) if r.kind == R.KIND_TOPUP]) == 1
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_a_desk_terminal_offline_mid_operation_loses_nothing(tmp_path):
    async def scenario(sim):
        visitor = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        before = card_balance(sim.park_keys, visitor.virtual).balance_cents
        real_order = sim.hub.desk_link.order

        async def cut_before_write(desk_id, op, *args, **kwargs):
            if op == D.OP_WRITE:
                sim.desk.relay.cut()        # the desk's network goes after the operation was kept
            return await real_order(desk_id, op, *args, **kwargs)
        sim.hub.desk_link.order = cut_before_write
        failed, _ = await at_desk(sim, visitor.virtual, desk.top_up("offline", 1500))
        assert isinstance(failed, ServiceError) and "pending" in str(failed)
        sim.desk.relay.restore()
        sim.hub.desk_link.order = real_order
        await sim.wait_for(lambda: sim.desk.terminal.client.connected, 30, "the desk did not reconnect")
        done, _ = await at_desk(sim, visitor.virtual, desk.top_up("offline", 1500))
        assert done.balance_cents == card_balance(sim.park_keys, visitor.virtual).balance_cents
        assert done.balance_cents in (before + 1500, before + 1650)     # its tier's bonus
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_a_cashier_without_the_privilege_is_refused_before_anything_is_asked(tmp_path):
    async def scenario(sim):
        finance = Actor("fiona", roles=("finance",))
        refused, _ = await at_desk(sim, sim.visitors[0].virtual, operations.top_up(
            sim.hub.desk_path, finance, "no-role", DESK_TERMINAL_ID, 1000))
        assert isinstance(refused, ServiceError) and "cashier" in str(refused)
        assert await sim.hub.storage.desk_operation("no-role") is None
    in_park(tmp_path, scenario, cards=1)


def test_an_operation_id_a_person_cannot_read_is_refused(tmp_path):
    async def scenario(sim):
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        refused, _ = await at_desk(sim, sim.visitors[0].virtual, desk.top_up("", 1000))
        assert isinstance(refused, ServiceError) and "operation id" in str(refused)
        assert json.loads(operations.request_of("top_up", 1, cash_cents=5)) == {"kind": "top_up", "desk": 1,
                                                                                "cash_cents": 5}
    in_park(tmp_path, scenario, cards=1)


def cli(*args):
    """Run `parkcard ARGS` in this process (the running hub is the park's, in the event loop's thread)."""
    from click.testing import CliRunner

    from parkcard.cli import main
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_cashier_tops_up_from_the_cli_and_a_retry_is_the_same_operation(tmp_path):
    async def scenario(sim):
        visitor = sim.visitors[1]
        db = sim.workdir + "/parkcard.db"
        before = card_balance(sim.park_keys, visitor.virtual).balance_cents
        topped, _ = await at_desk(sim, visitor.virtual, asyncio.to_thread(
            cli, "--db", db, "card", "top-up", "25.50", "--desk", DESK_TERMINAL_ID, "--op-id", "cli-1", "--wait", 30))
        assert topped.exit_code == 0, topped.output
        assert "card %d topped up by CNY 25.50" % visitor.card_no in topped.output
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before + 2550
        again = await asyncio.to_thread(cli, "--db", db, "card", "top-up", "25.50", "--desk", DESK_TERMINAL_ID,
                                        "--op-id", "cli-1")
        assert again.exit_code == 0 and again.output.splitlines()[-1] == topped.output.splitlines()[-1]
        other = await asyncio.to_thread(cli, "--db", db, "card", "top-up", "30", "--desk", DESK_TERMINAL_ID,
                                        "--op-id", "cli-1")
        assert other.exit_code != 0 and "used for another request" in other.output
        for bad, says in (("12.345", "at most 2 decimals"), ("1,50", "at most 2 decimals"), ("0", "from 1 to")):
            refused = await asyncio.to_thread(cli, "--db", db, "card", "top-up", bad, "--desk", DESK_TERMINAL_ID)
            assert refused.exit_code != 0 and says in refused.output and "Traceback" not in refused.output, bad
        shown = await asyncio.to_thread(cli, "--db", db, "card", "show", visitor.card_no)
        assert "balance %s" % format_cents(before + 2550, "CNY") in shown.output
        assert "cli-1" in shown.output and "posted" in shown.output
        unknown = await asyncio.to_thread(cli, "--db", db, "card", "show", 999999)
        assert unknown.exit_code != 0 and "unknown at this hub" in unknown.output
        assert len([r for r in await desk_records(sim) if r.kind == R.KIND_TOPUP]) == 1
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_the_cashier_makes_stock_and_issues_a_card_from_the_cli(tmp_path):
    async def scenario(sim):
        from sim.mifare import MifareClassic1K
        db = sim.workdir + "/parkcard.db"
        blank = MifareClassic1K(bytes.fromhex("04c0ffee000001"))
        stocked, _ = await at_desk(sim, blank, asyncio.to_thread(
            cli, "--db", db, "card", "stock", "--uid", "04c0ffee000001", "--desk", DESK_TERMINAL_ID, "--wait", 30))
        assert stocked.exit_code == 0, stocked.output
        assert (await asyncio.to_thread(cli, "--db", db, "park", "deposit", "member", "20")).exit_code == 0
        issued, _ = await at_desk(sim, blank, asyncio.to_thread(
            cli, "--db", db, "card", "issue", "--load", "100", "--type", "member", "--tier", 2, "--desk",
            DESK_TERMINAL_ID, "--op-id", "issue-cli", "--wait", 30))
        assert issued.exit_code == 0, issued.output
        assert "balance CNY 110.00 (bonus CNY 10.00), deposit CNY 20.00" in issued.output
        assert card_balance(sim.park_keys, blank).balance_cents == 11000
        again, _ = await at_desk(sim, blank, asyncio.to_thread(
            cli, "--db", db, "card", "issue", "--load", "100", "--type", "member", "--desk", DESK_TERMINAL_ID,
            "--wait", 30))
        assert again.exit_code != 0 and "already issued" in again.output
        assert (await sim.ledger_report()).ok
    in_park(tmp_path, scenario, cards=1)


def test_a_desk_number_that_is_no_desk_terminal_is_refused_at_once_and_nothing_is_queued(tmp_path):
    db = tmp_path / "hub.db"
    assert cli("--db", db, "merchant", "add", "--id", 1, "--name", "Park", "--commission-bps", 0).exit_code == 0
    for desk in (99, 1):        # unknown; and (once registered) a booth, not a desk
        if desk == 1:
            assert cli("--db", db, "terminal", "add", "--id", 1, "--merchant", 1, "--role", "pos",
                        "--name", "booth").exit_code == 0
        refused = cli("--db", db, "card", "top-up", "50", "--desk", desk)
        assert refused.exit_code == 2 and "terminal %d is not a desk terminal" % desk in refused.output
        assert "Traceback" not in refused.output
    pending = cli("--db", db, "card", "pending")
    assert pending.exit_code == 0 and "top_up" not in pending.output


def test_a_negative_amount_is_refused_as_an_amount_not_as_an_unknown_option(tmp_path):
    db = tmp_path / "hub.db"
    assert cli("--db", db, "merchant", "add", "--id", 1, "--name", "Park", "--commission-bps", 0).exit_code == 0
    for command in (("card", "top-up", "-5", "--desk", 1), ("card", "refund", "-0.50", "--desk", 1)):
        refused = cli("--db", db, *command)
        assert refused.exit_code == 2 and "is not an amount in CNY" in refused.output, refused.output
        assert "No such option" not in refused.output
