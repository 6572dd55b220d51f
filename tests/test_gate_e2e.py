"""End to end: tickets sold at the desk, gates running the firmware on virtual readers, real Mosquitto, the hub.

Entry and exit online and offline, anti-passback both ways, an exit not walked opened again, a timed exit that
debits the wallet, refusals with their reasons, and occupancy equal to the records after a gate that was offline
reconnects."""

import asyncio
import time

import pytest

from protocol import record as R, ticket as t
from sim.cards import card_balance

from parkcard.services import occupancy, park, tickets
from parkcard.services.privileges import ServiceError
from parkcard_devkit.park_sim import GATE_MERCHANT_ID, ParkSim

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_tickets_sold_at_the_desk_pass_gates_online_and_offline_and_occupancy_matches_the_records(tmp_path):
    async def scenario():
        async with ParkSim(tmp_path / "park", terminals=0, cards=3, gates=2) as sim:
            hub, actor = sim.hub, sim.hub.actor()
            entry, exit_ = sim.gates
            day = await tickets.add_product(hub.storage, actor, "Day pass", "day", area=1, valid_days=1)
            timed = await tickets.add_product(hub.storage, actor, "Car park", "timed", area=1, included_min=60,
                                              interval_min=30, interval_price_cents=500)
            await hub.configure_gate(entry.terminal_id, "entry", area=1, products=[day, timed])
            await hub.configure_gate(exit_.terminal_id, "exit", area=1, products=[day, timed])
            await sim.wait_for(lambda: all(g.wallet.config.tail for g in sim.gates), 30, "no gate config")
            a, b, c = sim.visitors
            for visitor, product in ((a, day), (b, day), (c, timed)):
                sale = await sim.sell_ticket(visitor, product)
                assert sale.card_no == visitor.card_no
            # online: in, anti-passback, out, not inside
            assert entry.pass_gate(a.virtual).ok
            assert entry.pass_gate(a.virtual).reason == t.REASON_ALREADY_INSIDE
            assert exit_.pass_gate(a.virtual).ok
            # the turnstile did not turn (the visitor turned back): the exit opens again for 300 s (SPEC.md §3.14)
            again = exit_.pass_gate(a.virtual)
            assert again.ok and again.charge_cents == 0
            exit_.board.clock_offset_s += 300
            assert exit_.pass_gate(a.virtual).reason == t.REASON_NOT_INSIDE
            exit_.board.clock_offset_s -= 300
            # offline: the entry gate is cut off and still decides from the card alone
            entry.relay.cut()
            await sim.wait_for(lambda: not entry.terminal.client.connected, 10, "gate still connected")
            assert entry.pass_gate(b.virtual).ok
            assert entry.pass_gate(b.virtual).reason == t.REASON_ALREADY_INSIDE
            # a timed ticket in, and out two hours later: 1 h free, 2 × 5.00. Both taps fall in one park day
            # (the gates reset at midnight UTC): before noon the exit gate's clock runs 2 h ahead, after it the
            # entry gate's 2 h behind.
            early = time.time() % 86400 < 43200
            moved = exit_ if early else entry
            moved.board.clock_offset_s += 7200 if early else -7200
            assert entry.pass_gate(c.virtual).ok
            if not early:
                entry.board.clock_offset_s += 7200
            before = card_balance(sim.park_keys, c.virtual).balance_cents
            out = exit_.pass_gate(c.virtual)
            if early:
                exit_.board.clock_offset_s -= 7200
            assert out.ok and out.charge_cents == 1000
            assert card_balance(sim.park_keys, c.virtual).balance_cents == before - 1000
            assert entry.backlog() > 0
            entry.relay.restore()
            await sim.drain(60)
            inside = await occupancy.occupancy(hub.storage, actor)
            assert (inside.areas, inside.total) == ({1: 1}, 1)        # b, let in while the gate was offline
            assert (await occupancy.check(hub.storage, actor)).ok
            refused = dict(await occupancy.refusals(hub.storage, actor, 0))
            assert refused == {"already_inside": 2, "not_inside": 1}
            kinds = [r.kind for g in sim.gates for r in await hub.storage.records(g.terminal_id)]
            assert sorted(kinds) == sorted([R.KIND_ENTRY] * 3 + [R.KIND_REFUSAL] * 3 + [R.KIND_EXIT, R.KIND_DEBIT,
                                                                                       R.KIND_TIMED_EXIT,
                                                                                       R.KIND_EXIT_FINISHED])
            assert await sim.card_mismatches() == []
            assert (await sim.ledger_report()).ok
            merchant = await hub.storage.account_balance("merchant:%d" % GATE_MERCHANT_ID)
            assert merchant == 1000 - 1000 * 800 // 10000       # the charge less the rides' commission
            written = [x.state for x in await tickets.tickets(hub.storage, actor)]
            assert written == ["written"] * 3
    asyncio.run(asyncio.wait_for(scenario(), 240))


