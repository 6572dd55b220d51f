"""The store contract: what services and ingest rely on, run on every backend (tests/conftest.py STORE_BACKENDS).

Each test opens a fresh store of the backend, drives it through the interface
only (parkcard.store.interface) and checks what it reads back. What only one
backend can do to its files (build an old schema, damage a page) is in the
`_sqlite_*` and `_postgres_*` helpers. The ingest rules over each backend
(exactly once, conflicts, gaps and the ack, clones, chain breaks) close the file,
read back through the store's own methods only.
"""

import asyncio
import importlib.util
import sqlite3

import pytest

from protocol import record as R

from parkcard import audit, oplog
from parkcard.domain import ledger, tickets as ticket_rules
from parkcard.store import (DatabaseDamaged, NotIssued, PeriodOverlap, StoreError, audited, interface, is_transient,
                            open_store, store_for, version_detail)
from parkcard.domain.lifecycle import ALARM_CLONE, AdminCardState, CardStatus, RecordStatus
from parkcard.store.rows import Settlement, SettlementTotals, StoredRecord
from parkcard.store.sqlite.write_tx import INSERT_SIZES, insert_rows
from parkcard_devkit.testing import DESK_ID, desk_issued
import postgres_server
from store_kit import damage_a_page
from test_hub_records import Booth, park

PARK = 1
DESK_MERCHANT = 1
BOOTH_MERCHANT = 2
RATE_BPS = 1000
BOOTH = 5
KEY = bytes(range(32))
MAC = R.record_mac_for(KEY)
UID = b"\x04\x01\x02\x03"
DAY_S = 1782864000          # 2026-07-01T00:00:00Z


def run(store_url, scenario):
    """Open the store, await scenario(store), close it (also when the scenario fails)."""
    async def go():
        store = await open_store(store_url)
        try:
            return await scenario(store)
        finally:
            await store.close()
    return asyncio.run(asyncio.wait_for(go(), 60))


async def _registry(store):
    """A park with a booth merchant at RATE_BPS and its terminal BOOTH."""
    await store.add_merchant(DESK_MERCHANT, "Park desk", 0, PARK)
    await store.add_merchant(BOOTH_MERCHANT, "Ice cream", RATE_BPS, PARK)
    await store.add_terminal(BOOTH, BOOTH_MERCHANT, 1, KEY, "booth 5")


def _sale(seq, card_no, counter, amount, balance_after, time_s=DAY_S + 3600):
    rec = R.Record(R.KIND_DEBIT, BOOTH, seq, time_s, card_no, UID, counter, amount, balance_after)
    return rec, rec.encode(MAC)


def _apply(tx, rec, raw):
    """What ingest does for an applied sale: store it, post it, claim its counter, move the shadow balance."""
    record_id = tx.next_id("records")
    tx.add_record(record_id, BOOTH, rec.seq, raw, rec, RecordStatus.APPLIED)
    tx.post(record_id, rec.kind, ledger.postings(rec, BOOTH_MERCHANT, RATE_BPS))
    tx.claim_counter(rec.card_no, rec.card_counter, BOOTH, rec.seq, -rec.amount_cents, rec.balance_after_cents)
    tx.set_card(rec.card_no, UID, rec.balance_after_cents, rec.card_counter)
    return record_id


def test_every_backend_implements_the_whole_interface(store_url):
    store = store_for(store_url)
    assert isinstance(store, interface.Store)
    missing = [name for name in dir(interface.Store) if not name.startswith("_") and not hasattr(store, name)]
    assert missing == []


def test_an_empty_database_is_migrated_and_opens_again_unchanged(store_url):
    async def first(store):
        await _registry(store)
        return await store.schema_version(), await store.counts()

    async def second(store):
        return await store.schema_version(), await store.counts()
    version, counts = run(store_url, first)
    assert version > 0 and (counts.merchants, counts.terminals, counts.parks, counts.records) == (2, 1, 1, 0)
    assert run(store_url, second) == (version, counts)


def test_a_batch_is_written_whole_with_ids_from_the_database(store_url):
    async def scenario(store):
        await _registry(store)

        def first_batch(tx):
            ids = [_apply(tx, *_sale(seq, 100001, seq + 1, 100, 10000 - 100 * seq)) for seq in (1, 2)]
            seen = tx.record(BOOTH, 2)          # a batch reads what it staged
            return ids, seen
        ids, seen = await store.write(first_batch)

        def failing_batch(tx):
            _apply(tx, *_sale(3, 100001, 4, 100, 9700))
            raise RuntimeError("the rules refused the batch")
        with pytest.raises(RuntimeError):
            await store.write(failing_batch)
        counts_after_failure = await store.counts()
        later = await store.write(lambda tx: _apply(tx, *_sale(3, 100001, 4, 100, 9700)))
        in_tx = await store.write(lambda tx: (tx.record(BOOTH, 3), tx.counter_rows(100001, [2, 3, 4, 9]),
                                              tx.card(100001), tx.record(BOOTH, 99)))
        return (ids, seen, counts_after_failure, later, in_tx, await store.records(BOOTH),
                await store.account_balance(ledger.card_account(100001)),
                await store.account_balance(ledger.merchant_account(BOOTH_MERCHANT)),
                await store.account_balance(ledger.COMMISSION), await store.card(100001))
    ids, seen, after_failure, later, in_tx, stored, card_cents, merchant_cents, commission_cents, card = run(
        store_url, scenario)
    assert ids[1] == ids[0] + 1 and seen.id == ids[1] and seen.status == "applied"
    assert (after_failure.records, after_failure.ledger_tx, after_failure.card_counters) == (2, 2, 2)
    assert later == ids[1] + 1          # the failed batch's id was never written, so it is given again
    record, claims, card_state, absent = in_tx
    assert record.id == later and record.counter == 4 and absent is None
    assert sorted(claims) == [2, 3, 4] and claims[4].balance_after_cents == 9700
    assert card_state == [UID, 9700, 4]
    assert [(r.seq, r.status, r.posted, r.amount_cents) for r in stored] == [
        (1, "applied", True, 100), (2, "applied", True, 100), (3, "applied", True, 100)]
    assert isinstance(stored[0], StoredRecord) and stored[0].raw == _sale(1, 100001, 2, 100, 9900)[1]
    assert (card_cents, merchant_cents, commission_cents) == (-300, 270, 30)
    assert (card.shadow_balance_cents, card.last_counter, card.status) == (9700, 4, CardStatus.ACTIVE)



