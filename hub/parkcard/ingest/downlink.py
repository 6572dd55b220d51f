"""Frames from the hub to terminals on parkcard/term-<id>/down (SPEC.md §5.3, §5.5).

Every downlink frame carries the terminal's downlink counter, strictly
increasing across hub restarts: counters are reserved in blocks of
COUNTER_RESERVE_BLOCK persisted before use, and a restart starts after the
last reserved block. The header time is the hub clock.

A frame that cannot be encoded (a value stored out of its wire range, e.g. by
an older hub) is never sent and never stops the frames of other terminals: it
is logged, counted (`unencodable`) and raised once as a `downlink` alarm. A
blacklisted card number outside the wire's range is left out of every
T_BLACKLIST (no terminal can hold it) with the same alarm, so the rest of the
list still reaches every terminal.
"""

import asyncio
import logging
import struct
import time

from protocol import frames, hub_credits, hub_frames, hub_price_list, price_list, topics
from protocol.card import CARD_NO_MAX, CARD_NO_MIN
from protocol.desk import DESK_SOURCE_ID
from protocol.errors import Malformed

from parkcard.domain import park_time, tickets
from parkcard.services import discounts, park, spend_rules

log = logging.getLogger("parkcard.ingest.downlink")

COUNTER_RESERVE_BLOCK = 1024
BLACKLIST_DELTA_VERSIONS_MAX = 256     # further behind (or unknown): a snapshot
BLACKLIST_CHUNK_CARDS_MAX = 4096       # 16 KB of card numbers per snapshot chunk or delta
ENCODE_ERRORS = (Malformed, struct.error, OverflowError, TypeError)
_FRAME_NAMES = {frames.T_ACK: "T_ACK", frames.T_BLACKLIST: "T_BLACKLIST", frames.T_CONFIG: "T_CONFIG",
                frames.T_TIME: "T_TIME", frames.T_COMMAND: "T_COMMAND", frames.T_CARD_WRITE: "T_CARD_WRITE",
                frames.T_PRICE_LIST: "T_PRICE_LIST", frames.T_DISCOUNTS: "T_DISCOUNTS", frames.T_CREDITS: "T_CREDITS",
                frames.T_SHIFTS: "T_SHIFTS", frames.T_STAFF: "T_STAFF"}


