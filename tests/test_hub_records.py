"""Booth refunds reverse only the booth's own sale; desk issues allocate card numbers in their posting transaction."""

import asyncio
import sqlite3

import pytest

from protocol import frames
from protocol import record as R
from protocol.desk import DESK_SOURCE_ID

from parkcard import audit
from parkcard.app import Hub
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued
from store_kit import quarantined, read

UID = b"\x04\x01\x02\x03"
OTHER_UID = b"\x04\x09\x08\x07"
DAY_S = 1782864000          # 2026-07-01T00:00:00Z
DESK_2 = DESK_ID + 1


def run(coro, timeout_s=60):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


async def park(db):
    """A hub (no broker) with a desk, booths 5 and 6 of the ice cream merchant, and one card of 100.00."""
    hub = await Hub(db).open()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    for tid in (5, 6):
        await hub.register_terminal(tid, MERCHANT_ICE, frames.ROLE_POS, "booth %d" % tid)
    return hub


class Booth:
    """Records of one booth, MACed with its key, applied as an upload."""

    def __init__(self, hub, terminal_id):
        self.hub = hub
        self.terminal_id = terminal_id
        self.seq = 0

    def make(self, kind, card_no, counter, amount, balance, uid=UID, **fields):
        self.seq += 1
        if "ref_seq" in fields:
            fields.setdefault("version", R.RECORD_V2)
        rec = R.Record(kind, self.terminal_id, self.seq, DAY_S + self.seq, card_no, uid, counter, amount, balance,
                       **fields)
        return rec.encode(self.hub.registry.get(self.terminal_id).record_mac)

    async def upload(self, *raws, status=R.STATUS_COMMITTED):
        """Apply the records; return the quarantine reasons of this upload, in order."""
        result = await self.hub.ingest.apply_local(self.terminal_id, [(status, raw) for raw in raws])
        return [q[0] for q in result.quarantined]


def test_a_booth_refunds_only_its_own_sale_on_the_same_card_once_and_at_most_its_amount(tmp_path):
    async def scenario():
        hub = await park(tmp_path / "hub.db")
        card = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
        other = (await desk_issued(hub, OTHER_UID, 10000, time_s=DAY_S)).card_no
        five, six = Booth(hub, 5), Booth(hub, 6)
        assert await five.upload(five.make(R.KIND_DEBIT, card, 2, 1000, 9000)) == []            # five's seq 1
        assert await six.upload(six.make(R.KIND_DEBIT, card, 3, 500, 8500)) == []               # six's seq 1
        assert await five.upload(five.make(R.KIND_DEBIT, other, 2, 700, 9300, uid=OTHER_UID)) == []  # seq 2
        refused = await five.upload(
            five.make(R.KIND_REFUND, card, 4, 100, 8600),                        # no reference (version 1)
            five.make(R.KIND_REFUND, card, 4, 100, 8600, ref_seq=99),            # no such sale
            five.make(R.KIND_REFUND, card, 4, 100, 8600, ref_seq=2),             # five's sale of the other card
            five.make(R.KIND_REFUND, card, 4, 100, 8600, ref_seq=3),             # a refund is not a sale
            five.make(R.KIND_REFUND, card, 4, 1001, 9501, ref_seq=1),            # more than the sale
            five.make(R.KIND_TOPUP, card, 4, 100, 8600),                         # any other credit
            five.make(R.KIND_REFUND, card, 4, 400, 8900, ref_seq=1),             # applied
            five.make(R.KIND_REFUND, card, 5, 400, 9300, ref_seq=1),             # the same sale again
            five.make(R.KIND_REFUND, card, 5, 1001, 9901, ref_seq=1))            # over the sale comes first
        assert refused == ["refund_unmatched", "refund_unmatched", "refund_unmatched", "refund_unmatched",
                           "refund_over_sale", "credit_from_booth", "refund_twice", "refund_over_sale"]
        # ref_seq names a sale in the refunding booth's own seqs: six reverses its seq 1, five's stays refunded
        assert await six.upload(six.make(R.KIND_REFUND, card, 5, 100, 9000, ref_seq=1)) == []
        assert await five.upload(five.make(R.KIND_REFUND, card, 6, 100, 9100, ref_seq=1)) == ["refund_twice"]
        card_balance = await hub.storage.account_balance("card:%d" % card)
        merchant = await hub.storage.account_balance("merchant:%d" % MERCHANT_ICE)
        report = await audit.check(hub.storage)
        await hub.stop()
        return card_balance, merchant, report
    card_balance, merchant, report = run(scenario())
    assert card_balance == 10000 - 1000 - 500 + 400 + 100
    assert merchant == (1000 - 100) + (500 - 50) + (700 - 70) - (400 - 40) - (100 - 10)
    assert report.ok
    assert read(tmp_path / "hub.db", lambda s: s.refunds()) == [(5, 1, 9), (6, 1, 2)]


def on_one_card(db, steps):
    """Run steps(hub, card_no) on a park with one card of 100.00; return (its result, the card's ledger balance)."""
    async def scenario():
        hub = await park(db)
        try:
            card = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
            out = await steps(hub, card)
            return out, await hub.storage.account_balance("card:%d" % card)
        finally:
            await hub.stop()
    return run(scenario())