def test_reads_after_a_prefetch_answer_as_without_one_and_see_what_the_batch_stages(store_url):
    def reads(tx):
        return (tx.record(BOOTH, 1), tx.record(BOOTH, 7), tx.counter_rows(100001, [1, 2, 3, 7]), tx.card(100001),
                tx.card(100999), tx.terminal_locked(BOOTH))

    def prefetched(tx):
        tx.prefetch(records=[(BOOTH, 1), (BOOTH, 7), (BOOTH, 8)], cards=[100001, 100999],
                    counters=[(100001, c) for c in (1, 2, 3, 7, 8)], terminals=[BOOTH])
        before = reads(tx)
        _apply(tx, *_sale(8, 100001, 8, 10, 9000))     # a seq and a counter the prefetch found missing
        return before, tx.record(BOOTH, 8).counter, tx.counter_rows(100001, [8])[8].seq, tx.card(100001)

    async def scenario(store):
        await _registry(store)
        await store.write(lambda tx: [_apply(tx, *_sale(s, 100001, s + 1, 100, 10000 - 100 * s)) for s in (1, 2)])
        await store.terminal_command(BOOTH, None, "test", locked=1)
        return await store.write(reads), await store.write(prefetched)
    plain, (hinted, staged_counter, staged_claim_seq, staged_card) = run(store_url, scenario)
    assert hinted == plain
    assert plain[0].counter == 2 and plain[1] is None and sorted(plain[2]) == [2, 3] and plain[5] is True
    assert plain[3] == [UID, 9800, 3] and plain[4] == [None, 0, None]
    assert (staged_counter, staged_claim_seq, staged_card) == (8, 8, [UID, 9000, 8])

def test_a_prefetch_leaves_a_claim_the_batch_staged_as_it_is_and_reads_only_what_it_was_asked(store_url):
    seen = []

    def prefetched(tx):
        tx.claim_counter(100001, 2, BOOTH, 99, -5, 1234)        # staged by this batch over the stored claim
        tx.prefetch(counters=[(100001, c) for c in (1, 3, 60000)] + [(100002, 3)])
        seen.append((tx.counter_rows(100001, [2, 3, 60000]), tx.counter_rows(100002, [3])))
        raise RuntimeError("rolled back: the staged claim is the test's, no record holds it")

    async def scenario(store):
        await _registry(store)
        await store.write(lambda tx: [_apply(tx, *_sale(s, 100001, s + 1, 100, 10000 - 100 * s)) for s in (1, 2)])
        with pytest.raises(RuntimeError):
            await store.write(prefetched)
    run(store_url, scenario)
    claims, other_card = seen[0]
    assert sorted(claims) == [2, 3] and (claims[2].seq, claims[3].seq) == (99, 2)
    assert other_card == {}


def test_counter_ranges_cover_each_cards_counters_and_split_where_they_lie_apart():
    from parkcard.store.sqlite.write_tx import COUNTER_GAP_MAX, counter_ranges
    far = 6 + 10 * COUNTER_GAP_MAX
    keys = [(7, 5), (7, 4), (7, 6), (7, far), (8, 4), (8, 4 + COUNTER_GAP_MAX), (9, 65535), (9, 0)]
    assert sorted(counter_ranges(keys)) == [(7, 4, 6), (7, far, far), (8, 4, 4 + COUNTER_GAP_MAX),
                                            (9, 0, 0), (9, 65535, 65535)]
    assert counter_ranges([]) == []


def test_uncertain_records_are_listed_until_settled(store_url):
    async def scenario(store):
        await _registry(store)
        rec, raw = _sale(1, 100001, 2, 100, 9900)

        def stage(tx):
            record_id = tx.next_id("records")
            tx.add_record(record_id, BOOTH, 1, raw, rec, RecordStatus.UNCERTAIN)
            return record_id, tx.uncertain_records(100001)
        record_id, staged = await store.write(stage)
        listed = await store.uncertain_cards()
        stored = await store.write(lambda tx: tx.uncertain_records(100001))
        await store.write(lambda tx: tx.set_record_status(record_id, RecordStatus.VOIDED))
        return record_id, staged, listed, stored, await store.uncertain_cards(), await store.records(BOOTH)
    record_id, staged, listed, stored, after, records = run(store_url, scenario)
    assert [u.id for u in staged] == [u.id for u in stored] == [record_id] and stored[0].counter == 2
    assert (listed, after) == ([100001], [])
    assert [(r.status, r.posted) for r in records] == [("voided", False)]


