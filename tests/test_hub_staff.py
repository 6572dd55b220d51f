"""Staff cards, shift records and booth reversals at the hub (SPEC.md §4.14, §4.15), on both stores: the staff card
issued through the desk's posting path, reversals checked at ingest and posted back (commission too), sales per
staff and per shift, and the booth's own shift totals reconciled with the records the hub holds."""

import asyncio
import struct

import pytest
from click.testing import CliRunner

from protocol import card as C
from protocol import frames
from protocol import record as R
from protocol import staff as S
from protocol import staff_list

from parkcard.cli import main
from parkcard.domain.lifecycle import ALARM_STAFF_UNKNOWN
from parkcard.services import park as park_service
from parkcard.services import settlement
from parkcard.services import staff as staff_service
from parkcard.services import staff_reports
from parkcard.services.desk import operations as ops
from parkcard.services.privileges import ServiceError
from parkcard.transport import notify
from parkcard_devkit.testing import (DESK_ID, FIXTURE_PARK_KEYS, MERCHANT_ICE, ScriptedTerminal, desk_issued,
                                     shift_open_at, start_hub)
from test_hub_records import DAY_S, UID, park, run

STAFF_UID = b"\x05\x06\x07\x08"
BOOTH = 5


async def staff_card(hub, name="Mei"):
    """A staff member of the ice cream merchant and their staff card, posted as the desk posts it."""
    actor = hub.actor("test")
    member = await staff_service.add(hub.storage, actor, name, MERCHANT_ICE)
    keys = C.CardKeys(hub.park_keys or FIXTURE_PARK_KEYS, STAFF_UID)
    request = ops.request_of("staff_card", DESK_ID, staff_id=member.id)
    await shift_open_at(hub, DESK_ID, actor.name)
    kept = await ops.issue_kept(hub.desk_path, actor, "staff-1", request, DESK_ID, STAFF_UID, keys, 0, 0, 0, 0, 0,
                                DAY_S, kind="staff_card", flags=C.FLAG_STAFF)
    done = await ops.post_confirmed(hub.desk_path, actor, kept, DAY_S)
    return await hub.storage.staff_member(member.id), done


class ShiftBooth:
    """Records of booth 5's shift, MACed with its key, applied as uploads."""

    def __init__(self, hub, staff_no):
        self.hub, self.staff_no, self.seq, self.tag, self.open_seq = hub, staff_no, 0, 0, 0
        self.mac = hub.registry.get(BOOTH).record_mac

    def _next(self):
        self.seq += 1
        return self.seq

    def opening(self):
        self.tag = S.next_tag(self.tag)
        self.open_seq = self._next()
        return S.shift_record(BOOTH, self.open_seq, DAY_S + 3600, self.staff_no, STAFF_UID, self.tag, S.PHASE_OPEN,
                              1).encode(self.mac)

    def closing(self, totals):
        return S.shift_record(BOOTH, self._next(), DAY_S + 7200, self.staff_no, STAFF_UID, self.tag, S.PHASE_CLOSE, 1,
                              totals=totals, open_seq=self.open_seq).encode(self.mac)

    def sale(self, card_no, counter, amount, balance, tag=None):
        rec = R.Record(R.KIND_DEBIT, BOOTH, self._next(), DAY_S + 3600 + self.seq, card_no, UID, counter, amount,
                       balance)
        return S.tagged(rec, self.tag if tag is None else tag).encode(self.mac)

    def reversal(self, card_no, counter, sale_seq, amount, balance, staff_no=None):
        seq = self._next()
        rec = R.Record(R.KIND_REVERSAL, BOOTH, seq, DAY_S + 3600 + seq, card_no, UID, counter, amount, balance,
                       seq - sale_seq, staff_no or self.staff_no)
        return S.tagged(rec, self.tag).encode(self.mac)

    async def upload(self, *raws):
        result = await self.hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, raw) for raw in raws])
        return [q[0] for q in result.quarantined]


def test_a_staff_card_is_issued_with_no_value_and_tied_to_its_member(store_url):
    async def scenario():
        hub = await park(store_url)
        member, done = await staff_card(hub)
        assert member.card_no == done.card_no and done.balance_cents == 0
        kept = await hub.storage.desk_operation("staff-1")
        keys = C.CardKeys(hub.park_keys or FIXTURE_PARK_KEYS, STAFF_UID)
        info = C.CardInfo.decode(dict(ops.blocks_of(kept))[C.INFO_BLOCK], keys)
        assert (info.flags, info.perms, info.deposit_cents) == (C.FLAG_STAFF, 0, 0)
        assert [e["action"] for e in hub.storage.oplog.entries() if e["action"].startswith(("staff", "card."))] == [
            "staff.add", "card.staff_card"]
        await hub.stop()
    run(scenario())


