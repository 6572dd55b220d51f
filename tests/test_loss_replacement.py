"""Loss (挂失), un-report (解挂) and replacement (补卡) through the real path, on SQLite and PostgreSQL: Mosquitto, the
desk and booth firmware on virtual readers; a booth offline with the lost card's debit reconnects after the
replacement (and after a hub restart): the debit is accepted and paid from the hold, the rest released onto the new
card exactly once; a late debit beyond the hold is the park's loss with an alarm; a torn write of the new card is
never a replacement and a retry with the same operation id makes it once."""

import asyncio

import pytest

from protocol import record as R
from sim.cards import card_balance
from terminal.rc522 import RC522Error

from parkcard.domain import accounts
from parkcard.domain.lifecycle import ALARM_LATE_LOSS, DeskOpState
from parkcard.services import credits as credit_service
from parkcard.services import losses, park
from parkcard.services import members as member_service
from parkcard.services.privileges import Actor, ServiceError
from parkcard_devkit.park_sim import DESK_TERMINAL_ID, ParkSim
from test_desk import HubDied, at_desk, cli

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CHECK_S = 0.1               # the hub's hold check, in these tests
NEW_UID = bytes.fromhex("04aabbccdd0101")


def in_park(tmp_path, store_url, scenario):
    """Run `await scenario(sim)` in a park with two booths (a pos and a ride) and one visitor card."""
    async def go():
        db = None if store_url.endswith(".db") else store_url
        async with ParkSim(tmp_path / "park", terminals=2, cards=1, db=db) as sim:
            _fast(sim)
            await scenario(sim)
    asyncio.run(asyncio.wait_for(go(), 300))


def _fast(sim):
    # The desk keeps the hub's own timeouts: no scenario here waits one out, and a loaded machine can take more
    # than a short one to answer a card write.
    sim.hub.hold_check_s = CHECK_S


async def _lost_and_replaced(sim, booth, late_cents, daily_cap_cents=1500):
    """The visitor's card debited late_cents at an offline booth, then reported lost and replaced at the desk.

    The park's daily cap is set to daily_cap_cents once the booth is offline (it keeps the cap it had: a terminal
    whose limits are not the park's), below the card's balance so that the hold is part of it (2 days: report +
    window is tomorrow)."""
    visitor = sim.visitors[0]
    booth.relay.cut()
    await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the outage")
    assert booth.tap(visitor.virtual, late_cents).ok
    rules = await park.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, daily_cap_cents)
    assert (await park.replacement_settings(sim.hub.storage)).daily_cap_cents == rules.offline_daily_cap_cents
    loss = await losses.report(sim.hub.storage, sim.hub.actor("test:cashier"), "lost at the lake",
                                    card_no=visitor.card_no)
    assert await sim.hub.storage.blacklist_version() == loss.blacklist_version
    balance = await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no))
    new = await sim.new_card(NEW_UID)
    done = await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace("replace-1", visitor.card_no))
    return visitor, new, balance, done


async def _credit_listed_then_offline(sim, booth, cents, reason="paid at desk 2"):
    """Grant the visitor's card a credit of cents, wait until the booth holds it in its list, then cut the booth off;
    return the cashier who granted it."""
    cashier = sim.hub.actor("test:cashier")
    await credit_service.grant_credit(sim.hub.storage, cashier, sim.visitors[0].card_no, cents, reason)
    await sim.wait_for(lambda: booth.wallet.credits is not None and booth.wallet.credits.version > 0, 30,
                       "the booth did not get the credit list")
    booth.relay.cut()
    await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the outage")
    return cashier


async def _until(read, holds, timeout_s, what):
    """Wait until holds(await read()) (the hub's own task does the work); TimeoutError(what) at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not holds(await read()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(CHECK_S)


async def _replacement(sim, card_no):
    return await sim.hub.storage.replacement(old_card_no=card_no)


async def _balanced(sim, cards):
    """The hub's shadow of each card is what the card holds, and the ledger check passes (holds included)."""
    for card_no, virtual in cards:
        row = await sim.hub.storage.card(card_no)
        assert row.shadow_balance_cents == card_balance(sim.park_keys, virtual).balance_cents
    report = await sim.ledger_report()
    assert report.ok, "\n".join(report.lines())