def test_quarantine_conflicts_alarms_and_gaps(store_url):
    async def scenario(store):
        await _registry(store)
        big = bytes(5000)

        def refuse(tx):
            tx.add_quarantine(big, "parkcard/term-5/up", BOOTH, "malformed", "too long")
            tx.add_quarantine(b"damaged", "parkcard/term-5/up", BOOTH, "record_bad_mac", "seq 2", seq=2)
            tx.add_conflict(BOOTH, 1, b"new", b"old")
            tx.add_alarm("conflict", 100001, BOOTH, 1, "same seq, other bytes")
            tx.set_gaps(BOOTH, [(3, 4), (7, 7)])
            return tx.held_damaged(BOOTH, 2)
        held_in_batch = await store.write(refuse)
        held_later = await store.write(lambda tx: tx.held_damaged(BOOTH, 2))
        once = [await store.add_alarm_once("downlink", "not sent", terminal_id=BOOTH) for _ in range(2)]
        return (held_in_batch, held_later, await store.quarantined(), await store.conflicts(), await store.alarms(),
                await store.terminal_gaps(BOOTH), await store.seqs_above_ack(), once, store.stats["quarantine_cut"])
    held, held_later, quarantined, conflicts, alarms, gaps, above, once, cut = run(store_url, scenario)
    assert held == held_later == b"damaged"
    assert [(q.reason, q.size, len(q.raw), q.seq) for q in quarantined] == [
        ("malformed", 5000, 4096, None), ("record_bad_mac", 7, 7, 2)]
    assert cut == 1
    assert [(c.terminal_id, c.seq, c.raw, c.existing_raw) for c in conflicts] == [(BOOTH, 1, b"new", b"old")]
    assert [(a.kind, a.card_no, a.terminal_id) for a in alarms] == [("conflict", 100001, BOOTH), ("downlink", None, BOOTH)]
    assert once == [True, False]
    assert gaps == [(3, 4), (7, 7)] and above == {BOOTH: [2]}


def test_blacklist_versions(store_url):
    async def scenario(store):
        await _registry(store)
        await store.write(lambda tx: tx.set_card(100001, UID, 500, 2))
        steps = [await store.blacklist_change(100001, "lost"),
                 await store.blacklist_change(100001, "lost again"),
                 await store.blacklist_change(100002, "typo", add=False)]
        listed = (await store.blacklist_cards(), await store.blacklist_entries(), (await store.card(100001)).status)
        with pytest.raises(NotIssued):
            await store.blacklist_change(424242, "never issued", issued_only=True)
        steps.append(await store.blacklist_change(424242, "from elsewhere"))
        steps.append(await store.blacklist_change(100001, "found", add=False))
        return (steps, listed, await store.blacklist_version(), await store.blacklist_changes(1),
                await store.blacklist_cards(), (await store.card(100001)).status)
    steps, listed, version, changes, cards, status = run(store_url, scenario)
    assert steps == [1, None, None, 2, 3]
    assert listed[0] == [100001] and [(e.card_no, e.reason, e.added_version) for e in listed[1]] == [(100001, "lost", 1)]
    assert listed[2] == CardStatus.BLACKLISTED and status == CardStatus.ACTIVE
    assert version == 3 and [(c.version, c.card_no, c.action) for c in changes] == [(2, 424242, "add"),
                                                                                  (3, 100001, "remove")]
    assert cards == [424242]


def test_merchants_and_the_park(store_url):
    async def scenario(store):
        await _registry(store)
        again = await store.add_merchant(BOOTH_MERCHANT, "Ice cream", RATE_BPS, PARK)
        with pytest.raises(ValueError, match="already exists"):
            await store.add_merchant(BOOTH_MERCHANT, "Crêpes", RATE_BPS, PARK)
        change = await store.update_merchant(BOOTH_MERCHANT, commission_bps=750)
        with pytest.raises(ValueError, match="does not exist"):
            await store.update_merchant(99, name="nobody")
        currency = [await store.park_currency(), await store.set_park_currency(PARK, "EUR"),
                    await store.set_park_currency(PARK, "EUR"), await store.park_currency()]
        await store.write(lambda tx: _apply(tx, *_sale(1, 100001, 2, 100, 9900)))
        with pytest.raises(ValueError, match="cannot change"):
            await store.set_park_currency(PARK, "USD")
        return again, change, currency, await store.merchants(), await store.merchant_list()
    again, change, currency, merchants, listing = run(store_url, scenario)
    assert again is False and change == (("Ice cream", RATE_BPS), ("Ice cream", 750))
    assert currency == ["CNY", True, False, "EUR"]
    assert [(m.id, m.name, m.commission_bps) for m in merchants] == [(1, "Park desk", 0), (2, "Ice cream", 750)]
    assert [(m.id, m.terminal_ids) for m in listing] == [(1, []), (2, [BOOTH])]


def test_terminals_and_their_commands(store_url):
    async def scenario(store):
        await _registry(store)
        with pytest.raises(ValueError, match="already registered"):
            await store.add_terminal(BOOTH, BOOTH_MERCHANT, 1, KEY, "again")
        with pytest.raises(ValueError, match="merchant 9 does not exist"):
            await store.add_terminal(6, 9, 1, KEY, "nowhere")
        await store.add_terminal(7, BOOTH_MERCHANT, 1, KEY, "booth 7", broker_password="secret")
        locked = [await store.terminal_command(BOOTH, 3, "cli:alice", locked=1),
                  await store.terminal_command(BOOTH, 3, "cli:alice", locked=1)]
        with pytest.raises(ValueError, match="not registered"):
            await store.terminal_command(99, 3, "cli:alice", locked=1)
        pending = await store.pending_commands()
        await store.command_sent(pending[0].id)
        await store.set_terminal(BOOTH, authorised=1, acked_upto=4)
        await store.reserve_down_counters(BOOTH, 128)
        return (locked, pending, await store.pending_commands(), await store.terminal_commands(),
                await store.terminal_flags(BOOTH), await store.terminal_flags(99), await store.terminals(BOOTH),
                await store.terminal_ids(), await store.broker_credentials(),
                await store.write(lambda tx: tx.terminal_locked(BOOTH)))
    locked, pending, after, commands, flags, unknown, [booth], ids, credentials, tx_locked = run(store_url, scenario)
    assert locked == [True, False]
    assert [(c.terminal_id, c.command, c.actor) for c in pending] == [(BOOTH, 3, "cli:alice")] and after == []
    assert len(commands) == 1 and commands[0].sent_at is not None
    assert (flags.authorised, flags.locked, unknown) == (1, 1, None) and tx_locked is True
    assert (booth.acked_upto, booth.counter_down_reserved, booth.key, booth.name) == (4, 128, KEY, "booth 5")
    assert ids == [BOOTH, 7] and credentials == {7: "secret"}


