"""The hub's Prometheus metrics: a registry of its own (never the client's global one), text at /metrics.

HubMetrics holds what must be observed as it happens (batch sizes); the rest is
read at each scrape: the counters Hub.stats() keeps and the fleet as the store
has it (parkcard.services.monitoring.fleet_gauges).
"""

import re

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "parkcard_"
# Hub.stats() names that are levels, not counts of events.
_GAUGES = frozenset({"storage_unavailable", "uncertain_cards"})
_QUARANTINED = "quarantined."
# Frames per batch: up to the hub's BATCH_FRAMES_MAX (1024), by powers of two.
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_]")


class HubMetrics:
    """The hub's own registry, with the histograms ingest observes as batches are stored."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.batch_frames = Histogram(PREFIX + "batch_frames", "MQTT frames stored per ingest batch",
                                      buckets=_BATCH_BUCKETS, registry=self.registry)

    def batch(self, frames):
        """Observe one stored batch of this many frames."""
        self.batch_frames.observe(frames)

    def text(self, stats, gauges):
        """The Prometheus text exposition of everything: this registry, stats (Hub.stats()), gauges (a snapshot)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(stats, gauges))
        return generate_latest(self.registry) + generate_latest(registry)


class _Snapshot:
    """A collector of one scrape's values (already read: collect() does no I/O)."""

    def __init__(self, stats, gauges):
        self.stats = stats
        self.gauges = gauges

    def collect(self):
        """Yield the metric families of the snapshot."""
        quarantined = CounterMetricFamily(PREFIX + "quarantined", "Frames and records quarantined by this hub, "
                                          "by reason", labels=["reason"])
        for name, value in sorted(self.stats.items()):
            if name.startswith(_QUARANTINED):
                quarantined.add_metric([name[len(_QUARANTINED):]], value)
            elif name in _GAUGES:
                yield GaugeMetricFamily(PREFIX + _NOT_IN_NAME.sub("_", name), "Hub.stats() %s" % name, value=value)
            else:
                yield CounterMetricFamily(PREFIX + _NOT_IN_NAME.sub("_", name), "Hub.stats() %s since the hub started" % name, value=value)
        yield quarantined
        g = self.gauges
        terminals = GaugeMetricFamily(PREFIX + "terminals", "Registered terminals by state", labels=["state"])
        terminals.add_metric(["online"], g["online"])
        terminals.add_metric(["offline"], g["registered"] - g["online"])
        yield terminals
        backlog = GaugeMetricFamily(PREFIX + "terminal_backlog_records", "Records a terminal reported not yet "
                                    "acknowledged", labels=["terminal"])
        oldest = GaugeMetricFamily(PREFIX + "terminal_oldest_unsynced_seconds", "Age of a terminal's oldest "
                                   "unsynced record, as it reported", labels=["terminal"])
        for terminal_id, depth, age_s in g["backlog"]:
            backlog.add_metric([str(terminal_id)], depth)
            oldest.add_metric([str(terminal_id)], age_s)
        yield backlog
        yield oldest
        alarms = GaugeMetricFamily(PREFIX + "alarms", "Alarms raised, by kind", labels=["kind"])
        for kind, count in sorted(g["alarms"].items()):
            alarms.add_metric([kind], count)
        yield alarms
        stored = GaugeMetricFamily(PREFIX + "quarantine_stored", "Entries held in quarantine, by reason",
                                   labels=["reason"])
        for reason, count in sorted(g["quarantine"].items()):
            stored.add_metric([reason], count)
        yield stored
