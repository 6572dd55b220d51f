"""Tickets and gates at the hub, on SQLite and PostgreSQL over a real Mosquitto: products, gate configs in the
T_CONFIG tail, passage records ingested exactly once, occupancy, passages per hour, refusals, the nightly
reset and the occupancy check against the records' own bytes."""

import asyncio

import pytest

from protocol import card as C
from protocol import card_issue
from protocol import frames, record as R, ticket as t

from parkcard import audit
from parkcard.services import occupancy, tickets
from parkcard.services.privileges import ServiceError
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, ScriptedTerminal, desk_issued, start_hub

pytestmark = pytest.mark.broker

GATE_IN, GATE_OUT = 41, 42
HOUR = 1795600800 - 1795600800 % 3600


def run(coro, timeout_s=120):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


async def gate(hub, broker, terminal_id):
    key = await hub.register_terminal(terminal_id, MERCHANT_ICE, frames.ROLE_GATE, "gate %d" % terminal_id)
    return await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, terminal_id, key).connect)


def passage(term, kind, card_no, counter, reason=0, area=1, product=1, time_s=HOUR, entries_left=0xFFFF):
    return term.record(kind, card_no, counter, 0, 1000, time_s=time_s, item=product,
                       discount_cents=R.passage_detail(reason, area, entries_left))


def test_passages_make_occupancy_per_area_and_nothing_in_the_ledger(store_url, broker):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        actor = hub.actor()
        day = await tickets.add_product(hub.storage, actor, "Day pass", "day", area=1, valid_days=1, price_cents=12000)
        issued = [await desk_issued(hub, uid, 1000) for uid in (b"\x01\x02\x03\x04", b"\x01\x02\x03\x05")]
        a, b = (i.card_no for i in issued)
        term_in, term_out = await gate(hub, broker, GATE_IN), await gate(hub, broker, GATE_OUT)
        assert await hub.configure_gate(GATE_IN, "entry", area=1, products=[day]) == 1
        await asyncio.to_thread(term_in.wait, lambda t: t.downlinks(frames.T_CONFIG))
        got = frames.Config.decode(term_in.downlinks(frames.T_CONFIG)[-1].body)
        gate_cfg = t.GateConfig.decode(got.tail)
        assert (gate_cfg.direction, gate_cfg.area, [p.product for p in gate_cfg.products]) == (
            t.DIRECTION_ENTRY, 1, [day]) and got.version == 2
        passage(term_in, R.KIND_ENTRY, a, 2)
        passage(term_in, R.KIND_ENTRY, b, 2, time_s=HOUR + 60)
        passage(term_in, R.KIND_REFUSAL, a, 2, reason=t.REASON_ALREADY_INSIDE, time_s=HOUR + 90)
        passage(term_out, R.KIND_EXIT, a, 3, time_s=HOUR + 3700)
        sent = [term_in.journal[s] for s in sorted(term_in.journal)]
        term_in.upload(sent)
        term_out.upload()
        await asyncio.to_thread(term_in.wait_acked, 3)
        await asyncio.to_thread(term_out.wait_acked, 1)
        term_in.upload(sent)                     # sent again (the ack was missed): duplicates, counted once
        await hub.wait_until(lambda: hub.stats().get("duplicates", 0) == 3)
        now = await occupancy.occupancy(hub.storage, actor)
        assert (now.areas, now.total) == ({1: 1}, 1)
        per_hour = await occupancy.passages_per_hour(hub.storage, actor, HOUR - 3600)
        assert per_hour == [(GATE_IN, HOUR, 2, 0, 1), (GATE_OUT, HOUR + 3600, 0, 1, 0)]
        assert await occupancy.refusals(hub.storage, actor, 0) == [("already_inside", 1)]
        assert (await occupancy.check(hub.storage, actor)).ok
        # the wallet's counters and the ledger do not see passages
        cards = [await hub.storage.card(n) for n in (a, b)]
        assert [(c.shadow_balance_cents, c.last_counter) for c in cards] == [(1000, 1), (1000, 1)]
        assert (await audit.check(hub.storage)).ok
        assert await occupancy.reset(hub.storage, actor, [1], HOUR + 7200) == 1
        assert (await occupancy.occupancy(hub.storage, actor)).areas == {}
        term_in.close()
        term_out.close()
        await hub.stop()
    run(scenario())