def test_admin_cards_and_their_issue_at_a_desk(store_url):
    async def scenario(store):
        await _registry(store)
        request = await store.request_admin_card(BOOTH, UID, True, "cli:alice")
        started = await store.start_card_requests()
        card_no = await store.add_admin_card(UID, True, BOOTH, 900001, 900002)
        state = await store.settle_admin_card(card_no, True, request)
        ended = await store.card_request(request)
        second = await store.add_admin_card(UID, False, BOOTH, 900001, 900002)
        with pytest.raises(ValueError, match="all used"):
            await store.add_admin_card(UID, False, BOOTH, 900001, 900002)
        cancelled = await store.request_admin_card(BOOTH, UID, False, "cli:bob")
        await store.start_card_requests()
        was_cancelled = await store.cancel_card_request(cancelled)
        abandoned = await store.settle_admin_card(second, True, cancelled)
        revoked = [await store.revoke_admin_card(card_no, "lost"), await store.revoke_admin_card(card_no, "lost")]
        return (started, card_no, state, ended, was_cancelled, abandoned, revoked, await store.admin_cards(),
                await store.cancelled_card_requests(), await store.card_write_requests())
    started, card_no, state, ended, was_cancelled, abandoned, revoked, cards, cancelled, requests = run(
        store_url, scenario)
    assert [(s.desk_terminal_id, s.uid, s.desk, s.actor) for s in started] == [(BOOTH, UID, True, "cli:alice")]
    assert card_no == 900001 and state == AdminCardState.WRITTEN and ended == (ended.finished_at, 900001, None)
    assert was_cancelled is True and abandoned == AdminCardState.ABANDONED and revoked == [True, False]
    assert [(c.card_no, c.state, c.revoked_at is not None) for c in cards] == [(900001, "written", True),
                                                                               (900002, "abandoned", False)]
    assert cancelled == [] and [r.finished_at is not None for r in requests] == [True, True]


def test_ticket_sales_queued_for_the_running_hub_are_claimed_once_and_cancelled_only_before_they_start(store_url):
    async def scenario(store):
        first = await store.request_ticket_sale(DESK_ID, 3, 17, None, "cli:alice")
        second = await store.request_ticket_sale(DESK_ID, 4, 18, 20820, "cli:bob", replace=True,
                                                 roles=("cashier", "finance"))
        withdrawn = await store.request_ticket_sale(DESK_ID, 4, 19, None, "cli:bob")
        queued = await store.ticket_sale_request(first)
        cancelled_before = await store.cancel_ticket_sale(withdrawn)
        started, again = await store.start_ticket_sales(), await store.start_ticket_sales()
        cancelled_after = await store.cancel_ticket_sale(first)
        await store.finish_ticket_sale(first, serial=7)
        await store.finish_ticket_sale(second, error="desk terminal 1 could not write the card")
        return (queued, cancelled_before, started, again, cancelled_after,
                [await store.ticket_sale_request(i) for i in (first, second, withdrawn)],
                await store.ticket_sale_request(999))
    queued, cancelled_before, started, again, cancelled_after, ended, unknown = run(store_url, scenario)
    assert queued == (None, None, None, None) and unknown is None
    assert cancelled_before is True and cancelled_after is False and again == []
    assert [tuple(s[1:]) for s in started] == [(DESK_ID, 3, 17, None, "cli:alice", False, ()),
                                               (DESK_ID, 4, 18, 20820, "cli:bob", True, ("cashier", "finance"))]
    assert [(e.started_at is not None, e.finished_at is not None, e.serial, e.error) for e in ended] == [
        (True, True, 7, None), (True, True, None, "desk terminal 1 could not write the card"),
        (False, False, None, None)]


def test_settlement_closes_once_and_refuses_an_overlap(store_url):
    async def scenario(store):
        await _registry(store)
        await store.write(lambda tx: [_apply(tx, *_sale(s, 100001, s + 1, 1000, 10000 - 1000 * s, DAY_S + s))
                                      for s in (1, 2)])
        preview = await store.unsettled(BOOTH_MERCHANT, DAY_S, DAY_S + 86400)
        audits = []
        [(closed, new)] = await store.close_settlements([BOOTH_MERCHANT], DAY_S, DAY_S + 86400,
                                                        audit=lambda closes: audits.extend(closes) or None)
        [(again, new_again)] = await store.close_settlements([BOOTH_MERCHANT], DAY_S, DAY_S + 86400)
        counts = await store.counts()
        with pytest.raises(PeriodOverlap) as overlap:
            await store.close_settlements([DESK_MERCHANT, BOOTH_MERCHANT], DAY_S - 3600, DAY_S + 3600)
        counts_after_refusal = await store.counts()
        with pytest.raises(ValueError, match="merchant 9 does not exist"):
            await store.close_settlements([9], DAY_S, DAY_S + 86400)
        # a sale of the closed day arriving late is paid by the next close
        await store.write(lambda tx: _apply(tx, *_sale(3, 100001, 4, 500, 7500, DAY_S + 3)))
        [(late, _)] = await store.close_settlements([BOOTH_MERCHANT], DAY_S + 86400, DAY_S + 2 * 86400)
        return (preview, closed, new, again, new_again, counts, counts_after_refusal, overlap.value, late,
                await store.settlement(BOOTH_MERCHANT, DAY_S, DAY_S + 86400), await store.settlements(),
                await store.settlement_records(closed.id), await store.records(BOOTH), audits)
    (preview, closed, new, again, new_again, counts, counts_after_refusal, overlap, late, looked_up, every, paid,
     records, audits) = run(store_url, scenario)
    assert preview == SettlementTotals(2000, 0, 200, 1800, 2, 0)
    assert isinstance(closed, Settlement) and new is True and new_again is False and again == closed
    assert (closed.sales_cents, closed.commission_cents, closed.payout_cents, closed.records) == (2000, 200, 1800, 2)
    assert (closed.merchant_name, closed.currency) == ("Ice cream", "CNY")
    assert (counts_after_refusal.settlements, counts_after_refusal.settlement_records) == (1, 2) == (
        counts.settlements, counts.settlement_records)
    assert (overlap.merchant_id, overlap.period_start, overlap.period_end) == (BOOTH_MERCHANT, DAY_S, DAY_S + 86400)
    assert (late.records, late.late_records, late.sales_cents) == (1, 1, 500)
    assert looked_up == closed and [s.id for s in every] == [closed.id, late.id]
    assert paid == [r.id for r in records[:2]]
    assert [a["records"] for a in audits] == [2]


