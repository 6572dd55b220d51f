"""A lost card's value through its replacement (补卡) on the real path, on SQLite and PostgreSQL: the bonus its hold
kept back lands on the new card as bonus (never refundable as cash), also through a second replacement; a credit
an offline booth delivers onto the lost card after the release moved it to the new card is applied, never
quarantined, and moves no value twice; late debits that use up a hold spend its bonus, cash first, and a booth's
give-back of one of them brings back what that debit spent, cash as cash and bonus as bonus; the ledger check passes
after each, and lists settlements that leave the hold's bonus in the lost card's purse."""

import asyncio
import sqlite3

import pytest

from protocol import record as R
from protocol.config import ROLE_POS
from sim.cards import card_balance

from parkcard.domain import accounts
from parkcard.domain.lifecycle import ALARM_LATE_LOSS, RecordStatus
from parkcard.services import credits as credit_service
from parkcard.services import losses, park
from parkcard.services import staff as staff_service
from parkcard_devkit.park_sim import DESK_TERMINAL_ID
from terminal import app as terminal_app
from test_desk_money import purse
from test_loss_replacement import (NEW_UID, _balanced, _credit_listed_then_offline, _refusal, _replacement, _until,
                                   in_park)
from test_staff_e2e import STAFF_UID, held, sell

pytestmark = [pytest.mark.broker, pytest.mark.slow]

THIRD_UID = bytes.fromhex("04aabbccdd0202")


async def _report_and_replace(sim, card_no, uid, op_id):
    """Report card_no lost and replace it at the desk by a new stock card of uid; return (its virtual card, done)."""
    await losses.report(sim.hub.storage, sim.hub.actor("test:cashier"), "lost at the lake", card_no=card_no)
    new = await sim.new_card(uid)
    return new, await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace(op_id, card_no))


async def _landed(sim, terminal, virtual):
    """Tap virtual at terminal once it holds the hub's current credit list (its pending credits land there)."""
    version, _listed = await sim.hub.storage.credits_list()
    await sim.wait_for(lambda: terminal.wallet.credits is not None and terminal.wallet.credits.version >= version,
                       30, "the terminal did not get the credit list")
    price = terminal.wallet.config.fixed_price_cents
    assert terminal.tap(virtual, price).ok
    await sim.drain()
    return price


