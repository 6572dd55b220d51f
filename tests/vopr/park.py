"""The simulated park: hub process, broker, network, terminals and visitors, and the single steps that move it.

Every method here does one thing the runner chose and returns a line for the
trace. The hub runs as the real parkcard.app.Hub (its run() is the
process) on a real SQLite file, its MqttLink replaced by a SimLink; each
step awaits the hub until its consumer is parked again, so the order of
effects is fixed by the seed, not by threads.
"""

import asyncio
import json
import os
import sqlite3
from collections import deque

from protocol import card_issue
from protocol import topics
from protocol.desk import DESK_SOURCE_ID, OP_WRITE

from parkcard.app import Hub

from vopr.auditor import Auditor
from vopr.flash import PowerCut
from vopr.net import BROKER, Broker, HubKilled, Network, SimLink, digest
from vopr.terminals import SimTerminal, TerminalPlan, Visitor

PLAN_FILE = "plan.json"
DESK_TERMINAL_ID = 1        # the hub's front desk (template.DESK_ID)
DB_FILE = "parkcard.db"
HUB_SETTLE_WALL_S = 60      # a hub that does not park again within this is hung (reported, never waited out)
DISK_FULL = "database or disk is full"
DESK_TURNS = 8              # event loop turns for the firmware's and the hub's tasks between desk rounds
DESK_WAIT_S = 0.0005


def _writes(job):
    """True for a desk order that writes the card (terminal.roles.desk.CardWriter's job)."""
    return isinstance(job[2], tuple) and job[2][0] == OP_WRITE


def _contains(exc, kind):
    """True when exc is kind or an exception group holding one."""
    if isinstance(exc, kind):
        return True
    return isinstance(exc, BaseExceptionGroup) and any(_contains(e, kind) for e in exc.exceptions)


def _dispatch(sim_terminal, packet):
    """Hand a downlink to Sync as terminal.mqtt.MQTTClient._dispatch does: a callback's error is counted, not raised."""
    try:
        sim_terminal.sync.on_message(packet.topic, packet.payload, False)
    except Exception as exc:  # noqa: BLE001 - the client's rule: the callback's bug must not kill the link
        return ", callback error %r" % (exc,)
    return None


