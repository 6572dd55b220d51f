"""Cashier shifts through the real desk path (Mosquitto, the desk firmware on a virtual reader), on SQLite and
PostgreSQL: every desk operation in the desk's open shift, paid by cash or another method, refused with none
open; a close refused while an operation is pending; the close's Z report, the over/short posted, the report
printable again and immutable; the desk's day report and the liabilities."""

import asyncio

import pytest

from sim.cards import card_balance

from parkcard.domain import accounts
from parkcard.oplog import OpLog, log_path_for
from parkcard.domain.lifecycle import DeskOpState
from parkcard.services import credits, park, reports, shifts, tickets
from parkcard.services.desk import operations, requests
from parkcard.services.privileges import Actor, ServiceError
from parkcard_devkit.park_sim import DESK_TERMINAL_ID, SHIFT_FLOAT_CENTS, ParkSim

from test_desk import HubDied, at_desk, balanced

pytestmark = [pytest.mark.broker, pytest.mark.slow]

STOCK_UID = bytes((0x04, 0x5F, 0x17, 0x00, 0x00, 0x01, 0x02))


async def _close_the_days_shift(sim, actor):
    """Close the simulated day's open shift with the drawer as expected."""
    (now,) = await shifts.open_shifts(sim.hub.storage, actor)
    await shifts.close_shift(sim.hub.storage, actor, DESK_TERMINAL_ID, now.figures.cash_expected_cents)


def in_park(tmp_path, scenario, db=None):
    """Run `await scenario(sim)` in a park with one booth and two cards issued at the desk's open shift.

    Every desk operation here is answered, so the desk keeps the hub's own timeouts: a loaded machine's
    desk terminal may take longer than the short wait of tests that expect no answer.
    """
    async def go():
        async with ParkSim(tmp_path / "park", terminals=1, cards=2, db=db) as sim:
            await scenario(sim)
    asyncio.run(asyncio.wait_for(go(), 300))