async def _bonus_held_back(sim):
    """The gold visitor's card spent late at an offline booth, reported and replaced with a hold that keeps cash and
    half its bonus back, released once the booth caught up; return (visitor, bonus, late, new card, done, credit)."""
    booth, _ride = sim.terminals
    gold = sim.visitors[0]            # gold: bonus on its first load
    cash, bonus = await purse(sim, gold.card_no)
    balance = cash + bonus
    assert bonus >= 200
    booth.relay.cut()        # a booth lags at the report: the hold is kept until it catches up
    await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the outage")
    late = 300
    assert booth.tap(gold.virtual, late).ok
    # A daily cap that holds all but half the bonus (two days): the hold keeps cash and half the bonus back.
    cap = -(-(balance - bonus // 2) // 2)
    await park.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, cap)
    new, done = await _report_and_replace(sim, gold.card_no, NEW_UID, "replace-1")
    row = await _replacement(sim, gold.card_no)
    assert (row.hold_cents, row.moved_cents) == (2 * cap, balance - 2 * cap)
    assert row.moved_cents < bonus
    assert await purse(sim, done.card_no) == (0, row.moved_cents)      # what moved is bonus first

    booth.relay.restore()
    await sim.drain()
    await _until(lambda: _replacement(sim, gold.card_no), lambda r: r.released, 60,
                 "the hold was not released once the booth caught up")
    row = await _replacement(sim, gold.card_no)
    assert (row.covered_cents, row.released_cents) == (late, 2 * cap - late)
    [credit] = await sim.hub.storage.pending_credits(done.card_no)
    # The late debit spent cash first: the bonus the hold kept back is all still there, and goes as bonus.
    assert (credit.amount_cents, credit.bonus_cents) == (2 * cap - late, bonus - row.moved_cents)
    assert await purse(sim, gold.card_no) == (0, 0)         # the lost card's purse closed with its hold
    refused = await _refusal(credit_service.cancel_credit(sim.hub.storage, sim.hub.actor("test:manager"),
                                                          done.card_no, credit.credit_no))
    assert "is the balance of lost card %d" % gold.card_no in refused          # cancelled, it would be lost
    await _balanced(sim, [(gold.card_no, gold.virtual), (done.card_no, new)])
    return gold, bonus, late, new, done, credit


async def _on_shift(sim, booth):
    """Open a shift at the booth with a staff card issued at the desk; return (the booth's pos role, the staff card)."""
    hub, actor = sim.hub, sim.hub.actor()
    member = await staff_service.add(hub.storage, actor, "Mei", booth.merchant_id)
    stock = await sim.new_card(STAFF_UID)
    issued = await sim.at_desk(stock, staff_service.issue_card(hub.desk_path, actor, "staff-1", DESK_TERMINAL_ID,
                                                               member.id))
    role = booth.terminal.app.role(ROLE_POS)
    await sim.wait_for(lambda: role.shift.allows(issued.card_no), 10, "the staff list never reached the booth")
    await held(booth, stock, role.staff_tap())
    return role, stock


async def _reverse(sim, booth, role, staff, virtual, sale_seq):
    """Reverse the booth's sale sale_seq onto virtual: the staff card first, then the card of the sale."""
    booth.board.field.add(staff)
    reversing = asyncio.ensure_future(role.reverse(sale_seq))
    await sim.wait_for(lambda: booth.board.display().lines[1] == "Tap card of sale", 10, "no card asked for")
    booth.board.field.remove(staff)
    await held(booth, virtual, reversing)


def test_the_bonus_a_hold_kept_back_lands_as_bonus_and_follows_a_second_replacement(tmp_path, store_url):
    async def scenario(sim):
        _booth, ride = sim.terminals
        gold, bonus, late, new, done, credit = await _bonus_held_back(sim)
        balance = sum(await purse(sim, done.card_no)) + credit.amount_cents + late
        # The new card is lost before the credit landed: it follows to the third card with its bonus part.
        third, again = await _report_and_replace(sim, done.card_no, THIRD_UID, "replace-2")
        # Whether a terminal still lagged at this report or not, by its release the credit has moved.
        await sim.hub.release_holds(now_s=(await _replacement(sim, done.card_no)).release_at_s)
        moved = await sim.hub.storage.pending_credits(again.card_no)
        assert (credit.amount_cents, credit.bonus_cents, accounts.hold_account(gold.card_no)) in [
            (c.amount_cents, c.bonus_cents, c.source) for c in moved]
        assert [(c.state, c.moved_to_card_no) for c in await sim.hub.storage.pending_credits(done.card_no)] == [
            ("cancelled", again.card_no)]
        price = await _landed(sim, ride, third)
        left = balance - late - price
        assert card_balance(sim.park_keys, third).balance_cents == left
        # Cash is spent first: every cent of bonus the lost card had is bonus on the card in use, none is cash.
        assert await purse(sim, again.card_no) == (left - bonus, bonus)
        await _balanced(sim, [(gold.card_no, gold.virtual), (done.card_no, new), (again.card_no, third)])
    in_park(tmp_path, store_url, scenario)


def test_the_ledger_check_holds_a_released_hold_s_bonus_part_to_the_lost_card_s_purse(tmp_path):
    async def scenario(sim):
        _gold, _bonus, _late, _new, done, credit = await _bonus_held_back(sim)
        with sqlite3.connect(sim.hub.storage.path) as conn:
            conn.execute("UPDATE pending_credits SET bonus_cents = bonus_cents - 1 WHERE card_no=? AND credit_no=?",
                         (done.card_no, credit.credit_no))
        report = await sim.ledger_report()
        assert not report.ok and any("the credit's bonus part %d" % (credit.bonus_cents - 1) in p
                                     for p in report.purse_mismatch), "\n".join(report.lines())
    in_park(tmp_path, "x.db", scenario)


def test_a_credit_delivered_onto_the_lost_card_after_the_release_moved_it_moves_no_value_twice(tmp_path, store_url):
    async def scenario(sim):
        booth, ride = sim.terminals
        visitor = sim.visitors[0]
        await _credit_listed_then_offline(sim, booth, 500)
        before = card_balance(sim.park_keys, visitor.virtual).balance_cents
        assert booth.tap(visitor.virtual, 800).ok           # offline: the credit lands, then the sale
        await park.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, 1500)
        new, done = await _report_and_replace(sim, visitor.card_no, NEW_UID, "replace-1")
        row = await _replacement(sim, visitor.card_no)
        assert (row.balance_cents, row.hold_cents) == (before, 3000)
        # The booth stays away past the release time: the credit it was sent moves to the new card with the hold.
        [(released, _credit)] = await sim.hub.release_holds(now_s=row.release_at_s)
        [old_credit] = await sim.hub.storage.pending_credits(visitor.card_no)
        assert (old_credit.state, old_credit.moved_to_card_no) == ("cancelled", done.card_no)
        assert sorted((c.amount_cents, c.source) for c in await sim.hub.storage.pending_credits(done.card_no)) == [
            (500, accounts.CASH), (3000, accounts.hold_account(visitor.card_no))]

        booth.relay.restore()            # it brings the credit's delivery onto the lost card, and the sale
        await sim.drain()
        assert await sim.hub.storage.quarantined() == []
        late = [r for r in await sim.hub.storage.records(booth.terminal_id) if r.card_no == visitor.card_no]
        assert [(r.kind, r.status) for r in late] == [(R.KIND_CREDIT, RecordStatus.APPLIED),
                                                      (R.KIND_DEBIT, RecordStatus.APPLIED)]
        [old_credit] = await sim.hub.storage.pending_credits(visitor.card_no)
        assert (old_credit.state, old_credit.delivered_terminal) == ("cancelled", booth.terminal_id)
        # The credit's value is the holder's once, on the new card; the sale after the release is the park's loss.
        row = await _replacement(sim, visitor.card_no)
        assert (row.covered_cents, row.loss_cents, row.released_cents) == (0, 800, 3000)
        assert await sim.hub.storage.account_balance(accounts.LOSSES) == -800
        assert [a.card_no for a in await sim.hub.storage.alarms() if a.kind == ALARM_LATE_LOSS] == [visitor.card_no]
        assert await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no)) == 0
        assert await sim.hub.storage.account_balance(accounts.PENDING_CREDITS) == 3500
        price = await _landed(sim, ride, new)
        assert card_balance(sim.park_keys, new).balance_cents == before + 500 - price
        assert await sim.hub.storage.account_balance(accounts.PENDING_CREDITS) == 0
        await _balanced(sim, [(visitor.card_no, visitor.virtual), (done.card_no, new)])
    in_park(tmp_path, store_url, scenario)