class Park:
    """One park on disk (workdir) driven step by step."""

    def __init__(self, workdir, clock, flash_files, suppressed=()):
        self.workdir = workdir
        self.clock = clock
        self.flash_files = flash_files
        with open(os.path.join(workdir, PLAN_FILE)) as f:
            plan = json.load(f)
        self.park_keys = card_issue.ParkKeys(*(bytes.fromhex(k) for k in plan["park_keys"]))
        self.transport_key = bytes.fromhex(plan["transport_key"])
        self.plans = [TerminalPlan.from_json(p) for p in plan["terminals"]]
        self.network = Network()
        self.broker = Broker(self.network)
        self.terminals = {p.terminal_id: self._terminal(p) for p in self.plans if p.terminal_id in plan["booths"]}
        # The front desk's terminal: booted at the first desk operation, and never faulted itself (a seed
        # without desk operations runs as it did before the desk had a terminal in the run).
        self.desk = self.terminals.get(DESK_TERMINAL_ID) or next(
            (self._terminal(p) for p in self.plans if p.terminal_id == DESK_TERMINAL_ID), None)
        self.desk_pending = {}      # card_no -> (op_id, cash_cents) of a top-up left pending: retried next time
        self.desk_ops = 0
        self.visitors = [Visitor(v["card_no"], bytes.fromhex(v["uid"]),
                                 {int(b): bytes.fromhex(d) for b, d in v["blocks"].items()}, self.park_keys)
                         for v in plan["visitors"]]
        self.db_path = os.path.join(workdir, DB_FILE)
        self.auditor = Auditor(self.db_path, self.plans, {t: s.root for t, s in self.terminals.items()},
                               self.visitors, suppressed)
        self.hub = None
        self.hub_task = None
        self.link = None
        self.disk_full_writes = 0       # the next n storage writes fail as a full disk
        self.disk_full_hit = 0          # ... and how many did
        self.kill_write = None          # (writes to go, "before" | "after" the commit)
        self.dumps = {}                 # card_no -> memory image (fraud)
        self.last_hub_exit = None
        self.hits_at_start = 0

    def _terminal(self, plan):
        root = os.path.join(self.workdir, "term-%d" % plan.terminal_id)
        return SimTerminal(plan, root, self.clock, self.network, self.flash_files.flash(root))

    def hub_kwargs(self):
        """What the Hub needs besides its database: the park's keys."""
        return {"park_keys": self.park_keys, "transport_key": self.transport_key}

    # -- the hub process
    async def start_hub(self):
        """Start a hub process on the database (a restart rebuilds every hub object from the file)."""
        hub = Hub(self.db_path, **self.hub_kwargs())
        link = SimLink(self.broker, self.auditor.on_downlink)
        hub.link = link
        hub.downlink.publish = link.publish
        hub.storage.write = self._faulty_write(hub.storage.write)
        self.hub, self.link = hub, link
        self.hits_at_start = self.disk_full_hit
        self.hub_task = asyncio.create_task(hub.run(), name="simulated-hub")
        await self.settle_hub()
        return "hub started" if self.hub is not None else "hub did not start"

    def _faulty_write(self, write):
        async def faulty_write(fn, audit=None):
            if self.disk_full_writes > 0:
                self.disk_full_writes -= 1
                self.disk_full_hit += 1
                raise sqlite3.OperationalError(DISK_FULL)
            when = None
            if self.kill_write is not None:
                left, when = self.kill_write
                self.kill_write = (left - 1, when) if left > 1 else None
                when = when if left <= 1 else None
            if when == "before":
                raise HubKilled("killed before a transaction")
            result = await write(fn, audit)
            if when == "after":
                raise HubKilled("killed after a commit, before anything else")
            return result
        return faulty_write

    async def settle_hub(self):
        """Wait until the hub's consumer has done everything it was given, or the hub process ended."""
        if self.hub_task is None:
            return
        parked = asyncio.ensure_future(self.link.wait_parked())
        done, _ = await asyncio.wait({parked, self.hub_task}, timeout=HUB_SETTLE_WALL_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if parked not in done:
            parked.cancel()
        if self.hub_task in done:
            await self._hub_ended(False)
        elif not done:
            self.auditor.hub_stalled("the hub's consumer did not park within %d s" % HUB_SETTLE_WALL_S)
            await self.crash_hub()

    async def _hub_ended(self, intended):
        task, hub, link = self.hub_task, self.hub, self.link
        self.hub_task = self.hub = self.link = None
        exc = None if task.cancelled() else task.exception()
        # What the end of the process would release: a consumer that died leaves them open (Hub.stop re-raises).
        await hub.storage.close()
        if getattr(hub, "notices", None) is not None:
            hub.notices.close()
        if getattr(hub, "lock", None) is not None:
            hub.lock.release()              # the kernel drops a dead process's flock
        await link.stop()
        if not intended and not _contains(exc, HubKilled):
            self.auditor.hub_stopped(exc, explained=self.disk_full_hit > self.hits_at_start)
        self.last_hub_exit = exc

    async def crash_hub(self):
        """Kill the hub process between two of its steps."""
        if self.hub_task is None:
            return "hub already down"
        self.hub_task.cancel()
        try:
            await self.hub_task
        except BaseException:  # noqa: BLE001 - a killed process ends however it ends
            pass
        await self._hub_ended(True)
        return "hub killed"

    def hub_up(self):
        """True while a hub process runs."""
        return self.hub_task is not None

    async def hub_consume(self, count):
        """The broker hands the hub up to count messages; wait for the hub to be done with them."""
        if not self.hub_up():
            return "hub down"
        hits = self.disk_full_hit
        handed = self.broker.hand_to_hub(count)
        if not handed:
            return "nothing for the hub"
        await self.settle_hub()
        if self.hub_up() and self.disk_full_hit == hits and self.broker.hub_inflight:
            self.auditor.hub_stalled("%d messages handed to the hub never acknowledged" % len(self.broker.hub_inflight))
        return "hub took %d%s" % (handed, "" if self.hub_up() else ", then died: %r" % (self.last_hub_exit,))

    async def operator(self, action, card_no):
        """An operator blacklists a card or takes it off through the hub's service."""
        if not self.hub_up():
            return "hub down"
        try:
            if action == "add":
                version = await self.hub.blacklist_add(card_no, "operator")
            else:
                version = await self.hub.blacklist_remove(card_no, "operator")
        except HubKilled:
            await self.crash_hub()
            return "blacklist %s card %d: hub died" % (action, card_no)
        except sqlite3.OperationalError as exc:
            return "blacklist %s card %d failed: %s" % (action, card_no, exc)
        await self.settle_hub()
        return "blacklist %s card %d -> version %s" % (action, card_no, version)

    async def at_desk(self, virtual, operation, pull_before_write=False):
        """Run a desk operation (a coroutine of parkcard.services.desk) with the card on the desk terminal.

        Every message is delivered and the desk's reader polled until the operation ends; when it waits
        for a desk that cannot answer (card pulled, desk away) it is cancelled, as a cashier gives up:
        (result or the exception it raised, pulled: the card left before the write).
        """
        desk = self.desk
        if not desk.alive:
            await self.boot(desk)
        await self.refresh_links()
        field = desk.board.field
        field.add(virtual)
        task = asyncio.ensure_future(operation)
        pulled = False
        try:
            while not task.done():
                moved = False
                while self.network.in_flight:
                    await self.deliver(0)
                    moved = True
                if self.broker.hub_queue and self.hub_up():
                    await self.hub_consume(len(self.broker.hub_queue))
                    moved = True
                writer = desk.terminal.card_writer if desk.alive else None
                if writer is not None and writer.job is not None:
                    if pull_before_write and _writes(writer.job) and virtual in field.cards:
                        field.remove(virtual)
                        pulled = True
                    moved = writer.poll() is not None or moved
                for _ in range(DESK_TURNS):     # the firmware's send tasks and the hub's own (no thread)
                    await asyncio.sleep(0)
                if not moved and not self.network.in_flight and not self.broker.hub_queue and self.hub_up() \
                        and self.hub.desk_link.waiting():
                    task.cancel()               # the desk cannot answer: the operation stays as the hub kept it
                    if writer is not None:
                        writer.job = None       # the cashier cancels it on the desk too
                if not self.hub_up():
                    task.cancel()
                await asyncio.sleep(DESK_WAIT_S)    # the hub's database round trips (its writer thread)
        finally:
            if virtual in field.cards:
                field.remove(virtual)
        try:
            return task.result(), pulled
        except asyncio.CancelledError:
            return asyncio.CancelledError("no answer from the desk"), pulled
        except (HubKilled, Exception) as exc:  # noqa: BLE001 - the step reports the refusal, or the hub's death
            return exc, pulled

    async def desk_top_up(self, visitor, cash_cents, pulled):
        """A cashier tops a card up at the desk through the real path; the card may be pulled before the write.

        A top-up left pending (card pulled, desk unanswered) is retried with its operation id at the card's
        next top-up, as the cashier would: resolved by reading the card, never charged twice.
        """
        if not self.hub_up() or not self.broker.up:
            return "hub down" if not self.hub_up() else "broker down: the desk is offline"
        before = visitor.slot()
        op_id, cash_cents = self.desk_pending.get(visitor.card_no) or ("vopr-%d-%d" % (visitor.card_no, self.desk_ops),
                                                                        cash_cents)
        self.desk_ops += 1
        result, was_pulled = await self.at_desk(visitor.virtual, self.hub.desk(DESK_TERMINAL_ID).top_up(
            op_id, cash_cents), pull_before_write=pulled)
        if isinstance(result, HubKilled) or not self.hub_up():
            await self.crash_hub()
            self.desk_pending[visitor.card_no] = (op_id, cash_cents)
            return "top-up %s of card %d: hub died" % (op_id, visitor.card_no)
        await self.settle_hub()
        after = visitor.slot()
        if after.counter != before.counter:
            self.auditor.on_card_write(visitor.card_no, DESK_SOURCE_ID, before, after)
        if isinstance(result, BaseException):
            if "pending" in str(result) or isinstance(result, asyncio.CancelledError):
                self.desk_pending[visitor.card_no] = (op_id, cash_cents)
            else:
                self.desk_pending.pop(visitor.card_no, None)
            return "top-up %s of card %d by %d cents not done%s: %s" % (
                op_id, visitor.card_no, cash_cents, ", card pulled" if was_pulled else "", result)
        self.desk_pending.pop(visitor.card_no, None)
        return "top-up %s of card %d by %d cents posted as desk seq %d" % (op_id, visitor.card_no, cash_cents,
                                                                           result.record_seq)

    # -- links
    def wants_link(self, sim_terminal):
        """A terminal is connected when it is powered, the broker is up and the network lets it through."""
        return (sim_terminal.alive and self.broker.up
                and sim_terminal.terminal_id not in self.network.partitioned)

    async def refresh_links(self):
        """Bring sessions up or down after a fault changed who can reach whom."""
        if self.hub_up() and self.broker.up and self.broker.hub_link is None:
            self.link.reconnect()
        for sim_terminal in self._linked():
            want = self.wants_link(sim_terminal)
            client = sim_terminal.client
            if want and not client.connected:
                client.connected = True
                self.broker.connect_terminal(sim_terminal.terminal_id)
                await self.on_terminal(sim_terminal, sim_terminal.sync.on_connect())
            elif not want and client is not None and client.connected:
                client.connected = False
                self.broker.disconnect_terminal(sim_terminal.terminal_id)

    def _linked(self):
        """The terminals whose sessions follow the network: the booths, and the desk once booted."""
        booths = list(self.terminals.values())
        return booths + [self.desk] if self.desk is not None and self.desk.alive and self.desk not in booths \
            else booths

    # -- terminals
    async def on_terminal(self, sim_terminal, work):
        """Run firmware work (a coroutine or a callable); return its result, PowerCut, or the exception it raised.

        A power cut kills the terminal; an exception is returned for the caller to judge, as the firmware's
        loops do (upload and status rounds count it and try again, a tap must never raise).
        """
        try:
            result = await work if asyncio.iscoroutine(work) else work()
            await asyncio.sleep(0)      # tasks the firmware started (T_SYNC after a version gap) run now
            return result
        except PowerCut:
            if asyncio.iscoroutine(work):
                work.close()
            self.power_lost(sim_terminal)
            return PowerCut
        except Exception as exc:  # noqa: BLE001 - see the docstring
            return exc
        finally:
            payloads = self._drain_published(sim_terminal)
            self.auditor.produced(payloads)
            sim_terminal.history.extend(payloads)

    def _drain_published(self, sim_terminal):
        client = sim_terminal.client
        if client is None:
            return []
        out, client.published = client.published, []
        return out

    def power_lost(self, sim_terminal):
        """A terminal lost its power."""
        sim_terminal.power_lost()
        self.broker.disconnect_terminal(sim_terminal.terminal_id)

    async def boot(self, sim_terminal):
        """Power a dead terminal back on (journal recovery, boot counter, keys from the key store)."""
        try:
            sim_terminal.boot()
        except PowerCut:
            self.power_lost(sim_terminal)
            return "term-%d: power cut during boot" % sim_terminal.terminal_id
        except Exception as exc:  # noqa: BLE001 - a terminal that cannot boot from its own flash is a finding
            self.auditor.fail("boot_failed", "term-%d: %r" % (sim_terminal.terminal_id, exc))
            sim_terminal.alive = False
            return "term-%d failed to boot: %r" % (sim_terminal.terminal_id, exc)
        await self.refresh_links()
        return "term-%d booted (boot %d)" % (sim_terminal.terminal_id, sim_terminal.terminal.state.boot)

    async def tap(self, sim_terminal, visitor, amount_cents, fault=None, retry_seq=0, balance_only=False):
        """A visitor holds a card to a terminal; fault: ("pull", nth command) or ("tear", bytes kept)."""
        field = sim_terminal.board.field
        field.add(visitor.virtual)
        if fault is not None and fault[0] == "pull":
            field.remove_after(fault[1], visitor.virtual)
        elif fault is not None:
            field.tear_next_write(fault[1], visitor.virtual)
        before = visitor.slot()
        wallet = sim_terminal.wallet
        try:
            result = await self.on_terminal(sim_terminal, lambda: wallet.balance() if balance_only
                                            else wallet.debit(amount_cents, retry_seq=retry_seq))
            if isinstance(result, Exception):     # the wallet promises a Result, never an exception
                self.auditor.fail("terminal_error", "term-%d tap of card %d: %r" % (
                    sim_terminal.terminal_id, visitor.card_no, result))
        finally:
            field.remove(visitor.virtual)
            visitor.virtual.tear_keep = None    # a tear armed for a write that never came is not the next tap's
        after = visitor.slot()
        if after.counter != before.counter:
            self.auditor.on_card_write(visitor.card_no, sim_terminal.terminal_id, before, after)
        if result is PowerCut:
            return "power cut", None
        if isinstance(result, Exception):
            return "error %r" % (result,), None
        return ("ok" if result.ok else result.reason), result

    async def upload(self, sim_terminal):
        """One round of the terminal's upload loop: send the oldest unsynced records."""
        if not sim_terminal.client.connected:
            return "offline"
        frame = await self.on_terminal(sim_terminal, sim_terminal.sync.upload_frame)
        if frame is PowerCut:
            return "power cut"
        if isinstance(frame, Exception):
            return "upload round failed: %r" % (frame,)
        if frame is None:
            return "nothing to upload"
        await self.on_terminal(sim_terminal, sim_terminal.client.publish(sim_terminal.sync.up_topic, frame))
        return "upload %s" % digest(frame)

    async def status(self, sim_terminal):
        """The terminal's periodic status and sync request."""
        if not sim_terminal.client.connected:
            return "offline"
        outcome = await self.on_terminal(sim_terminal, sim_terminal.sync.on_connect())
        if isinstance(outcome, Exception):
            return "status round failed: %r" % (outcome,)
        return "power cut" if outcome is PowerCut else "status and sync"

    async def deliver(self, index):
        """Deliver one packet in flight (index 0 is the oldest: anything else is a reordering)."""
        packet = self.network.take(index)
        if packet.dst == BROKER:
            self.broker.receive(packet)
            return "%s -> broker %s" % (packet.topic, digest(packet.payload))
        sim_terminal = self.terminals.get(packet.dst) or (self.desk if packet.dst == DESK_TERMINAL_ID else None)
        if sim_terminal is None or not sim_terminal.alive or not sim_terminal.client.connected:
            if self.broker.up:          # not acknowledged by the terminal: its session keeps it
                self.broker.term_queue.setdefault(packet.dst, deque()).append((packet.topic, packet.payload))
            return "to term-%s: away, requeued" % packet.dst
        outcome = await self.on_terminal(sim_terminal, lambda: _dispatch(sim_terminal, packet))
        return "broker -> term-%d %s%s" % (packet.dst, digest(packet.payload),
                                           ", power cut" if outcome is PowerCut else outcome or "")

    def inject(self, topic, payload):
        """Somebody on the broker publishes on a hub-subscribed topic."""
        self.broker.publish_to_hub(topic, payload)
        return "injected on %s %s" % (topics.terminal_of(topic) if topic.isascii() else repr(topic), digest(payload))

    def cards_now(self):
        """{card_no: slot in force} of every visitor's card."""
        return {v.card_no: v.slot() for v in self.visitors}

    async def close(self):
        """Stop the hub and power every terminal off."""
        if self.hub_up():
            await self.crash_hub()
        for sim_terminal in self.terminals.values():
            if sim_terminal.alive:
                sim_terminal.power_lost()
        self.auditor.close()
