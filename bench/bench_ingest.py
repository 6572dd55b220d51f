"""Hub ingest bench: throughput, tap-to-settled latency, backlog drain, memory with 500 terminals.

    .venv/bin/python bench/bench_ingest.py [--records 64000] [--terminals 8] [--processes 1] [--frame-records 64]
                                           [--latency-taps 300] [--backlog 10000] [--connected 500]
                                           [--backends sqlite,postgres] [--raw-runs 3] [--profile DIR]

Each backend runs the same four measurements in turn: SQLite in a file of
the run's folder, PostgreSQL in a private cluster started for the run with
the test kit's tests/postgres_server.py (fsync on). Both run by default; the
last line is then the PostgreSQL/SQLite ratio of the ingest throughput, with
each one's share of its own raw executemany.

The hub runs as its own process (`python -m parkcard.app`) against a
private Mosquitto; simulated terminals publish real protocol frames. The
throughput terminals run in --processes worker processes, at most
TERMINALS_PER_PROCESS_MAX each: paho waits on its sockets with select(), which
stops at 1,024 file descriptors, so 1,000 terminals uploading at once need
`--terminals 1000 --processes 4`. "Settled" means acknowledged by T_ACK, which
the hub sends only after the batch is committed with synchronous=FULL.

The throughput is compared with a raw executemany of the very rows the hub
wrote (records, ledger transactions and entries, counter claims), in one
transaction, into a fresh database of the hub's schema opened with the hub's
settings (every migration, WAL, synchronous=FULL, foreign keys on; on
PostgreSQL every migration), --raw-runs times, each into a fresh database:
the comparison is their median (one run's CPU time moved by half with the
neighbours' load). On a shared machine the rates move with the neighbours'
load: the hub's CPU per record (all its threads) moves less, and is printed
beside the raw executemany's.

The throughput clock starts once the hub has stored a status frame of the
latency terminal (wait_hub_ready): the hub's start-up (imports, the database
checks, the webhook sender's TLS context) stays out of its time and its CPU.
--profile DIR samples the hub with py-spy during the throughput run and writes
DIR/<backend>.txt (each thread's share; functions by their own and inclusive
samples) beside py-spy's raw stacks.

What each figure measures:
- "hub = N % of raw": the throughput run's wall-clock rate (terminals
  journalled beforehand, all publishing at once, until the last ack) over the
  raw executemany's rate. The simulated terminals, the broker and the hub share
  the machine's cores, so it includes the terminals' CPU, which in a park is
  spent on separate devices.
- "hub-CPU-bound rate": 1 / the hub process's CPU per record in that run (all
  its threads: paho's receive, decoding and MACs, the rules, SQLite, the acks):
  the rate the hub would settle with one core to itself, never waiting on the
  disk. On SQLite it is compared with the raw executemany's CPU-bound rate
  (1 / its CPU per record, both in this process's view of CPU time, so the
  neighbours' load moves them alike). On PostgreSQL the inserts are the
  server's CPU, not the hub's: the rate is printed alone.
- "backlog drain rate": the backlog phase's records acknowledged after the
  first ack, over the time from that ack to the last one, over the raw rate. The
  backlog (in --frame-records frames) was queued at the broker while the hub was
  down, so no terminal runs meanwhile and the hub's start is left out; it needs
  a backlog of several batches (the hub takes what is queued, up to 1,024
  frames a transaction).
"""

import argparse
import asyncio
import multiprocessing
import os
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hub"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))     # the test kit's PostgreSQL cluster

from postgres_server import PostgresServer  # noqa: E402
from protocol import frames, hub_frames, topics  # noqa: E402
from protocol import record as R  # noqa: E402
from parkcard.store import store_for  # noqa: E402
from parkcard.store.postgres.migrate import migrate  # noqa: E402
from parkcard.store.postgres.url import split, with_audit_log  # noqa: E402
from parkcard.store.sqlite.store import connect_writer  # noqa: E402
from parkcard.transport.broker import Broker  # noqa: E402
from parkcard_devkit.testing import MERCHANT_ICE, ScriptedTerminal, desk_issued, start_hub  # noqa: E402
from terminal import mqtt  # noqa: E402 - the firmware's MQTT codec builds the raw terminals' packets
from terminal.mqtt_connect import encode_connect  # noqa: E402 - borrowed by the firmware, imported here for good

UID = b"\x04\x55\x66\x77"
START_BALANCE = 8_000_000
# paho's select() fails past descriptor 1,024: a worker process keeps well below it.
TERMINALS_PER_PROCESS_MAX = 300
WORKER_TIMEOUT_S = 600       # bounds a stuck worker: the bench reports it instead of hanging


