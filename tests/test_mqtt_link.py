"""The hub's broker session: paho reads through ReadAhead, and the event loop is woken only while the consumer
waits for a message (parkcard.transport.mqtt_link)."""

import asyncio
import socket
import threading

import paho.mqtt.client as mqtt
import pytest

from parkcard.transport.mqtt_link import Message, MqttLink, ReadAhead


def run(coro, timeout_s=30):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def _packet(first_byte, body):
    """An MQTT packet (MQTT 3.1.1 §2.2): its first byte, the remaining length (one to four bytes), the body."""
    n, length = len(body), b""
    while True:
        byte, n = n & 0x7F, n >> 7
        length += bytes((byte | (0x80 if n else 0),))
        if not n:
            return bytes((first_byte,)) + length + body


def _publish_packet(topic, payload):
    """An MQTT 3.1.1 PUBLISH, QoS 0."""
    return _packet(0x30, len(topic).to_bytes(2, "big") + topic + payload)


# -- ReadAhead: what paho reads is the socket's byte stream, whatever the sizes it asks for
def test_read_ahead_hands_out_the_stream_as_asked_from_one_read_of_the_socket():
    left, right = socket.socketpair()
    with left, right:
        stream = bytes(range(256)) * 4
        left.sendall(stream)
        sock = ReadAhead(right, chunk=4096)
        got = [sock.recv(1)]
        assert sock.pending() == len(stream) - 1       # one read took all the kernel held
        for size in (1, 2, 7, 300, 5000):
            got.append(sock.recv(size))
        assert b"".join(got) == stream
        assert sock.pending() == 0


def test_read_ahead_keeps_what_exceeds_its_chunk_for_the_next_read():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"a" * 100)
        sock = ReadAhead(right, chunk=10)
        assert sock.recv(1) == b"a" and sock.pending() == 9
        assert sock.recv(50) == b"a" * 9            # what is held first, no read of the socket
        assert sock.recv(50) == b"a" * 50            # a read of what is asked when it exceeds the chunk
        assert sock.pending() == 0


def test_read_ahead_on_an_empty_non_blocking_socket_raises_as_the_socket_does_and_passes_the_rest_through():
    left, right = socket.socketpair()
    with left, right:
        sock = ReadAhead(right)
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)
        assert sock.fileno() == right.fileno()
        left.close()
        assert sock.recv(1) == b""                  # the peer closed: paho sees the end of the stream


def test_read_ahead_hands_out_a_packet_it_holds_whole_and_nothing_of_one_cut():
    left, right = socket.socketpair()
    with left, right:
        long_body = bytes(300)      # a remaining length of two bytes: 300 = 0xAC 0x02
        stream = b"\xd0\x00" + b"\x32\xac\x02" + long_body + b"\x40\x02\x00\x07"
        left.sendall(stream[:-1])
        sock = ReadAhead(right)
        assert sock.packet() is None                    # nothing read from the socket yet: paho's read goes first
        assert sock.recv(1) == b"\xd0"
        assert sock.recv(1) == b"\x00"
        assert sock.packet() == (0x32, long_body)
        assert sock.packet() is None                    # the PUBACK's last byte has not arrived
        assert sock.recv(3) == b"\x40\x02\x00"         # left for paho's own read, byte for byte
        left.sendall(stream[-1:])
        assert sock.recv(1) == b"\x07"


def test_read_ahead_leaves_a_remaining_length_beyond_four_bytes_to_paho_which_refuses_it():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"\xd0\x00" + b"\x32\xff\xff\xff\xff\x01" + bytes(10))
        sock = ReadAhead(right)
        assert sock.recv(2) == b"\xd0\x00"
        assert sock.packet() is None
        assert sock.pending() == 16


def test_packets_of_every_length_read_whole_reach_paho_as_its_own_read_leaves_them():
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        payloads = [b"", b"x" * 100, b"y" * 200, b"z" * 20000]   # remaining lengths of one, two and three bytes
        packets = [_publish_packet(b"parkcard/1/up", payload) for payload in payloads]
        left.sendall(b"\xd0\x00" + b"".join(packets))     # a PINGRESP first: no body at all
        client, got = _client_on(right)
        client.loop_read()
        client.loop_read()
        assert got == payloads


