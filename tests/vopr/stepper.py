"""The seeded stepper: one random.Random(seed) picks every step and every fault of a run."""

import random

from protocol import frames, topics

from vopr import drain
from vopr.clock import EPOCH_S
from vopr.faults import STEP_WEIGHTS
from vopr.net import digest

POISONED_TOPIC = "parkcard/term-\u00b2/up"     # '\u00b2'.isdigit() is True, int('\u00b2') raises


class Stepper:
    """One run's steps, all chosen by one seeded random source."""

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
            await drain.drain(self)
        finally:
            self.outcome.violations = park.auditor.violations
            self.outcome.acks_checked = park.auditor.acks_checked
            self.outcome.suppressed = park.auditor.suppressed_counts
            await park.close()

    def log(self, line):
        """Append a line to the trace, stamped with the step and the simulated time."""
        self.outcome.trace.append("%04d %+7ds %s" % (self.step, self.clock.now_s - EPOCH_S, line))

    def audit_db(self):
        """The auditor's database checks."""
        self.park.auditor.check_ledger()
        self.park.auditor.check_quarantine()

    # -- choosing
    def pick(self, items):
        """One of items (a list in a fixed order), or None."""
        return self.rng.choice(items) if items else None

    def alive(self):
        """The powered terminals, by id."""
        return [t for _id, t in sorted(self.park.terminals.items()) if t.alive]

    def online(self):
        """The powered terminals with a live session, by id."""
        return [t for t in self.alive() if t.client.connected]

    async def one_step(self):
        """Pick and do one step: a fault (Options.fault_rate of the steps) or an ordinary step by STEP_WEIGHTS."""
        faults = sorted(self.options.faults)
        if faults and self.rng.random() < self.options.fault_rate:
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
        """A visitor taps a card at a powered terminal (with a card fault, if given); may tap again."""
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
        """One upload round of an online terminal."""
        sim_terminal = self.pick(self.online())
        if sim_terminal is None:
            return "(no terminal online)"
        return "term-%d %s" % (sim_terminal.terminal_id, await self.park.upload(sim_terminal))

    async def do_status(self):
        """One status round of an online terminal."""
        sim_terminal = self.pick(self.online())
        if sim_terminal is None:
            return "(no terminal online)"
        return "term-%d %s" % (sim_terminal.terminal_id, await self.park.status(sim_terminal))

    async def do_deliver(self, index=0):
        """Deliver the oldest packet that may go now."""
        if not self.park.network.ready(self.step):
            return "(nothing in flight)"
        ready = self.park.network.ready(self.step)
        return await self.park.deliver(ready[min(index, len(ready) - 1)])

    async def do_hub(self):
        """The broker hands the hub a batch."""
        return await self.park.hub_consume(self.rng.choice((1, 2, 4, 64)))

    async def do_time(self):
        """Time passes: mostly seconds, now and then a quarter of an hour."""
        seconds = self.rng.randint(600, 1200) if self.rng.random() < 0.1 else self.rng.randint(1, 120)
        self.clock.advance(seconds)
        return "time +%ds" % seconds

    async def do_supervisor(self):
        """The supervisor restarts a hub that is down."""
        if self.park.hub_up():
            return "(hub up)"
        return await self.park.start_hub()

    async def do_operator(self):
        """An operator puts a card on the blacklist or takes it off."""
        visitor = self.rng.choice(self.park.visitors)
        return await self.park.operator(self.rng.choice(("add", "remove")), visitor.card_no)

    async def do_recover(self):
        """Undo one fault: boot a terminal, heal a partition, restart the broker or the hub."""
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
        """Do one recovery (see do_recover)."""
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
        """Inject one fault of this kind; return the trace line (starting with \"(\" when it had nothing to hit)."""
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
        """Drop, duplicate, delay or reorder a packet in flight."""
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
        """A terminal's clock jumps, or the hub's clock is set off."""
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
        """Publish again a message some terminal sent earlier."""
        produced = [p for t in sorted(self.park.terminals) for p in self.park.terminals[t].history]
        if not produced:
            return "(nothing to replay)"
        payload = self.rng.choice(produced)
        terminal_id = frames.peek_terminal(payload)[1]
        leaf = topics.STATUS if payload[3] == frames.T_STATUS else topics.UP
        return self.park.inject(topics.topic(terminal_id, leaf), payload)

    def restore_card(self):
        """Dump a card's memory, or write the dump back (a restore fraud)."""
        visitor = self.rng.choice(self.park.visitors)
        dumps = self.park.dumps
        if visitor.card_no not in dumps:
            dumps[visitor.card_no] = visitor.image()
            return "card %d dumped" % visitor.card_no
        visitor.restore(dumps[visitor.card_no])
        self.park.auditor.restored.add(visitor.card_no)
        return "card %d restored from its dump" % visitor.card_no