def test_a_reversal_of_the_open_shift_takes_the_sale_back_and_nothing_else_credits(store_url):
    async def scenario():
        hub = await park(store_url)
        member, _ = await staff_card(hub)
        visitor = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
        booth = ShiftBooth(hub, member.card_no)
        assert await booth.upload(booth.opening(), booth.sale(visitor, 2, 1000, 9000),        # seqs 1, 2
                                  booth.sale(visitor, 3, 500, 8500)) == []                    # seq 3
        refused = await booth.upload(
            booth.reversal(visitor, 4, 2, 999, 9499),                    # not the whole sale
            booth.reversal(visitor, 4, 1, 1000, 9500),                   # seq 1 is the shift record
            booth.reversal(visitor, 4, 2, 1000, 9500, staff_no=member.card_no + 1),   # not the shift's staff
            booth.reversal(visitor, 4, 2, 1000, 9500),                   # applied
            booth.reversal(visitor, 5, 2, 1000, 10500))                  # once per sale
        assert refused == ["reversal_amount", "reversal_unmatched", "reversal_staff", "refund_twice"]
        assert await hub.storage.account_balance("card:%d" % visitor) == 10000 - 1500 + 1000
        assert await hub.storage.account_balance("merchant:%d" % MERCHANT_ICE) == 900 + 450 - 900
        assert await hub.storage.account_balance("park:commission") == 100 + 50 - 100
        assert await booth.upload(booth.closing(S.ShiftTotals(2, 1500, 1, 1000))) == []
        late = booth.reversal(visitor, 5, 3, 500, 9500)                  # the shift is closed
        assert await booth.upload(late) == ["reversal_shift"]
        # Settled as a refund: the merchant is paid the sales less the sale given back, commission too.
        ((row, _new),) = await settlement.close_period(hub.storage, hub.actor("test"), [MERCHANT_ICE], DAY_S,
                                                       DAY_S + 86400, now_s=DAY_S + 2 * 86400)
        assert (row.sales_cents, row.refunds_cents, row.commission_cents, row.payout_cents) == (1500, 1000, 50, 450)
        await hub.stop()
    run(scenario())


def test_a_shift_opened_with_no_staff_card_of_the_merchant_is_alarmed(store_url):
    async def scenario():
        hub = await park(store_url)
        booth = ShiftBooth(hub, 424242)
        assert await booth.upload(booth.opening()) == []
        alarms = [a for a in await hub.storage.alarms() if a.kind == ALARM_STAFF_UNKNOWN]
        assert len(alarms) == 1 and alarms[0].card_no == 424242
        await hub.stop()
    run(scenario())


def test_sales_per_staff_and_shift_and_the_terminals_totals_reconciled(store_url, tmp_path):
    async def scenario():
        hub = await park(store_url)
        member, _ = await staff_card(hub)
        visitor = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
        booth = ShiftBooth(hub, member.card_no)
        await booth.upload(booth.opening(), booth.sale(visitor, 2, 1000, 9000), booth.sale(visitor, 3, 500, 8500))
        await booth.upload(booth.reversal(visitor, 4, 3, 500, 9000), booth.closing(S.ShiftTotals(2, 1500, 1, 500)))
        # The second shift's terminal says it sold 3 for 12.00; the hub holds 1 sale of 2.00, and one with no shift.
        await booth.upload(booth.opening(), booth.sale(visitor, 5, 200, 8800),
                           booth.closing(S.ShiftTotals(3, 1200, 0, 0)), booth.sale(visitor, 6, 300, 8500, tag=0))
        actor = hub.actor("test")
        rows = await staff_reports.sales_by_staff(hub.storage, actor, DAY_S, DAY_S + 86400)
        assert [(r.name, r.shifts, r.totals) for r in rows] == [
            ("Mei", 2, S.ShiftTotals(3, 1700, 1, 500)), ("(no shift)", 0, S.ShiftTotals(1, 300, 0, 0))]
        shifts = await staff_reports.sales_by_shift(hub.storage, actor, DAY_S, DAY_S + 86400)
        assert [(s.shift.open_seq, s.shift.hub, s.shift.terminal) for s in shifts] == [
            (1, S.ShiftTotals(2, 1500, 1, 500), S.ShiftTotals(2, 1500, 1, 500)),
            (6, S.ShiftTotals(1, 200, 0, 0), S.ShiftTotals(3, 1200, 0, 0))]
        result = await staff_reports.reconcile(hub.storage, actor, DAY_S + 5)
        assert [(d.open_seq, d.what, d.terminal_count, d.terminal_cents, d.hub_count, d.hub_cents)
                for d in result.differences] == [(6, "sales", 3, 1200, 1, 200)]
        assert result.unshifted == {BOOTH: S.ShiftTotals(1, 300, 0, 0)}
        await hub.stop()
    run(scenario())
    db = ["--db", store_url]
    out = CliRunner().invoke(main, db + ["report", "reconcile", "--day", "2026-07-01"])
    assert out.exit_code == 0, out.output
    assert "terminal 5 shift of seq 6 (staff card" in out.output and "sales differ: terminal 3 / " in out.output
    assert out.output.rstrip().endswith("2 shift(s), 1 difference(s)")
    out = CliRunner().invoke(main, db + ["report", "sales", "--by", "staff", "--from", "2026-07-01", "--to",
                                         "2026-07-02", "--csv", str(tmp_path / "staff.csv")])
    assert out.exit_code == 0, out.output
    assert "Mei" in out.output
    lines = (tmp_path / "staff.csv").read_text().splitlines()
    assert lines[0].startswith("staff,name,merchant") and lines[1].endswith(",Mei,%d,%s,2,3,1700,1,500,1200" % (
        MERCHANT_ICE, lines[1].split(",")[3]))


