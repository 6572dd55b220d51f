"""Keep a terminal in step with the hub over MQTT: upload the journal, take acks,
blacklist deltas, config, time and commands (protocol/SPEC.md §5).

Runs as background tasks beside the tap loop; a tap never waits on anything here.
"""

import asyncio
from binascii import hexlify, unhexlify

from protocol import frames, topics
from protocol.config import out_of_range
from protocol.errors import ProtocolError
from protocol.record import RECORD_V2_SIZE, STATUS_COMMITTED, STATUS_UNCERTAIN, STATUS_VOIDED, Record
from terminal import VERSION
from terminal.blacklist import BlacklistCorrupt, BlacklistError, VersionGap
from terminal.compat import const, sleep_ms, wait_ms
from terminal.journal import COMMITTED, HANDED_OVER, VOIDED

UPLOAD_BATCH_MAX = 6             # records per upload frame (SPEC.md §5.3 allows 64): keeps an
                                 # upload's copies small beside the sync stack in a 100 KB heap
ACK_TIMEOUT_MS = 5000
# How long a requested uplink (T_AUTH, T_CARD_RESULT, T_SYNC) may wait for its PUBACK: below
# authorise.AUTH_TIMEOUT_MS, so a late T_AUTH is dropped, not confirmed.
_SEND_TIMEOUT_MS = const(20000)
_STATUS_CHECK_MS = const(500)    # how soon a changed status goes out
# A record whose card never came back is handed to the hub after this long, so
# it cannot hold up the upload queue behind it (the hub's ack is cumulative).
UNCERTAIN_GIVE_UP_S = 900
# What one time frame may do to the clock (SPEC.md §5.3, "A terminal refuses"): never set it
# before the last hub contact or this floor (2020-01-01; an ESP32's clock restarts at 2000)...
_CLOCK_FLOOR_S = const(1577836800)
# ...nor more than this ahead of a clock that kept running (crystal drift is seconds a day)...
_CLOCK_AHEAD_MAX_S = const(86400)
# ...nor, when the clock restarted behind the last contact (a power cut), more than this
# after that contact: the longest a terminal may be switched off and still take the hub's time.
_CLOCK_OFF_MAX_S = const(731 * 86400)
# A downlink counter this far past the last accepted one is refused once one was accepted: taken,
# it would leave every later frame of the hub a replay. The hub skips at most its reserve block
# (1024) per restart and sends a few thousand frames a day to a terminal.
_COUNTER_STEP_MAX = const(1 << 24)
_SENDS_MAX = const(4)
# Cards per T_BLACKLIST the terminal asks for (SPEC.md §5.5): a frame's copies (packet, frame body,
# the card numbers as ints) stay a few KB; halved, down to the floor, after a frame too large to hold.
# A snapshot arrives right after a connect, beside the link's TLS buffers and the config: measured
# (bench/bench_heap.py), 128 lets the whole terminal start in 2 KB less heap than 256 did.
_CHUNK_CARDS_MAX = const(128)
_CHUNK_CARDS_MIN = const(16)