def test_late_offline_debits_are_paid_from_the_hold_and_the_rest_released_once_across_a_hub_restart(
        tmp_path, store_url):
    async def scenario(sim):
        booth, ride = sim.terminals
        visitor, new, balance, done = await _lost_and_replaced(sim, booth, 800)
        row = await _replacement(sim, visitor.card_no)
        # Hold: the daily cap (1500) times the days the unsent spending may lie in (today and tomorrow).
        assert (row.balance_cents, row.hold_cents, row.moved_cents) == (balance, 3000, balance - 3000)
        assert card_balance(sim.park_keys, new).balance_cents == done.balance_cents == balance - 3000
        assert await sim.hub.storage.card_member(done.card_no) is None
        transfer_in = [r for r in await sim.hub.storage.records() if r.kind == R.KIND_TRANSFER_IN]
        assert [(r.card_no, r.amount_cents) for r in transfer_in] == [(done.card_no, balance - 3000)]
        assert await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no)) == 0
        again = await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace("replace-1", visitor.card_no))
        assert (again.card_no, again.record_seq) == (done.card_no, done.record_seq)    # the same replacement
        await _balanced(sim, [(done.card_no, new)])

        hub = await sim.restart_hub()       # between the replacement and the release
        _fast(sim)
        assert await hub.release_holds() == []      # the booth still lags: nothing is released
        booth.relay.restore()
        await sim.drain()
        await _until(lambda: _replacement(sim, visitor.card_no), lambda r: r.released, 60,
                     "the hold was not released once the booth caught up")
        row = await _replacement(sim, visitor.card_no)
        assert (row.covered_cents, row.loss_cents, row.released_cents) == (800, 0, 3000 - 800)
        assert row.moved_cents + row.released_cents + row.covered_cents == balance
        assert await hub.release_holds(now_s=row.release_at_s + 1) == []   # released once
        [credit] = await hub.storage.pending_credits(done.card_no)
        assert (credit.amount_cents, credit.source) == (2200, accounts.hold_account(visitor.card_no))
        assert await hub.storage.account_balance(accounts.hold_account(visitor.card_no)) == 0
        # The old card holds what its late debit left; its account is 0: everything moved.
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == balance - 800
        await sim.wait_for(lambda: ride.wallet.credits is not None and ride.wallet.credits.version > 0, 30,
                           "the ride did not get the credit list")
        assert ride.tap(new, ride.wallet.config.fixed_price_cents).ok      # the released hold lands here
        await sim.drain()
        assert card_balance(sim.park_keys, new).balance_cents == balance - 800 - ride.wallet.config.fixed_price_cents
        await _balanced(sim, [(visitor.card_no, visitor.virtual), (done.card_no, new)])
        assert [a for a in await hub.storage.alarms() if a.kind == ALARM_LATE_LOSS] == []
    in_park(tmp_path, store_url, scenario)


def test_a_late_offline_credit_and_the_lost_card_s_pending_credits_follow_it_to_the_new_card(tmp_path, store_url):
    async def scenario(sim):
        booth, ride = sim.terminals
        visitor = sim.visitors[0]
        cashier = await _credit_listed_then_offline(sim, booth, 500)
        await credit_service.grant_credit(sim.hub.storage, cashier, visitor.card_no, 300, "API top-up")
        before = card_balance(sim.park_keys, visitor.virtual).balance_cents
        assert booth.tap(visitor.virtual, 800).ok           # offline: the first credit lands, then the sale
        assert card_balance(sim.park_keys, visitor.virtual).balance_cents == before + 500 - 800
        await park.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, 1500)
        await losses.report(sim.hub.storage, cashier, "lost at the lake", card_no=visitor.card_no)
        balance = await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no))
        assert balance == before        # the hub has seen neither the credit's delivery nor the sale
        new = await sim.new_card(NEW_UID)
        done = await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace("replace-1", visitor.card_no))
        row = await _replacement(sim, visitor.card_no)
        assert (row.hold_cents, row.moved_cents) == (3000, balance - 3000)

        booth.relay.restore()
        await sim.drain()
        await _until(lambda: _replacement(sim, visitor.card_no), lambda r: r.released, 60,
                     "the hold was not released once the booth caught up")
        row = await _replacement(sim, visitor.card_no)
        # The late credit went into the hold (800 taken, 500 back): the new card gets it with the rest.
        assert (row.covered_cents, row.loss_cents, row.released_cents) == (300, 0, 2700)
        old_credits = await sim.hub.storage.pending_credits(visitor.card_no)
        assert [(c.amount_cents, c.state) for c in old_credits] == [(500, "delivered"), (300, "cancelled")]
        new_credits = await sim.hub.storage.pending_credits(done.card_no)
        assert sorted((c.amount_cents, c.source) for c in new_credits) == [
            (300, accounts.CASH), (2700, accounts.hold_account(visitor.card_no))]
        assert await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no)) == 0
        version, _listed = await sim.hub.storage.credits_list()
        await sim.wait_for(lambda: ride.wallet.credits is not None and ride.wallet.credits.version >= version, 30,
                           "the ride did not get the new card's credits")
        price = ride.wallet.config.fixed_price_cents
        assert ride.tap(new, price).ok
        await sim.drain()
        # Everything the holder had, the late credit and the credit never delivered included, less what they spent.
        assert card_balance(sim.park_keys, new).balance_cents == balance + 500 - 800 + 300 - price
        await _balanced(sim, [(visitor.card_no, visitor.virtual), (done.card_no, new)])
        assert [a for a in await sim.hub.storage.alarms() if a.kind == ALARM_LATE_LOSS] == []
    in_park(tmp_path, store_url, scenario)


