"""Settlement bench: time to close a day and the rest of a month on a ledger of many sales.

    .venv/bin/python bench/bench_settle.py [--records 300000] [--merchants 4] [--days 30]

The ledger is written straight into a migrated SQLite file (one sale a record, three
entries each: card, merchant, commission), spread evenly over the days across two
terminals per merchant; then `settlement.close_all` closes day 1 for every merchant,
days 2..N-1, and day N (each close reads every record not settled yet of its merchant).
"""

import argparse
import asyncio
import shlex
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hub"))

from protocol import record as R  # noqa: E402
from parkcard.services import settlement  # noqa: E402
from parkcard.store import open_store  # noqa: E402

DAY_S = 1782864000      # 2026-07-01T00:00:00Z
PRICE_CENTS = 1000
COMMISSION_CENTS = 100


async def _registry(path, merchants):
    storage = await open_store(path)
    for m in range(merchants):
        await storage.add_merchant(2 + m, "merchant %d" % (2 + m), 1000)
        for t in range(2):
            await storage.add_terminal(2 + 2 * m + t, 2 + m, 1, bytes(32), "t%d" % (2 + 2 * m + t))
    await storage.close()


def _ledger(path, records, merchants, days):
    conn = sqlite3.connect(path)
    now = time.time()
    rec, tx, entries = [], [], []
    record_mac = R.record_mac_for(bytes(32))    # the terminals' key in _registry
    for i in range(1, records + 1):
        terminal = 2 + i % (2 * merchants)
        merchant = 2 + (terminal - 2) // 2
        card = 100000 + i % 500
        time_s = DAY_S + i * days * 86400 // (records + 1)
        raw = R.Record(R.KIND_DEBIT, terminal, i, time_s, card, bytes(4), i, PRICE_CENTS, 0).encode(record_mac)
        rec.append((i, terminal, i, raw, R.KIND_DEBIT, card, i, PRICE_CENTS, 0, time_s, "applied", now))
        tx.append((i, i, 1, now))
        entries += [(i, "card:%d" % card, -PRICE_CENTS), (i, "merchant:%d" % merchant, PRICE_CENTS - COMMISSION_CENTS),
                    (i, "park:commission", COMMISSION_CENTS)]
    conn.executemany("INSERT INTO records(id, terminal_id, seq, raw, kind, card_no, card_counter, amount_cents, "
                     "balance_after_cents, time_s, status, applied_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rec)
    conn.executemany("INSERT INTO ledger_tx(id, record_id, kind, at) VALUES (?,?,?,?)", tx)
    conn.executemany("INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (?,?,?)", entries)
    conn.commit()
    conn.close()


async def _close(path, merchants, start_s, end_s):
    storage = await open_store(path)
    try:
        started = time.perf_counter()
        rows = await settlement.close_all(storage, [2 + m for m in range(merchants)], start_s, end_s)
        return time.perf_counter() - started, sum(r.records for r, _new in rows)
    finally:
        await storage.close()


def main():
    """Build the ledger, close three periods, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300000)
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    print("command: .venv/bin/python bench/bench_settle.py " + shlex.join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="parkcard-bench-settle-") as tmp:
        path = str(Path(tmp) / "hub.db")
        asyncio.run(_registry(path, args.merchants))
        _ledger(path, args.records, args.merchants, args.days)
        print("ledger: %d sales over %d days, %d merchants" % (args.records, args.days, args.merchants))
        last = DAY_S + args.days * 86400
        for label, start_s, end_s in (("day 1", DAY_S, DAY_S + 86400),
                                      ("days 2..%d" % (args.days - 1), DAY_S + 86400, last - 86400),
                                      ("day %d" % args.days, last - 86400, last)):
            seconds, taken = asyncio.run(_close(path, args.merchants, start_s, end_s))
            print("close %-10s every merchant: %7d records in %.2f s" % (label, taken, seconds))


if __name__ == "__main__":
    main()