def test_an_audited_change_moves_the_anchor_in_its_transaction(store_url):
    async def scenario(store):
        first = await store.audit_anchor()
        added = await store.add_merchant(3, "Crêpes", 500, PARK, audit=audited("cli:alice", "merchant.add",
                                                                               merchant_id=3))
        anchor = await store.audit_anchor()
        unchanged = await store.add_merchant(3, "Crêpes", 500, PARK, audit=audited("cli:alice", "merchant.add",
                                                                                   merchant_id=3))
        await store.write(lambda tx: tx.set_card(100001, UID, 0, 1))
        version = await store.blacklist_change(100001, "lost", audit=audited("cli:alice", "blacklist.add",
                                                                            extra=version_detail, card_no=100001))

        def fails(tx):
            tx.audit("cli:alice", "merchant.set", merchant_id=3)
            raise RuntimeError("refused")
        with pytest.raises(RuntimeError):
            await store.write(fails)
        return first, added, anchor, unchanged, version, await store.audit_anchor(), store.oplog.path
    first, added, anchor, unchanged, version, last, log_path = run(store_url, scenario)
    entries = list(oplog.OpLog(log_path).entries())
    assert first is None and added is True and unchanged is False
    assert anchor.seq == 1 and last.seq == 2 and version == 1
    assert [(e["action"], e["details"]) for e in entries] == [("merchant.add", {"merchant_id": 3}),
                                                            ("blacklist.add", {"card_no": 100001, "version": 1})]
    assert last.hash == entries[-1]["hash"] and oplog.verify(log_path, tuple(last)).ok


def test_the_ledger_check_scan_reads_what_was_written(store_url):
    async def scenario(store):
        await _registry(store)
        await store.write(lambda tx: _apply(tx, *_sale(1, 100001, 2, 100, 9900)))

        def scan(rows):
            return (rows.schema_problem(), rows.integrity_check(), list(rows.records()), list(rows.ledger_entries()),
                    rows.cards(), rows.terminals()[BOOTH][0], rows.missing_seqs(BOOTH, 2), rows.clone_cards())
        return await store.audit_scan(scan)
    problem, integrity, records, entries, cards, merchant, missing, clones = run(store_url, scenario)
    assert problem is None and integrity == ["ok"]
    assert [r[2] for r in records] == [1] and sorted(e[3] for e in entries) == [-100, 10, 90]
    assert cards == {100001: (9900, 2)} and merchant == BOOTH_MERCHANT and missing == [2] and clones == set()


# -- what only a backend can do to its own files: build an old schema, damage it

def _sqlite_database_at(path, version):
    from parkcard.store.sqlite import migrate
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate.migrate(conn, upto=version)
        conn.execute("INSERT INTO parks(id, name) VALUES (1, 'old park')")
        conn.execute("INSERT INTO merchants(id, park_id, name, commission_bps) VALUES (2, 1, 'Ice cream', 1000)")
    finally:
        conn.close()
    return migrate.LATEST


def _sqlite_set_version(path, version):
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = %d" % version)


def _postgres_database_at(url, version):
    from parkcard.store.postgres.migrate import latest_version, migration_files
    files = migration_files()
    postgres_server.tamper(url, "CREATE TABLE parkcard_schema(id BIGINT PRIMARY KEY CHECK (id = 1), "
                                "version BIGINT NOT NULL CHECK (version >= 0))",
                           *[f.read_text() for f in files[:version]],
                           "INSERT INTO parkcard_schema VALUES (1, %d)" % version,
                           "INSERT INTO parks(id, name) VALUES (1, 'old park')",
                           "INSERT INTO merchants(id, park_id, name, commission_bps) VALUES (2, 1, 'Ice cream', 1000)")
    return latest_version()


def _postgres_set_version(url, version):
    # The table refuses a negative version by a CHECK, which a damaged or foreign database need not have.
    postgres_server.tamper(url, "ALTER TABLE parkcard_schema DROP CONSTRAINT parkcard_schema_version_check",
                           "UPDATE parkcard_schema SET version = %d" % version)


def _postgres_damage(_url):
    pytest.skip("the server checks its own pages (initdb -k checksums): a test cannot damage one under it")


BACKEND_FILES = {"sqlite": (_sqlite_database_at, _sqlite_set_version, damage_a_page),
                 "postgres": (_postgres_database_at, _postgres_set_version, _postgres_damage)}


def _backend(store_url):
    return "postgres" if str(store_url).startswith("postgres") else "sqlite"


