"""terminal/mqtt.py under MicroPython against a real broker (driven by tests/test_mqtt_client.py).

Arguments: directory holding terminal/mqtt.mpy, broker host, broker port.
Prints one line a step; the test answers some of them (publishes, restarts the broker).
"""

import sys

sys.path.insert(0, sys.argv[1])

import asyncio
import gc

from time import ticks_diff, ticks_ms


class Heap:
    """Samples gc.mem_alloc(): raw (garbage included) and live (just after a collection)."""

    def __init__(self):
        gc.collect()
        self.base = gc.mem_alloc()
        self.raw_peak = self.live_peak = self.base

    def mark(self):
        """Start measuring growth from here."""
        gc.collect()
        self.base = gc.mem_alloc()

    async def sample(self):
        while True:
            self.raw_peak = max(self.raw_peak, gc.mem_alloc())
            gc.collect()
            self.live_peak = max(self.live_peak, gc.mem_alloc())
            await asyncio.sleep_ms(10)


heap = Heap()
from terminal.mqtt import MQTTClient  # noqa: E402  (measured: the module's own RAM)

gc.collect()
MODULE_BYTES = gc.mem_alloc() - heap.base
WAIT_MS = 20000


async def until(condition, what):
    start = ticks_ms()
    while not condition():
        if ticks_diff(ticks_ms(), start) > WAIT_MS:
            print("timeout", what)
            raise SystemExit(1)
        await asyncio.sleep_ms(5)


async def main(host, port):
    heap.mark()
    heap.raw_peak = heap.live_peak = heap.base
    sampler = asyncio.create_task(heap.sample())
    client = MQTTClient("mp1", host, port, keepalive_s=5, will_topic="pc/mp1/status", will_payload=b"offline",
                        inflight_max=4, retry_delay_ms_min=50, retry_delay_ms_max=500, payload_max=1024)
    received = []
    ready = [0]

    def on_message(topic, payload, retained):
        received.append((topic, bytes(payload), retained))  # valid only in the callback (terminal/mqtt.py)

    async def on_connect():
        await client.publish("pc/mp1/status", b"online", retain=True)
        ready[0] += 1

    client.on_message = on_message
    client.on_connect = on_connect
    await client.subscribe("pc/mp1/cmd")
    runner = asyncio.create_task(client.run())
    await until(lambda: ready[0] == 1, "connect")
    print("connected")
    await until(lambda: received, "first message")
    print("rx", received[0][0], str(received[0][1], "utf-8"), received[0][2])

    acked_before = client.stats["pub_acked"]
    await asyncio.gather(*[client.publish("pc/mp1/tx", b"m%d" % i) for i in range(20)])
    print("published 20 acked", client.stats["pub_acked"] - acked_before)

    print("restart")
    # Published once the broker is down (the test kills it on "restart"): held in flight and sent
    # after the reconnect. Published before, the old broker could acknowledge them (§4.3.2) and die
    # before the hub has them.
    await until(lambda: not client.connected, "link down")
    down = asyncio.gather(*[client.publish("pc/mp1/tx", b"down%d" % i) for i in range(5)])
    await until(lambda: ready[0] == 2, "reconnect")
    print("reconnected")
    await down
    await until(lambda: len(received) == 2, "second message")
    print("rx", received[1][0], str(received[1][1], "utf-8"), received[1][2])
    print("done reconnects", client.stats["reconnects"], "retransmits", client.stats["retransmits"],
          "pub_acked", client.stats["pub_acked"])
    await client.disconnect()
    await runner
    sampler.cancel()
    gc.collect()
    print("heap module", MODULE_BYTES, "live_peak_growth", heap.live_peak - heap.base,
          "raw_peak_growth", heap.raw_peak - heap.base, "retained_growth", gc.mem_alloc() - heap.base)


asyncio.run(main(sys.argv[2], int(sys.argv[3])))
