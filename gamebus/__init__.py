"""gamebus: a real-time event bus for multiplayer games.

Game servers publish through :class:`Producer`; tools and services read with
:class:`Consumer` or a :func:`connect`-ed bus. See the README for examples.
"""

from gamebus import errors, events
from gamebus.errors import GamebusError, InvalidEvent
from gamebus.partitioning import partition_for_key

__all__ = [
    "GamebusError",
    "InvalidEvent",
    "errors",
    "events",
    "partition_for_key",
]

__version__ = "0.1.0"
