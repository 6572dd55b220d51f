"""A scripted terminal over real MQTT, for tests and the bench (the firmware terminal replaces it end to end).

It speaks protocol/ exactly like a terminal: records MACed with its key, a
journal of unacknowledged records trimmed only by T_ACK, frames with a
strictly increasing counter, downlinks verified (MAC, counter).
"""

import asyncio
import itertools
import threading
import time

import paho.mqtt.client as mqtt

from protocol import frames, hub_frames, topics
from protocol.desk import DESK_SOURCE_ID
from protocol.card import SLOT_BLOCKS, TIER_STANDARD, TRAILER_BLOCK, CardKeys
from protocol.card_issue import ParkKeys, trailer_block
from protocol import hub_credits
from protocol import record as R

from parkcard.transport.mqtt_link import set_nodelay

UID = b"\x04\x11\x22\x33"


class DownlinkError(AssertionError):
    """A downlink frame that did not verify."""


class ScriptedTerminal:
    """One terminal's broker session and journal, driven by a test."""

    def __init__(self, host, port, terminal_id, key, clean_session=False, password=None, tls_ca=None):
        """password: log in as term-<id> (a secure broker); tls_ca: the park CA file, for a TLS listener."""
        self.terminal_id = terminal_id
        self.frame_mac = frames.frame_mac_for(key)
        self.record_mac = R.record_mac_for(key)
        self.counter = 0
        self.seq = 0
        self.journal = {}           # seq -> (status, raw), oldest first, until acked
        self.acked_upto = 0
        self.down = []              # verified downlink Frames
        self.down_counter = 0
        self.errors = []
        self.subscriptions = 0      # SUBACKs granting the down topic, one per (re)connection
        self._cond = threading.Condition()
        self.host, self.port = host, port
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=topics.client_name(terminal_id),
                                  clean_session=clean_session, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(100)
        if password is not None:
            self.client.username_pw_set(topics.client_name(terminal_id), password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def connect(self, timeout_s=10, will=None):
        """Connect, subscribe to the down topic and wait for the SUBACK granting it.

        Connected (CONNACK) is not subscribed: a downlink published before the SUBACK may
        never reach this session (MQTT 3.1.1 §3.8.4)."""
        if will is not None:
            self.client.will_set(topics.topic(self.terminal_id, topics.STATUS), will, qos=1, retain=True)
        self.client.reconnect_delay_set(0.05, 1)
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.wait_subscribed(0, timeout_s)
        return self

    def wait_subscribed(self, after, timeout_s=10):
        """Wait until more than `after` SUBACKs granted the down topic (after a reconnect: count before it)."""
        self.wait(lambda t: t.subscriptions > after, timeout_s)

    def close(self):
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        set_nodelay(client)
        client.subscribe(topics.topic(self.terminal_id, topics.DOWN), qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if not any(code.is_failure for code in reason_codes):
            with self._cond:
                self.subscriptions += 1
                self._cond.notify_all()

    def _on_message(self, client, userdata, msg):
        try:
            frame = frames.decode(self.frame_mac, msg.payload)
            if frame.counter <= self.down_counter:
                raise DownlinkError("downlink replay %d <= %d" % (frame.counter, self.down_counter))
        except Exception as exc:  # recorded for the test to assert on
            with self._cond:
                self.errors.append(exc)
                self._cond.notify_all()
            return
        with self._cond:
            self.down_counter = frame.counter
            self.down.append(frame)
            if frame.type == frames.T_ACK:
                upto = frames.parse_ack(frame.body)[0]
                if upto > self.acked_upto:
                    self.acked_upto = upto
                    for seq in [s for s in self.journal if s <= upto]:
                        del self.journal[seq]
            self._cond.notify_all()

    # -- records and frames
    def record(self, kind, card_no, counter, amount_cents, balance_after_cents, status=R.STATUS_COMMITTED,
               uid=UID, time_s=None, **fields):
        """Journal a new record (next seq); return its bytes."""
        self.seq += 1
        rec = R.Record(kind, self.terminal_id, self.seq, int(time.time()) if time_s is None else time_s, card_no,
                       uid, counter, amount_cents, balance_after_cents, **fields)
        raw = rec.encode(self.record_mac)
        with self._cond:
            self.journal[self.seq] = (status, raw)
        return raw

    def frame(self, ftype, body=b"", counter=None):
        """Return a frame with the next counter (or the given one)."""
        if counter is None:
            self.counter += 1
            counter = self.counter
        return frames.encode(self.frame_mac, ftype, self.terminal_id, counter, int(time.time()), body)

    def publish(self, payload, leaf=topics.UP, topic=None, retain=False):
        """Publish QoS 1 on this terminal's topic (or another)."""
        info = self.client.publish(topic or topics.topic(self.terminal_id, leaf), payload, qos=1, retain=retain)
        return info

    def upload(self, entries=None, records_max=frames.UPLOAD_RECORDS_MAX):
        """Publish one upload of the given [(status, raw)], or of the oldest unacked records; return the frame."""
        if entries is None:
            with self._cond:
                entries = [self.journal[s] for s in sorted(self.journal)[:records_max]]
        payload = self.frame(frames.T_UPLOAD, hub_frames.upload_body(entries))
        self.publish(payload)
        return payload

    def upload_all(self, records_max=frames.UPLOAD_RECORDS_MAX):
        """Publish every unacked record, records_max per frame."""
        with self._cond:
            seqs = sorted(self.journal)
        for i in range(0, len(seqs), records_max):
            self.upload([self.journal[s] for s in seqs[i:i + records_max]])
        return len(seqs)

    def status(self, boot, online=1, **fields):
        """Publish a retained status frame."""
        body = hub_frames.Status(boot=boot, online=online, **fields).encode()
        return self.publish(self.frame(frames.T_STATUS, body), leaf=topics.STATUS, retain=True)

    # -- waiting
    def wait(self, predicate, timeout_s=10):
        """Wait until predicate(self) is true under the lock; raise TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("term-%d: condition not met in %ss (acked %d, journal %d, down %d)" % (
                        self.terminal_id, timeout_s, self.acked_upto, len(self.journal), len(self.down)))
                self._cond.wait(left)

    def wait_acked(self, seq, timeout_s=10):
        """Wait until the hub acknowledged every record up to seq."""
        self.wait(lambda t: t.acked_upto >= seq, timeout_s)

    def downlinks(self, ftype):
        """Return the verified downlink frames of one type received so far."""
        with self._cond:
            return [f for f in self.down if f.type == ftype]


MERCHANT_PARK = 1       # the park itself: desk terminals
MERCHANT_ICE = 2        # a booth, 10 % commission
# The test kit's own terminals (its desk, a second desk) take ids from the top of the id space, so
# that terminals a test or the bench numbers from 1 upwards never meet them: 100 once did, and the
# bench with 100 terminals failed to register its terminal 100.
FIXTURE_TERMINAL_IDS = range(hub_frames.TERMINAL_ID_MAX - 15, hub_frames.TERMINAL_ID_MAX + 1)
DESK_ID = FIXTURE_TERMINAL_IDS[0]
_FIXTURE_OPS = itertools.count(1)


async def start_hub(db_path, host, port, **hub_args):
    """Start a Hub with the park merchant, an ice-cream merchant at 1000 bps and desk terminal DESK_ID."""
    from parkcard.app import Hub

    hub = Hub(db_path, host, port, **hub_args)
    await hub.start()
    await hub.wait_connected()
    await hub.add_merchant(MERCHANT_PARK, "Park desk", 0)
    await hub.add_merchant(MERCHANT_ICE, "Ice cream", 1000)
    if hub.registry.get(DESK_ID) is None:
        await hub.register_terminal(DESK_ID, MERCHANT_PARK, frames.ROLE_DESK, "front desk")
    return hub


FIXTURE_PARK_KEYS = ParkKeys(b"A" * 32, b"B" * 32, b"M" * 32)     # a hub started without park keys issues with these


class Issued:
    """A card issued by desk_issued: its number, balance, the blocks the desk wrote, and the operation posted."""

    def __init__(self, done, blocks, record):
        self.record = record
        self.card_no = done.card_no
        self.balance_cents = done.balance_cents
        self.record_seq = done.record_seq
        self.op = done.op
        self.blocks = blocks


async def shift_open_at(hub, desk_terminal_id, by):
    """A shift open at desk_terminal_id (opened with no float when there is none): every desk operation is in one."""
    if await hub.storage.open_shift_at(desk_terminal_id) is None:
        try:
            await hub.storage.add_shift(desk_terminal_id, 0, by)
        except ValueError:
            pass            # opened meanwhile by a fixture issuing at the same desk at once


async def desk_issued(hub, uid, cash_cents, tier=TIER_STANDARD, deposit_cents=0, time_s=None, desk_terminal_id=DESK_ID,
                      op_id=None, expiry_day=0, perms=0xFFFF, card_no=None):
    """A card issued at a desk with its card write taken as confirmed, for tests of what comes after an issue.

    The desk service's own steps (parkcard.services.desk.operations: kept as pending, then posted as a
    record of the desk source) without a desk terminal: the tests of the desk itself go through one
    (tests/test_desk.py). Returns Issued; .blocks are the card's blocks 4..11 as stock and the desk leave them.
    """
    from parkcard.services.desk import operations as ops

    keys = CardKeys(hub.park_keys or FIXTURE_PARK_KEYS, uid)
    actor = hub.actor("desk-fixture")
    op_id = op_id or "fixture-issue-%s-%d" % (bytes(uid).hex(), next(_FIXTURE_OPS))
    request = ops.request_of("issue", desk_terminal_id, cash_cents=cash_cents, tier=tier, deposit_cents=deposit_cents,
                             expiry_day=expiry_day, perms=perms)
    await shift_open_at(hub, desk_terminal_id, actor.name)
    kept = await ops.issue_kept(hub.desk_path, actor, op_id, request, desk_terminal_id, bytes(uid), keys, cash_cents,
                                tier, deposit_cents, expiry_day, perms, time_s, card_no)
    done = await ops.post_confirmed(hub.desk_path, actor, kept, time_s)
    blocks = dict(ops.blocks_of(kept))
    blocks.setdefault(SLOT_BLOCKS[1], bytes(16))
    blocks[TRAILER_BLOCK] = trailer_block(keys)
    blocks.update(hub_credits.credit_blocks(keys))      # sector 2 as card stock has it (SPEC.md §3.7)
    stored = [r for r in await hub.storage.records(DESK_SOURCE_ID) if r.seq == done.record_seq]
    return Issued(done, blocks, R.Record.decode(stored[0].raw))


async def connect_booth(hub, host, port, terminal_id, name="booth"):
    """Register a pos terminal of the ice-cream merchant and return a connected ScriptedTerminal for it."""
    key = await hub.register_terminal(terminal_id, MERCHANT_ICE, frames.ROLE_POS, name)
    return await asyncio.to_thread(ScriptedTerminal(host, port, terminal_id, key).connect)