def test_a_late_debit_beyond_the_hold_is_the_parks_loss_with_an_alarm_and_one_after_the_release_too(tmp_path):
    async def scenario(sim):
        booth, _ride = sim.terminals
        visitor, new, balance, done = await _lost_and_replaced(sim, booth, 1400, daily_cap_cents=500)
        row = await _replacement(sim, visitor.card_no)
        assert row.hold_cents == 1000
        # The booth stays away past the release time: the hold goes to the new card whatever it still holds.
        [(released, credit)] = await sim.hub.release_holds(now_s=row.release_at_s)
        assert (released.released_cents, credit.amount_cents) == (1000, 1000)
        booth.relay.restore()
        await sim.drain()
        row = await _replacement(sim, visitor.card_no)
        assert (row.covered_cents, row.loss_cents, row.released_cents) == (0, 1400, 1000)
        alarms = [a for a in await sim.hub.storage.alarms() if a.kind == ALARM_LATE_LOSS]
        assert [(a.card_no, a.terminal_id) for a in alarms] == [(visitor.card_no, booth.terminal_id)]
        assert await sim.hub.storage.account_balance(accounts.LOSSES) == -1400
        assert await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no)) == 0
        await _balanced(sim, [(visitor.card_no, visitor.virtual), (done.card_no, new)])
        # The ledger check holds each settlement to its record: one changed in the database is found.
        import sqlite3
        with sqlite3.connect(sim.hub.storage.path) as conn:
            conn.execute("UPDATE replacement_covers SET amount_cents = amount_cents - 100")
        report = await sim.ledger_report()
        assert not report.ok and any("its record is kind 1" in p for p in report.hold_problems), \
            "\n".join(report.lines())
    in_park(tmp_path, "x.db", scenario)


def test_a_torn_write_of_the_new_card_replaces_nothing_and_the_retry_replaces_once(tmp_path, monkeypatch):
    async def scenario(sim):
        visitor = sim.visitors[0]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        cashier = Actor("test:cashier", roles=("cashier",))
        await losses.report(sim.hub.storage, cashier, "stolen", card_no=visitor.card_no)
        refused, _ = await at_desk(sim, visitor.virtual, sim.hub.desk(DESK_TERMINAL_ID, cashier).replace(
            "by-cashier", visitor.card_no))
        assert isinstance(refused, ServiceError) and "manager" in str(refused)     # a replacement is a manager's
        new = await sim.new_card(NEW_UID)
        writer = sim.desk.terminal.card_writer
        reader = writer.reader
        write_block = reader.write_block

        def torn(block, data):
            write_block(block, data[:8] + bytes(8))
            raise RC522Error("the card left during the write")
        monkeypatch.setattr(reader, "write_block", torn)
        failed, _ = await at_desk(sim, new, desk.replace("torn", visitor.card_no))
        assert isinstance(failed, ServiceError) and "nothing was charged" in str(failed)
        assert (await sim.hub.storage.desk_operation("torn")).state == DeskOpState.FAILED
        assert await _replacement(sim, visitor.card_no) is None
        monkeypatch.setattr(reader, "write_block", write_block)
        done, _ = await at_desk(sim, new, desk.replace("torn", visitor.card_no))
        again, _ = await at_desk(sim, new, desk.replace("torn", visitor.card_no))
        assert again.record_seq == done.record_seq
        other, _ = await at_desk(sim, new, desk.replace("second", visitor.card_no))
        assert isinstance(other, ServiceError) and "replaced already" in str(other)
        assert len([r for r in await sim.hub.storage.records() if r.kind == R.KIND_TRANSFER_IN]) == 1
        found = await _refusal(losses.unreport(sim.hub.storage, cashier, visitor.card_no))
        assert "replaced" in found
        await _balanced(sim, [(done.card_no, new)])
    in_park(tmp_path, "x.db", scenario)