@pytest.mark.parametrize("version", [1, 4, 9])
def test_a_database_of_an_older_schema_is_upgraded_keeping_its_rows(store_url, version):
    database_at = BACKEND_FILES[_backend(store_url)][0]
    latest = database_at(store_url, version)

    async def scenario(store):
        await store.add_terminal(BOOTH, BOOTH_MERCHANT, 1, KEY, "booth 5")
        await store.write(lambda tx: _apply(tx, *_sale(1, 100001, 2, 100, 9900)))
        return await store.schema_version(), await store.merchants(), await store.records(BOOTH)
    schema, merchants, records = run(store_url, scenario)
    assert schema == latest and [(m.id, m.name) for m in merchants] == [(2, "Ice cream")]
    assert [(r.seq, r.status) for r in records] == [(1, "applied")]


@pytest.mark.parametrize("version, words", [(-3, "is not one this hub knows: restore a backup"),
                                            (999, "is newer than this hub")])
def test_a_schema_version_this_hub_does_not_know_is_refused(store_url, version, words):
    run(store_url, _registry)
    BACKEND_FILES[_backend(store_url)][1](store_url, version)
    with pytest.raises(DatabaseDamaged, match=words):
        run(store_url, _registry)


def test_a_damaged_database_is_refused_with_what_to_do(store_url):
    async def park_with_sales(store):
        await _registry(store)
        await store.write(lambda tx: [_apply(tx, *_sale(s, 100001, s + 1, 1, 9999 - s)) for s in range(1, 400)])
    run(store_url, park_with_sales)
    BACKEND_FILES[_backend(store_url)][2](store_url)
    with pytest.raises(DatabaseDamaged, match="(?s)is damaged .*: restore the last backup"):
        run(store_url, _registry)


def test_an_unavailable_store_is_transient_and_bad_data_is_not():
    assert is_transient(sqlite3.OperationalError("database or disk is full"))
    assert is_transient(OSError(28, "No space left on device"))
    assert not is_transient(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_transient(ValueError("merchant 9 does not exist"))


def test_two_stores_on_one_database_take_ids_without_colliding(store_url):
    """Ids come from the database inside the writing transaction, not from a process's memory (once they did)."""
    run(store_url, _registry)

    async def both():
        first, second = await open_store(store_url), await open_store(store_url)
        try:
            ids = []
            for seq, store in zip((1, 2, 3, 4), (first, second, first, second)):
                ids.append(await store.write(lambda tx, seq=seq: _apply(tx, *_sale(seq, 100001, seq + 1, 10,
                                                                                   1000 - 10 * seq))))
            return ids, await first.records(BOOTH)
        finally:
            await first.close()
            await second.close()
    ids, stored = asyncio.run(both())
    assert ids == sorted(set(ids)) and [r.id for r in stored] == ids


def test_the_database_url_picks_the_backend_and_a_wrong_one_is_refused_saying_what_to_pass(tmp_path):
    async def opened(url):
        store = await open_store(url)
        try:
            await store.add_merchant(2, "Ice cream", 1000)
            return store.path
        finally:
            await store.close()
    assert asyncio.run(opened("sqlite:///%s" % (tmp_path / "a.db"))) == str(tmp_path / "a.db")
    assert asyncio.run(opened(tmp_path / "b.db")) == str(tmp_path / "b.db")
    with pytest.raises(StoreError, match="unknown database URL scheme; pass a file path"):
        store_for("mysql://park@db/park")
    if importlib.util.find_spec("parkcard.store.postgres") is None:
        with pytest.raises(StoreError, match=r"postgresql://park:\*\*\*@db/park is a PostgreSQL database, but the "
                                             "PostgreSQL backend is not installed"):
            store_for("postgresql://park:secret@db/park")


def test_the_cli_refuses_a_database_url_it_cannot_use_without_a_traceback(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from parkcard.cli import main
    monkeypatch.chdir(tmp_path)         # a URL taken for a path would leave folders here
    result = CliRunner().invoke(main, ["--db", "mysql://park@db/park", "merchant", "add", "--id", "2", "--name",
                                       "Ice cream", "--commission-bps", "1000"])
    assert result.exit_code == 2 and "unknown database URL scheme" in result.output, result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def test_a_store_opened_for_the_ledger_check_reads_and_refuses_writes(store_url):
    run(store_url, _registry)

    async def read_only():
        store = await store_for(store_url).open_for_audit()
        try:
            merchants = await store.merchants()
            with pytest.raises(RuntimeError, match="not open for writing"):
                await store.add_merchant(3, "Crêpes", 500)
            return merchants, store.is_open
        finally:
            await store.close()
    merchants, was_open = asyncio.run(read_only())
    assert [m.id for m in merchants] == [DESK_MERCHANT, BOOTH_MERCHANT] and was_open
    assert [m.id for m in run(store_url, lambda store: store.merchants())] == [DESK_MERCHANT, BOOTH_MERCHANT]


def test_a_record_stored_as_not_happened_by_an_older_hub_reads_as_voided(tmp_path):
    """Migration 11: one name per record state, also for rows written before it."""
    from parkcard.store.sqlite import migrate
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate.migrate(conn, upto=10)
        conn.execute("INSERT INTO records(terminal_id, seq, raw, kind, card_no, card_counter, amount_cents,"
                     " balance_after_cents, time_s, status) VALUES (5, 1, x'00', 1, 100001, 2, 100, 9900, 0,"
                     " 'not_happened')")
    finally:
        conn.close()

    async def scenario(store):
        return await store.schema_version(), await store.records(5)
    version, records = run(str(path), scenario)
    assert version == migrate.LATEST >= 11
    assert [(r.seq, r.status) for r in records] == [(1, RecordStatus.VOIDED)]


# -- the ingest rules over each backend, read back through the store's methods

def on_a_park(db, steps):
    """Run steps(hub, card_no) on a park (booths 5 and 6) with one card of 100.00 at counter 1; return its result."""
    async def scenario():
        hub = await park(db)
        try:
            card = (await desk_issued(hub, UID, 10000, time_s=DAY_S)).card_no
            return await steps(hub, card)
        finally:
            await hub.stop()
    return asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_resent_upload_is_applied_once(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        raws = [five.make(R.KIND_DEBIT, card, 2 + i, 100, 9900 - 100 * i) for i in range(3)]
        first = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in raws])
        again = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in raws])
        return (first.counts["applied"], again.counts["duplicates"], len(await hub.storage.records(5)),
                await hub.storage.account_balance(ledger.card_account(card)), (await audit.check(hub.storage)).ok)
    assert on_a_park(store_url, steps) == (3, 3, 3, 9700, True)