def hub_process(db, broker):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "hub"), str(REPO)]))
    return subprocess.Popen([sys.executable, "-m", "parkcard.app", "--db", str(db), "--broker-port",
                             str(broker.port), "--log-level", "WARNING"], env=env, stderr=subprocess.DEVNULL)


def rss_kb(pid, field):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def machine_ticks():
    """(all CPU time, of it stolen by the hypervisor) of the machine so far, in clock ticks (proc(5): /proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(f) for f in fh.readline().split()[1:]]
    return sum(fields[:8]), fields[7]     # user nice system idle iowait irq softirq steal (guest is in user)


def steal_share(since):
    """The part of the machine's CPU time the hypervisor took since machine_ticks() returned `since`, in %."""
    total, steal = machine_ticks()
    return 100 * (steal - since[1]) / max(1, total - since[0])


def cpu_s(pid):
    """User + system CPU seconds a process has used, all its threads (proc(5): utime, stime)."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def prepare(db, broker, terminal_ids):
    """Registry, one card per terminal, and the hub's persistent broker session."""
    hub = await start_hub(db, broker.host, broker.port)
    try:    # a failure here must stop the hub: its database threads would keep the bench alive
        keys = {}
        for tid in terminal_ids:
            keys[tid] = await hub.register_terminal(tid, MERCHANT_ICE, frames.ROLE_POS, "bench %d" % tid)
        cards = {tid: (await desk_issued(hub, UID, START_BALANCE - 100000)).card_no for tid in terminal_ids}
    finally:
        await hub.stop()
    return keys, cards


def journal(term, card_no, count, start_counter=2, balance=START_BALANCE - 100000):
    for i in range(count):
        balance -= 1
        term.record(R.KIND_DEBIT, card_no, (start_counter + i) % 65536, 1, balance)
    return balance


def wait_all(terms, timeout_s=300):
    for term in terms:
        term.wait_acked(term.seq, timeout_s)


def upload_worker(host, port, terminals, per, frame_records, ready, go, results):
    """One worker process: connect its terminals, journal `per` records each, upload on `go`, wait for acks."""
    terms = []
    try:
        for tid, key, card_no in terminals:
            term = ScriptedTerminal(host, port, tid, key).connect()
            terms.append(term)
            journal(term, card_no, per)
        ready.wait(WORKER_TIMEOUT_S)
        go.wait(WORKER_TIMEOUT_S)
        cpu_started = time.process_time()
        for term in terms:
            term.upload_all(frame_records)
        wait_all(terms)
        results.put(time.process_time() - cpu_started)   # the worker's CPU seconds (all its threads) in the run
    except Exception as exc:   # reported by the parent, which would otherwise wait for this worker
        results.put("worker of terminals %d..%d: %r" % (terminals[0][0], terminals[-1][0], exc))
        ready.abort()      # the parent waits for every worker to be ready: tell it now
    finally:
        for term in terms:
            term.close()


def start_workers(broker, keys, cards, terminal_ids, processes, per, frame_records):
    """Start the worker processes, each with its share of terminal_ids; return (workers, go, results) once all
    are connected and journalled."""
    ctx = multiprocessing.get_context("spawn")   # no fork of a process that runs paho threads
    ready, go, results = ctx.Barrier(processes + 1), ctx.Event(), ctx.Queue()
    shares = [terminal_ids[i::processes] for i in range(processes)]
    workers = [ctx.Process(target=upload_worker, args=(broker.host, broker.port,
                                                       [(t, keys[t], cards[t]) for t in share], per, frame_records,
                                                       ready, go, results), daemon=True)
               for share in shares]
    for worker in workers:
        worker.start()
    try:
        ready.wait(WORKER_TIMEOUT_S)
    except threading.BrokenBarrierError:
        raise RuntimeError(results.get(timeout=WORKER_TIMEOUT_S)) from None
    return workers, go, results


def finish_workers(workers, results):
    """Wait until every worker's terminals are acknowledged; return the workers' CPU seconds in the run, or raise
    with the workers' errors."""
    reports = [results.get(timeout=WORKER_TIMEOUT_S) for _ in workers]
    for worker in workers:
        worker.join(WORKER_TIMEOUT_S)
    errors = [r for r in reports if isinstance(r, str)]
    if errors:
        raise RuntimeError("; ".join(errors))
    return sum(reports)


