"""Webhook bench: how fast the hub's outbox delivers the park's sales to a receiver on loopback.

    .venv/bin/python bench/bench_webhooks.py [--sales 2000] [--samples 20]

A hub (SQLite, a private Mosquitto) with one webhook for sales to an HTTP server on loopback answering 200;
a booth uploads N sales in 64-record frames. Figures: sales ingested per second (acked) beside events
delivered per second (signed POSTs answered) over the same run, and the time from one sale's ack until its
POST arrives (p50/p99): the sender wakes on the commit that stored the sale (parkcard.webhooks; its fallback
poll is FALLBACK_POLL_S), and the figure ends with how many of its sleeps a commit ended.
"""

import asyncio
import http.server
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path

from protocol import record as R

from parkcard.services import webhooks
from parkcard.services.privileges import Actor
from parkcard.transport.broker import Broker
from parkcard_devkit.testing import connect_booth, desk_issued, start_hub

from bench_web import bench_main, pct

UID = b"\x04\x0b\x0e\x0c"
FRAME_RECORDS = 64


def receiver():
    """(server, queue of arrival times) of an HTTP server on loopback that answers every POST with 200."""
    arrived = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.put(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128        # socketserver's 5 would drop the SYNs of concurrent POSTs

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, arrived


async def run(sales, samples):
    server, arrived = receiver()
    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp) / "broker") as broker:
        hub = await start_hub(str(Path(tmp) / "hub.db"), broker.host, broker.port)
        try:
            url = "http://127.0.0.1:%d/in" % server.server_address[1]
            await webhooks.add(hub.storage, Actor("bench"), url, ["sale"], "a bench secret, sixteen+")
            card_no = (await desk_issued(hub, UID, 8_000_000)).card_no
            booth = await connect_booth(hub, broker.host, broker.port, 5)
            try:
                balance, counter = 8_000_000, 1
                started = time.monotonic()
                for _ in range(sales):
                    counter += 1
                    balance -= 10
                    booth.record(R.KIND_DEBIT, card_no, counter, 10, balance, uid=UID)
                booth.upload_all(FRAME_RECORDS)
                await asyncio.to_thread(booth.wait_acked, sales, 300)
                acked_s = time.monotonic() - started
                last = None
                for _ in range(sales):
                    last = await asyncio.to_thread(arrived.get, True, 300)
                delivered_s = last - started
                latency_ms = []
                for _ in range(samples):
                    counter += 1
                    balance -= 10
                    booth.record(R.KIND_DEBIT, card_no, counter, 10, balance, uid=UID)
                    booth.upload()
                    await asyncio.to_thread(booth.wait_acked, booth.seq, 60)
                    acked = time.monotonic()
                    latency_ms.append((await asyncio.to_thread(arrived.get, True, 60) - acked) * 1000)
            finally:
                booth.close()
        finally:
            stats = dict(hub.webhooks.stats)
            await hub.stop()
    server.shutdown()
    print("sales %d, acked in %.2f s (%.0f/s); delivered in %.2f s (%.0f events/s)" % (
        sales, acked_s, sales / acked_s, delivered_s, sales / delivered_s))
    print("ack to POST p50 %.0f ms p99 %.0f ms (%d sales; %d of the sender's %d sleeps ended by a commit)" % (
        statistics.median(latency_ms), pct(latency_ms, 99), samples, stats["woken"], stats["sleeps"]))


def main():
    """Parse the options, print the command, run."""
    bench_main(__doc__, "bench/bench_webhooks.py", run, sales=2000, samples=20)


if __name__ == "__main__":
    main()
