"""The tickets and gates reports (`parkcard report tickets|passages|refusals`): by product, by gate and hour of a
park day on the park's clock, refusals by reason; on SQLite and PostgreSQL, and as CSV."""

import asyncio
import csv
import io

from click.testing import CliRunner

from protocol import frames, record as R, ticket as t

from parkcard.app import Hub
from parkcard.cli import main
from parkcard.domain import park_time as pt
from parkcard.services import occupancy, park, tickets
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued

GATE = 41
DAY = 20906                                   # 2027-03-29: after the sales, which are now
SHANGHAI_MIDNIGHT = DAY * 86400 - 8 * 3600     # its first second in Asia/Shanghai


async def _populate(db):
    """A park in Shanghai: a count card of 10 entries and a day pass sold; passages either side of midnight."""
    hub = await Hub(db).open()
    actor = hub.actor()
    await park.set_time_zone(hub.storage, actor, "Asia/Shanghai")
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Gates", 0)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    key = await hub.register_terminal(GATE, MERCHANT_ICE, frames.ROLE_GATE, "north gate")
    count = await tickets.add_product(hub.storage, actor, "Ten entries", "count", entries=10, price_cents=30000)
    day = await tickets.add_product(hub.storage, actor, "Day pass", "day", valid_days=1, price_cents=12000)
    await tickets.add_product(hub.storage, actor, "Never sold", "period", valid_days=30)
    await hub.configure_gate(GATE, "both", products=[count, day])
    uids = (b"\x04\x01\x02\x03", b"\x04\x01\x02\x04")
    cards = [(await desk_issued(hub, uid, 1000)).card_no for uid in uids]
    for product, card_no, uid in ((count, cards[0], uids[0]), (day, cards[1], uids[1])):
        serial = await hub.storage.add_ticket(product, card_no, uid, 0, 0, 10 if product == count else 0xFFFF,
                                              30000 if product == count else 12000, "test")
        assert await tickets.settle(hub.storage, actor, serial, True)
    mac = R.record_mac_for(key)
    entries = []
    for seq, (kind, card_no, product, reason, time_s) in enumerate([
            (R.KIND_ENTRY, cards[0], count, 0, SHANGHAI_MIDNIGHT - 60),         # the day before, 23:59
            (R.KIND_EXIT, cards[0], count, 0, SHANGHAI_MIDNIGHT + 60),
            (R.KIND_ENTRY, cards[0], count, 0, SHANGHAI_MIDNIGHT + 3600 * 9),   # 09:00
            (R.KIND_ENTRY, cards[1], day, 0, SHANGHAI_MIDNIGHT + 3600 * 9 + 5),
            (R.KIND_REFUSAL, cards[1], day, t.REASON_ALREADY_INSIDE, SHANGHAI_MIDNIGHT + 3600 * 9 + 30),
            (R.KIND_REFUSAL, cards[1], day, t.REASON_DAY_LIMIT, SHANGHAI_MIDNIGHT + 86400 + 1)], start=1):
        rec = R.Record(kind, GATE, seq, time_s, card_no, uids[cards.index(card_no)], 2, 0, 1000, item=product,
                       discount_cents=R.passage_detail(reason, 0, 0xFFFF))
        entries.append((R.STATUS_COMMITTED, rec.encode(mac)))
    await hub.ingest.apply_local(GATE, entries)
    await hub.stop()
    return count, day


def test_the_reports_count_by_product_and_by_the_parks_own_day(store_url):
    async def scenario():
        count, day = await _populate(store_url)
        hub = await Hub(store_url).open()
        try:
            actor = hub.actor()
            lines = await tickets.report(hub.storage, actor)
            assert [(x.name, x.sold, x.revenue_cents, x.entered, x.entries_left, x.unlimited) for x in lines] == [
                ("Ten entries", 1, 30000, 2, 8, 0), ("Day pass", 1, 12000, 1, 0, 1), ("Never sold", 0, 0, 0, 0, 0)]
            got = await occupancy.day_report(hub.storage, actor, DAY)
            assert (got.start_s, got.end_s) == pt.day_bounds(pt.zone("Asia/Shanghai"), 0, DAY) == (
                SHANGHAI_MIDNIGHT, SHANGHAI_MIDNIGHT + 86400)
            # the entry at 23:59 the day before is not this day's; hours start at the park's full hours
            assert got.per_hour == [(GATE, SHANGHAI_MIDNIGHT, 0, 1, 0), (GATE, SHANGHAI_MIDNIGHT + 9 * 3600, 2, 0, 1)]
            assert got.refusals == [("already_inside", 1)]
        finally:
            await hub.stop()
    asyncio.run(scenario())


def test_the_reports_from_the_command_line_and_as_csv(tmp_path):
    db = str(tmp_path / "hub.db")
    asyncio.run(_populate(db))

    def cli(*args):
        result = CliRunner().invoke(main, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.output
    assert list(csv.reader(io.StringIO(cli("report", "tickets", "--csv", "-")))) == [
        ["product", "name", "sold", "revenue", "entries made", "entries left", "unlimited tickets"],
        ["1", "Ten entries", "1", "30000", "2", "8", "0"], ["2", "Day pass", "1", "12000", "1", "0", "1"],
        ["3", "Never sold", "0", "0", "0", "0", "0"]]
    assert "300.00" in cli("report", "tickets")
    shown = cli("report", "passages", "--day", "2027-03-29")
    assert "park day 2027-03-29: 2027-03-29 00:00 CST to 2027-03-30 00:00 CST" in shown
    assert "2027-03-29 09:00 CST" in shown
    assert list(csv.reader(io.StringIO(cli("report", "passages", "--day", "2027-03-29", "--csv", "-"))))[1:] == [
        [str(GATE), "2027-03-29 00:00 CST", "0", "1", "0"], [str(GATE), "2027-03-29 09:00 CST", "2", "0", "1"]]
    assert list(csv.reader(io.StringIO(cli("report", "refusals", "--day", "2027-03-30", "--csv", "-")))) == [
        ["reason", "refusals"], ["day_limit", "1"]]
    bad = CliRunner().invoke(main, ["--db", db, "report", "passages", "--day", "29/03/2026"])
    assert bad.exit_code == 2 and "--day is a date YYYY-MM-DD" in bad.output and "Traceback" not in bad.output
