"""Prometheus metrics of one broker, in their own registry.

A private :class:`CollectorRegistry` (not the global default) keeps two
brokers in one test process from colliding and keeps library metrics out.
Gauges that describe live state (pending bytes, credit, lag, connections)
are computed at scrape time by :class:`BrokerCollector` from the broker
itself, so the hot path only bumps counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["BrokerMetrics", "GaugeSource"]

#: name -> (help, callable returning [(labels, value), ...])
GaugeSource = dict[str, tuple[str, list[str], Callable[[], Iterable[tuple[list[str], float]]]]]

_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class _LiveGauges(Collector):
    def __init__(self, sources: GaugeSource) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        for name, (doc, labels, fn) in self._sources.items():
            family = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in fn():
                family.add_metric(label_values, value)
            yield family


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.events_in = Counter(
            "gamebus_events_in", "Records appended by producers", ["topic"], registry=r
        )
        self.bytes_in = Counter(
            "gamebus_bytes_in", "Record payload bytes appended", ["topic"], registry=r
        )
        self.events_out = Counter(
            "gamebus_events_out", "Records sent to subscribers and fetches", ["topic"], registry=r
        )
        self.bytes_out = Counter(
            "gamebus_bytes_out", "Batch bytes sent to subscribers and fetches", ["topic"], registry=r
        )
        self.produce_latency = Histogram(
            "gamebus_produce_latency_seconds",
            "Produce request to acknowledgement, by ack level",
            ["acks"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.flush_latency = Histogram(
            "gamebus_flush_latency_seconds",
            "One write-behind flush round (write + fsync), all partitions",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "gamebus_request_errors", "Requests answered with an error", ["code"], registry=r
        )
        self.protocol_errors = Counter(
            "gamebus_protocol_errors", "Connections closed for malformed frames", registry=r
        )
        self.duplicates = Counter(
            "gamebus_duplicate_batches", "Idempotent retries recognised and dropped", registry=r
        )

    def add_live_gauges(self, sources: GaugeSource) -> None:
        self.registry.register(_LiveGauges(sources))
