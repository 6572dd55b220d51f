"""End to end: a staff card issued at the desk opens a shift on a booth running the firmware on virtual readers
(another merchant's does not: the hub sent the booth its merchant's staff list), sales and a reversal go up
through a real Mosquitto, the shift closes, and the booth's own totals equal the hub's report and reconcile
with it (SPEC.md §4.14, §4.15, §5.11)."""

import asyncio

import pytest

from protocol import staff as S
from protocol.config import ROLE_POS
from sim.cards import card_balance

from parkcard.services import staff as staff_service
from parkcard.services import staff_reports
from parkcard_devkit.park_sim import DESK_TERMINAL_ID, MERCHANTS, ParkSim
from terminal import app as terminal_app

pytestmark = [pytest.mark.broker, pytest.mark.slow]

STAFF_UID = bytes.fromhex("5a6b7c8d")
OTHER_STAFF_UID = bytes.fromhex("5a6b7c8e")
DAY_S = 86400


HELD_S = 60    # a booth's step with the card on its reader takes well under a second: a hang fails here, named


async def held(booth, virtual, step):
    """Run the booth's step (a coroutine) with the card lying on its reader; fail after HELD_S."""
    booth.board.field.add(virtual)
    try:
        return await asyncio.wait_for(step, HELD_S)
    except TimeoutError:
        raise AssertionError("the booth's step did not end within %d s with the card on its reader (its screen: "
                             "%r)" % (HELD_S, booth.board.display().lines)) from None
    finally:
        booth.board.field.remove(virtual)


async def sell(booth, role, virtual, keys):
    booth.board.keypad().feed(keys)
    return await held(booth, virtual, role.sale_once())


def test_a_shift_with_sales_and_a_reversal_reaches_the_hub_and_its_totals_match(tmp_path, monkeypatch):
    monkeypatch.setattr(terminal_app, "RESULT_MS", 0)     # result screens take no time; the polls stay real

    async def scenario():
        async with ParkSim(tmp_path / "park", terminals=1, cards=2) as sim:
            hub, actor = sim.hub, sim.hub.actor()
            booth = sim.terminals[0]
            member = await staff_service.add(hub.storage, actor, "Mei", booth.merchant_id)
            stock = await sim.new_card(STAFF_UID)
            issued = await sim.at_desk(stock, staff_service.issue_card(hub.desk_path, actor, "staff-e2e",
                                                                       DESK_TERMINAL_ID, member.id))
            role = booth.terminal.app.role(ROLE_POS)
            # Issuing the card pushed the merchant's staff list (T_STAFF, SPEC.md §5.11): only then does it open.
            await sim.wait_for(lambda: role.shift.allows(issued.card_no), 10, "the staff list never reached the booth")
            # Another merchant's staff card opens no shift here, the reason on the display.
            other_merchant = [m for m, _name, _bps in MERCHANTS if m != booth.merchant_id][0]
            other = await staff_service.add(hub.storage, actor, "Li", other_merchant)
            other_stock = await sim.new_card(OTHER_STAFF_UID)
            await sim.at_desk(other_stock, staff_service.issue_card(hub.desk_path, actor, "staff-e2e-other",
                                                                    DESK_TERMINAL_ID, other.id))
            await held(booth, other_stock, role.staff_tap())
            assert booth.board.display().lines == ("REFUSED", "Not staff here") and not role.shift.is_open()
            await held(booth, stock, role.staff_tap())
            assert role.shift.is_open() and role.shift.staff_no == issued.card_no
            a, b = sim.visitors
            first = await sell(booth, role, a.virtual, "350#")
            second = await sell(booth, role, b.virtual, "1200#")
            third = await sell(booth, role, a.virtual, "275#")
            assert first.ok and second.ok and third.ok
            before = card_balance(sim.park_keys, b.virtual).balance_cents
            booth.board.field.add(stock)
            reversing = asyncio.ensure_future(role.reverse(second.seq))
            await sim.wait_for(lambda: booth.board.display().lines[1] == "Tap card of sale", 10, "no card asked for")
            booth.board.field.remove(stock)
            await held(booth, b.virtual, reversing)
            assert card_balance(sim.park_keys, b.virtual).balance_cents == before + 1200
            totals = role.shift.totals
            assert totals == S.ShiftTotals(3, 1825, 1, 1200)
            await held(booth, stock, role.staff_tap())
            assert not role.shift.is_open()
            await sim.drain(60)
            day = booth.wallet.clock() // DAY_S * DAY_S
            rows = await staff_reports.sales_by_staff(hub.storage, actor, day, day + DAY_S)
            assert [(r.name, r.shifts, r.totals) for r in rows] == [("Mei", 1, totals)]
            result = await staff_reports.reconcile(hub.storage, actor, day)
            assert [(s.terminal, s.hub) for s in result.shifts] == [(totals, totals)] and result.differences == []
            assert role.shift.today(booth.wallet.clock()) == totals
            assert (await sim.ledger_report()).ok
    asyncio.run(scenario())
