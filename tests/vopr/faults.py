"""What a run may do: the switches, the fault kinds and how often the seed picks each step."""

# Every fault kind the simulation can inject, by the name the campaign counts it under.
FAULT_KINDS = (
    "card_pulled", "card_torn", "power_cut", "packet_dropped", "packet_duplicated", "packet_delayed",
    "packet_reordered", "partition", "hub_crash", "hub_killed_in_write", "hub_killed_at_output", "broker_crash",
    "clock_skew", "disk_full", "poisoned_topic", "garbage_frame", "replayed_frame", "card_restored",
)
# Faults whose hub-side handling is known to be wrong today (DESIGN.md "Staying up"): off unless asked for.
KNOWN_WEAK = ("disk_full", "poisoned_topic")


class Options:
    """One run's shape: size, length and which faults are on."""

    def __init__(self, terminals=3, cards=8, steps=240, faults=None, drain_rounds_max=60, audit_every=10):
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

    def with_faults(self, *kinds):
        """The same options with more fault kinds on."""
        return Options(self.terminals, self.cards, self.steps, self.faults | set(kinds), self.drain_rounds_max,
                       self.audit_every)

    def describe(self):
        """One line for reports."""
        return "terminals=%d cards=%d steps=%d faults=%s" % (self.terminals, self.cards, self.steps,
                                                             ",".join(sorted(self.faults)))


# Relative weights of the ordinary steps; faults are drawn on top (FAULT_RATE of the steps).
STEP_WEIGHTS = (("tap", 24), ("upload", 12), ("status", 3), ("deliver", 28), ("hub", 16), ("time", 8),
                ("recover", 5), ("supervisor", 5))
FAULT_RATE = 0.12