async def _refusal(coro):
    try:
        await coro
    except ServiceError as exc:
        return str(exc)
    raise AssertionError("not refused")


def test_members_own_their_cards_a_loss_by_member_and_its_un_report(tmp_path, store_url):
    async def scenario(sim):
        admin = sim.hub.actor("test:manager")
        storage = sim.hub.storage
        member = await member_service.register(storage, admin, "Li Wei", "+86 138-0000-1234", tier="gold")
        assert (member.phone, member.tier) == ("+8613800001234", 2)
        taken = await _refusal(member_service.register(storage, admin, "Someone", "+8613800001234"))
        assert "Li Wei" in taken
        new = await sim.new_card(NEW_UID)
        issued = await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).issue("member-issue", 5000,
                                                                               member_no=member.member_no))
        card = await storage.card(issued.card_no)
        assert (card.tier, issued.bonus_cents) == (2, 500)      # the member's tier, and its bonus
        assert (await member_service.find_member(storage, admin, card_no=issued.card_no)).member_no == \
            member.member_no
        loss = await losses.report(storage, admin, "lost", member_no=member.member_no)
        assert loss.card_no == issued.card_no and issued.card_no in await storage.blacklist_cards()
        await losses.unreport(storage, admin, issued.card_no)
        assert issued.card_no not in await storage.blacklist_cards()
        assert (await storage.card_loss(issued.card_no)).state == "found"
        assert await member_service.set_tier(storage, admin, member.member_no, "silver") == 1
        assert (await storage.card(issued.card_no)).tier == 1
        # A replaced member card: the new one is the member's too. Every booth is online: once each reported
        # holding the loss's blacklist with nothing unsent, nothing can come late and nothing is held. So its
        # credit never delivered, sent to the booths already, moves to the new card at once.
        await credit_service.grant_credit(storage, admin, issued.card_no, 400, "paid at desk 2")
        again = await losses.report(storage, admin, "lost again", member_no=member.member_no)
        await _until(lambda: storage.lagging_terminals(again.blacklist_version, again.reported_at), lambda l: not l,
                     60, "the online booths did not report holding the new blacklist")
        balance = await storage.account_balance(accounts.card_account(issued.card_no))
        bonus = await storage.account_balance(accounts.bonus_account(issued.card_no))
        assert bonus == 500
        other = await sim.new_card(bytes.fromhex("04aabbccdd0202"))
        done = await sim.at_desk(other, sim.hub.desk(DESK_TERMINAL_ID).replace("member-replace", issued.card_no))
        # The bonus stays bonus on the new card: it is not refundable there either.
        assert [await storage.account_balance(accounts.bonus_account(c)) for c in (issued.card_no, done.card_no)] \
            == [0, bonus]
        row = await _replacement(sim, issued.card_no)
        assert (row.hold_cents, row.moved_cents, row.released, done.balance_cents) == (0, balance, 1, balance)
        assert await storage.member_cards(member.member_no) == [issued.card_no, done.card_no]
        assert (await storage.card(done.card_no)).tier == 1
        assert [c.state for c in await storage.pending_credits(issued.card_no)] == ["cancelled"]
        refused = await _refusal(credit_service.grant_credit(storage, admin, issued.card_no, 100, "late top-up"))
        assert "replaced by card %d: grant the credit to card %d" % (done.card_no, done.card_no) in refused
        assert [(c.amount_cents, c.source, c.state != "cancelled") for c in await storage.pending_credits(
            done.card_no)] == [(400, accounts.CASH, True)]
        await _balanced(sim, [(done.card_no, other)])
    in_park(tmp_path, store_url, scenario)