class Sync:
    """Uplink and downlink of one terminal."""

    def __init__(self, terminal_id, frame_mac, wallet, journal, blacklist, state, board, on_command=None):
        self.client = None
        self.terminal_id = terminal_id
        self.frame_mac = frame_mac
        self.wallet = wallet
        self.journal = journal
        self.blacklist = blacklist
        self.state = state
        self.board = board
        self.on_command = on_command
        # Downlink type -> handler(frame): what the terminal takes from the hub. Components register
        # theirs with handle() (the desk role: T_CARD_WRITE); a type nobody handles is refused.
        self._handlers = {frames.T_ACK: self._on_ack, frames.T_TIME: self._on_time, frames.T_CONFIG: self._on_config,
                          frames.T_BLACKLIST: self._apply_blacklist, frames.T_COMMAND: self._on_command}
        self._config_watchers = []     # called with each config taken (the app loads the role it names)
        # Uplink frames a callback asked for (T_AUTH, T_CARD_RESULT, T_SYNC), each sent by a task kept
        # here until it ends. Bounded: with _SENDS_MAX under way another is refused and counted.
        self.sending = []
        self.chunk_cards_max = _CHUNK_CARDS_MAX
        self.credits = None            # terminal.credits.Credits once a list arrived: its version goes in T_SYNC
        self.sends_refused = 0
        self.send_errors = 0
        self.authorised = False        # set through set_authorised (the status reports it)
        self.started_s = board.clock()
        self.rejected = {}           # reason -> count of downlink frames refused
        self.upload_errors = 0         # upload rounds that failed and were tried again
        self.memory_errors = 0         # MemoryErrors recovered from (the status reports them, SPEC.md §5.3)
        self.last_upload_error = None
        self._acked = asyncio.Event()
        self._work = asyncio.Event()
        # What the status reports changed: publish it at the status loop's next check. A flag, not
        # an Event: waiting on an Event with a timeout costs a task of its own, and the heap has no
        # room for it at a reboot with a backlog (tests/test_sync_micropython.py).
        self._status_due = False
        self._snapshot_to = None       # (to_version, next chunk) while a snapshot arrives
        # Every T_UPLOAD is encoded into this one buffer, taken at start while the heap is whole: an upload
        # round allocates no frame, and one upload is in flight at a time (upload_loop waits for its PUBACK).
        self._upload_buf = bytearray(frames.HEADER_SIZE + 1 + UPLOAD_BATCH_MAX * (1 + RECORD_V2_SIZE)
                                     + frames.FRAME_MAC_SIZE)
        self.prices_versions = None    # a booth's: () -> the price list versions its T_SYNC appends (SPEC.md §5.3)
        self.up_topic = topics.topic(terminal_id, topics.UP)
        self.status_topic = topics.topic(terminal_id, topics.STATUS)
        self.down_topic = topics.topic(terminal_id, topics.DOWN)
        if state.config_hex:
            try:
                cfg = frames.Config.decode(unhexlify(state.config_hex))
            except (ProtocolError, ValueError):
                cfg = None
            if cfg is None or out_of_range(cfg):
                # Stored by a firmware that took any config: none is in force, and the first T_SYNC
                # (config version 0) asks the hub for it.
                state.config_hex = ""
            else:
                wallet.config = cfg
        wallet.last_hub_contact_s = state.last_hub_contact_s
        wallet.blacklist_updated_s = state.blacklist_updated_s

    def attach(self, client):
        """Use this MQTT client (built after the last will, which is a status frame)."""
        self.client = client
        client.on_message = self.on_message
        client.on_connect = self.on_connect
        client.on_refused = self.on_refused

    # -- frames out ------------------------------------------------------------

    def _frame(self, ftype, body):
        return frames.encode(self.frame_mac, ftype, self.terminal_id, self.state.next_up_counter(),
                             self.board.clock(), body)

    def status_frame(self, online=1):
        """The retained status report (also the last will, with online=0)."""
        cfg = self.wallet.config
        oldest = self.journal.oldest_unsynced_time()
        now = self.board.clock()
        stats = getattr(self.client, "stats", None)  # None: a link without MQTTClient's counters (the simulations')
        body = frames.status_body(self.state.boot, online, cfg.role if cfg else 0, VERSION,
                                  cfg.version if cfg else 0, self.blacklist.version, self.journal.depth(),
                                  max(0, now - oldest) if oldest else 0, self.board.free_heap(),
                                  max(0, now - self.started_s), self.journal.last_seq(), 1 if self.authorised else 0,
                                  self.memory_errors + (stats.get("memory_errors", 0) if stats else 0))
        # Ordered by boot, then within a boot by frame counter (SPEC.md §5.3): an online report takes a
        # fresh counter, so each one supersedes the last (with a constant one the hub kept the first of a
        # boot for ever). The last will keeps 0: composed at connect and published later, it would sit
        # out of order in the counter sequence; an offline status of the boot applies anyway.
        counter = self.state.next_up_counter() if online else 0
        return frames.encode(self.frame_mac, frames.T_STATUS, self.terminal_id, counter, now, body)

    async def on_connect(self):
        """After every (re)connect: listen, report online, ask for what changed."""
        await self.client.subscribe(self.down_topic, 1)  # kept by the client: sent again on every connect
        self._work.set()
        try:
            await self.client.publish(self.status_topic, self.status_frame(1), 1, True)
            await self.client.publish(self.up_topic, self._frame(frames.T_SYNC, self._sync_body()), 1)
        except MemoryError:
            # Out of heap right after a reconnect: the status loop reports at its next check and asks
            # the hub at its next round; the link and the subscription stand.
            self.count_memory_error()

    def poke(self):
        """Tell the uploader there is something new in the journal."""
        self._work.set()

    async def upload_loop(self):
        """Upload committed and voided records oldest first; trim only on the hub's ack."""
        while True:
            if not self.client.connected:
                await sleep_ms(200)
                continue
            try:
                frame = self._upload_into()
                if frame is None:
                    self._work.clear()
                    try:
                        await wait_ms(self._work.wait(), frames.STATUS_INTERVAL_S * 1000)
                    except asyncio.TimeoutError:
                        pass
                    continue
                self._acked.clear()
                await self.client.publish(self.up_topic, frame, 1, False, ACK_TIMEOUT_MS)
                frame = None
                # The hub's application-level ack, not PUBACK, makes records deletable (SPEC.md §5.4).
                try:
                    await wait_ms(self._acked.wait(), ACK_TIMEOUT_MS)
                except asyncio.TimeoutError:
                    pass  # not acked in time: the same records go again
            except Exception as exc:  # noqa: BLE001 - a link failure (the client reconnects) or a full
                # heap (also while waiting for the ack) or flash read error: nothing is lost, the
                # journal keeps every record; try again.
                self.upload_errors += 1
                self.last_upload_error = exc
                if isinstance(exc, MemoryError):
                    self.count_memory_error()
                await sleep_ms(200)

    def upload_frame(self):
        """The next T_UPLOAD frame (the oldest unsynced records, at most UPLOAD_BATCH_MAX) as bytes, or None."""
        # One round of upload_loop without the link: the whole-park simulation drives it step by step
        # and may hold a frame while it encodes the next, so it gets its own copy.
        frame = self._upload_into()
        return None if frame is None else bytes(frame)

    def _upload_into(self):
        """The next T_UPLOAD frame in the upload buffer (a memoryview valid until the next one), or None."""
        self.give_up_uncertain()
        batch = self.journal.unsynced(UPLOAD_BATCH_MAX)
        if not batch:
            return None
        # Journal status -> upload status (SPEC.md §4.3): COMMITTED, VOIDED, else HANDED_OVER (uncertain).
        body = frames.upload_parts([(STATUS_COMMITTED if status == COMMITTED else STATUS_VOIDED if status == VOIDED
                                     else STATUS_UNCERTAIN, record) for _seq, status, record in batch])
        batch = None  # the records are in body now
        return frames.encode_into(self._upload_buf, self.frame_mac, frames.T_UPLOAD, self.terminal_id,
                                  self.state.next_up_counter(), self.board.clock(), body)

    def give_up_uncertain(self):
        """Hand uncertain records older than UNCERTAIN_GIVE_UP_S to the hub to settle by card counter."""
        now = self.board.clock()
        for seq, raw in list(self.journal.uncertain()):
            if now - Record.decode(raw).time_s >= UNCERTAIN_GIVE_UP_S:
                self.journal.mark(seq, HANDED_OVER)

    def count_memory_error(self):
        """A MemoryError was recovered from: count it; the status reports it at its next check."""
        self.memory_errors += 1
        self._status_due = True

    def set_authorised(self, authorised):
        """Record whether the terminal serves (the status frame's `authorised`); a change is reported."""
        if authorised != self.authorised:
            self.authorised = authorised
            self._status_due = True

    async def status_loop(self):
        """Refresh the retained status within _STATUS_CHECK_MS of a change and every frames.STATUS_INTERVAL_S,
        and on the periodic round ask the hub whether anything changed."""
        waited_ms = 0
        while True:
            await sleep_ms(_STATUS_CHECK_MS)
            waited_ms += _STATUS_CHECK_MS
            periodic = waited_ms >= frames.STATUS_INTERVAL_S * 1000
            if not (self._status_due or periodic):
                continue
            self._status_due = False
            if periodic:
                waited_ms = 0
            if self.client.connected:
                try:
                    await self.client.publish(self.status_topic, self.status_frame(1), 1, True, ACK_TIMEOUT_MS)
                    if periodic:
                        # The answer also confirms the blacklist is current (offline rules, SPEC.md §3.6).
                        await self.client.publish(self.up_topic, self._frame(frames.T_SYNC, self._sync_body()),
                                                  1, False, ACK_TIMEOUT_MS)
                except Exception as exc:  # noqa: BLE001 - next round
                    if isinstance(exc, MemoryError):
                        self.count_memory_error()

    # -- frames in -------------------------------------------------------------

    def _refuse(self, reason):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def on_message(self, topic, payload, retain):
        """Verify and apply one downlink frame; anything forged, replayed or malformed is counted and dropped;
        a frame the heap cannot hold the copies of is dropped and asked again in smaller pieces."""
        try:
            if topic != self.down_topic:
                return self._refuse("wrong_topic")
            try:
                frame = frames.decode(self.frame_mac, payload)
            except ProtocolError as exc:
                return self._refuse(exc.reason)
            if frame.terminal_id != self.terminal_id or frame.type not in frames.DOWNLINK_TYPES:
                return self._refuse("wrong_terminal")
            if frame.counter <= self.state.down_counter:
                return self._refuse("replay")
            if self.state.down_counter and frame.counter - self.state.down_counter > _COUNTER_STEP_MAX:
                return self._refuse("counter_jump")
            self.state.down_counter = frame.counter
            contact = self.state.last_hub_contact_s
            if contact:
                # Only a time frame sets the clock; any other frame proves contact up to the
                # terminal's own clock, so its header time cannot move the contact back or ahead
                # (SPEC.md §5.3). Before the first time frame the clock is not the hub's: no contact.
                contact = max(contact, min(frame.time_s, self.board.clock()))
                self.wallet.last_hub_contact_s = contact
                self.state.last_hub_contact_s = contact
            handler = self._handlers.get(frame.type)
            if handler is None:
                self.state.save()  # the counter is spent: a replay stays refused after a reboot
                return self._refuse("not_handled")
            if frame.type > frames.T_COMMAND:
                # A component's frame (handle()) gets its body as bytes: it may keep it past this call, and
                # the body is a view of the link's read buffer (frames.decode). Sync's own take what they keep.
                frame.body = bytes(frame.body)
            try:
                handler(frame)
            except (ProtocolError, VersionGap, BlacklistError, BlacklistCorrupt) as exc:
                # BlacklistCorrupt: the damaged list stays in force until a snapshot (which never reads
                # it) replaces it. No T_SYNC for it: the hub would answer the same delta again at once.
                self._refuse(getattr(exc, "reason", "blacklist"))
                if isinstance(exc, VersionGap):
                    self.ask_sync()
        except MemoryError:
            payload = None
            self.count_memory_error()
            self.on_refused(topic, 0)

    def handle(self, ftype, handler):
        """Register handler(frame) for a downlink type (None withdraws it): a component's frames come to it."""
        if handler is None:
            self._handlers.pop(ftype, None)
        else:
            self._handlers[ftype] = handler

    def watch_config(self, watcher):
        """Call watcher(config) with every config taken from the hub, and now with the one in force."""
        self._config_watchers.append(watcher)
        if self.wallet.config is not None:
            watcher(self.wallet.config)

    def unwatch_config(self, watcher):
        """Stop calling watcher (a role that no longer serves)."""
        if watcher in self._config_watchers:
            self._config_watchers.remove(watcher)

    def _on_ack(self, frame):
        upto, _applied, _rejected = frames.parse_ack(frame.body)
        self.journal.ack(upto)
        self._acked.set()

    def _on_time(self, frame):
        # Take the hub's clock within the bounds of SPEC.md §5.3.
        time_s = frame.time_s
        now = self.board.clock()
        contact = self.state.last_hub_contact_s
        running = contact and now >= contact  # else never set by the hub, or restarted by a power cut
        if time_s < contact or time_s < _CLOCK_FLOOR_S:
            self._refuse("time_backwards")
        elif contact and time_s > (now + _CLOCK_AHEAD_MAX_S if running else contact + _CLOCK_OFF_MAX_S):
            self._refuse("time_ahead")
        else:
            # Uptime is clock - started_s: shift the start by the clock's jump (years when the clock
            # restarted near 2000). Not ticks_ms: ticks_diff wraps after 2^29 ms (6.2 days) on the ESP32.
            self.started_s += time_s - now
            self.board.set_clock(time_s)
            self.wallet.last_hub_contact_s = time_s
            self.state.last_hub_contact_s = time_s
            if not running:
                self.ask_sync()  # a blacklist confirmed before the clock was set counted for nothing
        self.state.save()  # a replayed time frame must not wind the clock back after a reboot

    def _on_config(self, frame):
        cfg = frames.Config.decode(frame.body)
        if out_of_range(cfg):
            self.state.save()  # the counter is spent: a replay stays refused after a reboot
            return self._refuse("config_range")
        self.wallet.config = cfg
        config_hex = hexlify(frame.body).decode()
        if config_hex != self.state.config_hex:
            self._status_due = True
        self.state.config_hex = config_hex
        self.state.save()
        for watcher in self._config_watchers:
            watcher(cfg)

    def _on_command(self, frame):
        command, argument = frames.parse_command(frame.body)
        self.state.save()  # a replayed command must stay refused after a reboot
        if command == frames.CMD_REPORT_STATUS:
            self._status_due = True
        if self.on_command:
            self.on_command(command, argument)

    def _apply_blacklist(self, frame):
        from_v, to_v, mode, chunk, chunks, adds, removes = frames.parse_blacklist_stream(frame.body)
        held = self.blacklist.version
        if mode == frames.BL_DELTA:
            if to_v != self.blacklist.version:
                self.blacklist.apply_delta(from_v, to_v, adds, removes)
        else:
            if chunk == 0:
                self.blacklist.begin_snapshot(to_v)
            elif self._snapshot_to != (to_v, chunk):  # only the next chunk: a gap would lose card numbers
                return self._refuse("snapshot_order")
            self.blacklist.add_snapshot_chunk(adds)
            self._snapshot_to = (to_v, chunk + 1)
            if chunk + 1 < chunks:
                return None
            self.blacklist.finish_snapshot()
            self._snapshot_to = None
        # Confirmed current as of the hub's time, bounded like the contact (SPEC.md §5.3).
        updated = max(self.state.blacklist_updated_s, min(frame.time_s, self.board.clock()))
        self.wallet.blacklist_updated_s = updated
        self.state.blacklist_updated_s = updated
        self.state.save()
        if self.blacklist.version != held:   # not for the empty delta that confirms the list
            self._status_due = True
        return None

    def _sync_body(self):
        return frames.sync_body(self.blacklist.version, self.wallet.config.version if self.wallet.config else 0,
                                self.chunk_cards_max, self.credits.version if self.credits else 0,
                                self.prices_versions() if self.prices_versions else b"")

    def ask_sync(self):
        """Ask the hub for what changed since the versions held (a role that registered prices_versions)."""
        self._send_soon(frames.T_SYNC, self._sync_body())

    def on_refused(self, topic, size):
        """The link dropped a downlink frame too large for the heap: ask again in smaller pieces.

        topic "" is a frame dropped before its topic was read: this terminal subscribes to its down topic only."""
        if topic and topic != self.down_topic:
            return
        self._refuse("too_large")
        self._status_due = True
        self.chunk_cards_max = max(_CHUNK_CARDS_MIN, self.chunk_cards_max // 2)
        self._snapshot_to = None  # a snapshot under way misses a chunk: the hub sends it again whole
        self.ask_sync()

    def send_auth(self, admin_card_no, uid):
        """Report an admin card tap (SPEC.md §5.3 type 0x13); the hub answers with a command."""
        # Not delivered in time: the Authoriser times out and the technician taps again.
        self._send_soon(frames.T_AUTH, frames.auth_body(admin_card_no, uid))

    def _send_soon(self, ftype, body):
        sending = [task for task in self.sending if not task.done()]
        if len(sending) >= _SENDS_MAX:
            self.sends_refused += 1  # the hub times the request out; the terminal asks again later
        else:
            sending.append(asyncio.create_task(self._send_up(ftype, body)))
        self.sending = sending

    async def _send_up(self, ftype, body):
        try:
            await self.client.publish(self.up_topic, self._frame(ftype, body), 1, False, _SEND_TIMEOUT_MS)
        except Exception:  # noqa: BLE001 - not delivered in time: the hub times out and the terminal may try again
            self.send_errors += 1
