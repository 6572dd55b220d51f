"""paho's receive path as the hub runs it: a backlog of QoS 1 uplinks drained from Mosquitto, CPU per message.

    .venv/bin/python bench/bench_mqtt_drain.py [--messages 30000] [--payload 500] [--runs 3]

A publisher leaves --messages QoS 1 messages of --payload bytes for the hub's
persistent session while it is away (the project's Mosquitto settings,
parkcard.transport.broker: 100 in flight); then the hub's own paho client
(parkcard.transport.mqtt_link._Client: reads through ReadAhead, every packet
it holds before paho goes round its loop, a packet held whole handed to paho's
handler in one piece, a QoS 1 PUBLISH handed over as its topic, payload and
id) connects and drains them, each one acknowledged from its callback, beside
paho's stock client reading through ReadAhead alone (paho's own loop_read,
packet read and on_message). What it prints is the draining process's CPU (all its
threads) per message, each client --runs times, alternating.
"""

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "hub"), str(REPO)]

import paho.mqtt.client as mqtt  # noqa: E402
from parkcard.transport import mqtt_link  # noqa: E402
from parkcard.transport.broker import Broker  # noqa: E402

DRAIN_WAIT_S = 120


class _StockClient(mqtt_link._Client):
    """The hub's client with paho's own loop_read, packet read and PUBLISH handling (on_message): ReadAhead alone."""

    loop_read = mqtt.Client.loop_read
    _packet_read = mqtt.Client._packet_read
    _handle_publish = mqtt.Client._handle_publish


def _client(cls, received, done, total):
    client = cls(mqtt.CallbackAPIVersion.VERSION2, client_id="drain-hub", clean_session=False,
                 protocol=mqtt.MQTTv311, manual_ack=True)

    def arrived(mid):
        client.ack(mid, 1)
        received[0] += 1
        if received[0] >= total:
            done.set()
    client.on_message = lambda _c, _userdata, msg: arrived(msg.mid)
    client.on_qos1 = lambda _topic, _payload, mid: arrived(mid)     # as MqttLink hands it on
    return client


def _leave_backlog(broker, total, payload):
    """Subscribe the hub's session once, then publish the backlog while it is away."""
    subscribed = threading.Event()
    hub = _client(mqtt_link._Client, [0], threading.Event(), total)
    hub.on_connect = lambda c, *_a: c.subscribe(mqtt_link.UP_FILTER, 1)
    hub.on_subscribe = lambda *_a: subscribed.set()
    hub.connect(broker.host, broker.port)
    hub.loop_start()
    if not subscribed.wait(10):
        raise SystemExit("the broker granted no subscription")
    hub.disconnect()
    hub.loop_stop()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="drain-pub", protocol=mqtt.MQTTv311)
    pub.max_inflight_messages_set(1000)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    infos = [pub.publish("parkcard/term-%d/up" % (i % 8 + 1), payload, qos=1) for i in range(total)]
    for info in infos:
        info.wait_for_publish(30)
    pub.disconnect()
    pub.loop_stop()


def drain(broker, cls, total, payload):
    """CPU seconds of this process per message while cls drains a backlog of total messages."""
    _leave_backlog(broker, total, payload)
    received, done = [0], threading.Event()
    client = _client(cls, received, done, total)
    cpu_started = time.process_time()
    client.connect(broker.host, broker.port)
    client.loop_start()
    if not done.wait(DRAIN_WAIT_S):
        raise SystemExit("only %d of %d messages arrived" % (received[0], total))
    cpu = time.process_time() - cpu_started
    client.disconnect()
    client.loop_stop()
    return cpu / total


def main():
    """Parse the arguments, run both clients alternately, print CPU per message."""
    print("command: %s" % " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--payload", type=int, default=500, help="bytes per message (an 8-record upload: 500)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    payload = os.urandom(args.payload)
    clients = {"stock paho (its loop_read, packet read, on_message)": _StockClient,
               "the hub's client": mqtt_link._Client}
    figures = {name: [] for name in clients}
    with Broker(Path(tempfile.mkdtemp(prefix="parkcard-drain-"))) as broker:     # the hub's broker settings
        for _ in range(args.runs):
            for name, cls in clients.items():
                figures[name].append(drain(broker, cls, args.messages, payload))
    for name, runs in figures.items():
        print("%s: %d messages of %d bytes drained, CPU %.1f us/message (median of %d: %s)" % (
            name, args.messages, args.payload, 1e6 * statistics.median(runs), len(runs),
            ", ".join("%.1f" % (1e6 * r) for r in runs)))


if __name__ == "__main__":
    main()
