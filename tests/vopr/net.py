"""The broker and the network of a simulated park: in-process queues, no sockets, every fault by choice.

Terminals reach the broker over a lossy network (packets can be dropped,
duplicated, delayed and reordered, and a terminal can be partitioned off);
the hub reaches it over a local link that behaves like the hub's paho session
(clean_session False, PUBACK only after the hub's commit, redelivery of what
was not acknowledged when the session comes back). Nothing here moves on its
own: the simulation delivers one packet, or hands the hub a batch, per step.
"""

import asyncio
import hashlib
from collections import deque, namedtuple

from protocol import topics

from parkcard.transport.mqtt_link import Message, taken_from

Packet = namedtuple("Packet", "src dst topic payload not_before")
BROKER = "broker"


def digest(payload):
    """A short fingerprint of some bytes, for the trace."""
    return hashlib.sha256(payload).hexdigest()[:8]


class HubKilled(BaseException):
    """The hub process died at an injected point (a BaseException: no handler of the hub's may catch it)."""


class Network:
    """Packets in flight between terminals and the broker."""

    def __init__(self):
        self.in_flight = []
        self.partitioned = set()     # terminal ids cut off
        self.sent = 0

    def send(self, src, dst, topic, payload, not_before=0):
        """Put a packet on the wire (dropped at once when either end is partitioned off)."""
        if src in self.partitioned or dst in self.partitioned:
            return False
        self.in_flight.append(Packet(src, dst, topic, bytes(payload), not_before))
        self.sent += 1
        return True

    def ready(self, step):
        """Indexes of the packets that may be delivered at this step."""
        return [i for i, p in enumerate(self.in_flight) if p.not_before <= step]

    def take(self, index):
        """Remove and return one packet."""
        return self.in_flight.pop(index)

    def cut(self, terminal_id):
        """Partition a terminal off: what it had in flight is lost with the link."""
        self.partitioned.add(terminal_id)
        self.in_flight = [p for p in self.in_flight if terminal_id not in (p.src, p.dst)]

    def heal(self, terminal_id):
        """Let a terminal reach the broker again."""
        self.partitioned.discard(terminal_id)


class Broker:
    """QoS 1 with persistent sessions: a queue for the hub, one per terminal, redelivery of unacked messages."""

    def __init__(self, network):
        self.network = network
        self.up = True
        self.hub_queue = deque()      # (mid, topic, payload) not yet handed to the hub
        self.hub_inflight = {}        # mid -> (topic, payload) handed to the hub, not PUBACKed
        self.term_queue = {}          # terminal id -> deque of (topic, payload) while it is away
        self.online = set()           # terminals with a live session
        self.hub_link = None
        self._mid = 0

    # -- terminals
    def receive(self, packet):
        """A packet from a terminal reached the broker: queue it for the hub's subscription."""
        if not self.up:
            return
        if packet.topic.startswith(topics.PREFIX) and packet.topic.endswith(("/" + topics.UP, "/" + topics.STATUS)):
            self.publish_to_hub(packet.topic, packet.payload)

    def publish_to_hub(self, topic, payload):
        """Queue a message for the hub's session (what a publisher on an up or status topic does)."""
        self._mid = self._mid % 0xFFFF + 1
        self.hub_queue.append((self._mid, topic, bytes(payload)))

    def connect_terminal(self, terminal_id):
        """A terminal's session is up: send what was queued for it."""
        self.online.add(terminal_id)
        queued = self.term_queue.pop(terminal_id, ())
        for topic, payload in queued:
            self.network.send(BROKER, terminal_id, topic, payload)

    def disconnect_terminal(self, terminal_id):
        """A terminal's session dropped (its messages are queued from now on)."""
        self.online.discard(terminal_id)

    # -- the hub
    def from_hub(self, topic, payload):
        """The hub published a downlink."""
        terminal_id = topics.terminal_of(topic)
        if terminal_id is None:
            return
        if terminal_id in self.online:
            self.network.send(BROKER, terminal_id, topic, payload)
        else:
            self.term_queue.setdefault(terminal_id, deque()).append((topic, bytes(payload)))

    def attach_hub(self, link):
        """The hub's session is up: what it did not acknowledge comes again first (MQTT 3.1.1 §4.4)."""
        self.hub_link = link
        for mid in sorted(self.hub_inflight, reverse=True):
            topic, payload = self.hub_inflight.pop(mid)
            self.hub_queue.appendleft((mid, topic, payload))

    def detach_hub(self, link):
        """The hub's session dropped."""
        if self.hub_link is link:
            self.hub_link = None

    def hand_to_hub(self, count):
        """Give the hub up to count queued messages; return how many."""
        link = self.hub_link
        if link is None or not self.up:
            return 0
        n = 0
        while self.hub_queue and n < count:
            mid, topic, payload = self.hub_queue.popleft()
            self.hub_inflight[mid] = (topic, payload)
            link.deliver(Message(topic, payload, mid))
            n += 1
        return n

    def hub_ack(self, mid):
        """PUBACK from the hub: the broker forgets the message."""
        self.hub_inflight.pop(mid, None)

    # -- faults
    def crash(self, lose_queued):
        """The broker dies; with lose_queued, what it held since its last save is gone."""
        self.up = False
        if self.hub_link is not None:
            self.hub_link.broker_lost()
        self.hub_link = None
        self.online.clear()
        if lose_queued:
            self.hub_queue.clear()
            self.hub_inflight.clear()
            self.term_queue.clear()

    def restart(self):
        """The broker is back (sessions reconnect on their own)."""
        self.up = True