def test_rows_are_inserted_whole_and_in_order_by_statements_of_the_few_sizes_the_writer_keeps_compiled():
    import sqlite3

    class Counted:
        """A connection that notes the row count of each INSERT it is given."""

        def __init__(self, conn):
            self.conn, self.sizes = conn, []

        def execute(self, sql, params):
            self.sizes.append(len(params) // 2)
            return self.conn.execute(sql, params)
    for count in (0, 1, 255, 256, 600):
        conn = Counted(sqlite3.connect(":memory:"))
        conn.conn.execute("CREATE TABLE t(a INTEGER, b TEXT)")
        rows = [(i, "r%d" % i) for i in range(count)]
        insert_rows(conn, "t", ("a", "b"), rows)
        assert conn.conn.execute("SELECT a, b FROM t ORDER BY rowid").fetchall() == rows
        assert set(conn.sizes) <= set(INSERT_SIZES) and sum(conn.sizes) == count
        assert conn.sizes == sorted(conn.sizes, reverse=True) and len(conn.sizes) <= count // 256 + 8


def test_a_batch_of_more_rows_than_one_statement_takes_is_written_whole_and_a_resend_in_it_is_applied_once(
        store_url):
    count = 2 * INSERT_SIZES[0] + 87     # two full INSERT statements and shorter ones (64+16+4+2+1), per table

    async def steps(hub, card):
        five = Booth(hub, 5)
        raws = [five.make(R.KIND_DEBIT, card, 2 + i, 1, 9999 - i) for i in range(count)]
        first = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in raws])
        last = five.make(R.KIND_DEBIT, card, 2 + count, 1, 9999 - count)
        # The stored last seq, a new one, and the new one again: each applied once.
        mixed = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, r) for r in (raws[-1], last, last)])
        records = await hub.storage.records(5)
        return (first.counts["applied"], mixed.counts["applied"], mixed.counts["duplicates"], mixed.acks[5],
                [r.seq for r in records], await hub.storage.account_balance(ledger.card_account(card)),
                (await hub.storage.card(card)).last_counter, (await audit.check(hub.storage)).ok)
    applied, mixed_applied, duplicates, acks, seqs, balance, last_counter, ok = on_a_park(store_url, steps)
    assert (applied, mixed_applied, duplicates, acks) == (count, 1, 2, [3, 0])
    assert seqs == list(range(1, count + 2))
    assert (balance, last_counter, ok) == (10000 - count - 1, count + 2, True)


def test_the_same_seq_with_other_bytes_is_a_conflict_and_not_applied(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 300, 9700))
        five.seq = 0                        # a terminal that lost its journal reuses seq 1
        result = await hub.ingest.apply_local(5, [(R.STATUS_COMMITTED, five.make(R.KIND_DEBIT, card, 3, 5000,
                                                                                 4700))])
        alarms = [(a.kind, a.card_no, a.terminal_id, a.seq) for a in await hub.storage.alarms()]
        return result.acks[5], alarms, await hub.storage.account_balance(ledger.card_account(card))
    acks, alarms, balance = on_a_park(store_url, steps)
    assert acks == [0, 1] and balance == 9700
    assert alarms == [("conflict", alarms[0][1], 5, 1)]


def test_records_out_of_order_are_held_above_the_ack_until_the_gap_fills(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        raws = [five.make(R.KIND_DEBIT, card, 2 + i, 50, 9950 - 50 * i) for i in range(3)]
        await five.upload(raws[2], raws[0])
        held = ((await hub.storage.terminals(5))[0].acked_upto, await hub.storage.seqs_above_ack(5))
        await five.upload(raws[1])
        filled = ((await hub.storage.terminals(5))[0].acked_upto, await hub.storage.seqs_above_ack(5))
        return held, filled, await hub.storage.account_balance(ledger.card_account(card))
    assert on_a_park(store_url, steps) == ((1, {5: [3]}), (3, {}), 9850)


def test_two_records_with_one_card_counter_are_applied_alarmed_and_the_card_blacklisted(store_url):
    async def steps(hub, card):
        five, six = Booth(hub, 5), Booth(hub, 6)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 100, 9900))
        result = await six.hub.ingest.apply_local(6, [(R.STATUS_COMMITTED, six.make(R.KIND_DEBIT, card, 2, 200,
                                                                                    9800))])
        cloned = {a.card_no for a in await hub.storage.alarms() if a.kind == ALARM_CLONE}
        return (result.counts["clones"], result.blacklist_versions, await hub.storage.blacklist_cards(), cloned,
                await hub.storage.account_balance(ledger.card_account(card)), card)
    clones, versions, blacklisted, cloned, balance, card = on_a_park(store_url, steps)
    assert (clones, versions, blacklisted, cloned, balance) == (1, [1], [card], {card}, 9700)


def test_a_record_that_does_not_continue_the_cards_balance_raises_a_chain_alarm(store_url):
    async def steps(hub, card):
        five = Booth(hub, 5)
        await five.upload(five.make(R.KIND_DEBIT, card, 2, 100, 9900))
        await five.upload(five.make(R.KIND_DEBIT, card, 3, 100, 9500))     # 9900 - 100 is 9800
        return [(a.kind, a.detail) for a in await hub.storage.alarms()]
    assert on_a_park(store_url, steps) == [("chain", "counter 3: 9900 -100 != 9500")]