def test_a_booth_reversal_of_the_lost_card_arriving_after_the_release_lands_on_the_new_card_once(
        tmp_path, store_url, monkeypatch):
    monkeypatch.setattr(terminal_app, "RESULT_MS", 0)     # result screens take no time; the polls stay real

    async def scenario(sim):
        booth, ride = sim.terminals
        visitor = sim.visitors[0]
        hub = sim.hub
        role, stock = await _on_shift(sim, booth)
        sale = await sell(booth, role, visitor.virtual, "1200#")     # online: the hub has it before the report
        assert sale.ok
        await sim.drain()
        booth.relay.cut()
        await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the outage")
        before = card_balance(sim.park_keys, visitor.virtual).balance_cents
        await _reverse(sim, booth, role, stock, visitor.virtual, sale.seq)     # offline: onto the lost card
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before + 1200
        await park.set_offline_rules(hub.storage, sim.hub.actor("test:manager"), 86400, 1500)
        new, done = await _report_and_replace(sim, visitor.card_no, NEW_UID, "replace-1")
        row = await _replacement(sim, visitor.card_no)
        assert (row.balance_cents, row.hold_cents) == (before, 3000)
        [(released, _credit)] = await hub.release_holds(now_s=row.release_at_s)    # the booth stays away past it

        booth.relay.restore()
        await sim.drain()
        row = await _replacement(sim, visitor.card_no)
        # The give-back is the holder's: granted to the new card at once, counted as released; nothing is lost.
        assert (row.covered_cents, row.loss_cents, row.released_cents) == (-1200, 0, 3000 + 1200)
        assert sorted(c.amount_cents for c in await hub.storage.pending_credits(done.card_no)) == [1200, 3000]
        assert await hub.storage.account_balance(accounts.LOSSES) == 0
        assert await hub.storage.account_balance(accounts.card_account(visitor.card_no)) == 0
        price = await _landed(sim, ride, new)
        assert card_balance(sim.park_keys, new).balance_cents == before + 1200 - price
        await _balanced(sim, [(visitor.card_no, visitor.virtual), (done.card_no, new)])
    in_park(tmp_path, store_url, scenario)