def test_a_shift_counts_its_operations_by_method_and_its_close_posts_the_difference(tmp_path, store_url):
    async def scenario(sim):
        storage, hub = sim.hub.storage, sim.hub.actor("cashier-1")
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        plain = sim.visitors[1]
        opened = sim.shift
        assert (opened.desk_terminal_id, opened.float_cents) == (DESK_TERMINAL_ID, SHIFT_FLOAT_CENTS)
        with pytest.raises(ServiceError, match="already has shift %d open" % opened.shift_no):
            await shifts.open_shift(storage, hub, DESK_TERMINAL_ID, 100)
        issued_cash = sum(op.amount_cents - op.bonus_cents + op.deposit_cents for op in await storage.desk_operations())
        issued_bonus = sum(op.bonus_cents for op in await storage.desk_operations())

        cash_top_up, _ = await at_desk(sim, plain.virtual, desk.top_up("shift-cash", 2000))
        card_top_up, _ = await at_desk(sim, plain.virtual, desk.top_up("shift-card", 1000, pay="card"))
        wrong, _ = await at_desk(sim, plain.virtual, desk.top_up("shift-bitcoin", 1000, pay="bitcoin"))
        assert isinstance(wrong, ServiceError) and "pay by cash or card or mobile" in str(wrong)
        assert await storage.desk_operation("shift-bitcoin") is None
        stock = await sim.new_card(STOCK_UID)
        mobile_issue, _ = await at_desk(sim, stock, desk.issue("shift-mobile", 5000, deposit_cents=500, pay="mobile"))
        assert card_balance(sim.park_keys, plain.virtual).balance_cents == cash_top_up.balance_cents + 1000
        day_pass = await tickets.add_product(storage, hub, "Day pass", "day", area=1, valid_days=1, price_cents=8800)
        await sim.sell_ticket(sim.visitors[0], day_pass)       # paid in cash at the desk

        (now,) = await shifts.open_shifts(storage, hub, DESK_TERMINAL_ID)
        expected = SHIFT_FLOAT_CENTS + issued_cash + 2000 + 8800    # card and mobile payments are not in the drawer
        assert (now.shift.shift_no, len(now.figures.ops), now.pending) == (opened.shift_no, 6, 0)
        assert now.figures.cash_expected_cents == expected

        z_no, z = await shifts.close_shift(storage, hub, DESK_TERMINAL_ID, expected - 150)    # 1.50 short
        assert z_no == 1
        assert (z.issues, z.cash_expected_cents, z.cash_counted_cents, z.difference_cents) == (
            3, expected, expected - 150, -150)
        assert dict(z.top_ups) == {"cash": shifts.S.MethodTotal(1, 2000), "card": shifts.S.MethodTotal(1, 1000)}
        assert dict(z.issue_loads)["mobile"] == shifts.S.MethodTotal(1, 5000)
        assert z.bonus_given_cents == issued_bonus
        assert z.deposits_in_cents == 500 * 3
        assert (z.tickets, z.tickets_cents) == (1, 8800)
        assert await storage.account_balance(accounts.OVER_SHORT) == -150
        assert await storage.account_balance(accounts.paid_by_account("card")) == -1000
        assert await storage.account_balance(accounts.paid_by_account("mobile")) == -5500    # the load and deposit
        # desk:cash is what the drawer took in: the cash operations and the ticket, less the shortfall posted
        assert await storage.account_balance(accounts.CASH) == -(expected - SHIFT_FLOAT_CENTS - 150)

        stored, shift, again = await shifts.z_report(storage, hub, z_no)
        assert (again, shift.closed_by, stored.shift_no) == (z, "cashier-1", opened.shift_no)
        with pytest.raises(Exception, match="a Z report is final"):
            await storage.write(lambda tx: tx.sql_rowcount("UPDATE z_reports SET report='{}'"))
        with pytest.raises(ServiceError, match="no open shift to close"):
            await shifts.close_shift(storage, hub, DESK_TERMINAL_ID, 0)

        before = card_balance(sim.park_keys, plain.virtual)
        refused, _ = await at_desk(sim, plain.virtual, desk.top_up("after-close", 700))
        assert isinstance(refused, ServiceError) and "desk %d has no open shift" % DESK_TERMINAL_ID in str(refused)
        assert await storage.desk_operation("after-close") is None
        assert card_balance(sim.park_keys, plain.virtual).counter == before.counter

        cashier = Actor("cashier-2", roles=("cashier",))
        await shifts.open_shift(storage, cashier, DESK_TERMINAL_ID, 10000)
        with pytest.raises(ServiceError, match="may not do this"):
            await shifts.z_report(storage, cashier, z_no)           # another cashier's Z report: finance reads it
        assert (await shifts.z_report(storage, Actor("fin", roles=("finance",)), z_no))[2] == z
        with pytest.raises(ServiceError, match="may not do this"):
            await shifts.close_shift(storage, Actor("cashier-3", roles=("cashier",)), DESK_TERMINAL_ID, 10000)
        assert [now.shift.opened_by for now in await shifts.open_shifts(storage, cashier)] == ["cashier-2"]
        assert await shifts.open_shifts(storage, Actor("cashier-3", roles=("cashier",))) == []

        _day, lines = await reports.desk_day(storage, hub, await park.today(storage, shift.closed_at), "desk")
        by_kind = {line.kind: line for line in lines}
        assert (by_kind["issue"].count, by_kind["top_up"].count, by_kind["top_up"].amount_cents) == (3, 2, 3000)
        assert await reports.bonus_purses(storage, hub) >= z.bonus_given_cents > 0      # nothing spent of this bonus
        owed = await reports.liabilities(storage, hub)
        assert owed.deposits_cents == 1500
        await balanced(sim)
    in_park(tmp_path, scenario, db=None if store_url.endswith(".db") else store_url)