def test_products_are_checked_and_a_gate_config_needs_a_gate(store_url, broker):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        actor = hub.actor()
        with pytest.raises(ServiceError, match="count card holds 1"):
            await tickets.add_product(hub.storage, actor, "Ten rides", "count", entries=0)
        with pytest.raises(ServiceError, match="needs a price per started interval"):
            await tickets.add_product(hub.storage, actor, "Car park", "timed")
        pid = await tickets.add_product(hub.storage, actor, "Car park", "timed", included_min=60, interval_min=30,
                                        interval_price_cents=500)
        with pytest.raises(ServiceError, match="exists already"):
            await tickets.add_product(hub.storage, actor, "Car park", "day", valid_days=1)
        with pytest.raises(ServiceError, match="not a registered gate"):
            await hub.configure_gate(DESK_ID, "entry", products=[pid])
        assert [p.name for p in await tickets.products(hub.storage, actor)] == ["Car park"]
        await hub.stop()
    run(scenario())


def test_a_ticket_sold_at_the_desk_is_what_a_gate_reads(store_url, broker):
    keys = card_issue.ParkKeys(b"A" * 32, b"B" * 32, b"M" * 32)
    uid = b"\x04\xa1\xb2\xc3"

    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port, park_keys=keys)
        actor = hub.actor()
        pid = await tickets.add_product(hub.storage, actor, "Ten entries", "count", entries=10, day_limit=2)
        issued = await desk_issued(hub, uid, 1000)
        sale = await tickets.sell(hub.storage, actor, keys, pid, issued.card_no, 20782)
        ck = C.CardKeys(keys, uid)
        info = t.TicketInfo.decode(sale.blocks[t.INFO_BLOCK], ck)
        slot, _ = t.pick_slot(t.decode_slots(sale.blocks[13], sale.blocks[14], ck))
        assert (info.product, info.type, info.serial, info.day_limit, slot.entries_left) == (
            pid, t.TYPE_COUNT, sale.serial, 2, 10)
        assert sale.blocks[t.TRAILER_BLOCK][:6] == ck.key_a(t.TICKET_SECTOR)
        assert await tickets.settle(hub.storage, actor, sale.serial, True)
        assert [(x.serial, x.state) for x in await tickets.tickets(hub.storage, actor, issued.card_no)] == [
            (sale.serial, "written")]
        await hub.stop()
    run(scenario())


async def timed_park(store_url, broker):
    """A hub with a timed product (an hour included, then 5.00 a started half hour) and a card with 10.00 on it."""
    hub = await start_hub(store_url, broker.host, broker.port)
    actor = hub.actor()
    timed = await tickets.add_product(hub.storage, actor, "Car park", "timed", area=1, included_min=60,
                                      interval_min=30, interval_price_cents=500)
    return hub, actor, timed, (await desk_issued(hub, b"\x01\x02\x03\x04", 1000)).card_no