def raw_sqlite_rate(hub_db, work_dir, terminal_ids, runs):
    """executemany of the same rows the hub wrote for these terminals, in one transaction, into a fresh database
    opened as the hub opens its own: every migration (indexes, triggers), WAL, synchronous=FULL, foreign keys;
    runs times, each into a database of its own. Return (records/s, rows written, records per CPU second of the
    executemany), each the median of the runs: one run's CPU time moved by half with the neighbours' load."""
    marks = ",".join(str(t) for t in terminal_ids)
    src = sqlite3.connect(hub_db)
    tables = {
        "records": src.execute("SELECT * FROM records WHERE terminal_id IN (%s)" % marks).fetchall(),
        "ledger_tx": src.execute("SELECT t.* FROM ledger_tx t JOIN records r ON r.id=t.record_id "
                                 "WHERE r.terminal_id IN (%s)" % marks).fetchall(),
        "ledger_entries": src.execute("SELECT e.* FROM ledger_entries e JOIN ledger_tx t ON t.id=e.tx_id JOIN "
                                      "records r ON r.id=t.record_id WHERE r.terminal_id IN (%s)" % marks).fetchall(),
        "card_counters": src.execute("SELECT * FROM card_counters WHERE terminal_id IN (%s)" % marks).fetchall(),
    }
    src.close()
    elapsed_s, cpu_s = [], []
    for run in range(runs):
        dst = connect_writer(str(work_dir / ("raw-%d.db" % run)))
        started, cpu_started = time.perf_counter(), time.process_time()
        dst.execute("BEGIN IMMEDIATE")
        for table, rows in tables.items():
            if rows:
                dst.executemany("INSERT INTO %s VALUES (%s)" % (table, ",".join("?" * len(rows[0]))), rows)
        dst.execute("COMMIT")
        elapsed_s.append(time.perf_counter() - started)
        cpu_s.append(time.process_time() - cpu_started)
        dst.close()
    records = len(tables["records"])
    print("raw sqlite3 executemany CPU, median of %d runs: %.2f s = %.1f us/record (runs: %s us/record)" % (
        runs, statistics.median(cpu_s), 1e6 * statistics.median(cpu_s) / records,
        ", ".join("%.1f" % (1e6 * c / records) for c in cpu_s)))
    return (records / statistics.median(elapsed_s), sum(len(r) for r in tables.values()),
            records / statistics.median(cpu_s))


RAW_TABLES = ("records", "ledger_tx", "ledger_entries", "card_counters")


def raw_postgres_rate(hub_url, pg, terminal_ids, runs):
    """executemany of the same rows the hub wrote for these terminals, in one transaction, into a fresh PostgreSQL
    database with every migration applied (the hub's schema), runs times. Return (the runs' median records/s, rows
    written, None): the work is the server's, whose CPU the bench does not measure."""
    import asyncpg

    where = {
        "records": "SELECT * FROM records WHERE terminal_id = ANY($1::bigint[])",
        "ledger_tx": "SELECT t.* FROM ledger_tx t JOIN records r ON r.id=t.record_id WHERE r.terminal_id = ANY($1)",
        "ledger_entries": "SELECT e.* FROM ledger_entries e JOIN ledger_tx t ON t.id=e.tx_id JOIN records r "
                          "ON r.id=t.record_id WHERE r.terminal_id = ANY($1)",
        "card_counters": "SELECT * FROM card_counters WHERE terminal_id = ANY($1::bigint[])",
    }

    async def run():
        src = await asyncpg.connect(split(hub_url)[0])
        tables = {t: [tuple(r) for r in await src.fetch(where[t], terminal_ids)] for t in RAW_TABLES}
        await src.close()
        elapsed_s = []
        for _run in range(runs):
            dst = await asyncpg.connect(pg.create_database())
            await migrate(dst, "the raw executemany's database")
            started = time.perf_counter()
            async with dst.transaction():
                for table, rows in tables.items():
                    if rows:
                        await dst.executemany("INSERT INTO %s VALUES (%s)" % (table, ",".join(
                            "$%d" % (i + 1) for i in range(len(rows[0])))), rows)
            elapsed_s.append(time.perf_counter() - started)
            await dst.close()
        return len(tables["records"]) / statistics.median(elapsed_s), sum(len(r) for r in tables.values()), None
    return asyncio.run(run())


PROFILE_RATE_HZ = 250      # py-spy's samples per second of the hub: enough for a share of a per cent in seconds
PROFILE_LINES_MAX = 40      # functions listed per ordering


