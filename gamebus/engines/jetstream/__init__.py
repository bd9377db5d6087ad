"""gamebus on NATS JetStream: ``connect_jetstream("nats://h1:p1,h2:p2")``.

The mapping (docs/scale-out.md has the full text): a topic is a stream
``GAMEBUS_<topic>``, partition ``p`` is subject ``gamebus.<topic>.<p>``, an
offset is a stream sequence, the epoch is the stream's creation time, an
idempotent produce is a ``Nats-Msg-Id`` per record, and consumer groups keep
heartbeats, generations and commits in small bookkeeping streams.

Modules: :mod:`.naming` (pure name and header mapping), :mod:`.bus`
(topics, produce, fetch), :mod:`.reader` (one flow-controlled consumer),
:mod:`.subscription` (live reads that survive failover), :mod:`.groups`
(membership and commits), :mod:`.translate` (nats-py errors -> gamebus).
"""

from __future__ import annotations

from gamebus.engines.jetstream.bus import (
    JetStreamBus,
    JetStreamOptions,
    TopicState,
    connect_jetstream,
    parse_url,
)
from gamebus.engines.jetstream.groups import JetStreamMembership, assign
from gamebus.engines.jetstream.subscription import JetStreamSubscription

__all__ = [
    "JetStreamBus",
    "JetStreamMembership",
    "JetStreamOptions",
    "JetStreamSubscription",
    "TopicState",
    "assign",
    "connect_jetstream",
    "parse_url",
]