def test_a_shift_does_not_close_while_one_of_its_operations_is_pending(tmp_path, monkeypatch):
    async def scenario(sim):
        storage, hub = sim.hub.storage, sim.hub.actor("cashier-1")
        visitor = sim.visitors[1]
        desk = sim.hub.desk(DESK_TERMINAL_ID)
        post = operations.post_confirmed

        async def dies(*args, **kwargs):
            raise HubDied("the hub died after the card was written")
        monkeypatch.setattr(operations, "post_confirmed", dies)
        with pytest.raises(HubDied):
            await at_desk(sim, visitor.virtual, desk.top_up("pending-at-close", 3000))
        assert (await storage.desk_operation("pending-at-close")).state == DeskOpState.PENDING
        with pytest.raises(ServiceError, match="1 operation\\(s\\) of shift %d are pending" % sim.shift.shift_no):
            await shifts.close_shift(storage, hub, DESK_TERMINAL_ID, 0)
        assert (await storage.open_shift_at(DESK_TERMINAL_ID)).shift_no == sim.shift.shift_no
        assert await storage.account_balance(accounts.OVER_SHORT) == 0

        monkeypatch.setattr(operations, "post_confirmed", post)
        done, _ = await at_desk(sim, visitor.virtual, desk.top_up("pending-at-close", 3000))
        assert done.balance_cents == card_balance(sim.park_keys, visitor.virtual).balance_cents
        (now,) = await shifts.open_shifts(storage, hub)
        _z_no, z = await shifts.close_shift(storage, hub, DESK_TERMINAL_ID, now.figures.cash_expected_cents)
        assert (z.difference_cents, dict(z.top_ups)["cash"].cents) == (0, 3000)
        assert await storage.account_balance(accounts.OVER_SHORT) == 0
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_an_operation_at_a_desk_with_no_open_shift_is_refused_before_the_card_is_written(tmp_path):
    async def scenario(sim):
        storage, hub = sim.hub.storage, sim.hub.actor("cashier-1")
        await _close_the_days_shift(sim, hub)
        with pytest.raises(ServiceError, match="open one first with `parkcard shift open --desk %d"
                           % DESK_TERMINAL_ID):
            await requests.queue(storage, hub, "top_up", DESK_TERMINAL_ID, "queued-no-shift", cash_cents=100)
        assert await storage.desk_request("queued-no-shift") is None
        with pytest.raises(ServiceError, match="desk %d has no open shift" % DESK_TERMINAL_ID):
            day_pass = await tickets.add_product(storage, hub, "Day pass", "day", area=1, valid_days=1)
            await tickets.request_sale(storage, hub, DESK_TERMINAL_ID, day_pass, sim.visitors[0].card_no)
        refused, _ = await at_desk(sim, sim.visitors[0].virtual, sim.hub.sell_ticket_at_desk(
            DESK_TERMINAL_ID, day_pass, sim.visitors[0].card_no))
        assert isinstance(refused, ServiceError) and "no open shift" in str(refused)
        assert await storage.tickets() == []
        stock = await sim.new_card(STOCK_UID)       # card stock is no sale: it needs no shift
        refused, _ = await at_desk(sim, stock, sim.hub.desk(DESK_TERMINAL_ID).issue("issue-no-shift", 1000))
        assert isinstance(refused, ServiceError) and "no open shift" in str(refused)
        assert await storage.desk_operation("issue-no-shift") is None
        assert len([op for op in await storage.desk_operations() if op.kind == "issue"]) == len(sim.visitors)
    in_park(tmp_path, scenario)


