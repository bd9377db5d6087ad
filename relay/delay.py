"""The spectator delay line: hold items until ``delay_ms`` after they arrived. Pure.

Spectators watch a configurable delay behind live (so a streamer's viewers
cannot ghost for a player); players never are. One line per match holds the
decoded batch slices, not encoded frames, so a spectator who joins with a
new filter still gets frames encoded for it when the slices come due. The
clock is an argument.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["DelayLine"]

T = TypeVar("T")


class DelayLine(Generic[T]):
    """FIFO of items, each released ``delay_ms`` after it was pushed."""

    __slots__ = ("_items", "delay_ms")

    def __init__(self, delay_ms: int) -> None:
        if delay_ms < 0:
            raise ValueError("delay_ms must not be negative")
        self.delay_ms = delay_ms
        self._items: deque[tuple[float, T]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: T, *, now_ms: float) -> None:
        self._items.append((now_ms + self.delay_ms, item))

    def due(self, *, now_ms: float) -> list[T]:
        """Pop and return every item whose time has come, oldest first."""
        out: list[T] = []
        while self._items and self._items[0][0] <= now_ms:
            out.append(self._items.popleft()[1])
        return out

    def next_due_ms(self) -> float | None:
        return self._items[0][0] if self._items else None

    def pending(self) -> Iterator[T]:
        """Items not yet due, oldest first (where a new spectator starts)."""
        return (item for _, item in self._items)

    def clear(self) -> None:
        self._items.clear()