class SimClient:
    """A terminal's MQTT client as Sync and Wallet use it, publishing onto the simulated network."""

    def __init__(self, terminal_id, network):
        self.terminal_id = terminal_id
        self.network = network
        self.connected = False
        self.on_message = None
        self.on_connect = None
        self.published = []          # payloads this terminal produced (the auditor's genuine set)

    async def publish(self, topic, payload, qos=1, retain=False, timeout_ms=None):
        """Send one message towards the broker; fails when the link is down."""
        if not self.connected:
            raise ConnectionError("not connected")
        self.published.append(bytes(payload))
        self.network.send(self.terminal_id, BROKER, topic, payload)

    async def subscribe(self, topic, qos=1):
        """The broker keeps the session's subscription: nothing to send."""

    def close(self):
        """Drop the link."""
        self.connected = False


class SimLink:
    """Stands in for parkcard.transport.mqtt_link.MqttLink in a Hub: same methods, the simulated broker behind."""

    host = "sim"
    port = 0

    def __init__(self, broker, on_publish=None):
        self.broker = broker
        self.on_publish = on_publish     # called with (topic, payload) before a downlink leaves (auditor)
        self.queue = None
        self.connected = None
        self.connects = 0
        self.backpressure_waits = 0
        self.downlinks_refused = 0       # never: the outbox is the simulated broker's, unbounded here
        self.outbox = []                 # downlinks published while the broker was away (paho queues them)
        self.kill_after_outputs = None   # die at the nth ack or publish from now
        self._parked = False
        self._wakers = []

    # -- MqttLink's interface
    async def start(self):
        """Open the session."""
        self.queue = asyncio.Queue()
        self.connected = asyncio.Event()
        self.reconnect()

    async def stop(self):
        """Close the session."""
        self.broker.detach_hub(self)
        if self.connected is not None:
            self.connected.clear()

    async def get_batch(self, frames_max):
        """Wait for one message, then take what else is queued, up to frames_max."""
        if self.queue.empty():
            self._parked = True
            self._wake()
        batch = [await self.queue.get()]
        self._parked = False
        while len(batch) < frames_max and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    def take_queued(self, frames_max, bytes_max):
        """The messages queued now, up to frames_max, until their payloads reach bytes_max (that one taken too)."""
        return taken_from(self.queue, frames_max, bytes_max)

    def release(self, count):
        """Queue slots are not bounded here (the broker holds the backlog)."""

    def ack(self, mids):
        """PUBACK after the commit, the batch's messages in order (a kill may fall between two of them, as a
        write the broker read part of)."""
        for mid in mids:
            self._output()
            if self.broker.hub_link is self:
                self.broker.hub_ack(mid)

    def publish(self, topic, payload, retain=False):
        """A downlink, QoS 1: kept until the broker is back if it is away."""
        self._output()
        if self.on_publish is not None:
            self.on_publish(topic, payload)
        if self.broker.hub_link is self:
            self.broker.from_hub(topic, payload)
        else:
            self.outbox.append((topic, bytes(payload)))

    # -- the simulation's side
    def deliver(self, message):
        """The broker hands the hub a message."""
        self.queue.put_nowait(message)

    def reconnect(self):
        """The session comes (back) up: redeliveries first, then the downlinks paho held."""
        if not self.broker.up:
            return False
        self.broker.attach_hub(self)
        self.connects += 1
        self.connected.set()
        for topic, payload in self.outbox:
            self.broker.from_hub(topic, payload)
        self.outbox = []
        return True

    def broker_lost(self):
        """The broker went away under the session."""
        if self.connected is not None:
            self.connected.clear()

    def parked(self):
        """True when the hub's consumer waits on an empty queue: it has done all it was given."""
        return self._parked and self.queue.empty()

    async def wait_parked(self):
        """Return once the consumer is parked."""
        while not self.parked():
            waker = asyncio.get_running_loop().create_future()
            self._wakers.append(waker)
            await waker

    def _wake(self):
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            if not waker.done():
                waker.set_result(None)

    def _output(self):
        if self.kill_after_outputs is not None:
            self.kill_after_outputs -= 1
            if self.kill_after_outputs <= 0:
                self.kill_after_outputs = None
                raise HubKilled("killed at an ack or downlink")
