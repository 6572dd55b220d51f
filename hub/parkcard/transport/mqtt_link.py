"""paho-mqtt 2.x client handed to asyncio.

paho's network loop runs in its own thread. Each message goes to an
asyncio.Queue through a hand-off list that the consumer drains when it asks
for a batch; the paho thread wakes the event loop (`call_soon_threadsafe`, a
write to the loop's self-pipe) only while the consumer waits for a message,
not while it writes a batch: under load the messages that arrive meanwhile
cost no wake-up at all. The hand-off is bounded by a semaphore of QUEUE_MAX
slots taken in the paho thread; when the queue is full the paho thread waits
(backpressure: it stops reading the socket and the broker keeps the
messages), it never drops one: this is money.

paho reads a packet's fixed header a byte at a time and then its remaining
length, three system calls or more per message; ReadAhead gives it the
socket's bytes READ_CHUNK at a time instead, and a packet it holds whole is
handed to paho's packet handler in one piece (`_Client._packet_read`: paho's
own read asks for it in four pieces, two of them a byte at a time). A QoS 1
PUBLISH of MQTT 3.1.1, every uplink, goes from its bytes to the link as
(topic, payload, message id) (`_Client.on_qos1`): paho's own handling builds a
message object with a condition variable, decodes the topic three times and
copies the payload three times per message on the way to on_message, which
stays for everything else.

PUBACKs are manual: the hub acknowledges a message to the broker only after
the batch holding it is committed, so a hub killed mid-batch gets the message
again from the broker (clean_session False, fixed client id: the broker also
queues messages while the hub is down). A committed batch's PUBACKs go out as
one write (`_Client.ack_all`): paho's `ack()` queues each as a packet of its
own, a wake-up of its thread and a system call, and with Nagle off a TCP
segment for the broker to read, per message.

Downlinks are bounded too: paho keeps every QoS 1 publish until its PUBACK,
and all of them while the broker is away (DOWNLINK_QUEUED_MAX). A publish
beyond the bound is refused, counted (`downlinks_refused`) and reported to
the caller, never silently lost: every downlink can be made again (an ack
when the terminal uploads again, the blacklist and config at its T_SYNC, a
command stays queued in the database until a publish takes it).
"""

import asyncio
import logging
import socket
import struct
import threading
from collections import deque, namedtuple

import paho.mqtt.client as mqtt

log = logging.getLogger("parkcard.mqtt")

Message = namedtuple("Message", "topic payload mid")

UP_FILTER = "parkcard/+/up"
STATUS_FILTER = "parkcard/+/status"
QUEUE_MAX = 1024               # frames waiting for the ingest task
# Downlinks paho holds (in flight, or queued while the broker is away): 8192 frames of at most
# FRAME_SIZE_MAX bytes is tens of MB at worst, and a fleet offline for an hour of blacklist pushes fits.
DOWNLINK_QUEUED_MAX = 8192
INFLIGHT_MAX = 1000            # QoS 1 downlinks awaiting their PUBACK (part of DOWNLINK_QUEUED_MAX)
HANDOFF_WAIT_S = 0.5           # a blocked hand-off re-checks for shutdown this often
KEEPALIVE_S = 30
RECONNECT_DELAY_S_MIN = 0.05
RECONNECT_DELAY_S_MAX = 2


READ_CHUNK = 65536             # bytes paho's socket reads at a time (ReadAhead)
READ_PACKETS_MAX = 512         # packets paho's thread reads from what it holds before it goes round its loop
_PUBACK = struct.Struct("!BBH")   # a PUBACK: its type, remaining length 2, the message id


