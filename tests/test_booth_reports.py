"""Booth sales reports on both backends: by merchant, terminal, item, category and day (items and categories
from the sale lines, best sellers first), discounts by tier with who bore them, and `parkcard report`."""

import asyncio
import csv
import io

import pytest
from click.testing import CliRunner

from protocol import frames
from protocol import record as R
from protocol.sale_line import sale_line

from parkcard.app import Hub
from parkcard.cli import main
from parkcard.domain import sales_report
from parkcard.services import discounts, items, reports
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from test_hub_cli import DAY_S, UID

TOYS = 7
COLA, CAKE = 11, 12
GOLD = 2


def _sale(terminal_id, seq, card_no, counter, paid, discount, balance, lines=(), hour=1):
    """A debit at seq and its sale lines [(item, quantity, line cents, line discount)] just below it."""
    sale = R.Record(R.KIND_DEBIT, terminal_id, seq, DAY_S + 3600 * hour, card_no, UID, counter, paid, balance,
                    item=lines[0][0] if lines else 0, discount_cents=discount)
    return [sale_line(sale, item, quantity, cents, off, GOLD, i, len(lines), 1, 0)
            for i, (item, quantity, cents, off) in enumerate(lines)] + [sale]


def _records(card_no):
    """Two basket sales and a refund at the ice booth (5); a keyed sale and a discounted one at the toy booth (6)."""
    ice = (_sale(5, 3, card_no, 2, 1830, 70, 8170, [(COLA, 2, 700, 70), (CAKE, 1, 1200, 0)])
           + _sale(5, 5, card_no, 3, 945, 105, 7225, [(COLA, 3, 1050, 105)], hour=2)
           + [R.Record(R.KIND_REFUND, 5, 6, DAY_S + 3 * 3600, card_no, UID, 4, 945, 8170, ref_seq=5,
                       version=R.RECORD_V2)])
    toys = _sale(6, 1, card_no, 5, 500, 0, 7670, hour=4) + _sale(6, 2, card_no, 6, 900, 100, 6770, hour=30)
    return ice, toys


def in_park(store_url, scenario):
    """Run scenario(hub) on a park with the two booths' records ingested."""
    async def go():
        hub = await Hub(store_url).open()
        try:
            admin = hub.actor("test:admin")
            await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
            await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
            await hub.add_merchant(TOYS, "Toys", 500)
            await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
            await hub.register_terminal(5, MERCHANT_ICE, frames.ROLE_POS, "ice booth")
            await hub.register_terminal(6, TOYS, frames.ROLE_POS, "toy booth")
            await discounts.set_bearer(hub.storage, admin, MERCHANT_ICE, "merchant")
            await items.set_item(hub.storage, admin, MERCHANT_ICE, COLA, "Cola", 350, 2)
            await items.set_item(hub.storage, admin, MERCHANT_ICE, CAKE, "Cake", 1200, 3)    # list version 2
            card_no = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
            for terminal_id, recs in zip((5, 6), _records(card_no)):
                mac = hub.registry.get(terminal_id).record_mac
                await hub.ingest.apply_local(terminal_id, [(R.STATUS_COMMITTED, r.encode(mac)) for r in recs])
            return await scenario(hub, admin)
        finally:
            await hub.stop()
    return asyncio.run(go())


def test_sales_by_every_grouping_and_discounts_by_tier(store_url):
    async def scenario(hub, admin):
        out = {by: await reports.booth_sales(hub.storage, admin, by, DAY_S, DAY_S + 2 * 86400)
               for by in ("merchant", "terminal", "item", "category", "day")}
        return out, await reports.discounts_given(hub.storage, admin, DAY_S, DAY_S + 2 * 86400)
    got, tiers = in_park(store_url, scenario)
    # The lines name list version 1, which holds Cola only: Cake's category is that of no list (0).
    assert [tuple(r) for r in got["item"]] == [(COLA, "Cola", 2, 5, 1750, 175, 1575, 0),
                                               (CAKE, "item 12", 1, 1, 1200, 0, 1200, 0)]
    assert [(r.key, r.sales, r.quantity, r.list_cents) for r in got["category"]] == [(2, 2, 5, 1750), (0, 1, 1, 1200)]
    assert [tuple(r) for r in got["merchant"]] == [(MERCHANT_ICE, "Ice cream", 2, 0, 2950, 175, 2775, 945),
                                                   (TOYS, "Toys", 2, 0, 1500, 100, 1400, 0)]
    assert [(r.key, r.name, r.paid_cents) for r in got["terminal"]] == [(5, "ice booth", 2775), (6, "toy booth", 1400)]
    day = DAY_S // 86400
    assert [(r.key, r.sales, r.paid_cents, r.refunds_cents) for r in got["day"]] == [(day, 3, 3275, 945),
                                                                                    (day + 1, 1, 900, 0)]
    # Gold (the lines' tier) at the ice booth, its merchant bearing them; the toy booth's standard card, the park.
    assert [tuple(r) for r in tiers] == [(0, 1, 100, 100, 0), (GOLD, 2, 175, 0, 175)]


def test_no_sales_make_empty_reports_and_an_unknown_grouping_is_refused():
    rows = []
    assert sales_report.sales(rows, "item") == [] and sales_report.discounts_by_tier(rows) == []
    with pytest.raises(ValueError):
        sales_report.sales(rows, "colour")


def test_the_report_commands_print_and_write_csv(tmp_path):
    db = str(tmp_path / "park.db")
    in_park(db, lambda hub, admin: asyncio.sleep(0))
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, ["--db", db, "report", *args])
    out = run("sales", "--by", "item", "--from", str(DAY_S), "--to", str(DAY_S + 2 * 86400),
              "--csv", str(tmp_path / "items.csv"))
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[1].split()[:4] == ["11", "Cola", "2", "5"] and "CNY 17.50" in lines[1]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "items.csv").read_text())))
    assert [(r["key"], r["quantity"], r["paid_cents"], r["paid"], r["currency"]) for r in rows] == [
        ("11", "5", "1575", "15.75", "CNY"), ("12", "1", "1200", "12.00", "CNY")]
    again = run("sales", "--by", "item", "--csv", str(tmp_path / "items.csv"))
    assert again.exit_code != 0 and "already exists: pass --force" in again.output
    forced = run("sales", "--by", "item", "--csv", str(tmp_path / "items.csv"), "--force")     # the last day: none
    assert forced.exit_code == 0 and "no booth sales" in forced.output
    assert (tmp_path / "items.csv").read_text().count("\n") == 1
    day = run("sales", "--by", "day", "--from", str(DAY_S), "--to", str(DAY_S + 2 * 86400))
    assert day.exit_code == 0 and "1970" not in day.output and day.output.count("CNY") >= 2
    tiers = run("discounts", "--from", str(DAY_S), "--to", str(DAY_S + 2 * 86400))
    assert tiers.exit_code == 0 and tiers.output.splitlines()[1].split()[:2] == ["0", "1"]
    bad = run("sales", "--by", "colour")
    assert bad.exit_code == 2 and "'colour' is not one of" in bad.output
    backwards = run("sales", "--by", "day", "--from", "2030-01-01", "--to", "2029-01-01")
    assert backwards.exit_code != 0 and "--to must be after --from" in backwards.output