@pytest.mark.parametrize("torn_at", ["ticket", "debit"])
@pytest.mark.parametrize("finisher_first", [False, True])
def test_a_timed_exit_torn_at_one_gate_and_finished_at_another_is_booked_once(store_url, broker, torn_at,
                                                                             finisher_first):
    """SPEC.md §3.13, §4.16: gate 42 wrote the exit and lost the card before its charge (or before the ticket
    write's acknowledgement); gate 43 found the exit on the card, collected the charge and said so (kind 25)."""
    async def scenario():
        hub, actor, timed, card_no = await timed_park(store_url, broker)
        entry, first, finisher = [await gate(hub, broker, tid) for tid in (GATE_IN, GATE_OUT, GATE_OUT + 1)]
        entry.record(R.KIND_ENTRY, card_no, 2, 0, 1000, time_s=HOUR, item=timed, card_mac=b"EEEE",
                     discount_cents=R.passage_detail(0, 1, 0xFFFF))
        exit_status = R.STATUS_UNCERTAIN if torn_at == "ticket" else R.STATUS_COMMITTED
        first.record(R.KIND_TIMED_EXIT, card_no, 3, 500, 500, status=exit_status, time_s=HOUR + 5400, item=timed,
                     card_mac=b"XXXX", discount_cents=R.passage_detail(0, 1, 0xFFFF))
        if torn_at == "debit":      # its debit never landed: the finisher's holds wallet counter 2
            first.record(R.KIND_DEBIT, card_no, 2, 500, 500, status=R.STATUS_UNCERTAIN, time_s=HOUR + 5400,
                         item=timed, card_mac=b"D1D1")
        finisher.record(R.KIND_DEBIT, card_no, 2, 500, 500, time_s=HOUR + 5430, item=timed, card_mac=b"D2D2")
        finisher.record(R.KIND_EXIT_FINISHED, card_no, 3, 500, 500, time_s=HOUR + 5430, item=timed,
                        card_mac=b"XXXX", discount_cents=R.passage_detail(0, 1, 0xFFFF))
        entry.upload()
        await asyncio.to_thread(entry.wait_acked, 1)
        for term in ([finisher, first] if finisher_first else [first, finisher]):
            term.upload()
            await asyncio.to_thread(term.wait_acked, max(term.journal))
        statuses = {(r.terminal_id, r.seq): r.status for r in await hub.storage.records()}
        assert statuses[(GATE_OUT, 1)] == "applied"          # the exit on the card counts, once
        if torn_at == "debit":
            assert statuses[(GATE_OUT, 2)] == "voided"       # the finisher's debit holds its counter (§4.8)
        now = await occupancy.occupancy(hub.storage, actor)
        assert now.total == 0 and now.areas.get(1, 0) == 0
        assert await occupancy.passages_per_hour(hub.storage, actor, HOUR - 3600) == [
            (GATE_IN, HOUR, 1, 0, 0), (GATE_OUT, HOUR + 3600, 0, 1, 0)]
        assert (await hub.storage.card(card_no)).shadow_balance_cents == 500      # charged once
        assert (await occupancy.check(hub.storage, actor)).ok
        assert (await audit.check(hub.storage)).ok
        for term in (entry, first, finisher):
            term.close()
        await hub.stop()
    run(scenario())


def test_the_occupancy_check_names_a_timed_exit_whose_charge_no_debit_booked(store_url, broker):
    async def scenario():
        hub, actor, timed, card_no = await timed_park(store_url, broker)
        term = await gate(hub, broker, GATE_OUT)
        detail = R.passage_detail(0, 1, 0xFFFF)
        term.record(R.KIND_TIMED_EXIT, card_no, 3, 500, 500, time_s=HOUR, item=timed, card_mac=b"XXXX",
                    discount_cents=detail)
        term.record(R.KIND_DEBIT, card_no, 2, 500, 500, time_s=HOUR, item=timed, card_mac=b"D1D1")
        term.record(R.KIND_TIMED_EXIT, card_no, 5, 500, 500, time_s=HOUR + 7200, item=timed, card_mac=b"YYYY",
                    discount_cents=detail)
        term.record(R.KIND_DEBIT, card_no, 3, 500, 500, status=R.STATUS_VOIDED, time_s=HOUR + 7200, item=timed,
                    card_mac=b"D2D2")     # its debit never landed, and no gate collected it since
        term.upload()
        await asyncio.to_thread(term.wait_acked, 4)
        report = await occupancy.check(hub.storage, actor)
        assert len(report.problems) == 1 and "term-%d seq 3" % GATE_OUT in report.problems[0]
        assert "owes 500 cents that no debit booked" in report.problems[0]
        term.close()
        await hub.stop()
    run(scenario())


# SPEC.md §4.17: an uncertain passage is settled by the card's next passage at another gate.
SETTLED_BY = {
    # the next record at gate 43: (kind, ticket counter, card_mac, reason, entries_left, time) -> the entry's fate
    "an exit after it": ((R.KIND_EXIT, 3, b"XXXX", 0, 4, HOUR + 3600), "applied", 0),
    "another gate's entry of its counter": ((R.KIND_ENTRY, 2, b"BBBB", 0, 4, HOUR + 60), "voided", 1),
    "a refusal showing it in force": ((R.KIND_REFUSAL, 2, b"EEEE", t.REASON_ALREADY_INSIDE, 4, HOUR + 60),
                                      "applied", 1),
    "a refusal showing the state before it": ((R.KIND_REFUSAL, 1, b"SSSS", t.REASON_NOT_INSIDE, 5, HOUR + 60),
                                              "voided", 0),
    "an exit not continuing its entries": ((R.KIND_EXIT, 3, b"XXXX", 0, 3, HOUR + 3600), "uncertain", -1),
}


