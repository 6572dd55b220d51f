"""The front desk's money out through the real path (service -> MQTT -> desk firmware -> card -> desk source record
-> ledger): a refund of part of the cash, a card returned, the bonus purse kept apart, on SQLite and PostgreSQL;
the card pulled at each step, the hub dying between pending and posted."""

import asyncio

import pytest

from protocol import card as C
from protocol import desk as D
from protocol import record as R
from sim.cards import card_balance
from terminal.rc522 import RC522Error

from parkcard.domain import accounts
from parkcard.domain.lifecycle import CardStatus, DeskOpState
from parkcard.money import format_cents
from parkcard.services import park
from parkcard.services.desk import operations
from parkcard.services.privileges import ServiceError
from parkcard_devkit.park_sim import DESK_TERMINAL_ID
from test_desk import HubDied, at_desk, balanced, desk_records, in_park

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def purse(sim, card_no):
    """(cash, bonus) of a card as the hub's ledger says."""
    storage = sim.hub.storage
    whole = await storage.account_balance(accounts.card_account(card_no))
    bonus = await storage.account_balance(accounts.bonus_account(card_no))
    return whole - bonus, bonus


def leaving_before_the_info_block(sim, monkeypatch):
    """Make the desk's reader lose the card when it comes to write the info block; (reader, its own write)."""
    reader = sim.desk.terminal.card_writer.reader
    write_block = reader.write_block

    def leaves_before_info(block, data):
        if block == C.INFO_BLOCK:
            raise RC522Error("the card left before its info block")
        write_block(block, data)
    monkeypatch.setattr(reader, "write_block", leaves_before_info)
    return reader, write_block


def in_steady_park(tmp_path, scenario, **options):
    """in_park where the card never leaves unasked: the desk is given its usual time (a loaded machine)."""
    async def steady(sim):
        sim.hub.desk_path.timeout_s = operations.ORDER_TIMEOUT_S
        sim.hub.desk_path.read_back_timeout_s = operations.READ_BACK_TIMEOUT_S
        await scenario(sim)
    in_park(tmp_path, steady, **options)


async def rules(sim, minimum=0, fee_bps=0, fee_fixed=0):
    await park.set_refund_rules(sim.hub.storage, sim.hub.actor(), minimum, fee_bps, fee_fixed)


def test_a_refund_pays_cash_less_the_fee_and_a_return_pays_the_rest_and_the_deposit(tmp_path, store_url):
    async def scenario(sim):
        gold = sim.visitors[0]            # gold: 10 % bonus on its first load
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        await rules(sim, minimum=500, fee_bps=200, fee_fixed=100)
        cash, bonus = await purse(sim, gold.card_no)
        assert bonus > 0 and cash + bonus == card_balance(sim.park_keys, gold.virtual).balance_cents
        refused = []
        for amount, says in ((cash + 1, "over the refundable"), (499, "smallest refund is 500"),
                             (10.5, "whole number")):
            failed, _ = await at_desk(sim, gold.virtual, desk.refund("r-%s" % amount, amount))
            assert isinstance(failed, ServiceError) and says in str(failed), (amount, failed)
            refused.append(await sim.hub.storage.desk_operation("r-%s" % amount))
        assert refused == [None] * 3        # refused before anything was kept
        done, _ = await at_desk(sim, gold.virtual, desk.refund("refund-1", 1000))
        assert (done.amount_cents, done.fee_cents, done.paid_cents) == (1000, 120, 880)
        assert card_balance(sim.park_keys, gold.virtual).balance_cents == cash + bonus - 1000
        assert await purse(sim, gold.card_no) == (cash - 1000, bonus)     # the bonus is never refunded
        again, _ = await at_desk(sim, gold.virtual, desk.refund("refund-1", 1000))
        assert again.record_seq == done.record_seq
        assert await sim.hub.storage.account_balance(accounts.REFUND_FEES) == 120
        card = await sim.hub.storage.card(gold.card_no)
        back, _ = await at_desk(sim, gold.virtual, desk.return_card("return-1"))
        fee = 100 + (cash - 1000) * 200 // 10000
        assert (back.amount_cents, back.bonus_cents, back.fee_cents, back.deposit_cents) == (
            cash + bonus - 1000, bonus, fee, card.deposit_cents)
        assert back.paid_cents == cash - 1000 - fee + card.deposit_cents
        info = C.CardInfo.decode(bytes(gold.virtual.blocks[C.INFO_BLOCK]), C.CardKeys(sim.park_keys, gold.virtual.uid))
        assert info.flags & C.FLAG_RETURNED and card_balance(sim.park_keys, gold.virtual).balance_cents == 0
        assert (await sim.hub.storage.card(gold.card_no)).status == CardStatus.RETURNED
        assert await purse(sim, gold.card_no) == (0, 0)
        assert await sim.hub.storage.account_balance(accounts.BONUS_PURSES) == -sum(
            [(await purse(sim, v.card_no))[1] for v in sim.visitors])
        kinds = [(r.kind, r.discount_cents) for r in await desk_records(sim)][-2:]
        assert kinds == [(R.KIND_PAYOUT, 120), (R.KIND_CASHOUT, fee)]
        refused, _ = await at_desk(sim, gold.virtual, desk.top_up("after-return", 1000))
        assert isinstance(refused, ServiceError) and "returned" in str(refused)
        await balanced(sim)
    in_steady_park(tmp_path, scenario, db=None if store_url.endswith(".db") else store_url)


