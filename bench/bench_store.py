"""Store write bench: applied sales written through the store interface alone, one batch per frame.

    .venv/bin/python bench/bench_store.py [--records 16000] [--frame-records 8 64] [--db URL_OR_PATH]

No broker, no ingest rules: each batch does what ingest does for an applied
sale (a record, its ledger transaction and entries, the counter claim, the
shadow balance) through `WriteTx`, and commits (synchronous=FULL on SQLite),
so the figure is what the store itself costs per record and per commit.
--db defaults to a fresh SQLite file; a postgresql:// URL runs the same batches
on that backend (its database must be empty).
"""

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hub"))
sys.path.insert(0, str(REPO))

from protocol import record as R  # noqa: E402

from parkcard.domain import ledger  # noqa: E402
from parkcard.store import open_store  # noqa: E402

KEY = bytes(32)
MAC = R.record_mac_for(KEY)
UID = b"\x04\x01\x02\x03"
TERMINAL_ID, MERCHANT_ID, RATE_BPS = 5, 2, 1000
CARDS = 50
DAY_S = 1782864000


def sale_batch(first_seq, count):
    """A write function staging `count` applied sales from seq first_seq on, as ingest would."""
    def run(tx):
        for seq in range(first_seq, first_seq + count):
            rec = R.Record(R.KIND_DEBIT, TERMINAL_ID, seq, DAY_S + seq, 100001 + seq % CARDS, UID, seq + 1, 1,
                           10_000_000 - seq)
            record_id = tx.next_id("records")
            tx.add_record(record_id, TERMINAL_ID, seq, rec.encode(MAC), rec, "applied")
            tx.post(record_id, rec.kind, ledger.postings(rec, MERCHANT_ID, RATE_BPS))
            tx.claim_counter(rec.card_no, rec.card_counter, TERMINAL_ID, seq, -1, rec.balance_after_cents)
            tx.set_card(rec.card_no, UID, rec.balance_after_cents, rec.card_counter)
    return run


async def measure(db, records, frame_records):
    """Return (records/s, batches) of writing `records` sales in batches of frame_records."""
    store = await open_store(db)
    try:
        await store.add_merchant(MERCHANT_ID, "bench", RATE_BPS)
        await store.add_terminal(TERMINAL_ID, MERCHANT_ID, 1, KEY, "bench")
        started = time.perf_counter()
        for first in range(1, records + 1, frame_records):
            await store.write(sale_batch(first, min(frame_records, records + 1 - first)))
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    return records / elapsed, -(-records // frame_records)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=16000)
    parser.add_argument("--frame-records", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--db", help="database path or URL (default: a fresh SQLite file per run)")
    args = parser.parse_args()
    if args.db and len(args.frame_records) > 1:
        parser.error("--db takes one --frame-records (each run needs an empty database)")
    print("command: %s" % " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    for frame_records in args.frame_records:
        db = args.db or str(Path(tempfile.mkdtemp(prefix="parkcard-bench-store-")) / "hub.db")
        rate, batches = asyncio.run(measure(db, args.records, frame_records))
        print("store writes: %d records in %d batches of %d: %.0f records/s (%.0f commits/s)"
              % (args.records, batches, frame_records, rate, rate / frame_records))


if __name__ == "__main__":
    main()