@pytest.mark.parametrize("evidence_first", [False, True])
@pytest.mark.parametrize("case", sorted(SETTLED_BY))
def test_an_uncertain_passage_is_settled_by_the_cards_next_passage_at_another_gate(store_url, broker, case,
                                                                                   evidence_first):
    async def scenario():
        hub = await start_hub(store_url, broker.host, broker.port)
        actor = hub.actor()
        count = await tickets.add_product(hub.storage, actor, "Ten visits", "count", area=1, entries=10)
        card_no = (await desk_issued(hub, b"\x01\x02\x03\x04", 1000)).card_no
        first, other = await gate(hub, broker, GATE_IN), await gate(hub, broker, GATE_OUT + 1)
        first.record(R.KIND_ENTRY, card_no, 2, 0, 1000, status=R.STATUS_UNCERTAIN, time_s=HOUR, item=count,
                     card_mac=b"EEEE", discount_cents=R.passage_detail(0, 1, 4))
        (kind, counter, mac, reason, left, time_s), status, inside = SETTLED_BY[case]
        other.record(kind, card_no, counter, 0, 1000, time_s=time_s, item=count, card_mac=mac,
                     discount_cents=R.passage_detail(reason, 1, left))
        for term in ([other, first] if evidence_first else [first, other]):
            term.upload()
            await asyncio.to_thread(term.wait_acked, 1)
        statuses = {(r.terminal_id, r.seq): r.status for r in await hub.storage.records()}
        assert (statuses[(GATE_IN, 1)], statuses[(GATE_OUT + 1, 1)]) == (status, "applied")
        assert (await occupancy.occupancy(hub.storage, actor)).total == inside
        assert (await occupancy.check(hub.storage, actor)).ok
        for term in (first, other):
            term.close()
        await hub.stop()
    run(scenario())


def test_a_torn_exits_charge_collected_after_a_booth_took_its_wallet_counter_is_booked_once(store_url, broker):
    """SPEC.md §3.13: gate 42 wrote the exit (owing 5.00 at wallet counter 2) and lost the card; a booth's sale
    took counter 2; gate 43 found the charge still owed, debited it at counter 3 and said so (kind 25)."""
    async def scenario():
        hub, actor, timed, card_no = await timed_park(store_url, broker)
        entry, first, finisher = [await gate(hub, broker, tid) for tid in (GATE_IN, GATE_OUT, GATE_OUT + 1)]
        booth = await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, 51, await hub.register_terminal(
            51, MERCHANT_ICE, frames.ROLE_POS, "kiosk")).connect)
        detail = R.passage_detail(0, 1, 0xFFFF)
        entry.record(R.KIND_ENTRY, card_no, 2, 0, 1000, time_s=HOUR, item=timed, card_mac=b"EEEE",
                     discount_cents=detail)
        first.record(R.KIND_TIMED_EXIT, card_no, 3, 500, 500, time_s=HOUR + 5400, item=timed, card_mac=b"XXXX",
                     discount_cents=detail)
        first.record(R.KIND_DEBIT, card_no, 2, 500, 500, status=R.STATUS_UNCERTAIN, time_s=HOUR + 5400, item=timed,
                     card_mac=b"D1D1")
        booth.record(R.KIND_DEBIT, card_no, 2, 150, 850, time_s=HOUR + 5420, card_mac=b"B1B1")
        finisher.record(R.KIND_DEBIT, card_no, 3, 500, 350, time_s=HOUR + 5460, item=timed, card_mac=b"D2D2")
        finisher.record(R.KIND_EXIT_FINISHED, card_no, 3, 500, 350, time_s=HOUR + 5460, item=timed,
                        card_mac=b"XXXX", discount_cents=detail)
        for term in (entry, first, booth, finisher):
            term.upload()
            await asyncio.to_thread(term.wait_acked, max(term.journal))
        statuses = {(r.terminal_id, r.seq): r.status for r in await hub.storage.records()}
        assert statuses[(GATE_OUT, 2)] == "voided" and statuses[(GATE_OUT + 1, 1)] == "applied"
        assert (await hub.storage.card(card_no)).shadow_balance_cents == 350      # the sale and the charge, once
        assert (await occupancy.check(hub.storage, actor)).ok                     # the exit's charge is booked
        assert (await audit.check(hub.storage)).ok
        for term in (entry, first, booth, finisher):
            term.close()
        await hub.stop()
    run(scenario())