def start_sampler(pid, out_dir, backend):
    """py-spy recording every thread of the hub process (idle ones left out) until stop_sampler."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit("--profile needs py-spy beside %s: .venv/bin/pip install py-spy" % sys.executable)
    out_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", str(PROFILE_RATE_HZ), "--threads",
                             "--nonblocking", "--format", "raw", "--output", str(out_dir / ("%s.raw" % backend))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_sampler(sampler, out_dir, backend):
    """Stop py-spy (it writes its samples on SIGINT) and summarise them in out_dir/<backend>.txt."""
    sampler.send_signal(signal.SIGINT)
    sampler.wait(WORKER_TIMEOUT_S)
    raw = out_dir / ("%s.raw" % backend)
    threads, own, inclusive, total = Counter(), Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _sep, count = line.rpartition(" ")
        if not stack:
            continue
        names, count = stack.split(";"), int(count)
        total += count
        threads[names[0]] += count
        own[names[-1]] += count
        inclusive.update(dict.fromkeys(names[1:], count))    # a function counted once per sample
    lines = ["%d samples of the hub during the throughput run (%s)" % (total, raw.name), "-- threads"]
    for title, counts in (("-- threads", threads), ("-- own samples", own), ("-- inclusive samples", inclusive)):
        if title != "-- threads":
            lines.append(title)
        lines += ["%5.1f%%  %s" % (100 * n / max(total, 1), name) for name, n in counts.most_common(PROFILE_LINES_MAX)]
    (out_dir / ("%s.txt" % backend)).write_text("\n".join(lines) + "\n")
    print("hub profile: %s" % (out_dir / ("%s.txt" % backend)))


def drain_line(records, seconds, raw_rate):
    """The backlog's drain rate from the hub's first ack to its last, as a share of the raw executemany's rate."""
    if records <= 0 or seconds <= 0:
        return "backlog drain rate: n/a (the first ack took the whole backlog: raise --backlog)"
    return "backlog drain rate after the first ack: %d records in %.2f s = %.0f records/s = %.0f%% of raw" % (
        records, seconds, records / seconds, 100 * records / seconds / raw_rate)


def statuses_applied(db, firmware="bench"):
    """How many terminals' status frames naming this firmware the hub has stored, read through the store."""
    async def run():
        store = await store_for(db).open_for_audit()
        try:
            return sum(1 for t in await store.terminals() if t.firmware == firmware)
        finally:
            await store.close()
    return asyncio.run(run())


READY_FIRMWARE = "ready"    # the status a terminal reports to see the hub ready (wait_hub_ready)
READY_TIMEOUT_S = 60


def wait_hub_ready(db, term):
    """Have term report a status and wait until the hub stored it: the hub consumes uplinks, and its start-up
    (imports, the database checks, the webhook sender's TLS context) no longer counts in the figures after it."""
    body = hub_frames.Status(boot=1, online=1, firmware=READY_FIRMWARE.encode()).encode()
    term.publish(term.frame(frames.T_STATUS, body), leaf=topics.STATUS)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not statuses_applied(db, READY_FIRMWARE):
        if time.monotonic() > deadline:
            raise RuntimeError("the hub did not store a status within %d s" % READY_TIMEOUT_S)
        time.sleep(0.05)    # bench only: polling the store, as the connected-terminals phase does