def test_a_booth_refund_and_its_sale_in_one_upload(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        return await five.upload(five.make(R.KIND_DEBIT, card, 2, 1000, 9000),
                                 five.make(R.KIND_REFUND, card, 3, 1000, 10000, ref_seq=1))
    assert on_one_card(store_url, steps) == ([], 10000)


def test_an_uncertain_refund_that_did_not_happen_frees_its_sale(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 1000, 9000))
        unsure = five.make(R.KIND_REFUND, card, 3, 1000, 10000, ref_seq=1)
        reasons = [await five.upload(unsure, status=R.STATUS_UNCERTAIN)]
        # While it is uncertain the sale is taken: a second refund could double the credit.
        reasons.append(await five.upload(five.make(R.KIND_REFUND, card, 3, 1000, 10000, ref_seq=1)))
        reasons.append(await five.upload(unsure, status=R.STATUS_VOIDED))   # the re-tap settled it: not written
        reasons.append(await five.upload(five.make(R.KIND_REFUND, card, 3, 1000, 10000, ref_seq=1)))
        return reasons
    assert on_one_card(store_url, steps) == ([[], ["refund_twice"], [], []], 10000)


def test_a_desk_refund_needs_no_sale(store_url):
    async def steps(hub, card):
        desk = Booth(hub, DESK_ID)
        desk.seq = hub.registry.get(DESK_ID).acked_upto
        return await desk.upload(desk.make(R.KIND_REFUND, card, 2, 250, 10250))
    assert on_one_card(store_url, steps) == ([], 10250)


def test_the_desk_writes_the_deposit_in_its_own_field_and_version_1_deposit_records_are_refused(tmp_path):
    async def scenario():
        hub = await park(tmp_path / "hub.db")
        issued = await desk_issued(hub, UID, 10000, deposit_cents=500, time_s=DAY_S)
        desk = Booth(hub, DESK_ID)
        desk.seq = hub.registry.get(DESK_ID).acked_upto
        old = desk.make(R.KIND_ISSUE, issued.card_no + 1, 1, 1000, 1000, uid=OTHER_UID, item=500)
        reasons = await desk.upload(old)
        deposits = await hub.storage.account_balance("park:deposits")
        card = await hub.storage.card(issued.card_no)
        await hub.stop()
        return issued.record, reasons, deposits, card
    rec, reasons, deposits, card = run(scenario())
    assert (rec.version, rec.deposit_cents, rec.terminal_id, rec.item) == (R.RECORD_V2, 500, DESK_SOURCE_ID, DESK_ID)
    assert reasons == ["record_unsupported"]
    assert (deposits, card.deposit_cents) == (500, 500)
    [(raw, detail)] = [(q.raw, q.detail) for q in quarantined(tmp_path / "hub.db")]
    assert detail == "deposit kinds need record version 2" and len(raw) == R.RECORD_SIZE


def test_two_desks_issuing_at_once_get_distinct_numbers_and_no_clone_alarm(store_url):
    async def scenario():
        hub = await park(store_url)
        await hub.register_terminal(DESK_2, MERCHANT_PARK, frames.ROLE_DESK, "second desk")
        issued = await asyncio.gather(*[desk_issued(hub, bytes((4, 0, n, d & 0xFF)), 1000 + n, deposit_cents=200,
                                                    desk_terminal_id=d)
                                        for n in range(4) for d in (DESK_ID, DESK_2)])
        report = await audit.check(hub.storage)
        alarms = await hub.storage.alarms()
        blacklisted = await hub.storage.blacklist_cards()
        cards = [await hub.storage.card(r.card_no) for r in issued]
        await hub.stop()
        return issued, report, alarms, blacklisted, cards
    issued, report, alarms, blacklisted, cards = run(scenario())
    numbers = [r.card_no for r in issued]
    assert len(set(numbers)) == 8
    assert (alarms, blacklisted) == ([], [])
    assert report.ok and not report.pending
    assert [(c.uid, c.deposit_cents, c.shadow_balance_cents) for c in cards] == [
        (bytes((4, 0, n, d & 0xFF)), 200, 1000 + n) for n in range(4) for d in (DESK_ID, DESK_2)]


def test_a_failure_while_writing_the_card_row_posts_nothing(tmp_path):
    async def scenario():
        hub = await park(tmp_path / "hub.db")
        # A fault in the statement that writes the card's tier and deposit, whichever transaction runs it.
        with sqlite3.connect(tmp_path / "hub.db") as conn:
            conn.execute("CREATE TRIGGER fail_card_info BEFORE INSERT ON cards WHEN NEW.deposit_cents = 700 "
                         "BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        with pytest.raises(sqlite3.IntegrityError, match="injected fault"):
            await desk_issued(hub, UID, 10000, deposit_cents=700, time_s=DAY_S, op_id="issue-700")
        held = await hub.storage.counts()
        counts = [held.records, held.ledger_tx, held.cards, held.card_counters]
        with sqlite3.connect(tmp_path / "hub.db") as conn:
            conn.execute("DROP TRIGGER fail_card_info")
        retried = await desk_issued(hub, UID, 10000, deposit_cents=700, time_s=DAY_S, op_id="issue-700")
        card = await hub.storage.card(retried.card_no)
        deposits = await hub.storage.account_balance("park:deposits")
        alarms = await hub.storage.alarms()
        await hub.stop()
        return counts, retried, card, deposits, alarms
    counts, retried, card, deposits, alarms = run(scenario())
    assert counts == [0, 0, 0, 0]
    assert retried.record_seq == 1
    assert (card.deposit_cents, card.shadow_balance_cents, deposits, alarms) == (700, 10000, 700, [])