def test_the_manager_reports_and_replaces_a_card_from_the_cli_and_a_retry_is_the_same_replacement(tmp_path):
    async def scenario(sim):
        visitor = sim.visitors[0]
        db = sim.workdir + "/parkcard.db"
        early = await asyncio.to_thread(cli, "--db", db, "card", "replace", visitor.card_no, "--desk",
                                        DESK_TERMINAL_ID, "--op-id", "too-early", "--wait", 5)
        assert early.exit_code == 2 and "is not reported lost" in early.output and "Traceback" not in early.output
        lost = await asyncio.to_thread(cli, "--db", db, "card", "lost", visitor.card_no, "--reason", "stolen")
        assert lost.exit_code == 0 and "reported lost" in lost.output, lost.output
        balance = await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no))
        new = await sim.new_card(NEW_UID)
        replaced, _ = await at_desk(sim, new, asyncio.to_thread(
            cli, "--db", db, "card", "replace", visitor.card_no, "--desk", DESK_TERMINAL_ID, "--op-id", "r-1",
            "--wait", 30))
        assert replaced.exit_code == 0, replaced.output
        row = await _replacement(sim, visitor.card_no)
        assert "replaces card %d" % visitor.card_no in replaced.output and "[operation r-1]" in replaced.output
        assert card_balance(sim.park_keys, new).balance_cents == balance - row.hold_cents == row.moved_cents
        again = await asyncio.to_thread(cli, "--db", db, "card", "replace", visitor.card_no, "--desk",
                                        DESK_TERMINAL_ID, "--op-id", "r-1")
        assert again.exit_code == 0 and again.output.splitlines()[-1] == replaced.output.splitlines()[-1]
        shown = await asyncio.to_thread(cli, "--db", db, "card", "show", visitor.card_no)
        assert "replaced by card %d" % row.new_card_no in shown.output
        # The booths are online: once each reports holding the loss's blacklist, the hold is released.
        await _until(lambda: _replacement(sim, visitor.card_no), lambda r: r.released, 60,
                     "the hold was not released with every terminal caught up")
        assert (await _replacement(sim, visitor.card_no)).released_cents == row.hold_cents
        await _balanced(sim, [(row.new_card_no, new)])
    in_park(tmp_path, "x.db", scenario)


def test_the_hub_dying_after_the_new_card_is_written_posts_once_on_the_retry_with_a_late_debit_meanwhile(
        tmp_path, monkeypatch):
    async def scenario(sim):
        from parkcard.services.desk import operations
        booth, _ride = sim.terminals
        visitor = sim.visitors[0]
        booth.relay.cut()
        await sim.wait_for(lambda: not booth.terminal.client.connected, 30, "the booth did not notice the outage")
        assert booth.tap(visitor.virtual, 700).ok
        await park.set_offline_rules(sim.hub.storage, sim.hub.actor("test:manager"), 86400, 1500)
        await losses.report(sim.hub.storage, sim.hub.actor(), "lost", card_no=visitor.card_no)
        balance = await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no))
        new = await sim.new_card(NEW_UID)
        post = operations.post_confirmed

        async def dies(*args, **kwargs):
            raise HubDied("the hub died after the card was written")
        monkeypatch.setattr(operations, "post_confirmed", dies)
        with pytest.raises(HubDied):
            await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace("killed", visitor.card_no))
        written = card_balance(sim.park_keys, new).balance_cents
        assert written == balance - 3000 and await _replacement(sim, visitor.card_no) is None
        # While it is pending (its write is on a card) the loss stands and no other replacement starts.
        found = await _refusal(losses.unreport(sim.hub.storage, sim.hub.actor(), visitor.card_no))
        assert "operation killed is pending" in found
        other = await sim.at_desk(await sim.new_card(bytes.fromhex("04aabbccdd0303")), _refusal(
            sim.hub.desk(DESK_TERMINAL_ID).replace("second", visitor.card_no)))
        assert "being replaced by operation killed" in other
        # Meanwhile the booth comes back: the lost card's debit is applied before the replacement is posted.
        booth.relay.restore()
        await sim.drain()
        assert await sim.hub.storage.account_balance(accounts.card_account(visitor.card_no)) == balance - 700
        monkeypatch.setattr(operations, "post_confirmed", post)
        done = await sim.at_desk(new, sim.hub.desk(DESK_TERMINAL_ID).replace("killed", visitor.card_no))
        assert done.balance_cents == written == card_balance(sim.park_keys, new).balance_cents   # not written twice
        row = await _replacement(sim, visitor.card_no)
        # The debit that came first took its part of the hold: what is held is what the old card has left.
        assert (row.balance_cents, row.moved_cents, row.hold_cents) == (balance - 700, written, 3000 - 700)
        await _balanced(sim, [(visitor.card_no, visitor.virtual), (done.card_no, new)])
        # The ledger check re-derives the hold: a hold changed in the database is found.
        if sim.hub.storage.path.endswith(".db"):
            import sqlite3
            with sqlite3.connect(sim.hub.storage.path) as conn:
                conn.execute("UPDATE replacements SET hold_cents = hold_cents + 100")
            report = await sim.ledger_report()
            assert not report.ok and len(report.hold_problems) == 2, "\n".join(report.lines())
    in_park(tmp_path, "x.db", scenario)
