"""What a run may do: the switches, the fault kinds and how often the seed picks each step."""

# Every fault kind the simulation can inject, by the name the campaign counts it under.
FAULT_KINDS = (
    "card_pulled", "card_torn", "power_cut", "packet_dropped", "packet_duplicated", "packet_delayed",
    "packet_reordered", "partition", "hub_crash", "hub_killed_in_write", "hub_killed_at_output", "broker_crash",
    "clock_skew", "disk_full", "poisoned_topic", "garbage_frame", "replayed_frame", "card_restored", "flash_full",
    "desk_top_up",
)
# Off unless asked for, because their handling is known to be wrong today: none. (A desk top-up posted before its
# card write was here until the desk kept it pending until the card was read back; a full disk and a poisoned
# topic at the hub until the hub learnt to retry the one and quarantine the other.)
KNOWN_WEAK = ()


FAULT_RATE = 0.12          # share of the steps that inject a fault (Options.fault_rate)

# Checks that fail today for a reason already reported: counted as `suppressed` unless switched on.
# false_clone_alarm: a torn write retried at the same terminal writes the very same slot (counter, balance and
# card MAC) as the uncertain record of the torn one; when the next counter arrives before the retry, the chain
# cannot tell them apart, the uncertain one is applied, and the retry meets its counter as a clone (seed 1;
# parkcard/domain/ingest_rules.py, the module doc). Seeds 13, 200 and 24 showed the wider early decision,
# fixed: a newer counter alone no longer decides.
CHECKS_KNOWN_WEAK = ("false_clone_alarm",)


class Options:
    """One run's shape: size, length, which faults are on and which known-weak checks count."""

    def __init__(self, terminals=3, cards=8, steps=240, faults=None, drain_rounds_max=60, audit_every=10,
                 checks=(), fault_rate=None):
        self.terminals = terminals
        self.cards = cards
        self.steps = steps
        self.faults = frozenset(FAULT_KINDS if faults is None else faults) - (
            frozenset(KNOWN_WEAK) if faults is None else frozenset())
        unknown = self.faults - set(FAULT_KINDS)
        if unknown:
            raise ValueError("unknown fault kinds: %s" % ", ".join(sorted(unknown)))
        self.drain_rounds_max = drain_rounds_max
        self.audit_every = audit_every
        self.checks = frozenset(checks)
        self.fault_rate = FAULT_RATE if fault_rate is None else fault_rate
        self.suppressed = frozenset(CHECKS_KNOWN_WEAK) - self.checks

    def _copy(self, **changes):
        args = dict(terminals=self.terminals, cards=self.cards, steps=self.steps, faults=self.faults,
                    drain_rounds_max=self.drain_rounds_max, audit_every=self.audit_every, checks=self.checks,
                    fault_rate=self.fault_rate)
        args.update(changes)
        return Options(**args)

    def with_faults(self, *kinds):
        """The same options with more fault kinds on."""
        return self._copy(faults=self.faults | set(kinds))

    def with_checks(self, *kinds):
        """The same options with known-weak checks counted as violations."""
        return self._copy(checks=self.checks | set(kinds))

    def describe(self):
        """One line for reports."""
        return "terminals=%d cards=%d steps=%d fault_rate=%.2f faults=%s suppressed=%s" % (
            self.terminals, self.cards, self.steps, self.fault_rate, ",".join(sorted(self.faults)),
            ",".join(sorted(self.suppressed)) or "-")


# Relative weights of the ordinary steps; faults are drawn on top (FAULT_RATE of the steps).
STEP_WEIGHTS = (("tap", 24), ("upload", 12), ("status", 3), ("deliver", 28), ("hub", 16), ("time", 8),
                ("recover", 5), ("supervisor", 5), ("operator", 1))