def test_a_ticket_sold_from_the_command_line_is_written_by_the_running_hub_and_passes_the_gate(tmp_path):
    from click.testing import CliRunner

    from parkcard.cli import main
    from parkcard_devkit.park_sim import DESK_TERMINAL_ID

    def sell(db, card_no, product, wait_s=60):
        return CliRunner().invoke(main, ["--db", db, "ticket", "sell", "--card", str(card_no), "--product",
                                         str(product), "--desk", str(DESK_TERMINAL_ID), "--wait", str(wait_s)])

    async def scenario():
        async with ParkSim(tmp_path / "park", terminals=0, cards=2, gates=1) as sim:
            hub, actor = sim.hub, sim.hub.actor()
            [entry] = sim.gates
            day = await tickets.add_product(hub.storage, actor, "Day pass", "day", area=1, valid_days=1)
            await hub.configure_gate(entry.terminal_id, "entry", area=1, products=[day])
            await sim.wait_for(lambda: entry.wallet.config.tail, 30, "no gate config")
            db = str(tmp_path / "park" / "parkcard.db")
            a, b = sim.visitors
            sold = await sim.at_desk(a.virtual, asyncio.to_thread(sell, db, a.card_no, day))
            again = await asyncio.to_thread(sell, db, a.card_no, day)
            assert entry.pass_gate(a.virtual).ok
            # a lost card is locked at the gate as at a booth: refused, the lock on the card, the hub told
            await hub.blacklist_add(b.card_no, "lost")
            await sim.wait_for(lambda: entry.wallet.blacklist.contains(b.card_no), 30, "no blacklist at the gate")
            assert entry.pass_gate(b.virtual).reason == t.REASON_BLACKLISTED
            assert card_balance(sim.park_keys, b.virtual).locked
            await sim.drain(60)
            kinds = [(r.kind, r.status) for r in await hub.storage.records(entry.terminal_id)]
            assert kinds == [(R.KIND_ENTRY, "applied"), (R.KIND_REFUSAL, "applied"), (R.KIND_LOCK, "applied")]
            assert await sim.card_mismatches() == [] and (await sim.ledger_report()).ok
            return sold, again, a.card_no, await tickets.tickets(hub.storage, actor)
    sold, again, card_no, sold_tickets = asyncio.run(asyncio.wait_for(scenario(), 240))
    assert sold.exit_code == 0, sold.output
    assert "ticket 1 (product 1) written onto card %d at desk terminal 1: free: nothing to take" % card_no in sold.output
    assert again.exit_code == 2 and "holds ticket 1" in again.output and "still valid" in again.output
    assert "--replace" in again.output and "another card" in again.output
    assert [(x.serial, x.card_no, x.state) for x in sold_tickets] == [(1, card_no, "written")]


def test_the_desk_rewrites_a_used_up_or_expired_ticket_and_a_valid_one_only_when_asked(tmp_path):
    async def scenario():
        async with ParkSim(tmp_path / "park", terminals=0, cards=2, gates=1) as sim:
            hub, actor = sim.hub, sim.hub.actor()
            [entry] = sim.gates
            once = await tickets.add_product(hub.storage, actor, "One entry", "count", entries=1)
            day = await tickets.add_product(hub.storage, actor, "Day pass", "day", valid_days=1)
            await hub.configure_gate(entry.terminal_id, "entry", products=[once, day])
            await sim.wait_for(lambda: entry.wallet.config.tail, 30, "no gate config")
            a, b = sim.visitors
            first = await sim.sell_ticket(a, once)
            assert entry.pass_gate(a.virtual).ok
            await sim.drain(60)
            # used up: the desk overwrites it without being asked, and the gate reads the new ticket
            second = await sim.sell_ticket(a, day)
            assert second.replaces == first.serial
            passed = entry.pass_gate(a.virtual)
            assert passed.ok and passed.entries_left == t.ENTRIES_UNLIMITED
            await sim.drain(60)
            # still valid: refused with what to do, the card untouched, then replaced when asked
            with pytest.raises(ServiceError, match="still valid until .*--replace"):
                await sim.sell_ticket(a, once)
            third = await sim.sell_ticket(a, once, replace=True)
            assert third.replaces == second.serial
            assert entry.pass_gate(a.virtual).entries_left == 0
            # expired: a day pass of five days ago makes way for a new ticket
            today = await park.today(hub.storage, time.time())
            old = await sim.sell_ticket(b, day, start_day=today - 5)
            assert entry.pass_gate(b.virtual).reason == t.REASON_EXPIRED
            assert (await sim.sell_ticket(b, once)).replaces == old.serial
            assert entry.pass_gate(b.virtual).ok
            states = [(x.serial, x.card_no, x.state) for x in await tickets.tickets(hub.storage, actor)]
            assert [s[2] for s in states] == ["written"] * 5
            await sim.drain(60)
            # each entry counts once (which of a card's tickets it was is known to the second of the sales)
            report = {x.name: (x.sold, x.entered) for x in await tickets.report(hub.storage, actor)}
            assert report == {"One entry": (3, 3), "Day pass": (2, 1)}
    asyncio.run(asyncio.wait_for(scenario(), 240))
