"""The one clock of a simulated park, and the hub modules made to read it for the run."""

import contextlib
import importlib
import time

EPOCH_S = 1796000000     # 2026-11-30: any fixed start keeps a seed's trace the same from run to run
# Hub modules that read time.time() for timestamps that reach the database or the wire.
HUB_TIME_MODULES = ("parkcard.store.sqlite.write_tx", "parkcard.ingest.downlink", "parkcard.app", "parkcard.desk",
                    "parkcard.oplog", "parkcard.ingest.fleet", "parkcard.services.desk.operations",
                    "parkcard.store.desk_ops")


class SimClock:
    """Simulated UTC seconds: moves only when the simulation says so."""

    def __init__(self, start_s=EPOCH_S):
        self.now_s = start_s
        self.hub_skew_s = 0          # the hub machine's clock error (a clock-skew fault)

    def advance(self, seconds):
        """Let time pass."""
        self.now_s += seconds

    def terminal_time(self):
        """What a correctly set terminal clock reads (the board adds its own offset)."""
        return self.now_s

    def hub_time(self):
        """What the hub's time.time() returns."""
        return float(self.now_s + self.hub_skew_s)


class _HubTime:
    """Stands in for the time module inside a hub module: time() is the simulated hub clock."""

    def __init__(self, clock):
        self._clock = clock

    def time(self):
        """The simulated hub clock."""
        return self._clock.hub_time()

    def __getattr__(self, name):
        return getattr(time, name)


@contextlib.contextmanager
def hub_reads(clock):
    """For the duration of the block, the hub's modules read `clock` instead of the wall clock."""
    shim = _HubTime(clock)
    patched = []
    try:
        for name in HUB_TIME_MODULES:
            module = importlib.import_module(name)
            if getattr(module, "time", None) is time:
                module.time = shim
                patched.append(module)
        yield shim
    finally:
        for module in patched:
            module.time = time
