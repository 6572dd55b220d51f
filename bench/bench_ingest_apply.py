"""The hub's ingest alone: `Ingest.apply` fed 8-record upload frames in batches, no broker, CPU per record.

    .venv/bin/python bench/bench_ingest_apply.py [--terminals 8] [--per-terminal 2000] [--batch-frames 64]
                                                 [--profile FILE]

Each booth terminal uploads debits of its own card; the frames of all terminals
are interleaved as the MQTT consumer would hand them over, and applied in
batches of --batch-frames frames into SQLite in the run's folder. What it prints
is the process's CPU time per record (time.process_time), and the part of it
spent in the writer thread's rules and staging (`_apply_frames`, before the
flush): the figure bench_ingest.py's hub CPU per record holds without paho's
thread, the event loop and the broker. With other work on the machine, compare
runs alternating, or count instructions instead, which do not move with the load:

    valgrind --tool=callgrind .venv/bin/python bench/bench_ingest_apply.py --per-terminal 1000
    valgrind --tool=callgrind .venv/bin/python bench/bench_ingest_apply.py --per-terminal 2000

(the difference of the two totals over the 8,000 records between them is the
instructions per record, the hub's start and the frames' making left out).
"""

import argparse
import asyncio
import cProfile
import os
import pstats
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "hub"), str(REPO), str(REPO / "devkit")]

from protocol import frames, hub_frames, topics  # noqa: E402
from protocol import record as R  # noqa: E402
from parkcard.app import Hub  # noqa: E402
from parkcard_devkit.testing import DESK_ID, MERCHANT_ICE, MERCHANT_PARK, desk_issued  # noqa: E402

FRAME_RECORDS = 8
UID = b"\x04\x55\x66\x77"
START_BALANCE = 8_000_000


async def uploads(hub, terminals, per_terminal):
    """[(topic, payload)] of every terminal's upload frames, interleaved one frame of each terminal at a time."""
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice", 1000)
    await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "desk")
    by_terminal = []
    for tid in range(1, terminals + 1):
        key = await hub.register_terminal(tid, MERCHANT_ICE, frames.ROLE_POS, "booth-%d" % tid)
        card_no = (await desk_issued(hub, UID, START_BALANCE)).card_no
        frame_mac, record_mac = frames.frame_mac_for(key), R.record_mac_for(key)
        balance, out = START_BALANCE, []
        for f in range(per_terminal // FRAME_RECORDS):
            entries = []
            for i in range(FRAME_RECORDS):
                seq = f * FRAME_RECORDS + i + 1
                balance -= 1
                rec = R.Record(R.KIND_DEBIT, tid, seq, 1796000000 + seq, card_no, UID, (seq + 1) % 65536, 1, balance)
                entries.append((R.STATUS_COMMITTED, rec.encode(record_mac)))
            out.append((topics.topic(tid, topics.UP), frames.encode(frame_mac, frames.T_UPLOAD, tid, f + 1,
                                                                    1796000000, hub_frames.upload_body(entries))))
        by_terminal.append(out)
    return [m for group in zip(*by_terminal) for m in group]


async def run(args):
    """Apply the frames in batches; print CPU per record, and the rules' and staging's part of it."""
    hub = await Hub(Path(tempfile.mkdtemp()) / "hub.db", broker_port=1).open()
    order = await uploads(hub, args.terminals, args.per_terminal)
    batches = [order[i:i + args.batch_frames] for i in range(0, len(order), args.batch_frames)]
    ingest, staged_s = hub.ingest, [0.0]
    profile = cProfile.Profile() if args.profile else None
    apply_frames = ingest._apply_frames

    def timed(tx, messages):
        started = time.process_time()
        try:
            return profile.runcall(apply_frames, tx, messages) if profile else apply_frames(tx, messages)
        finally:
            staged_s[0] += time.process_time() - started
    ingest._apply_frames = timed
    cpu_started = time.process_time()
    for batch in batches:
        await ingest.apply(batch)
    cpu = time.process_time() - cpu_started
    records = len(order) * FRAME_RECORDS
    print("%d records in batches of %d frames: CPU %.1f us/record, of it the rules and staging %.1f us/record; "
          "applied %d" % (records, args.batch_frames, 1e6 * cpu / records, 1e6 * staged_s[0] / records,
                          ingest.stats["applied"] - args.terminals))
    if profile:
        profile.dump_stats(args.profile)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    sys.stdout.flush()
    os._exit(0)     # the hub's writer thread and the rest are not closed: nothing after the figures is measured


def main():
    """Parse the arguments and run."""
    print("command: %s" % " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=8)
    parser.add_argument("--per-terminal", type=int, default=2000, help="records per terminal")
    parser.add_argument("--batch-frames", type=int, default=64, help="frames per Ingest.apply")
    parser.add_argument("--profile", help="write a cProfile of the rules and staging here (slows them)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