# -- wake-ups: none while the consumer is busy, one when it waits
async def _session(broker):
    link = MqttLink(broker.host, broker.port, client_id="link-test")
    await link.start()
    await asyncio.wait_for(link.connected.wait(), 10)
    wakes = []
    call_soon_threadsafe = link._loop.call_soon_threadsafe

    def counted(callback, *args):
        if callback == link._drain_handoff:     # asyncio.to_thread's results come back this way too
            wakes.append(callback)
        return call_soon_threadsafe(callback, *args)
    link._loop.call_soon_threadsafe = counted
    arrived, on_qos1 = threading.Semaphore(0), link.client.on_qos1

    def on_qos1_counted(topic, payload, mid):
        on_qos1(topic, payload, mid)
        arrived.release()
    link.client.on_qos1 = on_qos1_counted
    return link, wakes, arrived


def _publisher(broker, count, first=0):
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="link-test-pub")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for i in range(first, first + count):
            pub.publish("parkcard/1/up", b"m%d" % i, qos=1).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def _taken(arrived, count, timeout_s=10):
    for _ in range(count):
        if not arrived.acquire(timeout=timeout_s):
            raise AssertionError("the link did not receive %d messages" % count)


def test_messages_arriving_while_the_consumer_is_busy_wake_nothing_and_one_wakes_a_waiting_consumer(broker):
    async def scenario():
        link, wakes, arrived = await _session(broker)
        try:
            # The consumer is busy (it does not await the link): the messages wait in the hand-off.
            await asyncio.to_thread(_publisher, broker, 20)
            await asyncio.to_thread(_taken, arrived, 20)
            assert wakes == []
            assert link.has_queued()
            batch = await link.get_batch(100)
            assert [m.payload for m in batch] == [b"m%d" % i for i in range(20)]
            assert not link.has_queued()

            waiting = asyncio.create_task(link.get_batch(100))
            while not link._waiting:
                await asyncio.sleep(0)      # one turn of the loop: the task reaches its await
            await asyncio.to_thread(_publisher, broker, 1, 20)
            batch = await asyncio.wait_for(waiting, 10)
            assert [m.payload for m in batch] == [b"m20"]
            assert len(wakes) == 1
            link.release(21)
        finally:
            await link.stop()
    run(scenario())


def test_what_is_queued_is_taken_up_to_the_frame_and_byte_bounds():
    async def scenario():
        link = MqttLink("127.0.0.1", 1, client_id="link-take-test")
        link.queue = asyncio.Queue()
        for mid in range(5):
            link._handoff.append(Message("parkcard/1/up", b"x" * 10, mid))   # as paho's thread hands them over
        assert [m.mid for m in link.take_queued(2, 1000)] == [0, 1]
        assert [m.mid for m in link.take_queued(10, 15)] == [2, 3]      # the one that crosses 15 bytes too
        assert link.take_queued(10, 0) == []
        assert [m.mid for m in link.take_queued(10, 1000)] == [4]
        assert link.take_queued(10, 1000) == []
    run(scenario())


def test_the_link_reads_through_read_ahead(broker):
    async def scenario():
        link, _wakes, _arrived = await _session(broker)
        try:
            assert isinstance(link.client.socket(), ReadAhead)
        finally:
            await link.stop()
    run(scenario())


# -- reading: every packet held is read before paho's loop goes round
def _client_on(sock):
    """The link's paho client reading sock through ReadAhead, as if connected."""
    link = MqttLink("127.0.0.1", 1, client_id="link-read-test")
    client, got = link.client, []
    client.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    client._sock = ReadAhead(sock)
    client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
    return client, got


def test_one_read_takes_every_packet_the_socket_holds():
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        left.sendall(b"".join(_publish_packet(b"parkcard/1/up", b"m%d" % i) for i in range(50)))
        client, got = _client_on(right)
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
        assert got == [b"m%d" % i for i in range(50)]      # paho's own call reads one
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS  # nothing held: the socket would block
        assert len(got) == 50


def test_a_packet_cut_at_the_end_of_what_arrived_waits_for_its_rest():
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        stream = b"".join(_publish_packet(b"parkcard/1/up", b"m%d" % i) for i in range(3))
        left.sendall(stream[:-4])
        client, got = _client_on(right)
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
        assert got == [b"m0", b"m1"]
        left.sendall(stream[-4:])
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
        assert got == [b"m0", b"m1", b"m2"]


