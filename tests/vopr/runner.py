"""Run one seed: the fault phase (every step chosen by the seed), the drain, the auditor; replay and shrink.

    outcome = run_seed(42)                  # Options() by default: every fault that holds today
    outcome.ok, outcome.violations, outcome.faults
    short = shortest(42, options)           # the first failing step, or the fewest fault steps that still fail
    print(short.report())

Same seed and options, same trace: every choice comes from one
random.Random(seed), time from the simulated clock, and each step awaits the
hub until it is parked again.
"""

import asyncio
import contextlib
import logging
import random
import shutil
import tempfile
from collections import Counter

from protocol import frames, topics

from parkcard import service

from vopr import template
from vopr.clock import EPOCH_S, SimClock, hub_reads
from vopr.faults import FAULT_RATE, STEP_WEIGHTS, Options
from vopr.flash import FlashFiles
from vopr.net import digest
from vopr.park import Park
from vopr.terminals import uncertain_on

POISONED_TOPIC = "parkcard/term-\u00b2/up"     # '²'.isdigit() is True, int('²') raises
FINAL_TAP_CENTS = 10
DRAIN_ROUND_S = 300


class Outcome:
    """What one run did and found."""

    def __init__(self, seed, options, fault_steps):
        self.seed = seed
        self.options = options
        self.fault_steps = fault_steps
        self.trace = []
        self.violations = []
        self.faults = Counter()
        self.acks_checked = 0
        self.suppressed = Counter()     # known-weak checks that would have failed

    @property
    def ok(self):
        """True when no invariant broke."""
        return not self.violations

    @property
    def first_step(self):
        """The step of the first violation (None when ok)."""
        return min(v.step for v in self.violations) if self.violations else None

    def report(self, trace_lines=None):
        """The seed, the violations and the trace (up to the first failing step)."""
        upto = len(self.trace) if self.first_step is None else self.first_step + 1
        lines = self.trace[:upto] if trace_lines is None else self.trace[:trace_lines]
        out = ["seed %d (%s, fault steps %d): %s" % (self.seed, self.options.describe(), self.fault_steps,
                                                     "OK" if self.ok else "%d violations" % len(self.violations))]
        out += ["  %r" % v for v in self.violations[:20]]
        out += ["trace:"] + ["  " + line for line in lines]
        return "\n".join(out)


def run_seed(seed, options=None, fault_steps=None):
    """Run one seed to the end (fault phase, drain, final audit); return its Outcome."""
    options = options or Options()
    fault_steps = options.steps if fault_steps is None else fault_steps
    outcome = Outcome(seed, options, fault_steps)
    source = template.template(options.terminals, options.cards)
    workdir = tempfile.mkdtemp(prefix="parkcard-vopr-", dir=template.scratch_root())
    shutil.rmtree(workdir)
    template.copy_of(source, workdir)
    try:
        with _quiet_hub(), _sim_world() as (clock, files):
            park = Park(workdir, clock, files, options.suppressed)
            asyncio.run(_Run(seed, options, park, clock, outcome).run(fault_steps))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return outcome


def shortest(seed, options=None):
    """A failing seed's shortest cheap trace: up to the first violation, or the fewest fault steps that still fail."""
    options = options or Options()
    full = run_seed(seed, options)
    if full.ok or full.first_step < full.fault_steps:
        return full
    lo, hi, best = 0, full.fault_steps, full
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probe = run_seed(seed, options, mid)
        if probe.ok:
            lo = mid
        else:
            hi, best = mid, probe
    return best


@contextlib.contextmanager
def _sim_world():
    clock = SimClock()
    files = FlashFiles()
    with hub_reads(clock), files.installed():
        yield clock, files


@contextlib.contextmanager
def _quiet_hub():
    """The hub's logs stay out of the run's output, and its registry poll (a wall-clock timer) stays asleep."""
    logger = logging.getLogger("parkcard")
    level, poll = logger.level, service.REGISTRY_POLL_S
    logger.setLevel(logging.CRITICAL)
    service.REGISTRY_POLL_S = 10 ** 9
    try:
        yield
    finally:
        logger.setLevel(level)
        service.REGISTRY_POLL_S = poll