async def linked_booth(store_url, broker):
    """A hub and booth BOOTH of the ice cream merchant connected to it through the broker: (hub, ScriptedTerminal)."""
    hub = await start_hub(store_url, broker.host, broker.port)
    key = await hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "booth")
    return hub, await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, BOOTH, key).connect)


def booth_sync(term):
    """The booth's T_SYNC, naming no price list held (what a booth sends at connect)."""
    term.publish(term.frame(frames.T_SYNC, frames.sync_body(0, 0, 0, prices=struct.pack(">HII", 0, 0, 0))))


@pytest.mark.broker
def test_a_booth_is_told_whether_it_needs_a_shift_after_its_config_and_at_each_sync(store_url, broker):
    async def scenario():
        hub, term = await linked_booth(store_url, broker)

        async def sync():
            before = len(term.downlinks(frames.T_TIME))
            booth_sync(term)
            await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_TIME)) > before)
            return [frames.parse_shifts(f.body) for f in term.downlinks(frames.T_SHIFTS)]

        assert (await sync())[-1] is False
        actor = hub.actor("test")
        assert await staff_service.require_shift(hub.storage, actor, BOOTH, True) == (False, True)
        assert await staff_service.require_shift(hub.storage, actor, BOOTH, True) == (True, True)
        await hub.take_notice({notify.TERMINALS})
        assert (await sync())[-1] is True
        with pytest.raises(ServiceError, match="no booth"):
            await staff_service.require_shift(hub.storage, actor, DESK_ID, True)
        await hub.stop()
    run(scenario())


def test_staff_are_added_listed_and_refused_for_an_unknown_merchant_from_the_cli(tmp_path):
    db = ["--db", str(tmp_path / "hub.db")]
    runner = CliRunner()
    assert runner.invoke(main, db + ["merchant", "add", "--id", "2", "--name", "Food", "--commission-bps", "500"],
                         ).exit_code == 0
    out = runner.invoke(main, db + ["staff", "add", "--name", "Mei", "--merchant", "2"])
    assert out.exit_code == 0 and out.output.startswith("staff 1 Mei of merchant 2"), out.output
    out = runner.invoke(main, db + ["staff", "add", "--name", "Li", "--merchant", "3"])
    assert out.exit_code == 2 and "there is no merchant 3" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, db + ["staff", "list"])
    assert out.exit_code == 0 and out.output.splitlines()[1].split()[:4] == ["1", "Mei", "2", "none"]
    out = runner.invoke(main, db + ["staff", "card", "9", "--desk", "1", "--wait", "1"])
    assert out.exit_code == 2 and "not a desk terminal" in out.output


@pytest.mark.broker
def test_a_booth_is_sent_its_merchants_staff_cards_and_the_parks_offset(store_url, broker):
    async def scenario():
        hub, term = await linked_booth(store_url, broker)

        async def next_list(send):
            before = len(term.downlinks(frames.T_STAFF))
            await send()
            await asyncio.to_thread(term.wait, lambda t: len(t.downlinks(frames.T_STAFF)) > before)
            return staff_list.parse_staff(term.downlinks(frames.T_STAFF)[-1].body)

        async def sync():
            booth_sync(term)

        assert await next_list(sync) == ((0, 0, 0), b"")    # no staff card yet; the park's zone is UTC
        member, _done = await staff_card(hub)
        await staff_service.add(hub.storage, hub.actor("test"), "Bo", MERCHANT_ICE)     # no card: not listed
        zone, cards = await next_list(lambda: hub.take_notice({notify.STAFF}))      # what issuing the card tells
        assert staff_list.staff_holds(cards, member.card_no) and len(cards) == 4
        shanghai = await next_list(lambda: park_service.set_time_zone(hub.storage, hub.actor("test"), "Asia/Shanghai"))
        assert shanghai == ((8 * 3600, 0, 8 * 3600), cards)
        await hub.stop()
    run(scenario())