def _desk_op(op_id, kind="top_up", card_no=555, request='{"cash_cents": 500}', blocks=b"\x05" + bytes(16)):
    from parkcard.domain.lifecycle import DeskOpState
    from parkcard.store.rows import DeskOperation
    return DeskOperation(op_id, kind, request, DESK_ID, "anna", DeskOpState.PENDING, card_no, UID, 1, 2, blocks, 550,
                         50, 0, 1550, 2, None, None, 0.0, None)


def test_two_cashiers_replacing_one_lost_card_at_once_keep_one_replacement_and_the_other_is_refused(store_url):
    """Two processes (two desks' hubs, or the CLI and the hub) keep a replacement of card 777 at the same moment:
    the conditional write keeps one; the other is refused before its card is written, and may go once the first
    failed."""
    from parkcard.domain.lifecycle import DeskOpState

    def replacing(op_id, desk_actor):
        return _desk_op(op_id, kind="replace", card_no=None, blocks=None, request='{"lost_card_no": 777}')._replace(
            actor=desk_actor, replaces_card_no=777)

    async def scenario(store):
        other = await open_store(store_url)
        try:
            got = await asyncio.gather(store.keep_desk_operation(replacing("rep-a", "anna")),
                                       other.keep_desk_operation(replacing("rep-b", "bert")), return_exceptions=True)
            kept = [g for g in got if not isinstance(g, Exception)]
            [refused] = [g for g in got if isinstance(g, Exception)]
            [winner] = kept
            await store.fail_desk_operation(winner.op_id, "the card was not written")
            after_failure = await other.keep_desk_operation(replacing("rep-c", "bert"))
            return winner, refused, after_failure, await store.desk_operations(DeskOpState.PENDING)
        finally:
            await other.close()
    winner, refused, after_failure, pending = run(store_url, scenario)
    assert isinstance(refused, ValueError) and "card 777 is being replaced by operation %s (%s at desk %d)" % (
        winner.op_id, winner.actor, DESK_ID) in str(refused)
    assert winner.replaces_card_no == 777 and after_failure.replaces_card_no == 777
    assert [op.op_id for op in pending] == ["rep-c"]


def test_desk_operations_are_kept_once_one_pending_per_card_and_posted_with_their_record(store_url):
    from parkcard.domain.lifecycle import DeskOpState
    from parkcard.store.desk_ops import posted_in

    async def scenario(store):
        kept = await store.keep_desk_operation(_desk_op("op-1"))
        again = await store.keep_desk_operation(_desk_op("op-1", request='{"cash_cents": 900}'))
        with pytest.raises(ValueError, match="card 555 has operation op-1 pending"):
            await store.keep_desk_operation(_desk_op("op-2"))
        issue = await store.keep_desk_operation(_desk_op("op-3", kind="issue", card_no=None, blocks=None))
        next_issue = await store.keep_desk_operation(_desk_op("op-4", kind="issue", card_no=None, blocks=None))
        with_blocks = await store.keep_desk_blocks("op-3", b"\x04" + bytes(16))
        failed = await store.fail_desk_operation("op-1", "the card was not written")
        retried = await store.keep_desk_operation(_desk_op("op-1", request='{"cash_cents": 700}'))
        await store.write(lambda tx: posted_in(tx, "op-1", 7))
        with pytest.raises(ValueError, match="not pending"):
            await store.write(lambda tx: posted_in(tx, "op-1", 8))
        queued = await store.queue_desk_request("req-1", "top_up", DESK_ID, "{}", "anna", "cashier")
        same = await store.queue_desk_request("req-1", "top_up", DESK_ID, '{"other": 1}', "anna", "cashier")
        started = await store.start_desk_requests()
        await store.finish_desk_request("req-1", "refused", "card pulled")
        requeued = await store.queue_desk_request("req-1", "top_up", DESK_ID, "{}", "anna", "cashier")
        return (kept, again, issue, next_issue, with_blocks, failed, retried, await store.desk_operation("op-1"),
                await store.desk_operations(DeskOpState.PENDING), queued, same, started, requeued,
                await store.counter_claim(555, 1))
    (kept, again, issue, next_issue, with_blocks, failed, retried, posted, pending, queued, same, started, requeued,
     claim) = run(store_url, scenario)
    assert kept.state == DeskOpState.PENDING and again == kept          # a retry is the same operation, as kept
    assert (issue.card_no, next_issue.card_no) == (100001, 100002)      # numbers held by issues are not reused
    assert with_blocks.blocks == b"\x04" + bytes(16)
    assert failed and retried.request == '{"cash_cents": 700}'          # a failed operation is tried again
    assert (posted.state, posted.record_seq) == (DeskOpState.POSTED, 7)
    assert [op.op_id for op in pending] == ["op-3", "op-4"]
    assert queued.state == "queued" and same.params == "{}" and [r.op_id for r in started] == ["req-1"]
    assert requeued.state == "queued" and claim is None


def test_a_ticket_written_at_the_desk_books_its_cash_price_once_and_a_failed_one_books_nothing(store_url):
    async def steps(hub, card):
        rule = ticket_rules.ProductRule(ticket_rules.TYPES_BY_NAME["day"], 0, 1, 0, 0, 0, 0, 0, 4500)
        product = await hub.storage.add_ticket_product("Day pass", rule)
        failed, written = [await hub.storage.add_ticket(product, card, UID, 20820, 20820, 0, 4500, "cli:alice")
                           for _ in range(2)]
        settled = [await hub.storage.settle_ticket(failed, False), await hub.storage.settle_ticket(written, True),
                   await hub.storage.settle_ticket(written, True)]
        return (settled, [await hub.storage.account_balance(a) for a in ("desk:cash", "park:ticket_revenue")],
                (await audit.check(hub.storage)).ok)
    assert on_a_park(store_url, steps) == ([True, True, False], [-10000 - 4500, 4500], True)
