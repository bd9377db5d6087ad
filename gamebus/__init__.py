"""gamebus: a real-time event bus for multiplayer games.

Game servers publish through :class:`Producer`; tools and services read with
:class:`Consumer` or a :func:`connect`-ed :class:`~gamebus.engines.base.Bus`::

    import gamebus

    async with gamebus.Producer("gamebus://127.0.0.1:7400") as producer:
        producer.position(match="m1", player="p1", x=1.0, y=2.0, z=0.0, yaw=90.0, pitch=0.0)
        await producer.match_event("kill", match="m1", player="p1", target="p2",
                                   weapon="rifle", headshot=True)

See ``docs/sdk.md`` for more.
"""

from gamebus import errors, events
from gamebus.client import Consumer, Message, Producer, connect
from gamebus.engines.base import Batch, PartitionInfo, Position, ProduceResult
from gamebus.errors import GamebusError, InvalidEvent
from gamebus.partitioning import partition_for_key

__all__ = [
    "Batch",
    "Consumer",
    "GamebusError",
    "InvalidEvent",
    "Message",
    "PartitionInfo",
    "Position",
    "ProduceResult",
    "Producer",
    "connect",
    "errors",
    "events",
    "partition_for_key",
]

__version__ = "0.1.0"