class _Run:
    """The stepper: one seeded random source picks every step and every fault."""

    def __init__(self, seed, options, park, clock, outcome):
        self.rng = random.Random(seed)
        self.options = options
        self.park = park
        self.clock = clock
        self.outcome = outcome
        self.step = 0
        self.produced = []        # genuine (topic, payload) for replays

    async def run(self, fault_steps):
        """Fault phase, drain, final audit."""
        park = self.park
        try:
            await park.start_hub()
            for sim_terminal in park.terminals.values():
                await park.boot(sim_terminal)
            for self.step in range(fault_steps):
                park.auditor.step = self.step
                line = await self.one_step()
                self.log(line)
                if (self.step + 1) % self.options.audit_every == 0:
                    self.audit_db()
            self.step = fault_steps
            await self.drain()
        finally:
            self.outcome.violations = park.auditor.violations
            self.outcome.acks_checked = park.auditor.acks_checked
            self.outcome.suppressed = park.auditor.suppressed_counts
            await park.close()

    def log(self, line):
        self.outcome.trace.append("%04d %+7ds %s" % (self.step, self.clock.now_s - EPOCH_S, line))

    def audit_db(self):
        self.park.auditor.check_ledger()
        self.park.auditor.check_quarantine()

    # -- choosing
    def pick(self, items):
        """One of items (a list in a fixed order), or None."""
        return self.rng.choice(items) if items else None

    def alive(self):
        return [t for _id, t in sorted(self.park.terminals.items()) if t.alive]

    def online(self):
        return [t for t in self.alive() if t.client.connected]

    async def one_step(self):
        faults = sorted(self.options.faults)
        if faults and self.rng.random() < FAULT_RATE:
            kind = self.rng.choice(faults)
            line = await self.fault(kind)
            if not line.startswith("("):
                self.outcome.faults[kind] += 1
            return "FAULT %s: %s" % (kind, line)
        total = sum(w for _n, w in STEP_WEIGHTS)
        roll = self.rng.randrange(total)
        for name, weight in STEP_WEIGHTS:
            if roll < weight:
                return await getattr(self, "do_" + name)()
            roll -= weight
        raise AssertionError("weights")

    # -- ordinary steps
    async def do_tap(self, fault=None):
        sim_terminal = self.pick(self.alive())
        if sim_terminal is None:
            return "(no terminal powered)"
        visitor = self.rng.choice(self.park.visitors)
        amount = sim_terminal.charge_for(self.rng)
        outcome, result = await self.park.tap(sim_terminal, visitor, amount, fault)
        line = "tap card %d at term-%d %d cents%s: %s" % (visitor.card_no, sim_terminal.terminal_id, amount,
                                                          " %s@%d" % fault if fault else "", outcome)
        if outcome == "uncertain" and self.rng.random() < 0.5 and sim_terminal.alive:
            again, _ = await self.park.tap(sim_terminal, visitor, amount, retry_seq=result.seq)
            line += "; tapped again: %s" % again
        return line

    async def do_upload(self):
        sim_terminal = self.pick(self.online())
        if sim_terminal is None:
            return "(no terminal online)"
        return "term-%d %s" % (sim_terminal.terminal_id, await self.park.upload(sim_terminal))

    async def do_status(self):
        sim_terminal = self.pick(self.online())
        if sim_terminal is None:
            return "(no terminal online)"
        return "term-%d %s" % (sim_terminal.terminal_id, await self.park.status(sim_terminal))

    async def do_deliver(self, index=0):
        if not self.park.network.ready(self.step):
            return "(nothing in flight)"
        ready = self.park.network.ready(self.step)
        return await self.park.deliver(ready[min(index, len(ready) - 1)])

    async def do_hub(self):
        return await self.park.hub_consume(self.rng.choice((1, 2, 4, 64)))

    async def do_time(self):
        seconds = self.rng.randint(600, 1200) if self.rng.random() < 0.1 else self.rng.randint(1, 120)
        self.clock.advance(seconds)
        return "time +%ds" % seconds

    async def do_supervisor(self):
        if self.park.hub_up():
            return "(hub up)"
        return await self.park.start_hub()

    async def do_operator(self):
        visitor = self.rng.choice(self.park.visitors)
        return await self.park.operator(self.rng.choice(("add", "remove")), visitor.card_no)

    async def do_recover(self):
        park = self.park
        options = [("boot", t) for t in park.terminals.values() if not t.alive]
        options += [("heal", t) for t in park.terminals.values() if t.terminal_id in park.network.partitioned]
        options += [("broker", None)] if not park.broker.up else []
        options += [("hub", None)] if not park.hub_up() else []
        choice = self.pick(sorted(options, key=lambda o: (o[0], o[1].terminal_id if o[1] else 0)))
        if choice is None:
            return "(nothing to recover)"
        return await self.recover(*choice)

    async def recover(self, what, sim_terminal):
        park = self.park
        if what == "boot":
            return await park.boot(sim_terminal)
        if what == "heal":
            park.network.heal(sim_terminal.terminal_id)
            await park.refresh_links()
            return "term-%d back on the network" % sim_terminal.terminal_id
        if what == "broker":
            park.broker.restart()
            await park.refresh_links()
            return "broker restarted"
        return await park.start_hub()

    # -- faults
    async def fault(self, kind):
        park, rng = self.park, self.rng
        if kind in ("card_pulled", "card_torn"):
            fault = ("pull", rng.randint(1, 14)) if kind == "card_pulled" else ("tear", rng.randint(0, 15))
            return await self.do_tap(fault)
        if kind.startswith("packet_"):
            return self.packet_fault(kind)
        if kind == "power_cut":
            sim_terminal = self.pick(self.alive())
            if sim_terminal is None:
                return "(no terminal powered)"
            nth, fraction = rng.randint(1, 6), rng.random()
            sim_terminal.flash.arm(nth, fraction)
            return "term-%d loses power at its flash write +%d (%.2f of it lands)" % (
                sim_terminal.terminal_id, nth, fraction)
        if kind == "partition":
            sim_terminal = self.pick(sorted(park.terminals.values(), key=lambda t: t.terminal_id))
            park.network.cut(sim_terminal.terminal_id)
            await park.refresh_links()
            return "term-%d cut off" % sim_terminal.terminal_id
        if kind == "hub_crash":
            return await park.crash_hub()
        if kind == "hub_killed_in_write":
            park.kill_write = (rng.randint(1, 3), rng.choice(("before", "after")))
            return "the hub dies at its storage write +%d, %s the commit" % park.kill_write
        if kind == "hub_killed_at_output":
            if not park.hub_up():
                return "(hub down)"
            park.link.kill_after_outputs = rng.randint(1, 6)
            return "the hub dies at its output +%d" % park.link.kill_after_outputs
        if kind == "broker_crash":
            if not park.broker.up:
                return "(broker down)"
            lose = rng.random() < 0.5
            park.broker.crash(lose)
            await park.refresh_links()
            return "broker crashed%s" % (", queued messages lost" if lose else "")
        if kind == "clock_skew":
            return self.skew()
        if kind == "disk_full":
            park.disk_full_writes = rng.randint(1, 4)
            return "the hub's disk is full for its next %d writes" % park.disk_full_writes
        if kind == "poisoned_topic":
            return park.inject(POISONED_TOPIC, rng.randbytes(rng.randint(0, 40)))
        if kind == "garbage_frame":
            sim_terminal = rng.choice(sorted(park.terminals))
            return park.inject(topics.topic(sim_terminal, topics.UP), rng.randbytes(rng.randint(0, 80)))
        if kind == "replayed_frame":
            return self.replay()
        if kind == "card_restored":
            return self.restore_card()
        if kind == "flash_full":
            sim_terminal = self.pick(self.alive())
            if sim_terminal is None:
                return "(no terminal powered)"
            sim_terminal.flash.full_writes = rng.randint(1, 4)
            return "term-%d's flash is full for its next %d writes" % (sim_terminal.terminal_id,
                                                                     sim_terminal.flash.full_writes)
        if kind == "desk_top_up":
            visitor = rng.choice(self.park.visitors)
            pulled = rng.random() < 0.3
            return await self.park.desk_top_up(visitor, rng.randrange(500, 5001, 100), pulled)
        raise ValueError(kind)

    def packet_fault(self, kind):
        network = self.park.network
        if not network.in_flight:
            return "(nothing in flight)"
        index = self.rng.randrange(len(network.in_flight))
        packet = network.in_flight[index]
        what = "%s %s" % (packet.topic, digest(packet.payload))
        if kind == "packet_dropped":
            network.take(index)
            return "dropped " + what
        if kind == "packet_duplicated":
            network.in_flight.append(packet)
            return "duplicated " + what
        if kind == "packet_delayed":
            delay = self.rng.randint(3, 40)
            network.in_flight[index] = packet._replace(not_before=self.step + delay)
            return "delayed %d steps %s" % (delay, what)
        network.in_flight.append(network.take(index))      # reordered: it now goes after everything else
        return "reordered " + what

    def skew(self):
        if self.rng.random() < 0.7:
            sim_terminal = self.pick(self.alive())
            if sim_terminal is None:
                return "(no terminal powered)"
            seconds = self.rng.choice((-1, 1)) * self.rng.randint(1, 7200)
            sim_terminal.skew_clock(seconds)
            return "term-%d clock %+ds" % (sim_terminal.terminal_id, seconds)
        self.clock.hub_skew_s = self.rng.randint(-900, 900)
        return "hub clock %+ds" % self.clock.hub_skew_s

    def replay(self):
        produced = [p for t in sorted(self.park.terminals) for p in self.park.terminals[t].history]
        if not produced:
            return "(nothing to replay)"
        payload = self.rng.choice(produced)
        terminal_id = frames.peek_terminal(payload)[1]
        leaf = topics.STATUS if payload[3] == frames.T_STATUS else topics.UP
        return self.park.inject(topics.topic(terminal_id, leaf), payload)

    def restore_card(self):
        visitor = self.rng.choice(self.park.visitors)
        dumps = self.park.dumps
        if visitor.card_no not in dumps:
            dumps[visitor.card_no] = visitor.image()
            return "card %d dumped" % visitor.card_no
        visitor.restore(dumps[visitor.card_no])
        self.park.auditor.restored.add(visitor.card_no)
        return "card %d restored from its dump" % visitor.card_no

    # -- the drain: faults stop, everything comes back, every terminal must empty its journal
    async def drain(self):
        park = self.park
        park.disk_full_writes = 0
        park.kill_write = None
        if park.link is not None:
            park.link.kill_after_outputs = None
        for sim_terminal in park.terminals.values():
            sim_terminal.flash.disarm()
        park.network.partitioned.clear()
        if not park.broker.up:
            park.broker.restart()
        if not park.hub_up():
            await park.start_hub()
        for sim_terminal in sorted(park.terminals.values(), key=lambda t: t.terminal_id):
            if not sim_terminal.alive:
                await park.boot(sim_terminal)
        await park.refresh_links()
        self.log("DRAIN: faults off, everything restarted")
        cards = {v.card_no: v for v in park.visitors}
        for sim_terminal in self.alive():     # visitors come back to where their card was left uncertain
            for card_no in sorted(uncertain_on(sim_terminal)):
                outcome, _ = await park.tap(sim_terminal, cards[card_no], 0, balance_only=True)
                self.log("DRAIN: card %d shown at term-%d: %s" % (card_no, sim_terminal.terminal_id, outcome))
        for visitor in park.visitors:          # one more tap each moves every card's counter past the last record
            sim_terminal = self.rng.choice(self.alive())
            outcome, _ = await park.tap(sim_terminal, visitor, FINAL_TAP_CENTS)
            self.log("DRAIN: card %d last tap at term-%d: %s" % (visitor.card_no, sim_terminal.terminal_id, outcome))
        for rounds in range(self.options.drain_rounds_max):
            park.auditor.step = self.step = self.outcome.fault_steps + rounds
            if await self.drain_round(rounds) and rounds >= 3:
                break
        else:
            park.auditor.fail("not_drained", "after %d rounds: %s" % (self.options.drain_rounds_max,
                                                                     self.backlog_report()))
            return
        self.log("DRAIN: drained after %d rounds" % (rounds + 1))
        self.audit_db()
        park.auditor.check_settled(park.cards_now(), locked={v.card_no for v in park.visitors if v.slot().locked})

    async def drain_round(self, rounds):
        park = self.park
        self.clock.advance(DRAIN_ROUND_S)
        if not park.hub_up():
            await park.start_hub()
        for sim_terminal in self.online():
            if rounds % 4 == 0:
                await park.status(sim_terminal)
            await park.upload(sim_terminal)
        for _ in range(3):
            while park.network.in_flight:
                await park.deliver(0)
            if park.broker.hub_queue:
                await park.hub_consume(len(park.broker.hub_queue))
        return not self.backlog_report()

    def backlog_report(self):
        park = self.park
        out = ["term-%d holds %d" % (t.terminal_id, t.backlog()) for t in self.alive() if t.backlog()]
        out += ["term-%d is down" % t.terminal_id for t in park.terminals.values() if not t.alive]
        if park.broker.hub_queue or park.network.in_flight:
            out.append("%d for the hub, %d in flight" % (len(park.broker.hub_queue), len(park.network.in_flight)))
        if not park.hub_up():
            out.append("the hub is down")
        return ", ".join(out)