def raw_terminals(broker, keys, count_from):
    """Open sockets that CONNECT as term-<id> and publish one retained status frame each."""
    socks = []
    for tid, key in keys.items():
        s = socket.create_connection((broker.host, broker.port))
        s.sendall(encode_connect(topics.client_name(tid), keepalive_s=600, clean_session=True))
        s.recv(4)   # CONNACK
        payload = frames.encode(frames.frame_mac_for(key), frames.T_STATUS, tid, count_from, int(time.time()),
                                hub_frames.Status(boot=1, online=1, firmware=b"bench").encode())
        s.sendall(b"".join(mqtt.encode_publish(topics.topic(tid, topics.STATUS), payload, 0, True)))
        socks.append(s)
    return socks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=64000)
    parser.add_argument("--terminals", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1,
                        help="worker processes for the throughput terminals (at most %d terminals each)"
                             % TERMINALS_PER_PROCESS_MAX)
    parser.add_argument("--frame-records", type=int, default=frames.UPLOAD_RECORDS_MAX,
                        help="records per upload frame (the firmware sends terminal.sync.UPLOAD_BATCH_MAX)")
    parser.add_argument("--latency-taps", type=int, default=300)
    parser.add_argument("--raw-runs", type=int, default=3, help="runs of the raw executemany; their median is the "
                        "comparison")
    parser.add_argument("--backlog", type=int, default=10000)
    parser.add_argument("--connected", type=int, default=500)
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="sample the hub during the throughput run with py-spy (installed apart: "
                             ".venv/bin/pip install py-spy) and write DIR/<backend>.txt: each thread's share, and the "
                             "functions by their own and their inclusive share of the samples")
    parser.add_argument("--backends", default="sqlite,postgres", help="stores to run the hub on, in turn: sqlite, "
                        "postgres or sqlite,postgres (PostgreSQL in a private cluster started for the run)")
    args = parser.parse_args()
    if args.terminals > args.processes * TERMINALS_PER_PROCESS_MAX:
        parser.error("%d terminals need --processes %d or more (at most %d terminals per process: paho's select())"
                     % (args.terminals, -(-args.terminals // TERMINALS_PER_PROCESS_MAX), TERMINALS_PER_PROCESS_MAX))
    backends = args.backends.split(",")
    if not set(backends) <= {"sqlite", "postgres"}:
        parser.error("--backends takes sqlite, postgres or both (sqlite,postgres)")
    print("command: %s" % " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    pg = PostgresServer().start() if "postgres" in backends else None
    rates, of_raw = {}, {}
    try:
        for backend in backends:
            print("== %s" % backend)
            rates[backend], of_raw[backend] = run_backend(args, backend, pg)
    finally:
        if pg is not None:
            pg.stop()
    if len(rates) == 2:
        pg_rate, sqlite_rate = rates["postgres"], rates["sqlite"]
        print("postgres/sqlite ingest throughput: %.0f / %.0f records/s = %.2f (postgres %.0f%% of raw asyncpg, "
              "sqlite %.0f%% of raw sqlite3)" % (pg_rate, sqlite_rate, pg_rate / sqlite_rate, of_raw["postgres"],
                                                  of_raw["sqlite"]))


def run_backend(args, backend, pg):
    """Run the four measurements with the hub on one backend; return (its ingest throughput in records/s, that
    throughput as a percentage of the raw executemany's)."""
    work = Path(tempfile.mkdtemp(prefix="parkcard-bench-"))
    db = work / "hub.db" if backend == "sqlite" else with_audit_log(pg.create_database(), work / "hub.audit.log")
    tput_ids = list(range(1, args.terminals + 1))
    lat_id, backlog_id = args.terminals + 1, args.terminals + 2
    conn_ids = list(range(args.terminals + 3, args.terminals + 3 + args.connected))
    with Broker(work / "broker") as broker:
        keys, cards = asyncio.run(prepare(db, broker, tput_ids + [lat_id, backlog_id] + conn_ids))

        # 1. throughput: every terminal's journal published in frames of --frame-records, hub online
        terms = {tid: ScriptedTerminal(broker.host, broker.port, tid, keys[tid]).connect()
                 for tid in [lat_id, backlog_id]}
        per = args.records // len(tput_ids)
        workers, go, results = start_workers(broker, keys, cards, tput_ids, args.processes, per, args.frame_records)
        hub = hub_process(db, broker)
        try:
            wait_hub_ready(db, terms[lat_id])     # the hub's start is not the throughput's
            ticks = machine_ticks()
            started, hub_cpu_s, broker_cpu_s = time.perf_counter(), cpu_s(hub.pid), cpu_s(broker.process.pid)
            sampler = start_sampler(hub.pid, args.profile, backend) if args.profile else None
            go.set()
            terminals_cpu_s = finish_workers(workers, results)
            if sampler is not None:
                stop_sampler(sampler, args.profile, backend)
            tput_s, hub_cpu_s = time.perf_counter() - started, cpu_s(hub.pid) - hub_cpu_s
            broker_cpu_s = cpu_s(broker.process.pid) - broker_cpu_s
            run_steal = steal_share(ticks)
            total = per * len(tput_ids)
            print("ingest throughput: %d records in %.2f s = %.0f records/s (%d-record frames, %d terminals "
                  "uploading at once from %d processes)" % (total, tput_s, total / tput_s, args.frame_records,
                                                            len(tput_ids), args.processes))
            # On a shared machine the rate moves with the neighbours' load; the hub's own CPU moves less.
            print("hub process CPU during the run: %.2f s = %.1f us/record" % (hub_cpu_s, 1e6 * hub_cpu_s / total))
            # What shares the machine with the hub meanwhile: "hub = N % of raw" is the hub's rate with them on it.
            print("beside it: the terminal workers %.1f us/record, the broker %.1f us/record of CPU; the three used "
                  "%.2f of the machine's %d CPUs; the hypervisor took %.0f%% of the machine's CPU time (steal)" % (
                      1e6 * terminals_cpu_s / total, 1e6 * broker_cpu_s / total,
                      (hub_cpu_s + terminals_cpu_s + broker_cpu_s) / tput_s, os.cpu_count(), run_steal))
            print("after the throughput run: hub RSS %d MB (peak %d MB), broker RSS %d MB (peak %d MB)" % (
                rss_kb(hub.pid, "VmRSS") // 1024, rss_kb(hub.pid, "VmHWM") // 1024,
                rss_kb(broker.process.pid, "VmRSS") // 1024, rss_kb(broker.process.pid, "VmHWM") // 1024))
            ticks = machine_ticks()
            if backend == "sqlite":
                raw_rate, raw_rows, raw_cpu_rate = raw_sqlite_rate(db, work, tput_ids, args.raw_runs)
            else:
                raw_rate, raw_rows, raw_cpu_rate = raw_postgres_rate(db, pg, tput_ids, args.raw_runs)
            of_raw = 100 * total / tput_s / raw_rate
            # Wall-clock rates of two moments: on a virtual machine the CPU the hypervisor takes moves them apart.
            print("raw %s executemany of the same %d rows (%d records): %.0f records/s; hub = %.0f%% of raw "
                  "(steal %.0f%% during the raw runs, %.0f%% during the hub's)" % (
                      "sqlite3" if backend == "sqlite" else "asyncpg", raw_rows, total, raw_rate, of_raw,
                      steal_share(ticks), run_steal))
            cpu_bound = total / hub_cpu_s
            if raw_cpu_rate is not None:
                print("hub-CPU-bound rate (1 / hub CPU per record): %.0f records/s = %.0f%% of raw's (1 / its CPU per "
                      "record: %.0f records/s)" % (cpu_bound, 100 * cpu_bound / raw_cpu_rate, raw_cpu_rate))
            else:   # the server's inserts are not in the hub's CPU: no share of raw would mean anything
                print("hub-CPU-bound rate (1 / hub CPU per record): %.0f records/s (the server's CPU left out)"
                      % cpu_bound)

            # 2. latency: one record per frame, wait for its ack
            lat = terms[lat_id]
            samples = []
            balance = START_BALANCE - 100000
            for i in range(args.latency_taps):
                balance -= 1
                lat.record(R.KIND_DEBIT, cards[lat_id], 2 + i, 1, balance)
                t0 = time.perf_counter()
                lat.upload()
                lat.wait_acked(lat.seq, 10)
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            print("tap-to-settled latency over %d taps: p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
                len(samples), statistics.median(samples), samples[int(len(samples) * 0.99) - 1], samples[-1]))
        finally:
            hub.terminate()
            hub.wait()

        # 3. backlog: published while the hub is down (the broker queues for its session), then drained
        back = terms[backlog_id]
        first_seq = back.seq + 1
        journal(back, cards[backlog_id], args.backlog)
        back.upload_all(args.frame_records)
        time.sleep(1.0)   # bench only: let the broker take the backlog before the hub starts
        started = time.perf_counter()
        hub = hub_process(db, broker)
        try:
            back.wait_acked(first_seq, 120)
            first_s, first_acked = time.perf_counter(), back.acked_upto
            back.wait_acked(back.seq, 120)
            done_s = time.perf_counter()
            print("backlog of %d records drained in %.2f s (hub process start included)" % (args.backlog,
                                                                                         done_s - started))
            print(drain_line(back.seq - first_acked, done_s - first_s, raw_rate))

            # 4. memory with N connected terminals (raw MQTT sockets, each with a retained status)
            socks = raw_terminals(broker, {t: keys[t] for t in conn_ids}, 1)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                applied = statuses_applied(db)
                if applied >= len(conn_ids):
                    break
                time.sleep(0.1)
            print("hub memory with %d connected terminals (%d statuses applied): RSS %d MB, peak RSS %d MB" % (
                len(socks), applied, rss_kb(hub.pid, "VmRSS") // 1024, rss_kb(hub.pid, "VmHWM") // 1024))
            for s in socks:
                s.close()
        finally:
            hub.terminate()
            hub.wait()
            for term in terms.values():
                term.close()
    return total / tput_s, of_raw


if __name__ == "__main__":
    main()
