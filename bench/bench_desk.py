"""Desk operation bench: request-to-posted time of a top-up, an issue, a refund and a return through the real path.

    .venv/bin/python bench/bench_desk.py [--top-ups 200] [--issues 20] [--refunds 50] [--db postgresql://...] [--steps]

A park of parkcard_devkit.park_sim (Mosquitto with TLS, the hub on SQLite unless --db, the desk terminal's real
firmware on a virtual reader): each operation is timed from the service call to its posting, every round trip
between hub and desk included (identify, read, keep as pending, write and read back, post). The desk's reader loop
polls every DESK_POLL_S; the virtual card answers at once, so the card's own air time (about 25 ms for the
frames of a read and a write by the MF1S50yyX datasheet) comes on top on real hardware. Target: p99 < 500 ms.
With --steps, where a top-up's time goes: each desk order (identify, read, write) from its send to the desk's
report (the store transaction that takes the report in included), each store transaction outside them (keep as
pending, post), and the rest (the service's own work and reads).
"""

import argparse
import asyncio
import collections
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in ("hub", "devkit", "firmware", ""):
    sys.path.insert(0, str(REPO / path))

from parkcard_devkit.park_sim import DESK_POLL_S, DESK_TERMINAL_ID, ParkSim  # noqa: E402


def percentile(values, fraction):
    """The value at `fraction` of the sorted values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def line(name, times_s):
    """One figure line: count, p50, p99, max in milliseconds."""
    ms = [t * 1000 for t in times_s]
    return "%-8s n=%-4d p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  mean %6.1f ms" % (
        name, len(ms), percentile(ms, 0.5), percentile(ms, 0.99), max(ms), statistics.mean(ms))


ORDER_NAMES = {1: "identify", 2: "read", 3: "write"}     # protocol.desk OP_* (SPEC.md §5.9)


class Steps:
    """Time spent in each desk order and store transaction while a top-up runs (wrapped around both)."""

    def __init__(self, sim):
        self.spent = collections.defaultdict(list)
        self.on = False
        link, storage = sim.hub.desk_link, sim.hub.storage
        order, write = link.order, storage.write

        self.ordering = 0       # desk orders in flight: the store transaction of their report is part of them

        async def timed_order(desk_terminal_id, op, *rest, **options):
            self.ordering += 1
            try:
                with self.timing("desk order %s" % ORDER_NAMES.get(op, op)):
                    return await order(desk_terminal_id, op, *rest, **options)
            finally:
                self.ordering -= 1

        async def timed_write(fn, audit=None):
            if self.ordering:
                return await write(fn, audit)
            with self.timing("store transaction"):
                return await write(fn, audit)
        link.order, storage.write = timed_order, timed_write

    def timing(self, name):
        """A context that adds its time to name's list while a top-up is being timed."""
        steps = self

        class Timed:
            def __enter__(self):
                self.started = time.perf_counter()

            def __exit__(self, *exc):
                if steps.on:
                    steps.spent[name].append(time.perf_counter() - self.started)
        return Timed()

    def lines(self, top_ups):
        """Per step: mean count per top-up and p50/p99 of one; then the rest of a top-up's time."""
        out, total = [], 0.0
        for name, times in sorted(self.spent.items()):
            total += sum(times)
            out.append("  %-22s x%.1f per top-up  %s" % (name, len(times) / len(top_ups), line("", times)[9:]))
        out.append("  %-22s mean %.1f ms per top-up" % ("the rest", (sum(top_ups) - total) * 1000 / len(top_ups)))
        return out


async def bench(args):
    with tempfile.TemporaryDirectory() as workdir:
        async with ParkSim(Path(workdir) / "park", terminals=1, cards=0, db=args.db) as sim:
            steps = Steps(sim) if args.steps else None
            desk = sim.hub.desk(DESK_TERMINAL_ID)
            issues, top_ups, cards = [], [], []
            for i in range(args.issues):
                uid = bytes((0x04, 0xBE, 0x0C, i >> 8, i & 0xFF, 0x01, 0x02))
                virtual = await sim.new_card(uid)
                started = time.perf_counter()
                await sim.at_desk(virtual, desk.issue("bench-issue-%d" % i, 10000, deposit_cents=500))
                issues.append(time.perf_counter() - started)
                cards.append(virtual)
            if steps is not None:
                steps.on = True
            for i in range(args.top_ups):
                started = time.perf_counter()
                await sim.at_desk(cards[i % len(cards)], desk.top_up("bench-top-up-%d" % i, 100))
                top_ups.append(time.perf_counter() - started)
            if steps is not None:
                steps.on = False
            refunds, returns = [], []
            for i in range(args.refunds):
                started = time.perf_counter()
                await sim.at_desk(cards[i % len(cards)], desk.refund("bench-refund-%d" % i, 100))
                refunds.append(time.perf_counter() - started)
            for i, virtual in enumerate(cards):         # every card back: its cash and deposit paid out
                started = time.perf_counter()
                await sim.at_desk(virtual, desk.return_card("bench-return-%d" % i))
                returns.append(time.perf_counter() - started)
            report = await sim.ledger_report()
    print(line("issue", issues))
    print(line("top-up", top_ups))
    print(line("refund", refunds))
    print(line("return", returns))
    if steps is not None:
        print("where a top-up's time goes:")
        print("\n".join(steps.lines(top_ups)))
    print("ledger check: %s" % ("ok" if report.ok else "FAILED"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top-ups", type=int, default=200)
    parser.add_argument("--issues", type=int, default=20)
    parser.add_argument("--refunds", type=int, default=50)
    parser.add_argument("--db", default=None, help="postgresql://... (default: a SQLite file in the park)")
    parser.add_argument("--steps", action="store_true", help="also print where a top-up's time goes")
    args = parser.parse_args()
    print("$ .venv/bin/python bench/bench_desk.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    print("desk reader poll: %.1f ms; loopback, TLS Mosquitto, %s" % (DESK_POLL_S * 1000, args.db or "SQLite"))
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
