"""Web app bench: the fleet page and its live stream with many terminals.

    .venv/bin/python bench/bench_web.py [--terminals 200] [--samples 20]

A hub (SQLite, a private Mosquitto, its web app on loopback) with N registered terminals and an admin
login; figures: time to serve the fleet page (p50/p99), size of one fleet event of the stream, and the
time from a terminal publishing a status until the stream's event shows it (p50/p99; each sample waits
out the stream's PUSH_INTERVAL_S_MIN first, so it measures the hub's path, not the coalescing).
"""

import argparse
import asyncio
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from protocol import frames

from parkcard.api.server import ApiServer
from parkcard.services import operators
from parkcard.services.privileges import Actor
from parkcard.transport.broker import Broker
from parkcard.web.streams import PUSH_INTERVAL_S_MIN
from parkcard_devkit.testing import MERCHANT_ICE, ScriptedTerminal, start_hub

PASSWORD = "bench password 1"


def pct(values, q):
    """The q-th percentile (0..100) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


async def run(terminals, samples):
    """Print the figures."""
    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp) / "broker") as broker:
        api = ApiServer(port=0)
        hub = await start_hub(str(Path(tmp) / "hub.db"), broker.host, broker.port, api=api)
        try:
            keys = {}
            for tid in range(1, terminals + 1):
                keys[tid] = await hub.register_terminal(tid, MERCHANT_ICE, frames.ROLE_POS, "booth %d" % tid)
            await operators.create_operator(hub.storage, Actor("bench"), "bench", PASSWORD, ["admin"])
            async with httpx.AsyncClient(base_url=api.web_url, timeout=30) as client:
                login = await client.get("login")
                await client.post("login", data={"csrf": login.cookies["parkcard_login"], "username": "bench",
                                                 "password": PASSWORD})
                page_ms = []
                for _ in range(samples):
                    started = time.perf_counter()
                    response = await client.get("fleet")
                    page_ms.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                booth = await asyncio.to_thread(ScriptedTerminal(broker.host, broker.port, 1, keys[1]).connect)
                live_ms, event_bytes = [], 0
                try:
                    async with client.stream("GET", "fleet/events") as stream:
                        lines = stream.aiter_lines()

                        async def next_fleet():
                            async for line in lines:
                                if line.startswith("data: "):
                                    return line[6:]

                        event_bytes = len(await next_fleet())
                        for i in range(1, samples + 1):
                            await asyncio.sleep(PUSH_INTERVAL_S_MIN * 1.2)
                            started = time.perf_counter()
                            await asyncio.to_thread(booth.status, boot=1, online=1, queue_depth=i, uptime_s=i)
                            while True:
                                rows = {t["id"]: t for t in json.loads(await next_fleet())}
                                if rows[1]["queue"] == str(i):
                                    break
                            live_ms.append((time.perf_counter() - started) * 1000)
                finally:
                    booth.close()
        finally:
            await hub.stop()
    print("terminals %d" % terminals)
    print("fleet page p50 %.1f ms p99 %.1f ms (%d GETs)" % (statistics.median(page_ms), pct(page_ms, 99), samples))
    print("fleet event %d bytes (%.0f bytes per terminal)" % (event_bytes, event_bytes / terminals))
    print("status to live event p50 %.1f ms p99 %.1f ms (%d statuses)" % (statistics.median(live_ms),
                                                                         pct(live_ms, 99), samples))


def bench_main(doc, script, run, **defaults):
    """A bench's main: its whole-number options (name: default), the command printed, then `run(**options)`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    args = parser.parse_args()
    print("$ " + " ".join(shlex.quote(a) for a in [".venv/bin/python", script] + sys.argv[1:]))
    asyncio.run(run(**vars(args)))


def main():
    """Parse the options, print the command, run."""
    bench_main(__doc__, "bench/bench_web.py", run, terminals=200, samples=20)


if __name__ == "__main__":
    main()