def test_a_cashier_works_only_in_her_own_shift_and_a_manager_closes_another_cashiers(tmp_path):
    async def scenario(sim):
        storage, hub = sim.hub.storage, sim.hub.actor("cashier-1")
        await _close_the_days_shift(sim, hub)
        anna, bert = Actor("anna", roles=("cashier",)), Actor("bert", roles=("cashier",))
        shift = await shifts.open_shift(storage, anna, DESK_TERMINAL_ID, 10000)
        visitor = sim.visitors[1]       # a standard card: no bonus
        before = card_balance(sim.park_keys, visitor.virtual)
        theirs = "desk %d has shift %d open, opened by anna, not by bert" % (DESK_TERMINAL_ID, shift.shift_no)
        refused, _ = await at_desk(sim, visitor.virtual, sim.hub.desk(DESK_TERMINAL_ID, bert).top_up("bert-1", 500))
        assert isinstance(refused, ServiceError) and theirs in str(refused) and "nothing was charged" in str(refused)
        assert await storage.desk_operation("bert-1") is None
        assert card_balance(sim.park_keys, visitor.virtual).counter == before.counter
        with pytest.raises(ServiceError, match=theirs):
            await requests.queue(storage, bert, "top_up", DESK_TERMINAL_ID, "bert-2", cash_cents=500)
        assert await storage.desk_request("bert-2") is None
        day_pass = await tickets.add_product(storage, hub, "Day pass", "day", area=1, valid_days=1)
        with pytest.raises(ServiceError, match=theirs):
            await tickets.request_sale(storage, bert, DESK_TERMINAL_ID, day_pass, visitor.card_no)
        with pytest.raises(ServiceError, match=theirs):
            await credits.grant_credit(storage, bert, visitor.card_no, 300, "voucher",
                                       desk_terminal_id=DESK_TERMINAL_ID)
        assert await storage.pending_credits(visitor.card_no) == []

        done, _ = await at_desk(sim, visitor.virtual, sim.hub.desk(DESK_TERMINAL_ID, anna).top_up("anna-1", 500))
        assert done.balance_cents == before.balance_cents + 500
        with pytest.raises(ServiceError, match="may not do this"):
            await shifts.close_shift(storage, bert, DESK_TERMINAL_ID, 10500)
        _z_no, z = await shifts.close_shift(storage, Actor("maria", roles=("manager",)), DESK_TERMINAL_ID, 10500)
        assert (z.difference_cents, dict(z.top_ups)["cash"].cents) == (0, 500)
        await balanced(sim)
    in_park(tmp_path, scenario)


def test_a_queued_ticket_sale_runs_as_the_cashier_who_asked_in_her_own_shift(tmp_path):
    async def scenario(sim):
        storage, hub = sim.hub.storage, sim.hub.actor("cashier-1")
        await _close_the_days_shift(sim, hub)
        anna, bert = Actor("anna", roles=("cashier",)), Actor("bert", roles=("cashier",))
        anna_shift = await shifts.open_shift(storage, anna, DESK_TERMINAL_ID, 0)
        day_pass = await tickets.add_product(storage, hub, "Day pass", "day", area=1, valid_days=1, price_cents=800)
        a, b = sim.visitors
        first = await tickets.request_sale(storage, anna, DESK_TERMINAL_ID, day_pass, a.card_no)
        await sim.at_desk(a.virtual, _hub_sells(sim))
        # Queued in anna's shift, which closes before the hub takes it: bert's shift is not hers to sell in.
        second = await tickets.request_sale(storage, anna, DESK_TERMINAL_ID, day_pass, b.card_no)
        await shifts.close_shift(storage, anna, DESK_TERMINAL_ID, 800)
        await shifts.open_shift(storage, bert, DESK_TERMINAL_ID, 0)
        await _hub_sells(sim)
        sold, refused = await storage.ticket_sale_request(first), await storage.ticket_sale_request(second)
        assert sold.error is None and sold.serial is not None
        assert "opened by bert, not by anna" in refused.error
        [ticket] = await storage.tickets()
        assert (ticket.serial, ticket.card_no, ticket.sold_by, ticket.state) == (sold.serial, a.card_no, "anna",
                                                                                 "written")
        [sell] = [e for e in OpLog(log_path_for(storage.path)).entries() if e["action"] == "ticket.sell"]
        assert (sell["actor"], sell["details"]["roles"]) == ("anna", ["cashier"])
        assert [op.method for op in await storage.shift_operations(anna_shift.shift_no)] == ["cash"]
    in_park(tmp_path, scenario)


async def _hub_sells(sim):
    """The running hub takes the queued ticket sales (as its registry poll does) and finishes them."""
    await sim.hub.run_ticket_sales()
    await asyncio.gather(*list(sim.hub._ticket_sale_tasks.values()))