async def _hold_spent_then_given_back(sim, given_back):
    """The gold visitor's card replaced with a hold that keeps its cash and part of its bonus back, then spent at a
    booth offline through the loss: sales of its cash, then one of the hold's bonus, so the late debits use up the
    whole hold; the booth then gives one of the two sales back (given_back: "cash" or "bonus") onto the lost card, and
    catches up. Return (visitor, the new card's virtual card, done, the hold's bonus, the amount given back)."""
    booth, _ride = sim.terminals
    hub = sim.hub
    gold = sim.visitors[0]            # gold: bonus on its first load
    cash, bonus = await purse(sim, gold.card_no)
    role, stock = await _on_shift(sim, booth)
    booth.relay.cut()        # the booth lags through the report: the hold is kept until it catches up
    await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the outage")
    # A daily cap that holds all the cash and two fifths of the bonus (two days); what moves is bonus only.
    cap = -(-(cash + bonus - bonus * 3 // 5) // 2)
    await park.set_offline_rules(hub.storage, sim.hub.actor("test:manager"), 86400, cap)
    new, done = await _report_and_replace(sim, gold.card_no, NEW_UID, "replace-1")
    row = await _replacement(sim, gold.card_no)
    held_bonus = bonus - row.moved_cents
    assert (row.hold_cents, cash + held_bonus) == (2 * cap, 2 * cap)
    assert 0 < held_bonus <= row.moved_cents          # the card itself still shows more than the hold's bonus
    assert await sim.hub.storage.account_balance(accounts.bonus_account(gold.card_no)) == held_bonus

    most = booth.wallet.config.tx_cap_cents
    amounts = [most] * (cash // most) + [cash % most] * bool(cash % most) + [held_bonus]
    sales = [await sell(booth, role, gold.virtual, "%d#" % amount) for amount in amounts]
    assert all(s.ok for s in sales)
    given = -1 if given_back == "bonus" else 0
    await _reverse(sim, booth, role, stock, gold.virtual, sales[given].seq)      # offline: onto the lost card
    booth.relay.restore()
    await sim.drain()
    await _until(lambda: _replacement(sim, gold.card_no), lambda r: r.released, 60,
                 "the hold was not released once the booth caught up")
    return gold, new, done, held_bonus, amounts[given]


@pytest.mark.parametrize("given_back", ["cash", "bonus"])
def test_late_debits_that_use_up_the_hold_spend_its_bonus_and_a_give_back_returns_what_its_sale_spent(
        tmp_path, store_url, monkeypatch, given_back):
    monkeypatch.setattr(terminal_app, "RESULT_MS", 0)     # result screens take no time; the polls stay real

    async def scenario(sim):
        gold, new, done, held_bonus, amount = await _hold_spent_then_given_back(sim, given_back)
        row = await _replacement(sim, gold.card_no)
        assert (row.covered_cents, row.loss_cents, row.released_cents) == (row.hold_cents - amount, 0, amount)
        # The first sales spent the hold's cash, the last its bonus: given back, each returns what it spent, so
        # the holder's cash never becomes bonus (never refundable) and bonus never becomes cash (paid out).
        [credit] = await sim.hub.storage.pending_credits(done.card_no)
        assert (credit.amount_cents, credit.bonus_cents) == (amount, held_bonus if given_back == "bonus" else 0)
        assert await purse(sim, gold.card_no) == (0, 0)
        _booth, ride = sim.terminals
        price = await _landed(sim, ride, new)
        moved = row.moved_cents
        assert card_balance(sim.park_keys, new).balance_cents == moved + amount - price
        bonus_left = moved + credit.bonus_cents - max(0, price - (amount - credit.bonus_cents))
        assert await purse(sim, done.card_no) == (moved + amount - price - bonus_left, bonus_left)
        await _balanced(sim, [(gold.card_no, gold.virtual), (done.card_no, new)])
    in_park(tmp_path, store_url, scenario)


def test_the_ledger_check_finds_late_debits_booked_leaving_the_hold_s_bonus_in_the_lost_card_s_purse(
        tmp_path, monkeypatch):
    monkeypatch.setattr(terminal_app, "RESULT_MS", 0)     # result screens take no time; the polls stay real

    async def scenario(sim):
        gold, *_rest = await _hold_spent_then_given_back(sim, "bonus")
        purse_accounts = (accounts.bonus_account(gold.card_no), accounts.BONUS_PURSES)
        with sqlite3.connect(sim.hub.storage.path) as conn:     # settlements that never touch the purse
            assert conn.execute("SELECT COUNT(*) FROM replacement_covers WHERE bonus_cents<>0").fetchone()[0] == 2
            conn.execute("DROP TRIGGER ledger_entries_append_only_d")
            conn.execute("DELETE FROM ledger_entries WHERE account IN (?, ?) AND tx_id IN "
                         "(SELECT cover_tx FROM replacement_covers)", purse_accounts)
            conn.execute("UPDATE replacement_covers SET bonus_cents=0")
        report = await sim.ledger_report()
        assert not report.ok and any("late record" in p and "taken in the hold 0" in p
                                     for p in report.purse_mismatch), "\n".join(report.lines())
    in_park(tmp_path, "x.db", scenario)
