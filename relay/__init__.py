"""Relay nodes: WebSocket fan-out of match traffic to players, spectators, analysts.

Pure cores: :mod:`relay.protocol` (client messages, frame encoding),
:mod:`relay.channels` (per-match state and resume), :mod:`relay.interest`
(area and follow filters), :mod:`relay.backpressure` (per-client queue and
conflation), :mod:`relay.tokens` (JWT), :mod:`relay.delay` (spectator
delay), :mod:`relay.limits`. The asyncio edge: :mod:`relay.feed` (one bus
subscription per partition), :mod:`relay.connection` (one client socket),
:mod:`relay.server` (the relay) and :mod:`relay.cli` (``gamebus relay``).
"""

__all__: list[str] = []
