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
import shutil
import tempfile
from collections import Counter

from parkcard import app

from vopr import template
from vopr.clock import SimClock, hub_reads
from vopr.faults import Options
from vopr.flash import FlashFiles
from vopr.park import Park
from vopr.stepper import Stepper



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
        if trace_lines is not None:
            lines = self.trace[:trace_lines]
        elif self.first_step is None:
            lines = self.trace
        else:       # every line is stamped with its step: the trace up to the first failing one
            lines = [line for line in self.trace if int(line.split()[0]) <= self.first_step]
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
            asyncio.run(Stepper(seed, options, park, clock, outcome).run(fault_steps))
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
    """The hub's logs stay out of the run's output, and its wall-clock timers do not hold the run."""
    logger = logging.getLogger("parkcard")
    level = logger.level
    # Wall-clock waits of the hub: its registry poll sleeps through the run, and a full disk is retried
    # at once (the simulation's full disk lasts a number of writes, not a time).
    timers = {"REGISTRY_POLL_S": 10 ** 9, "STORAGE_RETRY_S_MIN": 0, "STORAGE_RETRY_S_MAX": 0}
    saved = {name: getattr(app, name) for name in timers if hasattr(app, name)}
    logger.setLevel(logging.CRITICAL)
    for name in saved:
        setattr(app, name, timers[name])
    try:
        yield
    finally:
        logger.setLevel(level)
        for name, value in saved.items():
            setattr(app, name, value)
