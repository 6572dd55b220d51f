"""Who bears a booth discount (SPEC.md §7.5): the ledger posts it to the park or leaves it the merchant's,
a refund takes its share back, settlement and the ledger check agree; both backends, and the CLI."""

import asyncio
import sqlite3

import pytest
from click.testing import CliRunner

from protocol import frames
from protocol import record as R

from parkcard import audit
from parkcard.app import Hub
from parkcard.cli import main
from parkcard.domain import ledger
from parkcard.domain.accounts import DISCOUNTS
from parkcard.services import discounts, settlement
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from test_hub_cli import DAY_S, UID
from test_domain_ledger import rec

BOOTH = 5


def test_a_sale_the_park_bears_pays_the_merchant_the_list_price_less_commission():
    sale = rec(R.KIND_DEBIT, 900, 9100, item=11, discount=100)
    assert ledger.postings(sale, 3, 1000, park_discount=ledger.park_discount_cents(sale, True)) == [
        ("card:42", -900), ("merchant:3", 910), ("park:commission", 90), (DISCOUNTS, -100)]
    assert ledger.postings(sale, 3, 1000, park_discount=ledger.park_discount_cents(sale, False)) == [
        ("card:42", -900), ("merchant:3", 810), ("park:commission", 90)]


@pytest.mark.parametrize("refund, share", [(900, 100), (450, 50), (1, 0), (10, 1), (899, 99)])
def test_a_refund_takes_back_its_share_of_the_sale_s_discount_floored(refund, share):
    sale = rec(R.KIND_DEBIT, 900, 9100, discount=100)
    back = rec(R.KIND_REFUND, refund, 9100, ref_seq=1)
    assert ledger.park_discount_cents(back, True, sale) == share
    assert ledger.park_discount_cents(back, False, sale) == 0
    entries = dict(ledger.postings(back, 3, 0, park_discount=share))
    assert entries["merchant:3"] == -(refund + share) and entries.get(DISCOUNTS, 0) == share


def test_a_park_discount_that_is_not_the_sale_s_is_refused():
    with pytest.raises(ledger.PostingError):
        ledger.postings(rec(R.KIND_DEBIT, 900, discount=100), 3, 0, park_discount=99)
    with pytest.raises(ledger.PostingError):
        ledger.postings(rec(R.KIND_TOPUP, 900, 900), 3, 0, park_discount=5)


def _sales(issued):
    """Two booth sales (10.00 list - 1.00, 9.00 list - 0.80) and a refund of half the first."""
    out = [R.Record(R.KIND_DEBIT, BOOTH, seq, DAY_S + 3600 * seq, issued.card_no, UID, seq + 1, paid, balance,
                    item=11, discount_cents=off)
           for seq, paid, off, balance in ((1, 900, 100, 9100), (2, 820, 80, 8280))]
    out.append(R.Record(R.KIND_REFUND, BOOTH, 3, DAY_S + 3 * 3600, issued.card_no, UID, 4, 450, 8730, ref_seq=1,
                        version=R.RECORD_V2))
    return out


async def _ice_booth(hub, bearer):
    """The ice cream merchant (10 % commission, its discounts borne by `bearer`), its booth and a card issued with
    100.00: return (Issued, the booth's record Mac)."""
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    await hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth")
    await discounts.set_bearer(hub.storage, hub.actor("test:admin"), MERCHANT_ICE, bearer)
    return await desk_issued(hub, UID, 10000, time_s=DAY_S), hub.registry.get(BOOTH).record_mac