@pytest.mark.parametrize("kind", ["refund", "return"])
@pytest.mark.parametrize("pull_at", [D.OP_IDENTIFY, D.OP_READ, D.OP_WRITE])
def test_a_card_pulled_at_any_step_pays_nothing_and_a_retry_is_one_operation(tmp_path, kind, pull_at):
    async def scenario(sim):
        visitor = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        run = (lambda: desk.refund("pulled", 500)) if kind == "refund" else (lambda: desk.return_card("pulled"))
        before = card_balance(sim.park_keys, visitor.virtual)
        failed, pulled = await at_desk(sim, visitor.virtual, run(), pull_at=pull_at)
        assert pulled and isinstance(failed, ServiceError)
        assert card_balance(sim.park_keys, visitor.virtual).counter == before.counter
        kept = await sim.hub.storage.desk_operation("pulled")
        assert (kept.state if kept else None) == (DeskOpState.PENDING if pull_at == D.OP_WRITE else None)
        await balanced(sim)
        done, _ = await at_desk(sim, visitor.virtual, run())
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == done.balance_cents == (
            before.balance_cents - 500 if kind == "refund" else 0)
        assert len([r for r in await desk_records(sim) if r.kind in (R.KIND_PAYOUT, R.KIND_CASHOUT)]) == 1
        await balanced(sim)
    in_park(tmp_path, scenario, cards=1)


@pytest.mark.parametrize("kind", ["refund", "return"])
def test_the_hub_dying_between_the_write_and_the_posting_pays_once_on_the_retry(tmp_path, monkeypatch, kind):
    async def scenario(sim):
        visitor = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        run = (lambda: desk.refund("killed", 700)) if kind == "refund" else (lambda: desk.return_card("killed"))
        post = operations.post_confirmed

        async def dies(*args, **kwargs):
            raise HubDied("the hub died after the card was written")
        monkeypatch.setattr(operations, "post_confirmed", dies)
        with pytest.raises(HubDied):
            await at_desk(sim, visitor.virtual, run())
        after = card_balance(sim.park_keys, visitor.virtual)
        assert (await sim.hub.storage.desk_operation("killed")).state == DeskOpState.PENDING
        monkeypatch.setattr(operations, "post_confirmed", post)
        done, _ = await at_desk(sim, visitor.virtual, run())        # resolved by reading the card
        assert done.balance_cents == after.balance_cents
        assert card_balance(sim.park_keys, visitor.virtual).counter == after.counter     # not written twice
        assert len([r for r in await desk_records(sim) if r.kind in (R.KIND_PAYOUT, R.KIND_CASHOUT)]) == 1
        await balanced(sim)
    in_park(tmp_path, scenario, cards=1)