def test_a_long_stream_is_read_in_bounded_rounds(monkeypatch):
    from parkcard.transport import mqtt_link
    monkeypatch.setattr(mqtt_link, "READ_PACKETS_MAX", 9)
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        left.sendall(b"".join(_publish_packet(b"parkcard/1/up", b"m%d" % i) for i in range(25)))
        client, got = _client_on(right)
        client.loop_read()
        assert len(got) == 10           # paho's call and nine more: then its loop sends and pings
        client.loop_read()
        client.loop_read()
        assert got == [b"m%d" % i for i in range(25)]


# -- a QoS 1 PUBLISH: from its bytes to the link, as paho itself would hand it over
def _publish_qos1(topic, payload, mid, flags=0):
    """An MQTT 3.1.1 PUBLISH, QoS 1 (flags: DUP 0x08, RETAIN 0x01)."""
    return _packet(0x32 | flags, len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + payload)


@pytest.mark.parametrize("lean", [True, False], ids=["on_qos1", "paho's on_message"])
def test_a_qos1_publish_reaches_the_link_as_paho_decodes_it(lean):
    cases = [(b"parkcard/term-7/up", b"", 1), (b"parkcard/term-65535/up", bytes(range(256)) * 80, 65535),
             ("parkcard/\u00e9/up".encode(), b"x", 300)]
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        link = MqttLink("127.0.0.1", 1, client_id="link-qos1-test")
        client = link.client
        if not lean:
            client.on_qos1 = None       # paho's own decoding, to hold the two to each other
        client._sock = ReadAhead(right)
        client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        link._loop = asyncio.new_event_loop()
        try:
            left.sendall(b"".join(_publish_qos1(t, p, m, f) for (t, p, m), f in zip(cases, (0, 0x08, 0x01))))
            for _ in range(5):
                client.loop_read()
            assert list(link._handoff) == [Message(t.decode(), p, m) for t, p, m in cases]
            assert all(type(m.payload) is bytes for m in link._handoff)
        finally:
            link._loop.close()


@pytest.mark.parametrize("packet", [b"\x32\x03\x00\x01a", b"\x32\x04\x00\x00\x00\x01",
                                    b"\x32\x05\x00\x05abc"], ids=["no packet id", "empty topic", "cut topic"])
def test_a_malformed_qos1_publish_drops_the_connection_as_paho_does(packet):
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        link = MqttLink("127.0.0.1", 1, client_id="link-qos1-test")
        link.client.on_disconnect = None
        link.client._sock = ReadAhead(right)
        link.client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        left.sendall(packet)
        assert link.client.loop_read() != mqtt.MQTT_ERR_SUCCESS
        assert list(link._handoff) == []


def test_a_topic_that_is_no_utf8_is_left_to_paho():
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        link = MqttLink("127.0.0.1", 1, client_id="link-qos1-test")
        lean, paho = [], []
        link.client.on_qos1 = lambda *args: lean.append(args)
        link.client.on_message = lambda _c, _u, msg: paho.append(msg.mid)
        link.client._sock = ReadAhead(right)
        link.client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        left.sendall(_publish_qos1(b"parkcard/\xff/up", b"x", 9))
        link.client.loop_read()
        assert (lean, paho) == ([], [9])


# -- acknowledging: a committed batch's PUBACKs in one write
def test_a_batch_of_pubacks_goes_out_as_one_write_in_order():
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        client, _got = _client_on(right)
        sends, send = [], client._sock_send
        client._sock_send = lambda data: sends.append(bytes(data)) or send(data)
        client.ack_all([7, 1, 65535])   # with no thread of its own paho writes at once
        assert sends == [bytes.fromhex("40020007" "40020001" "4002ffff")]     # PUBACK, length 2, mid: one send
        assert left.recv(100) == sends[0]


def test_the_link_acks_only_real_message_ids_and_queues_nothing_for_none():
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        link = MqttLink("127.0.0.1", 1, client_id="link-ack-test")
        link.client._sock = ReadAhead(right)
        link.client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        link.ack([])
        link.ack([0])       # a message made inside the hub has no broker id
        link.ack([0, 3])
        assert left.recv(100) == bytes.fromhex("40020003")
