"""Ledger check bench: time to open (quick_check) and to re-derive the ledger of a park with many records.

    .venv/bin/python bench/bench_audit.py [--records 300000] [--cards 3000] [--booths 8] [--keep PATH]

The park is written straight into a migrated SQLite file: every card issued at the desk
(a version 2 issue record), then sales spread over the booths, each a real record MACed
with its booth's key and posted by the posting rules (parkcard.domain.ledger), with the card's
counter chain and shadow balance as ingest leaves them. Then it times open_store (the
start-up quick_check included) and `ledger check` (audit.check_file), and prints the RSS.
"""

import argparse
import asyncio
import resource
import shlex
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hub"))
sys.path.insert(0, str(REPO))

from protocol import frames  # noqa: E402
from protocol import record as R  # noqa: E402

from parkcard import audit  # noqa: E402
from parkcard.domain import ledger  # noqa: E402
from parkcard.store import open_store  # noqa: E402

DAY_S = 1782864000      # 2026-07-01T00:00:00Z
DESK_ID = 100
FIRST_LOAD_CENTS = 1000000
PRICE_CENTS = 250
RATE_BPS = 1000


async def _registry(path, booths):
    storage = await open_store(path)
    await storage.add_merchant(1, "park desk", 0)
    await storage.add_merchant(2, "food", RATE_BPS)
    await storage.add_terminal(DESK_ID, 1, frames.ROLE_DESK, bytes([DESK_ID]) * 32, "desk")
    for t in range(booths):
        await storage.add_terminal(1 + t, 2, frames.ROLE_POS, bytes([1 + t]) * 32, "booth %d" % (1 + t))
    await storage.close()


def _park(path, records, cards, booths):
    """Write `records` records (cards issues, the rest sales) with their postings; return the count written."""
    macs = {tid: R.record_mac_for(bytes([tid]) * 32) for tid in [DESK_ID] + list(range(1, booths + 1))}
    seqs = dict.fromkeys(macs, 0)
    state = {}      # card_no -> [counter, balance]
    rows, txs, entries, counters = [], [], [], []

    def add(rec, terminal_id, merchant_id, rate_bps):
        record_id = len(rows) + 1
        rows.append((record_id, terminal_id, rec.seq, rec.encode(macs[terminal_id]), rec.kind, rec.card_no,
                     rec.card_counter, rec.amount_cents, rec.balance_after_cents, rec.time_s, "applied", 0.0))
        txs.append((record_id, record_id, rec.kind, 0.0))
        entries.extend((record_id, a, c) for a, c in ledger.postings(rec, merchant_id, rate_bps))
        counters.append((rec.card_no, rec.card_counter, terminal_id, rec.seq, ledger.card_delta(rec),
                         rec.balance_after_cents))

    for i in range(cards):
        card_no = 100001 + i
        seqs[DESK_ID] += 1
        add(R.Record(R.KIND_ISSUE, DESK_ID, seqs[DESK_ID], DAY_S, card_no, b"\x04" + card_no.to_bytes(3, "big"), 1,
                     FIRST_LOAD_CENTS, FIRST_LOAD_CENTS, deposit_cents=500, version=R.RECORD_V2), DESK_ID, 1, 0)
        state[card_no] = [1, FIRST_LOAD_CENTS]
    for i in range(records - cards):
        card_no = 100001 + i % cards
        terminal_id = 1 + i % booths
        seqs[terminal_id] += 1
        counter, balance = state[card_no]
        state[card_no] = [counter + 1, balance - PRICE_CENTS]
        add(R.Record(R.KIND_DEBIT, terminal_id, seqs[terminal_id], DAY_S + i, card_no,
                     b"\x04" + card_no.to_bytes(3, "big"), counter + 1, PRICE_CENTS, balance - PRICE_CENTS),
            terminal_id, 2, RATE_BPS)
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO records(id, terminal_id, seq, raw, kind, card_no, card_counter, amount_cents, "
                     "balance_after_cents, time_s, status, applied_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.executemany("INSERT INTO ledger_tx(id, record_id, kind, at) VALUES (?,?,?,?)", txs)
    conn.executemany("INSERT INTO ledger_entries(tx_id, account, amount_cents) VALUES (?,?,?)", entries)
    conn.executemany("INSERT INTO card_counters(card_no, counter, terminal_id, seq, delta_cents, "
                     "balance_after_cents) VALUES (?,?,?,?,?,?)", counters)
    conn.executemany("INSERT INTO cards(card_no, shadow_balance_cents, last_counter) VALUES (?,?,?)",
                     [(c, b, k) for c, (k, b) in state.items()])
    conn.executemany("UPDATE terminals SET acked_upto=? WHERE id=?", [(s, t) for t, s in seqs.items()])
    conn.commit()
    conn.close()
    return len(rows)


async def _timed_open(path):
    started = time.perf_counter()
    storage = await open_store(path)
    elapsed = time.perf_counter() - started
    await storage.close()
    return elapsed


def main():
    """Build the park, time the open and the check, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300000)
    parser.add_argument("--cards", type=int, default=3000)
    parser.add_argument("--booths", type=int, default=8)
    parser.add_argument("--keep", metavar="PATH", help="build the database at PATH and keep it (e.g. to time "
                        "`parkcard --db PATH ledger check` in a process of its own)")
    args = parser.parse_args()
    print("command: .venv/bin/python bench/bench_audit.py " + shlex.join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="parkcard-bench-audit-") as tmp:
        path = args.keep or str(Path(tmp) / "hub.db")
        asyncio.run(_registry(path, args.booths))
        started = time.perf_counter()
        written = _park(path, args.records, args.cards, args.booths)
        print("built %d records (%d cards, %d booths) in %.1f s, file %.1f MB" % (
            written, args.cards, args.booths, time.perf_counter() - started, Path(path).stat().st_size / 1e6))
        print("hub open (quick_check, migrations): %.2f s" % asyncio.run(_timed_open(path)))
        conn = sqlite3.connect(path)
        started = time.perf_counter()
        conn.execute("PRAGMA quick_check").fetchall()
        print("  of which PRAGMA quick_check alone: %.2f s" % (time.perf_counter() - started))
        conn.close()
        started = time.perf_counter()
        report = asyncio.run(audit.check_file(path))
        print("ledger check: %.2f s (%d records, %d transactions, %d cards), result %s" % (
            time.perf_counter() - started, report.records, report.transactions, report.cards,
            "OK" if report.ok else "DISCREPANCIES"))
        if not report.ok:
            print("\n".join(report.lines()))
        print("peak RSS: %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


if __name__ == "__main__":
    main()