def test_a_return_pulled_between_its_slot_and_its_info_block_is_finished_by_the_retry(tmp_path, monkeypatch):
    async def scenario(sim):
        visitor = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        reader, write_block = leaving_before_the_info_block(sim, monkeypatch)
        failed, _ = await at_desk(sim, visitor.virtual, desk.return_card("half"))
        assert isinstance(failed, ServiceError) and "pending" in str(failed)
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == 0
        monkeypatch.setattr(reader, "write_block", write_block)
        done, _ = await at_desk(sim, visitor.virtual, desk.return_card("half"))
        info = C.CardInfo.decode(bytes(visitor.virtual.blocks[C.INFO_BLOCK]),
                                 C.CardKeys(sim.park_keys, visitor.virtual.uid))
        assert info.flags & C.FLAG_RETURNED and done.balance_cents == 0
        await balanced(sim)
    in_park(tmp_path, scenario, cards=1)


def test_the_cashier_refunds_returns_and_wipes_from_the_cli_by_the_park_s_settings(tmp_path):
    from test_desk import cli

    async def scenario(sim):
        db = sim.workdir + "/parkcard.db"
        visitor = sim.visitors[0]

        async def run(*args, card=None):
            if card is None:
                return await asyncio.to_thread(cli, "--db", db, *args)
            return (await at_desk(sim, card, asyncio.to_thread(cli, "--db", db, *args, "--wait", 30)))[0]
        for args, says in ((("tier", "set", 2, "--bonus-bps", 500, "--step", "100:3"), "gold  500 bps"),
                           (("tier", "add", 3, "platinum", "--bonus-bps", 2000), "platinum"),
                           (("park", "deposit", "temporary", "10"), "temporary CNY 10.00"),
                           (("park", "refund-rules", "--minimum", "5", "--fee-bps", 100, "--fee-fixed", "0.50"),
                            "at least CNY 5.00, fee 100 bps + CNY 0.50")):
            done = await run(*args)
            assert done.exit_code == 0 and says in done.output, (args, done.output)
        for args, says in ((("tier", "add", 2, "again"), "tier 2 exists"), (("tier", "set", 9), "no tier has code 9"),
                           (("tier", "add", 16, "x"), "0..15"), (("tier", "add", 4, "Gold"), "already called"),
                           (("tier", "set", 1, "--bonus-bps", 20000), "basis points"),
                           (("park", "deposit", "member", "20.50"), "whole units of 100"),
                           (("park", "refund-rules", "--fee-bps", 10001), "10001"),
                           (("tier", "set", 1, "--step", "5"), "MIN:BONUS")):
            refused = await run(*args)
            assert refused.exit_code != 0 and says in refused.output and "Traceback" not in refused.output, (
                args, refused.output)
        listed = await run("tier", "list")
        assert "platinum" in listed.output and "pay CNY 100.00 get CNY 3.00" in listed.output
        topped = await run("card", "top-up", "200", "--desk", DESK_TERMINAL_ID, card=visitor.virtual)
        assert "bonus CNY 13.00" in topped.output, topped.output      # 5 % + the 100 step's 3, from the store
        shown = await run("card", "show", visitor.card_no)
        cash, bonus = await purse(sim, visitor.card_no)
        assert "(cash %s, bonus %s)" % (format_cents(cash, "CNY"), format_cents(bonus, "CNY")) in shown.output
        refunded = await run("card", "refund", "50", "--desk", DESK_TERMINAL_ID, "--op-id", "cli-refund",
                             card=visitor.virtual)
        assert refunded.exit_code == 0 and "fee CNY 1.00: pay the holder CNY 49.00" in refunded.output, \
            refunded.output
        over = await run("card", "refund", "%d" % (cash // 100 + 1), "--desk", DESK_TERMINAL_ID, card=visitor.virtual)
        assert over.exit_code != 0 and "over the refundable" in over.output
        returned = await run("card", "return", "--desk", DESK_TERMINAL_ID, "--op-id", "cli-return",
                             card=visitor.virtual)
        assert returned.exit_code == 0 and "bonus %s back to the park" % format_cents(bonus, "CNY") in \
            returned.output, returned.output
        refused = await run("card", "top-up", "10", "--desk", DESK_TERMINAL_ID, card=visitor.virtual)
        assert refused.exit_code != 0 and "returned" in refused.output
        wiped = await run("card", "wipe", "--desk", DESK_TERMINAL_ID, card=visitor.virtual)
        assert wiped.exit_code == 0, wiped.output
        assert (await sim.hub.storage.card(visitor.card_no)).status == CardStatus.WIPED
        issued = await run("card", "issue", "--load", "30", "--desk", DESK_TERMINAL_ID, card=visitor.virtual)
        assert issued.exit_code == 0 and "deposit CNY 10.00" in issued.output, issued.output
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == 3000
        assert (await sim.ledger_report()).ok
    in_steady_park(tmp_path, scenario, cards=1)


def test_the_ledger_check_finds_a_bonus_purse_booked_otherwise_than_its_rule(tmp_path):
    import sqlite3

    async def scenario(sim):
        gold = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        await at_desk(sim, gold.virtual, desk.top_up("gold-top-up", 2000))
        assert (await sim.ledger_report()).ok
        db = sqlite3.connect(sim.workdir + "/parkcard.db")
        with db:        # a balanced pair slipped into the top-up's transaction: 100 of cash made bonus
            tx_id, = db.execute("SELECT MAX(tx_id) FROM ledger_entries WHERE account=?",
                                (accounts.bonus_account(gold.card_no),)).fetchone()
            db.executemany("INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (?,?,?)", [
                (tx_id, accounts.bonus_account(gold.card_no), 100), (tx_id, accounts.BONUS_PURSES, -100)])
        db.close()
        report = await sim.ledger_report()
        assert not report.ok and len(report.purse_mismatch) == 1
        assert "card %d" % gold.card_no in report.purse_mismatch[0] and "+300" in report.purse_mismatch[0]
    in_steady_park(tmp_path, scenario, cards=1)


def test_a_wipe_cut_off_before_the_info_block_is_finished_by_running_it_again(tmp_path, monkeypatch):
    async def scenario(sim):
        visitor = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        refused, _ = await at_desk(sim, visitor.virtual, desk.wipe_card("too-soon"))
        assert isinstance(refused, ServiceError) and "return it first" in str(refused)
        await at_desk(sim, visitor.virtual, desk.return_card("back"))
        reader, write_block = leaving_before_the_info_block(sim, monkeypatch)
        cut, _ = await at_desk(sim, visitor.virtual, desk.wipe_card("wipe"))
        assert isinstance(cut, ServiceError) and "run the same command again" in str(cut)
        assert (await sim.hub.storage.card(visitor.card_no)).status == CardStatus.RETURNED
        monkeypatch.setattr(reader, "write_block", write_block)
        done, _ = await at_desk(sim, visitor.virtual, desk.wipe_card("wipe"))
        assert done.uid == visitor.virtual.uid
        assert all(bytes(visitor.virtual.blocks[b]) == bytes(16) for b in (C.INFO_BLOCK,) + C.SLOT_BLOCKS)
        assert (await sim.hub.storage.card(visitor.card_no)).status == CardStatus.WIPED
        again, _ = await at_desk(sim, visitor.virtual, desk.issue("reissue", 2000))
        assert again.card_no != visitor.card_no and card_balance(sim.park_keys, visitor.virtual).balance_cents == 2000
        assert (await sim.ledger_report()).ok
    in_park(tmp_path, scenario, cards=1)
