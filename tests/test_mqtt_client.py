"""The terminal's MQTT client: codec bytes, then the client against real brokers (Mosquitto and NATS).

The same client runs under CPython here and under the MicroPython unix port in
tests/mpy/mqtt_check.py.
"""

import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from conftest import FIRMWARE, MICROPYTHON, MICROPYTHON_HEAP, REPO, SubackHeld, compiled_firmware

sys.path.insert(0, str(FIRMWARE))
from terminal import mqtt, mqtt_codec, mqtt_connect  # noqa: E402
from terminal.mqtt import MQTTClient, MQTTError  # noqa: E402

MPY_SCRIPTS = Path(__file__).resolve().parent / "mpy"
WAIT_S = 10.0
pytestmark = pytest.mark.brokers  # every test with a broker runs on Mosquitto and on NATS (conftest)


def _load_codec_vectors():
    spec = importlib.util.spec_from_file_location("mqtt_codec_check", MPY_SCRIPTS / "mqtt_codec_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


codec_check = _load_codec_vectors()


# ---------------------------------------------------------------- codec


@pytest.mark.parametrize("vector", codec_check.VECTORS, ids=lambda v: v[0])
def test_encoder_writes_exact_bytes(vector):
    assert codec_check.encode_result(vector).hex() == vector[3]


@pytest.mark.parametrize("vector", codec_check.DECODE_VECTORS, ids=lambda v: v[0])
def test_parser_tells_packet_from_need_more_from_malformed(vector):
    assert codec_check.decode_result(vector) == vector[2]


@pytest.mark.parametrize("vector", codec_check.DECODE_VECTORS, ids=lambda v: v[0])
def test_the_client_reads_each_vector_as_the_codec_frames_it(vector):
    """The client's own read path on the vector's bytes, then the end of the stream: the packet (and not a
    byte more), the link's end while it needs more bytes, a malformed one counted, an oversize one dropped."""
    data = bytes.fromhex(vector[1])
    expected = vector[2]

    async def scenario():
        client = MQTTClient("t1", "127.0.0.1", 1, payload_max=codec_check.DECODE_PAYLOAD_MAX)
        refused = []
        client.on_refused = lambda topic, size: refused.append((topic, size))
        client._reader = reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        try:
            outcome = await client._read_packet()
        except MQTTError as exc:
            outcome = exc
        return outcome, await reader.read(), client.stats, refused

    outcome, rest, stats, refused = asyncio.run(scenario())
    if expected == codec_check.NEED_MORE:
        assert isinstance(outcome, MQTTError) and "closed" in str(outcome)
        assert (stats["malformed"], stats["refused"]) == (0, 0)
    elif expected == codec_check.MALFORMED:
        assert isinstance(outcome, MQTTError) and stats["malformed"] == 1
    elif expected == codec_check.OVERSIZE:
        assert (stats["malformed"], stats["refused"]) == (0, 1)
        if outcome is None:  # the whole packet was there: read to its end and reported
            assert (refused, rest) == ([("a", len(data) - 3)], b"")
        else:  # the stream ended inside it
            assert isinstance(outcome, MQTTError) and "closed" in str(outcome)
    else:
        consumed, packet = expected
        assert (outcome, rest) == (packet, data[consumed:])
        assert (stats["malformed"], stats["refused"]) == (0, 0)


@pytest.mark.parametrize("length", [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455])
def test_remaining_length_round_trips(length):
    encoded = b"\x30" + mqtt_codec.encode_remaining_length(length)
    assert mqtt_codec.decode_remaining_length(encoded) == (length, len(encoded))
    assert mqtt_codec.decode_remaining_length(encoded[:-1]) is None


def test_parser_needs_every_byte_of_a_packet():
    packet = b"".join(mqtt_codec.encode_publish("pc/t1/cmd", b"x" * 200, 1, True, True, 77))
    for cut in range(len(packet)):
        assert codec_check.parse_packet(packet[:cut]) == codec_check.NEED_MORE
    assert codec_check.parse_packet(packet + b"\xd0\x00") == (
        len(packet), (mqtt.PUBLISH, "pc/t1/cmd", b"x" * 200, 1, True, True, 77))


@pytest.mark.parametrize("call", [
    lambda: mqtt_codec.encode_remaining_length(268435456),
    lambda: mqtt_codec.encode_remaining_length(-1),
    lambda: mqtt_codec.encode_publish("a/+", b""),
    lambda: mqtt_codec.encode_publish("", b""),
    lambda: mqtt_codec.encode_publish("a", b"", qos=2, pid=1),
    lambda: mqtt_codec.encode_publish("a", b"", qos=1, pid=0),
    lambda: mqtt_codec.encode_subscribe(1, "a", qos=2),
    lambda: mqtt_connect.encode_connect("t1", password="p"),
    lambda: mqtt_connect.encode_connect("t1", keepalive_s=65536),
    lambda: mqtt_connect.encode_connect("t" * 65536),
], ids=["rl_too_big", "rl_negative", "wildcard_topic", "empty_topic", "qos2", "qos1_no_pid",
        "subscribe_qos2", "password_without_user", "keepalive_too_big", "client_id_too_long"])
def test_encoders_refuse_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------- helpers


class Peer:
    """A paho client in its own thread: subscribes, records what arrives, publishes."""

    def __init__(self, broker, client_id, topics=()):
        self.messages = []  # (topic, payload, retain)
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_message = lambda c, u, msg: self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: [c.subscribe(t, 1) for t in topics]
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        if topics and not self.subscribed.wait(WAIT_S):
            raise AssertionError("peer did not subscribe")

    def payloads(self, topic):
        return [payload for t, payload, _ in list(self.messages) if t == topic]

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def peer(broker, client_id, topics=()):
    running = Peer(broker, client_id, topics)
    try:
        yield running
    finally:
        running.stop()


async def until(condition, timeout_s=WAIT_S, what="condition"):
    """Wait for condition() with a deadline (polled: the peer lives in another thread)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(client, subscriptions=0):
    task = asyncio.create_task(client.run())
    try:
        # Subscribed, not only connected: a message published between CONNACK and SUBACK
        # may never reach the client (MQTT 3.1.1 §3.8.4).
        await until(lambda: client.connected and client.stats["subacks"] >= subscriptions,
                    what="connect and subscribe")
        yield client
    finally:
        client.close()
        await asyncio.wait_for(task, 5)


def make_client(port, client_id="t1", host="127.0.0.1", **options):
    options.setdefault("retry_delay_ms_min", 50)
    options.setdefault("retry_delay_ms_max", 400)
    options.setdefault("ack_timeout_ms", 2000)
    return MQTTClient(client_id, host, port, **options)


def split_packets(stream):
    """First bytes of the packets in a client->broker byte stream."""
    firsts = []
    pos = 0
    while pos < len(stream):
        length, body = mqtt_codec.decode_remaining_length(stream, pos + 1)
        firsts.append(stream[pos])
        pos = body + length
    return firsts


class Proxy:
    """A TCP relay between client and broker that can swallow replies, cut links and refuse new ones.

    Refusing lets a test bring a restarted broker's subscribers back before the
    client reconnects: Mosquitto here cannot keep sessions across a restart
    (its persistence file is not writable once it drops root).
    """

    def __init__(self, broker):
        self.broker = broker
        self.links = []  # [(client->broker bytes, writers)]
        self.drop_replies = False
        self.refusing = False

    async def start(self):
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _relay(self, client_reader, client_writer):
        try:
            if self.refusing:
                raise ConnectionRefusedError
            broker_reader, broker_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        except OSError:
            client_writer.close()
            return
        sent = bytearray()
        self.links.append((sent, (client_writer, broker_writer)))

        async def pump(reader, writer, record):
            while data := await reader.read(4096):
                if record is not None:
                    record += data
                if record is not None or not self.drop_replies:
                    writer.write(data)
            writer.close()

        await asyncio.gather(pump(client_reader, broker_writer, sent), pump(broker_reader, client_writer, None),
                             return_exceptions=True)

    def cut(self):
        """Abort every relayed connection, as a dropped Wi-Fi link would."""
        for _, writers in self.links:
            for writer in writers:
                writer.transport.abort()

    def close(self):
        self.cut()
        self.server.close()


@contextlib.asynccontextmanager
async def commanded_client(broker, hub_topics=(), **options):
    """Yield (client, received, hub): a running client subscribed to pc/t1/cmd, and a paho hub."""
    client = make_client(broker.port, **options)
    received = []
    client.on_message = lambda topic, payload, retained: received.append((topic, payload, retained))
    await client.subscribe("pc/t1/cmd")
    with peer(broker, "hub", hub_topics) as hub:
        async with running(client, subscriptions=1):
            yield client, received, hub


@contextlib.asynccontextmanager
async def through_proxy(broker, hub_topics, on_connect=None, **options):
    """Yield (proxy, client, hub): a running client reaching the broker through a Proxy, and a paho hub."""
    proxy = await Proxy(broker).start()
    client = make_client(proxy.port, **options)
    client.on_connect = on_connect and (lambda: on_connect(client))
    try:
        with peer(broker, "hub", hub_topics) as hub:
            async with running(client):
                yield proxy, client, hub
    finally:
        proxy.close()


@contextlib.contextmanager
def proxy_thread(broker):
    """A Proxy on its own event loop thread, for tests whose client is another process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = asyncio.run_coroutine_threadsafe(Proxy(broker).start(), loop).result(WAIT_S)
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(proxy.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_S)


# ---------------------------------------------------------------- CPython against a real broker


@pytest.mark.broker
def test_subscribe_receive_and_publish_many_in_flight(broker):
    with peer(broker, "seed") as seed:
        seed.publish("pc/t1/cmd", b"retained-config", retain=True)

    async def scenario():
        async with commanded_client(broker, ["pc/t1/tx"], inflight_max=8) as (client, received, hub):
            await until(lambda: len(received) == 1, what="retained message")
            hub.publish("pc/t1/cmd", b"live")
            await asyncio.gather(*(client.publish("pc/t1/tx", b"m%d" % i) for i in range(50)))
            await until(lambda: len(received) == 2, what="live message")
            await until(lambda: len(set(hub.payloads("pc/t1/tx"))) == 50, what="50 messages at the hub")
        assert received == [("pc/t1/cmd", b"retained-config", True), ("pc/t1/cmd", b"live", False)]
        assert set(hub.payloads("pc/t1/tx")) == {b"m%d" % i for i in range(50)}
        assert client.stats["pub_acked"] == 50
        assert client.stats["inflight_full_waits"] > 0  # 50 publishers shared 8 slots
        assert client.stats["reconnects"] == 0

    asyncio.run(scenario())


@pytest.mark.broker
def test_last_will_on_dropped_link_and_none_after_disconnect(broker):
    async def announce(client):
        await client.publish("pc/t1/status", b"online", retain=True)

    async def scenario():
        async with through_proxy(broker, ["pc/t1/status"], announce,
                                 will_topic="pc/t1/status", will_payload=b"offline") as (proxy, client, monitor):
            await until(lambda: monitor.payloads("pc/t1/status") == [b"online"], what="online")
            proxy.cut()  # no DISCONNECT reaches the broker: it publishes the will (§3.1.2.5)
            await until(lambda: len(monitor.payloads("pc/t1/status")) == 3, what="will then online again")
            assert monitor.payloads("pc/t1/status") == [b"online", b"offline", b"online"]
            await client.disconnect()
        with peer(broker, "late", ["pc/t1/status"]) as late:
            await until(lambda: late.messages, what="retained status")
            assert late.messages == [("pc/t1/status", b"online", True)]  # DISCONNECT discarded the will
        assert client.stats["reconnects"] == 1

    asyncio.run(scenario())


@pytest.mark.broker
def test_each_connection_subscribes_once_when_on_connect_subscribes_again(broker):
    listened = []

    async def listen(client):
        await client.subscribe("pc/t1/cmd")  # as terminal.sync.Sync.on_connect does on every connect
        listened.append(client.stats["connects"])

    async def scenario():
        async with through_proxy(broker, [], listen) as (proxy, client, hub):
            received = []
            client.on_message = lambda topic, payload, retained: received.append(payload)
            await client.subscribe("pc/t1/cmd")  # the application's own call on this connection
            await until(lambda: client.stats["subacks"] == 1, what="subscribed on the first link")
            proxy.cut()
            await until(lambda: client.stats["subacks"] == 2 and listened[-1:] == [2], what="reconnect and on_connect")
            hub.publish("pc/t1/cmd", b"after")
            await until(lambda: received == [b"after"], what="a message on the new link")  # still subscribed
        assert [split_packets(sent).count(0x82) for sent, _ in proxy.links] == [1, 1]  # SUBSCRIBE, §3.8.1

    asyncio.run(scenario())


@pytest.mark.broker
def test_unacknowledged_messages_are_resent_with_dup(broker):
    async def scenario():
        async with through_proxy(broker, ["pc/t1/tx"], inflight_max=8) as (proxy, client, hub):
            proxy.drop_replies = True  # the broker gets the PUBLISHes, the client never sees PUBACK
            publishing = asyncio.gather(*(client.publish("pc/t1/tx", b"m%d" % i) for i in range(5)))
            await until(lambda: len(hub.payloads("pc/t1/tx")) == 5, what="first delivery")
            assert not publishing.done()
            proxy.drop_replies = False
            proxy.cut()
            await asyncio.wait_for(publishing, WAIT_S)
        assert client.stats["retransmits"] == 5
        assert client.stats["pub_acked"] == 5
        first_link, second_link = split_packets(proxy.links[0][0]), split_packets(proxy.links[1][0])
        assert first_link.count(0x32) == 5  # PUBLISH QoS 1
        assert second_link[1:6] == [0x3A] * 5  # after CONNECT: the same five with DUP (§4.4)

    asyncio.run(scenario())


@pytest.mark.broker
def test_broker_killed_and_restarted_messages_arrive(broker):
    async def scenario():
        async with through_proxy(broker, ["pc/t1/tx"], inflight_max=4) as (proxy, client, hub):
            await client.publish("pc/t1/tx", b"before")
            # PUBACK says the broker has it (§4.3.2), not that the hub got it before the kill.
            await until(lambda: b"before" in hub.payloads("pc/t1/tx"), what="first message at the hub")
            proxy.refusing = True  # until the hub is back (see Proxy)
            hub.subscribed.clear()
            broker.kill()
            await until(lambda: client.stats["reconnects"] >= 3, what="back-off attempts")
            publishing = asyncio.gather(*(client.publish("pc/t1/tx", b"down%d" % i) for i in range(6)))
            broker.start()
            await until(hub.subscribed.is_set, what="hub back")
            assert not client.connected
            proxy.refusing = False
            await asyncio.wait_for(publishing, WAIT_S)
            await until(lambda: len(set(hub.payloads("pc/t1/tx"))) == 7, what="all messages at the hub")
        assert set(hub.payloads("pc/t1/tx")) == {b"before"} | {b"down%d" % i for i in range(6)}
        assert client.stats["pub_acked"] == 7
        assert client.stats["connects"] == 2

    asyncio.run(scenario())


@pytest.mark.broker
def test_keepalive_pings_hold_a_quiet_link(broker):
    async def scenario():
        async with commanded_client(broker, keepalive_s=1) as (client, received, hub):
            # Quiet for over three keepalive periods: Mosquitto drops a client
            # silent for 1.5 periods (§3.1.2.10) unless PINGREQs keep it.
            await until(lambda: client.stats["pings"] >= 7, timeout_s=6, what="pings")
            hub.publish("pc/t1/cmd", b"still there")
            await until(lambda: received, what="message after the quiet period")
        assert received == [("pc/t1/cmd", b"still there", False)]
        assert client.stats["reconnects"] == 0
        assert client.stats["keepalive_timeouts"] == 0

    asyncio.run(scenario())


@pytest.mark.broker
def test_failing_on_message_is_counted_and_the_message_still_acknowledged(broker):
    async def scenario():
        async with commanded_client(broker) as (client, received, hub):
            record = client.on_message

            def on_message(topic, payload, retained):
                record(topic, payload, retained)
                if payload == b"poison":
                    raise ValueError("application bug")

            client.on_message = on_message
            hub.publish("pc/t1/cmd", b"poison")
            hub.publish("pc/t1/cmd", b"next")
            await until(lambda: len(received) == 2, what="both messages")
        assert [payload for _, payload, _ in received] == [b"poison", b"next"]  # PUBACKed: no redelivery
        assert client.stats["callback_errors"] == 1
        assert client.stats["reconnects"] == 0

    asyncio.run(scenario())


@pytest.mark.broker
@pytest.mark.parametrize("qos", [0, 1])
def test_an_oversize_message_is_refused_acknowledged_and_the_link_stays_up(broker, qos):
    async def scenario():
        async with commanded_client(broker, payload_max=1024) as (client, received, hub):
            refused = []
            client.on_refused = lambda topic, size: refused.append((topic, size))
            hub.client.publish("pc/t1/cmd", b"x" * 2048, qos=qos).wait_for_publish(WAIT_S)
            await until(lambda: refused, what="refusal")
            assert refused == [("pc/t1/cmd", 2 + len("pc/t1/cmd") + 2 * qos + 2048)]
            hub.publish("pc/t1/cmd", b"small")
            await until(lambda: received, what="next message")
            assert (client.stats["refused"], client.stats["connects"], client.stats["reconnects"]) == (1, 1, 0)
        # Acknowledged (QoS 1): the broker never sends it again; the small one came after it, alone.
        assert received == [("pc/t1/cmd", b"small", False)]

    asyncio.run(scenario())


@pytest.mark.broker
def test_a_connect_out_of_heap_is_counted_and_the_next_attempt_connects(broker):
    """The heap cannot hold a connection's buffers once (the TLS handshake on a terminal): the attempt is a
    memory error in the client's stats, which the status frame reports, and the back-off's next attempt stands."""
    class OutOfHeapOnce(MQTTClient):
        attempts = 0

        async def _connect(self):
            self.attempts += 1
            if self.attempts == 1:
                raise MemoryError("memory allocation failed, allocating 520 bytes")
            return await MQTTClient._connect(self)

    async def scenario():
        client = OutOfHeapOnce("t1", broker.host, broker.port, retry_delay_ms_min=20, retry_delay_ms_max=40)
        task = asyncio.create_task(client.run())
        try:
            await until(lambda: client.connected, what="the second attempt's connection")
            assert (client.attempts, client.stats["memory_errors"], client.stats["reconnects"]) == (2, 1, 1)
            assert client.stats["connects"] == 1
        finally:
            client.close()
            await asyncio.wait_for(task, 5)

    asyncio.run(scenario())


@pytest.mark.broker
def test_no_heap_for_the_next_packet_is_counted_and_the_link_stays_up(broker, monkeypatch):
    """Out of heap before the next packet's first byte is read: nothing of the stream is consumed, so the
    client counts it, waits and reads again on the same connection; the message then arrives."""
    read_exact = mqtt._read_exact
    failures = []

    async def out_of_heap_once(reader, size, into=None):
        if size == 2 and failures == ["armed"]:
            failures.append("raised")
            raise MemoryError("memory allocation failed, allocating 2 bytes")
        return await read_exact(reader, size, into)

    async def scenario():
        async with commanded_client(broker) as (client, received, hub):
            monkeypatch.setattr(mqtt, "_read_exact", out_of_heap_once)
            failures.append("armed")
            hub.publish("pc/t1/cmd", b"before")      # read, then the next packet's first read finds no heap
            await until(lambda: failures == ["armed", "raised"], what="the MemoryError")
            hub.publish("pc/t1/cmd", b"after")
            await until(lambda: len(received) == 2, what="the message read after the MemoryError")
            assert [payload for _, payload, _ in received] == [b"before", b"after"]
            assert (client.stats["memory_errors"], client.stats["connects"], client.stats["reconnects"]) == (1, 1, 0)

    asyncio.run(scenario())


# ---------------------------------------------------------------- CPython against a scripted broker


async def scripted_broker(reply):
    """A TCP server that answers every connection with reply bytes and records connections."""
    connections = []

    async def handle(reader, writer):
        connections.append(await reader.read(1024))
        writer.write(reply)
        await writer.drain()
        while await reader.read(1024):  # hold the link, answering nothing, until the client drops it
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


@pytest.mark.parametrize("reply, stat", [
    (b"\x20\x02\x00\x00" + b"\x40\x03\x00\x01\x00", "malformed"),  # PUBACK of 3 bytes
    (b"\x20\x02\x00\x05", "connack_refused"),  # §3.2.2.3 not authorised
    (b"\x20\x02\x00\x00", "keepalive_timeouts"),  # accepts, then never answers PINGREQ
], ids=["malformed_packet", "connack_refused", "silent_broker"])
def test_bad_broker_replies_take_the_reconnect_path(reply, stat):
    async def scenario():
        server, port, connections = await scripted_broker(reply)
        client = make_client(port, retry_delay_ms_min=20, retry_delay_ms_max=40, keepalive_s=1)
        task = asyncio.create_task(client.run())
        await until(lambda: client.stats[stat] >= 1 and client.stats["reconnects"] >= 1, what=stat)
        client.close()
        await asyncio.wait_for(task, 5)
        server.close()
        assert isinstance(client.last_error, MQTTError)
        assert connections[0][:1] == b"\x10"  # each attempt opened with CONNECT

    asyncio.run(scenario())


def test_the_client_frames_packets_that_arrive_a_byte_at_a_time_with_the_codec():
    # A 300-byte PUBLISH: two Remaining Length bytes, so the codec says "need more bytes" inside the header too.
    header, payload = mqtt_codec.encode_publish("pc/t1/cmd", b"y" * 300)
    packet = b"\x20\x02\x00\x00" + bytes(header) + payload

    async def scenario():
        async def handle(reader, writer):
            await reader.read(1024)  # CONNECT
            for i in range(len(packet)):
                writer.write(packet[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0)
            while await reader.read(1024):
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        received = []
        client = make_client(server.sockets[0].getsockname()[1])
        client.on_message = lambda topic, data, retained: received.append((topic, data))
        task = asyncio.create_task(client.run())
        await until(lambda: received, what="the message")
        client.close()
        await asyncio.wait_for(task, 5)
        server.close()
        assert received == [("pc/t1/cmd", b"y" * 300)]
        assert (client.stats["malformed"], client.stats["reconnects"]) == (0, 0)

    asyncio.run(scenario())


def test_a_subscription_counts_from_its_suback_not_the_connack():
    async def scenario():
        broker = await SubackHeld([1]).start()
        client = make_client(broker.port)
        await client.subscribe("pc/t1/cmd")
        task = asyncio.create_task(client.run())
        await until(lambda: broker.subscribes, what="SUBSCRIBE at the broker")
        assert (client.connected, client.stats["subacks"]) == (True, 0)
        broker.release.set()
        await until(lambda: client.stats["subacks"] == 1, what="subscribed")
        client.close()
        await asyncio.wait_for(task, 5)
        broker.close()

    asyncio.run(scenario())


def test_publish_timeout_raises_and_close_releases_waiters():
    async def scenario():
        client = make_client(1, retry_delay_ms_min=20, retry_delay_ms_max=40, inflight_max=2)  # nothing listens
        task = asyncio.create_task(client.run())
        with pytest.raises(MQTTError):
            await client.publish("pc/t1/tx", b"late", timeout_ms=100)
        assert client._slot_pid == [0, 0]  # the timed-out message left the in-flight table
        waiting = asyncio.gather(*(client.publish("pc/t1/tx", b"w%d" % i) for i in range(3)),
                                 return_exceptions=True)
        await until(lambda: client.stats["inflight_full_waits"] >= 1, what="a publisher waiting for a slot")
        client.close()
        results = await asyncio.wait_for(waiting, 5)
        assert all(isinstance(result, MQTTError) for result in results)
        await asyncio.wait_for(task, 5)
        assert client.stats["connects"] == 0

    asyncio.run(scenario())


# ---------------------------------------------------------------- MicroPython against a real broker


@pytest.fixture(scope="module")
def compiled_client():
    """The root holding terminal/mqtt.mpy as the terminal image carries it (the source needs >100k heap to compile)."""
    return compiled_firmware()


@pytest.mark.micropython
def test_codec_vectors_under_micropython(micropython, compiled_client):
    out = micropython(MPY_SCRIPTS / "mqtt_codec_check.py", compiled_client)
    assert out.stdout.split() == ["codec", "ok", str(len(codec_check.VECTORS) + len(codec_check.DECODE_VECTORS))]


class MicroPythonProcess:
    """tests/mpy/mqtt_check.py running under MicroPython, read line by line."""

    def __init__(self, *args):
        env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(REPO), str(FIRMWARE), ".frozen"]))
        self.proc = subprocess.Popen(
            [str(MICROPYTHON), "-X", f"heapsize={MICROPYTHON_HEAP}", str(MPY_SCRIPTS / "mqtt_check.py")]
            + [str(a) for a in args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []

    def expect(self, prefix):
        """Return the next line starting with prefix (the script prints one step per line)."""
        deadline = time.monotonic() + WAIT_S * 2
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            if line.startswith(prefix):
                return line.split()
        self.proc.kill()
        raise AssertionError(f"no {prefix!r} line; output {self.lines}; stderr {self.proc.stderr.read()}")


@pytest.mark.micropython
@pytest.mark.broker
def test_client_under_micropython_against_a_real_broker(broker, compiled_client):
    with peer(broker, "hub", ["pc/mp1/tx", "pc/mp1/status"]) as hub, proxy_thread(broker) as proxy:
        script = MicroPythonProcess(compiled_client, "127.0.0.1", proxy.port)
        try:
            script.expect("connected")
            hub.publish("pc/mp1/cmd", b"hello")
            assert script.expect("rx") == ["rx", "pc/mp1/cmd", "hello", "False"]
            assert script.expect("published") == ["published", "20", "acked", "20"]
            # Acknowledged by the broker is not delivered to the hub (§4.3.2): wait for them before the kill.
            deadline = time.monotonic() + WAIT_S
            while not {b"m%d" % i for i in range(20)} <= set(hub.payloads("pc/mp1/tx")):
                if time.monotonic() > deadline:
                    raise AssertionError("the hub did not get the 20 messages")
                time.sleep(0.005)  # polling interval of a bounded wait on the peer's thread
            script.expect("restart")
            proxy.refusing = True  # until the hub is back (see Proxy)
            hub.subscribed.clear()
            broker.kill()
            broker.start()
            if not hub.subscribed.wait(WAIT_S):
                raise AssertionError("hub did not come back")
            proxy.refusing = False
            script.expect("reconnected")
            hub.publish("pc/mp1/cmd", b"after")
            assert script.expect("rx") == ["rx", "pc/mp1/cmd", "after", "False"]
            done = script.expect("done")
            heap = script.expect("heap")
            assert script.proc.wait(WAIT_S) == 0
        finally:
            if script.proc.poll() is None:
                script.proc.kill()
        tx = set(hub.payloads("pc/mp1/tx"))
        assert {b"m%d" % i for i in range(20)} <= tx
        assert {b"down%d" % i for i in range(5)} <= tx
        assert hub.payloads("pc/mp1/status")[:1] == [b"online"]
    assert int(done[done.index("reconnects") + 1]) >= 1
    assert int(heap[heap.index("live_peak_growth") + 1]) < 32 * 1024
    print(" ".join(script.lines))