@pytest.mark.parametrize("bearer", ["park", "merchant"])
def test_the_ledger_settlement_and_the_ledger_check_follow_the_bearer(store_url, bearer):
    async def scenario():
        hub = await Hub(store_url).open()
        try:
            issued, mac = await _ice_booth(hub, bearer)
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, r.encode(mac)) for r in _sales(issued)])
            expense = await hub.storage.account_balance(DISCOUNTS)
            merchant = await hub.storage.account_balance("merchant:%d" % MERCHANT_ICE)
            report = await audit.check(hub.storage)
            [(closed, _new)] = await hub.storage.close_settlements([MERCHANT_ICE], DAY_S, DAY_S + 86400)
            return expense, merchant, report, closed
        finally:
            await hub.stop()
    expense, merchant, report, closed = asyncio.run(scenario())
    # Cards paid 9.00 + 8.20 - 4.50 back = 12.70; commission 10 % of that: 1.27 (90 + 82 - 45).
    park_part = 100 + 80 - 50 if bearer == "park" else 0    # the refund of half the first sale takes 0.50 back
    assert expense == -park_part
    assert merchant == 1270 - 127 + park_part
    assert report.ok and not report.posting_mismatch, report.lines()
    assert (closed.sales_cents, closed.refunds_cents, closed.commission_cents) == (1720, 450, 127)
    assert (closed.discounts_cents, closed.park_discounts_cents, closed.payout_cents) == (
        180, park_part, 1270 - 127 + park_part)
    csv_line = settlement.csv_text([closed]).splitlines()[1].split(",")
    header = settlement.CSV_COLUMNS
    assert int(csv_line[header.index("merchant_discounts_cents")]) == 180 - park_part
    assert int(csv_line[header.index("payout_cents")]) == closed.payout_cents


def test_merchant_set_names_the_discount_bearer(tmp_path):
    db = str(tmp_path / "park.db")
    runner = CliRunner()

    def ok(*args):
        result = runner.invoke(main, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        return result.output
    ok("merchant", "add", "--id", "3", "--name", "Snacks", "--commission-bps", "500")
    out = ok("merchant", "set", "--id", "3", "--discount-borne-by", "merchant")
    assert "discounts borne by the merchant (was the park)" in out
    assert "borne by the merchant" in ok("discount", "bearer", "--merchant", "3")
    refused = runner.invoke(main, ["--db", db, "merchant", "set", "--id", "3", "--discount-borne-by", "visitor"])
    assert refused.exit_code == 2 and "'visitor' is not one of" in refused.output
    missing = runner.invoke(main, ["--db", db, "merchant", "set", "--id", "9", "--discount-borne-by", "park"])
    assert missing.exit_code != 0 and "no merchant 9" in missing.output and "Traceback" not in missing.output


def test_the_ledger_check_re_derives_the_park_s_discount_from_the_record():
    sale = rec(R.KIND_DEBIT, 900, 9100, discount=100)
    park = ledger.postings(sale, 3, 1000, park_discount=100)
    assert audit.posting_mismatch(sale, 3, 1000, park) is None
    assert audit.posting_mismatch(sale, 3, 1000, ledger.postings(sale, 3, 1000)) is None   # the merchant bore it
    wrong = [("card:42", -900), ("merchant:3", 900), ("park:commission", 90), (DISCOUNTS, -90)]
    assert "its posting is" in audit.posting_mismatch(sale, 3, 1000, wrong, rate_known=False)
    refund = rec(R.KIND_REFUND, 450, 9550, ref_seq=1)
    back = ledger.postings(refund, 3, 1000, park_discount=50)
    assert audit.posting_mismatch(refund, 3, 1000, back, sale=sale) is None
    assert audit.posting_mismatch(refund, 3, 1000, ledger.postings(refund, 3, 1000, park_discount=49), sale=sale) is not None


def test_sales_booked_before_park_discount_entries_are_settled_by_the_bearer_at_the_close(tmp_path):
    db = str(tmp_path / "park.db")

    async def scenario():
        hub = await Hub(db).open()
        try:
            issued, mac = await _ice_booth(hub, "merchant")
            await hub.ingest.apply_local(BOOTH, [(R.STATUS_COMMITTED, r.encode(mac)) for r in _sales(issued)[:2]])
        finally:
            await hub.stop()
    asyncio.run(scenario())
    # As a hub before migration 27 left them: no park:discounts entry, and the migration's mark above them.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE discount_postings SET first_tx = (SELECT MAX(id) + 1 FROM ledger_tx)")
        conn.execute("UPDATE merchants SET discount_bearer = 'park' WHERE id = ?", (MERCHANT_ICE,))

    async def close():
        hub = await Hub(db).open()
        try:
            return await hub.storage.close_settlements([MERCHANT_ICE], DAY_S, DAY_S + 86400)
        finally:
            await hub.stop()
    [(closed, _new)] = asyncio.run(close())
    assert (closed.discounts_cents, closed.park_discounts_cents, closed.payout_cents) == (180, 180, 1720 - 172 + 180)
