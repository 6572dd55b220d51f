"""Uncertain records of one card decided together at the hub (found by the whole-park simulation, seed 32)."""

import asyncio

from protocol import frames
from protocol import record as R

from parkcard.ingest import Ingest
from parkcard.registry import Registry
from parkcard.storage import Storage

KEY = bytes(range(32))
TERMINAL_ID = 5
MERCHANT_ID = 2
CARD_NO = 100001
UID = b"\x04\x01\x02\x03"
NOW_S = 1796000000


def _record(seq, counter, amount_cents, balance_after_cents):
    rec = R.Record(R.KIND_DEBIT, TERMINAL_ID, seq, NOW_S + seq, CARD_NO, UID, counter, amount_cents,
                   balance_after_cents)
    return rec.encode(R.record_mac_for(KEY))


def test_two_uncertain_records_decided_by_one_later_record_are_both_applied(tmp_path):
    async def scenario():
        storage = await Storage(tmp_path / "hub.db").open()
        try:
            await storage.add_merchant(MERCHANT_ID, "Food court", 1000)
            await storage.add_terminal(TERMINAL_ID, MERCHANT_ID, frames.ROLE_POS, KEY, "booth")
            registry = await Registry(storage).load()
            ingest = Ingest(storage, registry)
            await ingest.load()
            # Two writes whose outcome the terminal could not tell (counters 2 and 3), then a sale at
            # counter 4: the card went past both, so both happened (SPEC.md §5.6).
            await ingest.apply_local(TERMINAL_ID, [(R.STATUS_UNCERTAIN, _record(1, 2, 100, 900)),
                                                   (R.STATUS_UNCERTAIN, _record(2, 3, 100, 800))])
            await ingest.apply_local(TERMINAL_ID, [(R.STATUS_COMMITTED, _record(3, 4, 100, 700))])
            statuses = await storage.fetchall("SELECT seq, status FROM records ORDER BY seq")
            posted = await storage.fetchall("SELECT r.seq FROM ledger_tx t JOIN records r ON r.id = t.record_id "
                                            "ORDER BY r.seq")
            return statuses, posted, await storage.account_balance("card:%d" % CARD_NO)
        finally:
            await storage.close()
    statuses, posted, card_cents = asyncio.run(scenario())
    assert statuses == [(1, "applied"), (2, "applied"), (3, "applied")]
    assert posted == [(1,), (2,), (3,)]
    assert card_cents == -300