class Downlink:
    """Builds, counts and publishes downlink frames."""

    def __init__(self, storage, registry, publish):
        self.storage = storage
        self.registry = registry
        self.publish = publish      # publish(topic, payload) -> False when refused: QoS 1, not retained
        self._lock = asyncio.Lock()
        self.sent = 0
        self.unencodable = 0        # frames not sent because a value did not fit its field

    async def _counter(self, state):
        async with self._lock:
            if state.counter_down + 1 > state.counter_down_reserved:
                reserved = state.counter_down + COUNTER_RESERVE_BLOCK
                await self.storage.reserve_down_counters(state.id, reserved)
                state.counter_down_reserved = reserved
            state.counter_down += 1
            return state.counter_down

    async def _unencodable(self, terminal_id, what, exc, card_no=None):
        """Log, count and raise an alarm (once per distinct cause) for a frame or value that was not sent."""
        self.unencodable += 1
        log.error("event=downlink_unencodable terminal=%s frame=%s error=%r", terminal_id, what, exc)
        await self.storage.add_alarm_once("downlink", "%s not sent: %s" % (what, exc), card_no=card_no,
                                          terminal_id=terminal_id)

    async def send(self, terminal_id, ftype, body=b""):
        """Publish one frame to a terminal; return the payload (None: unknown terminal, not encodable, or
        refused by the link's bound: parkcard.transport.mqtt_link.DOWNLINK_QUEUED_MAX)."""
        state = self.registry.get(terminal_id)
        if state is None or terminal_id == DESK_SOURCE_ID:    # the hub's own desk records: no device listens
            return None
        if callable(body):      # built here, so that a value out of range costs this frame only
            try:
                body = body()
            except ENCODE_ERRORS as exc:
                await self._unencodable(terminal_id, _FRAME_NAMES.get(ftype, "frame 0x%02x" % ftype), exc)
                return None
        counter = await self._counter(state)
        payload = frames.encode(state.frame_mac, ftype, terminal_id, counter, int(time.time()), body)
        if self.publish(topics.topic(terminal_id, topics.DOWN), payload) is False:
            return None     # counted by the link; the counter is spent, which a terminal allows (gaps are fine)
        self.sent += 1
        return payload

    async def ack(self, terminal_id, upto_seq, applied, rejected):
        """T_ACK: every record with seq <= upto_seq is durably stored."""
        return await self.send(terminal_id, frames.T_ACK,
                               lambda: hub_frames.ack_body(upto_seq, min(applied, 0xFFFF), min(rejected, 0xFFFF)))

    async def time(self, terminal_id):
        """T_TIME: the header carries the hub clock."""
        return await self.send(terminal_id, frames.T_TIME)

    async def command(self, terminal_id, command, argument=0):
        """T_COMMAND."""
        return await self.send(terminal_id, frames.T_COMMAND, lambda: hub_frames.command_body(command, argument))

    async def config(self, terminal_id):
        """T_CONFIG from the terminal's registry entry and the park's offline rules; a gate's with its gate
        config in the tail (SPEC.md §5.8), a pos or ride terminal's with its consumption rules (§5.10)."""
        state = self.registry.get(terminal_id)
        version, tail, rules = await self._versioned_tail(state)
        cfg = frames.Config(version=version, role=state.role, merchant_id=state.merchant_id,
                            fixed_price_cents=state.fixed_price_cents, daily_cap_cents=rules.offline_daily_cap_cents,
                            max_offline_s=rules.offline_window_s, category=state.category, park_id=state.park_id)
        cfg.tail = tail
        sent = await self.send(terminal_id, frames.T_CONFIG, cfg.encode)
        if sent is not None and state.role == frames.ROLE_POS:
            await self.shifts(terminal_id)
            await self.staff(terminal_id)
        return sent

    async def shifts(self, terminal_id):
        """T_SHIFTS: whether the booth refuses sales with no staff shift open (SPEC.md §4.14)."""
        required = await self.storage.shift_required(terminal_id)
        return await self.send(terminal_id, frames.T_SHIFTS, hub_frames.shifts_body(required))

    async def staff(self, terminal_id):
        """T_STAFF: the staff cards of the booth's merchant, who alone open its shifts, and the park's UTC offset
        its day counts by (SPEC.md §5.11); None for a terminal that is no booth."""
        state = self.registry.get(terminal_id)
        if state is None or state.role != frames.ROLE_POS:
            return None
        cards = [m.card_no for m in await self.storage.staff(state.merchant_id) if m.card_no is not None]
        zone = park_time.zone_fields(await park.zone_of(self.storage), int(time.time()))
        return await self.send(terminal_id, frames.T_STAFF, lambda: hub_frames.staff_body(zone, cards))

    async def push_staff(self):
        """Send every booth its merchant's staff list and the park's offset (a staff card issued, the zone set)."""
        for terminal_id in sorted(self.registry.terminals):
            await self.staff(terminal_id)

    async def _versioned_tail(self, state):
        """(T_CONFIG version, tail, the park's rows.DeskSettings): the version moves with the role's tail and with
        the park's offline rules (parkcard.services.park.set_offline_rules)."""
        version, tail = await self._tail(state)
        rules = await self.storage.desk_settings()
        return tickets.config_version(state.config_version, version + rules.offline_rules_version), tail, rules

    async def _tail(self, state):
        """(version, T_CONFIG tail) of the terminal's role: a gate's config, a pos or ride terminal's consumption
        rules (the park's rules version: its T_CONFIG version moves when they change), (0, b"") otherwise."""
        if state.role in (frames.ROLE_POS, frames.ROLE_RIDE):
            return await spend_rules.terminal_tail(self.storage, state.merchant_id, state.category)
        if state.role != frames.ROLE_GATE:
            return 0, b""
        rows = await self.storage.gates(state.id)
        if not rows:
            return 0, b""
        products = {p.id: tickets.ProductRule(*p[2:]) for p in await self.storage.ticket_products()}
        zone = park_time.zone_fields(await park.zone_of(self.storage), int(time.time()))
        return tickets.gate_tail(rows[0], products, zone)

    async def blacklist(self, terminal_id, from_version, chunk_cards_max=0):
        """Send what a terminal at from_version lacks: a delta, or a chunked snapshot, in frames of at most
        chunk_cards_max cards (0: BLACKLIST_CHUNK_CARDS_MAX; SPEC.md §5.5); return how many frames."""
        bodies = await self._blacklist_bodies(from_version, chunk_cards_max)
        for body in bodies:
            await self.send(terminal_id, frames.T_BLACKLIST, body)
        return len(bodies)

    async def _blacklist_bodies(self, from_version, chunk_cards_max=0):
        """The T_BLACKLIST bodies that bring a list at from_version to the current version."""
        chunk_max = min(chunk_cards_max or BLACKLIST_CHUNK_CARDS_MAX, BLACKLIST_CHUNK_CARDS_MAX)
        current = await self.storage.blacklist_version()
        if from_version == current:
            # An empty delta confirms the terminal's list is current: its offline
            # rules refuse taps once the list is older than blacklist_max_age_s.
            return [hub_frames.blacklist_body(current, current, frames.BL_DELTA, 0, 1, [], [])]
        changes = []
        if 0 <= from_version < current and current - from_version <= BLACKLIST_DELTA_VERSIONS_MAX:
            changes = await self.storage.blacklist_changes(from_version)
        last = {}
        for _version, card_no, action in changes:
            if await self._sendable_card(card_no):
                last[card_no] = action
        if changes and len(last) <= chunk_max:
            adds = sorted(c for c, a in last.items() if a == "add")
            removes = sorted(c for c, a in last.items() if a == "remove")
            return [hub_frames.blacklist_body(from_version, current, frames.BL_DELTA, 0, 1, adds, removes)]
        cards = [c for c in await self.storage.blacklist_cards() if await self._sendable_card(c)]
        chunks = max(1, -(-len(cards) // chunk_max))
        return [hub_frames.blacklist_body(0, current, frames.BL_SNAPSHOT, i, chunks,
                                      cards[i * chunk_max:(i + 1) * chunk_max], [])
                for i in range(chunks)]

    async def _sendable_card(self, card_no):
        """True if a blacklisted card number fits T_BLACKLIST; else alarm once and leave it out."""
        if CARD_NO_MIN <= card_no <= CARD_NO_MAX:
            return True
        await self._unencodable(None, "blacklist entry", "card number %d outside %d..%d: left out of every "
                                "T_BLACKLIST; remove it with `parkcard blacklist remove %d`"
                                % (card_no, CARD_NO_MIN, CARD_NO_MAX, card_no), card_no=card_no)
        return False

    async def push_blacklist(self, from_version):
        """Send every terminal the delta from_version -> current (a terminal elsewhere asks by T_SYNC).

        The bodies are built once for all terminals.
        """
        bodies = await self._blacklist_bodies(from_version)
        for terminal_id in sorted(self.registry.terminals):
            for body in bodies:
                await self.send(terminal_id, frames.T_BLACKLIST, body)

    async def prices(self, terminal_id, held=None):
        """Send a booth what it lacks of its merchant's price list and discount rules (SPEC.md §7); return
        how many frames. held: (merchant_id, list version, rules version) its T_SYNC named; None: send both."""
        state = self.registry.get(terminal_id)
        if state is None or state.role != frames.ROLE_POS:
            return 0
        merchant_id = state.merchant_id
        bodies = []
        listed = await self.storage.price_list(merchant_id)
        if listed is not None and (held is None or tuple(held[:2]) != (merchant_id, listed.version)):
            try:
                bodies += [(frames.T_PRICE_LIST, body) for body in hub_price_list.entries_bodies(
                    merchant_id, listed.version, listed.entries,
                    price_list.LIST_FREE_AMOUNT if listed.free_amount else 0)]
            except ENCODE_ERRORS as exc:
                await self._unencodable(terminal_id, "T_PRICE_LIST", exc)
        rules = await discounts.merchant_rules(self.storage, merchant_id)
        if rules.version and (held is None or tuple(held[::2]) != (merchant_id, rules.version)):
            bodies.append((frames.T_DISCOUNTS, lambda: hub_price_list.discounts_body(merchant_id, rules)))
        for ftype, body in bodies:
            await self.send(terminal_id, ftype, body)
        return len(bodies)

    async def push_spend_rules(self):
        """Send every pos and ride terminal its T_CONFIG with the consumption rules in force (SPEC.md §5.10)."""
        for terminal_id, state in sorted(self.registry.terminals.items()):
            if state.role in (frames.ROLE_POS, frames.ROLE_RIDE):
                await self.config(terminal_id)

    async def push_prices(self):
        """Send every booth its merchant's newest price list and discount rules (a booth holding them ignores them)."""
        for terminal_id in sorted(self.registry.terminals):
            await self.prices(terminal_id)

    async def answer_sync(self, terminal_id, blacklist_version, config_version, chunk_cards_max=0,
                          credits_version=None, prices=None):
        """Answer T_SYNC with what the terminal lacks, then T_TIME; prices: what a booth's T_SYNC named."""
        state = self.registry.get(terminal_id)
        await self.blacklist(terminal_id, blacklist_version, chunk_cards_max)
        version, _tail, _rules = await self._versioned_tail(state)
        if config_version != version:
            await self.config(terminal_id)
        if credits_version is not None:     # a terminal that names no version takes no credits list
            await self.credits(terminal_id, credits_version)
        if prices is not None:
            await self.prices(terminal_id, prices)
            await self.shifts(terminal_id)  # a booth's sync: the role that takes it is serving now
            await self.staff(terminal_id)
        await self.time(terminal_id)

    async def credits(self, terminal_id, held_version=None):
        """Send the pending credits list (SPEC.md §8.2) unless the terminal holds its version; return frames sent."""
        version, listed = await self.storage.credits_list()
        if version == 0 or held_version == version:
            return 0
        bodies = hub_credits.credits_bodies(version, listed)
        for body in bodies:
            await self.send(terminal_id, frames.T_CREDITS, body)
        await self.storage.credits_sent([c[:2] for c in listed])   # a terminal may hold them: not cancellable
        return len(bodies)

    async def push_credits(self):
        """Send the pending credits list to every terminal (after a grant or a cancel)."""
        for terminal_id in sorted(self.registry.terminals):
            await self.credits(terminal_id)
