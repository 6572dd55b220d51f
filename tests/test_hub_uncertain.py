"""Uncertain records of one card decided together at the hub (found by the whole-park simulation, seed 32)."""

import asyncio

from protocol import frames
from protocol import record as R

from parkcard.ingest.pipeline import Ingest
from parkcard.ingest.registry import Registry
from parkcard.store import open_store

KEY = bytes(range(32))
TERMINAL_ID = 5
MERCHANT_ID = 2
CARD_NO = 100001
UID = b"\x04\x01\x02\x03"
NOW_S = 1796000000


def _record(seq, counter, amount_cents, balance_after_cents, terminal_id=TERMINAL_ID, key=KEY):
    rec = R.Record(R.KIND_DEBIT, terminal_id, seq, NOW_S + seq, CARD_NO, UID, counter, amount_cents,
                   balance_after_cents)
    return rec.encode(R.record_mac_for(key))


async def _ingest(storage, terminals):
    """An Ingest over storage with booth terminals {id: key} of one merchant."""
    await storage.add_merchant(MERCHANT_ID, "Food court", 1000)
    for terminal_id, key in terminals.items():
        await storage.add_terminal(terminal_id, MERCHANT_ID, frames.ROLE_POS, key, "booth %d" % terminal_id)
    registry = await Registry(storage).load()
    ingest = Ingest(storage, registry)
    await ingest.load()
    return ingest


def test_two_uncertain_records_decided_by_one_later_record_are_both_applied(tmp_path):
    async def scenario():
        storage = await open_store(tmp_path / "hub.db")
        try:
            ingest = await _ingest(storage, {TERMINAL_ID: KEY})
            # Two writes whose outcome the terminal could not tell (counters 2 and 3), then a sale at
            # counter 4: the card went past both, so both happened (SPEC.md §5.6).
            await ingest.apply_local(TERMINAL_ID, [(R.STATUS_UNCERTAIN, _record(1, 2, 100, 900)),
                                                   (R.STATUS_UNCERTAIN, _record(2, 3, 100, 800))])
            await ingest.apply_local(TERMINAL_ID, [(R.STATUS_COMMITTED, _record(3, 4, 100, 700))])
            stored = await storage.records()
            statuses = [(r.seq, r.status) for r in stored]
            posted = [r.seq for r in stored if r.posted]
            return statuses, posted, await storage.account_balance("card:%d" % CARD_NO)
        finally:
            await storage.close()
    statuses, posted, card_cents = asyncio.run(scenario())
    assert statuses == [(1, "applied"), (2, "applied"), (3, "applied")]
    assert posted == [1, 2, 3]
    assert card_cents == -300


OTHER_ID = 6
OTHER_KEY = bytes(range(32, 64))


def test_an_uncertain_record_whose_counter_another_terminal_wrote_is_not_applied_nor_a_clone(tmp_path):
    async def scenario():
        storage = await open_store(tmp_path / "hub.db")
        try:
            ingest = await _ingest(storage, {TERMINAL_ID: KEY, OTHER_ID: OTHER_KEY})
            # Term 6's write of counter 2 (1000 -> 900) was torn: it never landed, and term 5 wrote
            # counter 2 (1000 -> 800) while offline. Term 6 then wrote counter 3 (800 -> 750): its chain
            # says counter 2 left 800, not 900. Term 6 uploads first; term 5 comes back later.
            await ingest.apply_local(OTHER_ID, [(R.STATUS_UNCERTAIN, _record(1, 2, 100, 900, OTHER_ID, OTHER_KEY)),
                                                (R.STATUS_COMMITTED, _record(2, 3, 50, 750, OTHER_ID, OTHER_KEY))])
            await ingest.apply_local(TERMINAL_ID, [(R.STATUS_COMMITTED, _record(1, 2, 200, 800))])
            statuses = [(r.terminal_id, r.seq, r.status) for r in await storage.records()]
            clones = [a.card_no for a in await storage.alarms() if a.kind == "clone"]
            return statuses, clones, await storage.account_balance("card:%d" % CARD_NO)
        finally:
            await storage.close()
    statuses, clones, card_cents = asyncio.run(scenario())
    assert statuses == [(TERMINAL_ID, 1, "applied"), (OTHER_ID, 1, "voided"), (OTHER_ID, 2, "applied")]
    assert not clones and card_cents == -250