class ReadAhead:
    """A socket whose recv() takes what the kernel holds, up to READ_CHUNK, and hands it out as asked.

    pending() counts the bytes held here: paho's loop reads on without waiting in select() while it is not
    zero (it asks an SSL socket the same), so a held packet is never left behind a select() with nothing new.
    Every other attribute is the socket's own.
    """

    def __init__(self, sock, chunk=READ_CHUNK):
        self._sock = sock
        self._chunk = chunk
        self._held = b""
        self._at = 0

    def recv(self, size):
        """Up to size bytes: from what is held, else from one read of the socket of up to the chunk."""
        held, at = self._held, self._at
        if at >= len(held):
            data = self._sock.recv(max(size, self._chunk))
            if len(data) <= size:
                return data
            held, at = self._held, self._at = data, 0
        out = held[at:at + size]
        self._at = at + len(out)
        return out

    def packet(self):
        """(first byte, rest) of the next MQTT packet (MQTT 3.1.1 §2.2) when it is held here whole, taken; else None
        and nothing taken (a packet cut at the end of what arrived, or a remaining length longer than 4 bytes,
        which paho's own read refuses)."""
        held, at = self._held, self._at
        end = len(held)
        length, shift, i = 0, 0, at + 1
        while True:
            if i >= end or shift > 21:
                return None
            byte = held[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if end - i < length:
            return None
        self._at = i + length
        return held[at], held[i:i + length]

    def pending(self):
        """Bytes held here (and inside an SSL socket) that a recv() returns without reading the socket."""
        inner = getattr(self._sock, "pending", None)
        return len(self._held) - self._at + (inner() if inner is not None else 0)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Client(mqtt.Client):
    """paho's client reading through ReadAhead, every packet it holds at each wake-up, its QoS 1 publishes handed
    to on_qos1 when set, a batch's PUBACKs sent as one write.

    paho 2.x has no public hooks for these: the overrides use its private _create_socket, _packet_read,
    _handle_publish, _in_packet and _packet_queue (hence paho-mqtt below 2.3 in hub/pyproject.toml;
    tests/test_mqtt_link.py holds each to paho's own behaviour).
    """

    on_qos1 = None      # on_qos1(topic, payload, mid), in paho's thread, for each QoS 1 PUBLISH of MQTT 3.1.1

    def _handle_publish(self):
        # MQTT 3.1.1 §3.3: the fixed header's QoS bits, then a topic of two length bytes, the packet id, the
        # payload. Anything else (MQTT 5's properties, QoS 0 or 2, a topic that is no UTF-8) is paho's own.
        on_qos1, command, packet = self.on_qos1, self._in_packet["command"], self._in_packet["packet"]
        if on_qos1 is None or command & 0x06 != 0x02 or self._protocol == mqtt.MQTTv5:
            return super()._handle_publish()
        if len(packet) < 4:
            raise mqtt.MalformedPacket("PUBLISH of %d bytes" % len(packet))
        topic_end = 2 + ((packet[0] << 8) | packet[1])
        if topic_end == 2 or len(packet) < topic_end + 2:
            raise mqtt.MalformedPacket("PUBLISH topic of %d bytes in %d" % (topic_end - 2, len(packet)))
        try:
            topic = packet[2:topic_end].decode("utf-8")
        except UnicodeDecodeError:
            return super()._handle_publish()
        on_qos1(topic, bytes(packet[topic_end + 2:]), (packet[topic_end] << 8) | packet[topic_end + 1])
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _create_socket(self):
        # on_socket_open only sees the socket paho connected: wrapping it takes its private _create_socket.
        return ReadAhead(super()._create_socket())

    def ack_all(self, mids):
        """PUBACK (QoS 1, MQTT 3.1.1 §3.4) every message id in mids as one write of paho's thread, in their order.

        paho has no public call for it: _packet_queue is what its own ack() ends in (one packet there), so the
        broker reads the same bytes, in one segment instead of one per message.
        """
        packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
        if packet:
            self._packet_queue(mqtt.PUBACK, packet, 0, 1)

    def _packet_read(self):
        # paho's read of one packet: a command byte, the remaining length a byte at a time, then the rest, each
        # a call through _sock_recv. A packet ReadAhead holds whole goes to paho's handler as that read leaves it;
        # anything else (a packet begun or cut, an SSL socket's own buffer) is paho's own read.
        sock = self._sock
        whole = sock.packet() if type(sock) is ReadAhead and self._in_packet["command"] == 0 else None
        if whole is None:
            return super()._packet_read()
        command, rest = whole
        self._in_packet = {"command": command, "have_remaining": 1, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": len(rest), "packet": rest, "to_process": 0,
                           "pos": 0}
        try:
            rc = self._packet_handle()
        except mqtt.MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                           "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        return rc

    def loop_read(self, max_packets=1):
        """Read packets while ReadAhead holds bytes, in up to READ_PACKETS_MAX more of paho's calls: its own call
        reads about one (it counts its messages in flight) and its loop goes round, a select() included, before
        the next, which cost half of its thread's time per uplink of a backlog."""
        rc = super().loop_read(max_packets)
        for _ in range(READ_PACKETS_MAX):   # then round the loop: the PUBACKs and keepalives wait meanwhile
            if rc != mqtt.MQTT_ERR_SUCCESS or self._sock is None or not self._sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc


def taken_from(queue, frames_max, bytes_max):
    """Messages taken off an asyncio.Queue now, oldest first: up to frames_max, until their payloads reach
    bytes_max (the one that crosses it taken too)."""
    taken, size = [], 0
    while len(taken) < frames_max and size < bytes_max and not queue.empty():
        message = queue.get_nowait()
        taken.append(message)
        size += len(message.payload)
    return taken


def set_nodelay(client):
    """Turn Nagle off on paho's socket: a PUBACK followed by a PUBLISH otherwise waits for the
    peer's delayed ACK (about 40 ms per hop on Linux)."""
    sock = client.socket()
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttLink:
    """The hub's broker session."""

    def __init__(self, host, port, client_id="parkcard-hub", username=None, password=None, queue_max=QUEUE_MAX,
                 tls_ca=None, downlink_queued_max=DOWNLINK_QUEUED_MAX):
        self.host, self.port, self.client_id = host, port, client_id
        self.queue = None
        self.queue_max = queue_max
        # Set once the broker granted the hub's subscriptions (SUBACK, MQTT 3.1.1 §3.8.4), not at
        # CONNACK: only from then on does an uplink published by a terminal reach the hub.
        self.connected = None
        self._sub_mid = None
        self.backpressure_waits = 0
        self.connects = 0
        self.downlinks_refused = 0      # publishes refused at DOWNLINK_QUEUED_MAX
        self.downlink_queued_max = downlink_queued_max
        self._loop = None
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(queue_max)   # bounds the queue; the paho thread waits on it
        self._handoff = deque()         # messages from the paho thread not yet in the queue
        self._wake_lock = threading.Lock()
        self._waiting = False           # the consumer waits for a message: the next one wakes the loop
        self.client = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=True)
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        self.client.max_inflight_messages_set(min(INFLIGHT_MAX, downlink_queued_max))
        self.client.max_queued_messages_set(downlink_queued_max)
        self.client.reconnect_delay_set(RECONNECT_DELAY_S_MIN, RECONNECT_DELAY_S_MAX)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_qos1 = self._arrived

    async def start(self):
        """Connect in the background (paho retries until the broker answers)."""
        self._loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()
        self.connected = asyncio.Event()
        self._stopping.clear()
        with self._wake_lock:       # a consumer of an earlier, closed loop waits no more
            self._waiting = False
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()

    async def stop(self):
        """Disconnect and stop paho's thread."""
        self._stopping.set()
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    # -- paho thread
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("event=connect_failed reason=%s", reason_code)
            return
        set_nodelay(client)
        # The SUBACK is handled in this same paho thread after this callback: _sub_mid is set by then.
        self._sub_mid = client.subscribe([(UP_FILTER, 1), (STATUS_FILTER, 1)])[1]
        log.info("event=connected broker=%s:%d session_present=%s", self.host, self.port, flags.session_present)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid != self._sub_mid:
            return
        if any(code.is_failure for code in reason_codes):
            log.warning("event=subscribe_refused broker=%s:%d codes=%s", self.host, self.port, reason_codes)
            return
        self.connects += 1    # sessions in which the broker delivers uplinks to the hub
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        # Our own clean stop is news only in the debug log; any other loss is a warning.
        level = logging.INFO if getattr(reason_code, "value", reason_code) == 0 else logging.WARNING
        log.log(level, "event=disconnected reason=%s", reason_code)
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client, userdata, msg):
        self._arrived(msg.topic, bytes(msg.payload), msg.mid)

    def _arrived(self, topic, payload, mid):
        """A message from the broker, in paho's thread: handed to the consumer, or waited for room (backpressure)."""
        item = Message(topic, payload, mid)
        if not self._slots.acquire(blocking=False):
            self.backpressure_waits += 1
            while not self._slots.acquire(timeout=HANDOFF_WAIT_S):
                if self._stopping.is_set():
                    return   # not acknowledged: the broker sends it again
        self._handoff.append(item)
        with self._wake_lock:
            if not self._waiting:
                return      # the consumer drains the hand-off when it next asks
            self._waiting = False
        self._loop.call_soon_threadsafe(self._drain_handoff)

    def _drain_handoff(self):
        while self._handoff:
            self.queue.put_nowait(self._handoff.popleft())

    # -- event loop side
    def has_queued(self):
        """True when a message is waiting for the consumer (get_batch returns at once)."""
        self._drain_handoff()
        return not self.queue.empty()

    async def get_batch(self, frames_max):
        """Wait for one message, then take what else is queued, up to frames_max."""
        if not self.has_queued():
            with self._wake_lock:
                self._waiting = True
            # A message appended before the flag was set woke nothing: drained here. One appended after
            # it wakes the loop, which drains it into the queue awaited below.
            self._drain_handoff()
        batch = [await self.queue.get()]
        while len(batch) < frames_max and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    def take_queued(self, frames_max, bytes_max):
        """The messages queued now, oldest first: up to frames_max, until their payloads reach bytes_max (the one
        that crosses it taken too)."""
        self._drain_handoff()
        return taken_from(self.queue, frames_max, bytes_max)

    def release(self, count):
        """Give back queue slots after a batch is handled."""
        if count:
            self._slots.release(count)

    def ack(self, mids):
        """PUBACK messages (their ids, in order) once the batch holding them is committed; 0 is no message."""
        self.client.ack_all([mid for mid in mids if mid])

    def publish(self, topic, payload, retain=False):
        """Publish QoS 1 (paho queues it while disconnected); return False when refused at DOWNLINK_QUEUED_MAX."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.downlinks_refused += 1
            log.warning("event=downlink_refused topic=%s queued_max=%d", topic, self.downlink_queued_max)
            return False
        return True
