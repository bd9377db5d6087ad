"""Engines behind the Bus interface; :func:`connect` picks one by URL scheme.

    bus = await connect("gamebus://127.0.0.1:7400")        # embedded broker
    bus = await connect("nats://127.0.0.1:4222,127.0.0.1:4223")  # JetStream
"""

from __future__ import annotations

from typing import Any

from gamebus.engines.base import (
    Acks,
    Batch,
    Bus,
    GroupMembership,
    PartitionInfo,
    Position,
    ProduceResult,
    Start,
    Subscription,
)
from gamebus.errors import ConfigError

__all__ = [
    "Acks",
    "Batch",
    "Bus",
    "GroupMembership",
    "PartitionInfo",
    "Position",
    "ProduceResult",
    "Start",
    "Subscription",
    "connect",
]


async def connect(url: str, **options: Any) -> Bus:
    """Open a :class:`Bus` to the engine named by ``url``'s scheme."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "gamebus":
        from gamebus.engines.embedded import connect_embedded

        return await connect_embedded(url, **options)
    if scheme == "nats":
        from gamebus.engines.jetstream import connect_jetstream

        return await connect_jetstream(url, **options)
    raise ConfigError(f"unknown bus URL {url!r}: expected gamebus://host:port or nats://host:port")
