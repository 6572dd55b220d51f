"""A booth's give-back restores the bonus its sale spent (SPEC.md §4.12): through ingest on SQLite and PostgreSQL,
the sale in the same batch as its refund or in an earlier one; the card's return then pays only the cash, the bonus
goes back to the park, and the ledger check re-derives it and finds a give-back booked the old way (all cash)."""

import asyncio
import sqlite3

from protocol import frames
from protocol import record as R
from protocol.card import TIER_GOLD
from protocol.desk import DESK_SOURCE_ID

from parkcard import audit
from parkcard.app import Hub
from parkcard.domain import accounts
from parkcard.services.desk.source import desk_source
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from test_hub_cli import DAY_S, UID

BOOTH = 5


async def _gold_card_at_a_booth(hub):
    """A gold card issued with 20.00 paid (2.00 bonus on top) and the ice-cream booth: (Issued, booth record MAC)."""
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    key = await hub.register_terminal(BOOTH, MERCHANT_ICE, frames.ROLE_POS, "ice booth")
    issued = await desk_issued(hub, UID, 2000, tier=TIER_GOLD, time_s=DAY_S)
    assert issued.balance_cents == 2200
    return issued, R.record_mac_for(key)


def _booth(issued, mac, *lines):
    """[(status, raw)] of booth records (kind, amount, balance after, ref_seq) following the issue, seq 1 on."""
    out = []
    for seq, (kind, amount, balance, ref_seq) in enumerate(lines, start=1):
        rec = R.Record(kind, BOOTH, seq, DAY_S + 60 * seq, issued.card_no, UID, issued.record.card_counter + seq,
                       amount, balance, ref_seq=ref_seq, version=R.RECORD_V2)
        out.append((R.STATUS_COMMITTED, rec.encode(mac)))
    return out


async def _purse(hub, card_no):
    """(cash, bonus) of a card as the ledger holds it."""
    whole = await hub.storage.account_balance(accounts.card_account(card_no))
    bonus = await hub.storage.account_balance(accounts.bonus_account(card_no))
    return whole - bonus, bonus


async def _returned(hub, issued, balance_cents, counter):
    """The card returned at the desk: a cash-out record of the desk source taking the whole balance, no fee."""
    source = await desk_source(hub.storage, hub.registry, MERCHANT_PARK, "test:cashier")
    seq = max([0] + [r.seq for r in await hub.storage.records(DESK_SOURCE_ID)]) + 1
    rec = R.Record(R.KIND_CASHOUT, DESK_SOURCE_ID, seq, DAY_S + 3600, issued.card_no, UID, counter, balance_cents, 0,
                   item=DESK_ID, version=R.RECORD_V2)
    result = await hub.ingest.apply_local(DESK_SOURCE_ID, [(R.STATUS_COMMITTED, rec.encode(source.record_mac))])
    assert result.counts["applied"] == 1, result.quarantined


def test_a_sale_spending_bonus_refunded_in_its_own_batch_gives_the_bonus_back_and_only_cash_is_paid_out(store_url):
    async def scenario():
        hub = await Hub(store_url).open()
        try:
            issued, mac = await _gold_card_at_a_booth(hub)
            # 21.00 sold: all 20.00 of cash and 1.00 of the bonus; refunded whole in the same upload.
            result = await hub.ingest.apply_local(BOOTH, _booth(issued, mac, (R.KIND_DEBIT, 2100, 100, 0),
                                                                (R.KIND_REFUND, 2100, 2200, 1)))
            assert result.counts["applied"] == 2, result.quarantined
            after_refund = await _purse(hub, issued.card_no)
            await _returned(hub, issued, 2200, issued.record.card_counter + 3)
            cash = await hub.storage.account_balance(accounts.CASH)
            forfeited = await hub.storage.account_balance(accounts.BONUS)
            return after_refund, cash, forfeited, await _purse(hub, issued.card_no), await audit.check(hub.storage)
        finally:
            await hub.stop()
    after_refund, cash, forfeited, closed, report = asyncio.run(scenario())
    assert after_refund == (2000, 200)      # the old rule made it (2100, 100): 1.00 of bonus as refundable cash
    assert cash == 0            # 20.00 taken in at the issue, 20.00 paid back at the return: no bonus paid out
    assert forfeited == 0       # the 2.00 given at the issue came back to the park whole
    assert closed == (0, 0)
    assert report.ok, "\n".join(report.lines())


def test_a_partial_refund_in_a_later_batch_restores_bonus_up_to_its_amount(store_url):
    async def scenario():
        hub = await Hub(store_url).open()
        try:
            issued, mac = await _gold_card_at_a_booth(hub)
            sale, refund = _booth(issued, mac, (R.KIND_DEBIT, 2150, 50, 0), (R.KIND_REFUND, 100, 150, 1))
            await hub.ingest.apply_local(BOOTH, [sale])
            spent = await _purse(hub, issued.card_no)
            await hub.ingest.apply_local(BOOTH, [refund])
            return spent, await _purse(hub, issued.card_no), await audit.check(hub.storage)
        finally:
            await hub.stop()
    spent, refunded, report = asyncio.run(scenario())
    assert spent == (0, 50)             # 1.50 of the bonus spent
    assert refunded == (0, 150)         # 1.00 given back, all of it bonus: nothing to refund at the desk
    assert report.ok, "\n".join(report.lines())


def test_the_ledger_check_finds_a_give_back_booked_as_cash(tmp_path):
    path = str(tmp_path / "hub.db")

    async def book():
        hub = await Hub(path).open()
        try:
            issued, mac = await _gold_card_at_a_booth(hub)
            await hub.ingest.apply_local(BOOTH, _booth(issued, mac, (R.KIND_DEBIT, 2100, 100, 0),
                                                       (R.KIND_REFUND, 2100, 2200, 1)))
            assert (await audit.check(hub.storage)).ok
            return issued.card_no
        finally:
            await hub.stop()
    card_no = asyncio.run(book())
    with sqlite3.connect(path) as db:   # the refund's bonus taken out of its transaction: booked as cash, the leak
        tx_id, = db.execute("SELECT t.id FROM ledger_tx t JOIN records r ON r.id = t.record_id WHERE r.kind=?",
                            (R.KIND_REFUND,)).fetchone()
        db.executemany("INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (?,?,?)", [
            (tx_id, accounts.bonus_account(card_no), -100), (tx_id, accounts.BONUS_PURSES, 100)])

    async def check():
        hub = await Hub(path).open()
        try:
            return await audit.check(hub.storage)
        finally:
            await hub.stop()
    report = asyncio.run(check())
    assert not report.ok and len(report.purse_mismatch) == 1, "\n".join(report.lines())
    assert "term-%d seq 2" % BOOTH in report.purse_mismatch[0] and "booked +0" in report.purse_mismatch[0]
    assert "the rule gives +100" in report.purse_mismatch[0]
