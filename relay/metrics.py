"""The relay's Prometheus metrics, in a registry of its own.

A registry per relay (not the process-global one) lets tests run several
relays in one process and read each one's numbers. Hot-path counters are
incremented once per frame *group*, not per client, to keep the cost of
measuring below the cost of sending.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["RelayMetrics"]

_LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class RelayMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.clients = Gauge("gamebus_relay_clients", "Open client connections", registry=r)
        self.subscriptions = Gauge(
            "gamebus_relay_subscriptions", "Match subscriptions across clients", registry=r
        )
        self.bus_subscriptions = Gauge(
            "gamebus_relay_bus_subscriptions", "Bus partitions this relay reads", registry=r
        )
        self.frames_out = Counter("gamebus_relay_frames_out", "Frames handed to clients (written at once or queued)", registry=r)
        self.bytes_out = Counter("gamebus_relay_bytes_out", "Bytes handed to clients (written at once or queued)", registry=r)
        self.frames_encoded = Counter(
            "gamebus_relay_frames_encoded", "Frames encoded (once per distinct filter)", registry=r
        )
        self.conflated = Counter(
            "gamebus_relay_conflated_positions", "Positions dropped for a newer one (slow clients)", registry=r
        )
        self.slow_closes = Counter(
            "gamebus_relay_slow_client_closes", "Clients closed with 4009 (too slow)", registry=r
        )
        self.closes = Counter(
            "gamebus_relay_client_closes", "Clients closed by the relay, by code", ["code"], registry=r
        )
        self.client_errors = Counter(
            "gamebus_relay_client_errors", "Error frames sent for bad client messages", ["code"], registry=r
        )
        self.malformed_events = Counter(
            "gamebus_relay_malformed_events", "Bus records skipped because they did not decode", registry=r
        )
        self.bus_batches = Counter("gamebus_relay_bus_batches", "Bus batches received", registry=r)
        self.bus_lag = Gauge(
            "gamebus_relay_bus_lag_seconds", "Arrival time minus producer ts of the latest batch", registry=r
        )
        self.replayed = Counter("gamebus_relay_replayed_events", "Events replayed on resume", registry=r)
        self.latency = Histogram(
            "gamebus_relay_publish_to_send_seconds",
            "Event ts (producer clock) to the frame's write to the client socket",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
