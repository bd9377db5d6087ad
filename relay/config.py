"""Relay configuration: one frozen dataclass, units in the names.

The CLI builds it from flags and the environment; nothing below the CLI
reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from relay.backpressure import QueueConfig

__all__ = ["RelayConfig"]


@dataclass(frozen=True, slots=True)
class RelayConfig:
    bus_url: str = "gamebus://127.0.0.1:7400"
    host: str = "127.0.0.1"
    #: 0 picks a free port (tests); read the bound one from ``Relay.port``.
    port: int = 7410
    #: ``None`` runs no HTTP endpoint.
    http_port: int | None = 7411
    jwt_key: str | bytes = field(default="", repr=False)
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    #: How far spectators are held behind live; players and analysts never are.
    spectator_delay_ms: int = 0
    #: The topics a match subscription merges, in the order positions, events.
    match_topics: tuple[str, ...] = (POSITIONS_TOPIC, EVENTS_TOPIC)
    max_subscriptions: int = 16
    #: Largest client message; bigger ones close the connection with 1009.
    max_message_bytes: int = 64 * 1024
    message_rate_per_s: float = 50.0
    message_burst: int = 100
    max_connections: int = 20_000
    max_connections_per_peer: int = 5_000
    #: A connection with no subscription for this long is closed.
    idle_timeout_s: float = 60.0
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    close_timeout_s: float = 2.0
    #: A resume that would replay more match records than this reports a gap.
    replay_max_records: int = 100_000
    queue: QueueConfig = field(default_factory=QueueConfig)
    #: SO_SNDBUF per client socket (the kernel doubles it). Without a bound,
    #: send-buffer autotuning lets the kernel hold megabytes of stale
    #: positions for a stalled client before the relay sees any backpressure,
    #: so conflation and the 4009 bound would start far too late.
    socket_send_buffer_bytes: int | None = 128 * 1024
