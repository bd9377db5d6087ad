"""Per-client send queue: latency while a client keeps up, bounds when not. Pure.

The fan-out hands every frame to :meth:`SendQueue.admit` first. While the
queue is empty and the client's socket buffer is under the high-water mark,
the frame is written at once (the fast path: no task, no copy). Past the
mark the client is *slow*: its frames queue here and a drainer writes them
as the socket drains, so one slow client never delays the others, who are
written to in the same loop without awaiting anyone.

While slow, positions are conflated: only the latest position per
``(match, player)`` is kept, because an old position is worth nothing once a
newer one exists. Match events and control frames queue in order up to a
bound (events and bytes); past it :class:`TooSlow` tells the edge to close
the client with code 4009 and its resume position.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from relay.records import Record

__all__ = ["Frame", "PositionsFlush", "QueueConfig", "SendQueue", "TooSlow"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded frame and what the queue needs to know about it.

    ``topic``/``epoch``/``next_offset`` say which position the client reaches
    once the frame is written; ``positions`` is set on positions frames so a
    slow client's copy can be conflated instead of queued.
    """

    data: bytes
    match: str | None = None
    topic: str | None = None
    epoch: int = 0
    next_offset: int = 0
    events: int = 1
    positions: Sequence[Record] | None = None
    first_ts: int = 0
    #: ``(match, topic)`` when the frame moves a position; built once, not per client.
    key: tuple[str, str] | None = None


@dataclass(slots=True)
class PositionsFlush:
    """Conflated positions of one match, to be encoded for one slow client."""

    match: str
    topic: str
    epoch: int
    next_offset: int
    latest: dict[str, Record] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueConfig:
    high_water_bytes: int = 256 * 1024
    max_queued_events: int = 2_048
    max_queued_bytes: int = 4 * 1024 * 1024


class TooSlow(Exception):
    """The client's queued match events passed the bound."""

    def __init__(self, queued_events: int, queued_bytes: int) -> None:
        super().__init__(f"client too slow: {queued_events} events / {queued_bytes} bytes queued")
        self.queued_events, self.queued_bytes = queued_events, queued_bytes


class SendQueue:
    """What one client still has to receive, beyond its socket buffer."""

    __slots__ = ("_frames", "_positions", "config", "conflated", "queued_bytes", "queued_events")

    def __init__(self, config: QueueConfig | None = None) -> None:
        self.config = config or QueueConfig()
        self._frames: deque[Frame] = deque()
        self._positions: dict[str, PositionsFlush] = {}
        self.queued_events = 0
        self.queued_bytes = 0
        #: Positions dropped because a newer one for the same player replaced them.
        self.conflated = 0

    def __len__(self) -> int:
        return len(self._frames) + len(self._positions)

    @property
    def empty(self) -> bool:
        return not self._frames and not self._positions

    def admit(self, frame: Frame, buffered_bytes: int) -> bool:
        """Return True to write ``frame`` now; otherwise it was queued.

        Raises :class:`TooSlow` when queueing it passes the bound.
        """
        if not self._frames and not self._positions and buffered_bytes <= self.config.high_water_bytes:
            return True
        self.push(frame)
        return False

    def push(self, frame: Frame) -> None:
        if frame.positions is not None and frame.match is not None and frame.topic is not None:
            self._conflate(frame)
            return
        self._frames.append(frame)
        self.queued_events += frame.events
        self.queued_bytes += len(frame.data)
        if (
            self.queued_events > self.config.max_queued_events
            or self.queued_bytes > self.config.max_queued_bytes
        ):
            raise TooSlow(self.queued_events, self.queued_bytes)

    def _conflate(self, frame: Frame) -> None:
        assert frame.match is not None and frame.topic is not None and frame.positions is not None
        flush = self._positions.get(frame.match)
        if flush is None:
            flush = self._positions[frame.match] = PositionsFlush(frame.match, frame.topic, 0, 0)
        flush.epoch, flush.next_offset = frame.epoch, frame.next_offset
        for rec in frame.positions:
            player = rec.event.get("player")
            if not isinstance(player, str):
                continue
            if player in flush.latest:
                self.conflated += 1
            flush.latest[player] = rec

    def pop(self) -> Frame | PositionsFlush | None:
        """The next thing to write: queued frames in order, then conflated positions."""
        if self._frames:
            frame = self._frames.popleft()
            self.queued_events -= frame.events
            self.queued_bytes -= len(frame.data)
            return frame
        if self._positions:
            match = next(iter(self._positions))
            return self._positions.pop(match)
        return None

    def drop_match(self, match: str) -> None:
        """Forget what is queued for ``match`` (the client unsubscribed)."""
        self._positions.pop(match, None)
        kept = deque(f for f in self._frames if f.match != match)
        self._frames = kept
        self.queued_events = sum(f.events for f in kept)
        self.queued_bytes = sum(len(f.data) for f in kept)
