"""Frames from the hub to terminals on parkcard/term-<id>/down (SPEC.md §5.3, §5.5).

Every downlink frame carries the terminal's downlink counter, strictly
increasing across hub restarts: counters are reserved in blocks of
COUNTER_RESERVE_BLOCK persisted before use, and a restart starts after the
last reserved block. The header time is the hub clock.
"""

import asyncio
import logging
import time

from protocol import frames, hub_frames, topics

log = logging.getLogger("parkcard.downlink")

COUNTER_RESERVE_BLOCK = 1024
BLACKLIST_DELTA_VERSIONS_MAX = 256     # further behind (or unknown): a snapshot
BLACKLIST_CHUNK_CARDS_MAX = 4096       # 16 KB of card numbers per snapshot chunk or delta


class Downlink:
    """Builds, counts and publishes downlink frames."""

    def __init__(self, storage, registry, publish):
        self.storage = storage
        self.registry = registry
        self.publish = publish      # publish(topic, payload): QoS 1, not retained
        self._lock = asyncio.Lock()
        self.sent = 0

    async def _counter(self, state):
        async with self._lock:
            if state.counter_down + 1 > state.counter_down_reserved:
                reserved = state.counter_down + COUNTER_RESERVE_BLOCK
                await self.storage.reserve_down_counters(state.id, reserved)
                state.counter_down_reserved = reserved
            state.counter_down += 1
            return state.counter_down

    async def send(self, terminal_id, ftype, body=b""):
        """Publish one frame to a terminal; return the payload (None for an unknown terminal)."""
        state = self.registry.get(terminal_id)
        if state is None:
            return None
        counter = await self._counter(state)
        payload = frames.encode(state.frame_mac, ftype, terminal_id, counter, int(time.time()), body)
        self.publish(topics.topic(terminal_id, topics.DOWN), payload)
        self.sent += 1
        return payload

    async def ack(self, terminal_id, upto_seq, applied, rejected):
        """T_ACK: every record with seq <= upto_seq is durably stored."""
        return await self.send(terminal_id, frames.T_ACK,
                               hub_frames.ack_body(upto_seq, min(applied, 0xFFFF), min(rejected, 0xFFFF)))

    async def time(self, terminal_id):
        """T_TIME: the header carries the hub clock."""
        return await self.send(terminal_id, frames.T_TIME)

    async def command(self, terminal_id, command, argument=0):
        """T_COMMAND."""
        return await self.send(terminal_id, frames.T_COMMAND, hub_frames.command_body(command, argument))

    async def config(self, terminal_id):
        """T_CONFIG from the terminal's registry entry and the park's offline rules."""
        state = self.registry.get(terminal_id)
        cfg = frames.Config(version=state.config_version, role=state.role, merchant_id=state.merchant_id,
                            fixed_price_cents=state.fixed_price_cents, category=state.category,
                            park_id=state.park_id)
        return await self.send(terminal_id, frames.T_CONFIG, cfg.encode())

    async def blacklist(self, terminal_id, from_version):
        """Send what a terminal at from_version lacks: a delta, or a chunked snapshot; return how many frames."""
        bodies = await self._blacklist_bodies(from_version)
        for body in bodies:
            await self.send(terminal_id, frames.T_BLACKLIST, body)
        return len(bodies)

    async def _blacklist_bodies(self, from_version):
        """The T_BLACKLIST bodies that bring a list at from_version to the current version."""
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
            last[card_no] = action
        if changes and len(last) <= BLACKLIST_CHUNK_CARDS_MAX:
            adds = sorted(c for c, a in last.items() if a == "add")
            removes = sorted(c for c, a in last.items() if a == "remove")
            return [hub_frames.blacklist_body(from_version, current, frames.BL_DELTA, 0, 1, adds, removes)]
        cards = await self.storage.blacklist_cards()
        chunks = max(1, -(-len(cards) // BLACKLIST_CHUNK_CARDS_MAX))
        return [hub_frames.blacklist_body(0, current, frames.BL_SNAPSHOT, i, chunks,
                                      cards[i * BLACKLIST_CHUNK_CARDS_MAX:(i + 1) * BLACKLIST_CHUNK_CARDS_MAX], [])
                for i in range(chunks)]

    async def push_blacklist(self, from_version):
        """Send every terminal the delta from_version -> current (a terminal elsewhere asks by T_SYNC).

        The bodies are built once for all terminals.
        """
        bodies = await self._blacklist_bodies(from_version)
        for terminal_id in sorted(self.registry.terminals):
            for body in bodies:
                await self.send(terminal_id, frames.T_BLACKLIST, body)

    async def answer_sync(self, terminal_id, blacklist_version, config_version):
        """Answer T_SYNC with what the terminal lacks, then T_TIME."""
        state = self.registry.get(terminal_id)
        await self.blacklist(terminal_id, blacklist_version)
        if config_version != state.config_version:
            await self.config(terminal_id)
        await self.time(terminal_id)
