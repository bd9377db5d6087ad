"""Publish simulated matches through the SDK, as game servers would.

Each match runs as its own task, stepping its simulator and, in real time,
sleeping until each tick's timestamp comes round on the wall clock; the
matches of one run interleave on the bus like the servers of a fleet.

- Positions go to ``game.positions`` with ``send_nowait`` (fire-and-forget,
  ``memory`` acks): the tick loop never waits for the bus, and when the
  producer's buffer is full the SDK drops the oldest position (newer ones
  supersede it).
- Match events go to ``game.events`` with ``durable`` acks, pipelined: a
  per-match sender task hands them to the producer in order with
  ``send_nowait(..., acks="durable")`` and, when the producer's buffer is
  full, waits with ``await send(..., acks="durable")`` before the next one.
  So they are never reordered within a match, a slow fsync delays neither
  the positions nor the tick clock nor the next event, and each match ends
  with ``flush()``, which waits for every durable ack and raises if a batch
  failed. (Awaiting each durable ack one by one would cap a match at one
  event per fsync round trip: seconds behind the positions under load.)

Everything is keyed by the match id. Labels are handed to ``on_start`` (the
CLI writes them to the side file); they never reach the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gamebus.errors import LimitExceeded
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from gamebus.sim.match import MatchSimulator

__all__ = ["MatchFactory", "ProducerLike", "PublishStats", "publish_matches"]


class ProducerLike(Protocol):
    """The part of :class:`gamebus.Producer` the publisher uses."""

    def send_nowait(
        self, topic: str, event: Mapping[str, Any], *, key: str | None = None, acks: Any = None
    ) -> None: ...

    async def send(
        self, topic: str, event: Mapping[str, Any], *, key: str | None = None, acks: Any = None
    ) -> Any: ...

    async def flush(self) -> None: ...


#: ``factory(index, start_ts_ms)`` builds match number ``index`` starting at that time.
MatchFactory = Callable[[int, int], MatchSimulator]


@dataclass(slots=True)
class PublishStats:
    """What a run published; ``max_lag_ms`` is the worst delay of a tick behind its ``ts``."""

    matches: int = 0
    positions: int = 0
    match_events: int = 0
    max_lag_ms: float = 0.0


async def _send_events(
    producer: ProducerLike, match: str, queue: asyncio.Queue[dict[str, Any] | None], stats: PublishStats
) -> None:
    while True:
        event = await queue.get()
        if event is None:
            await producer.flush()  # every durable ack of the match, or its error
            return
        try:
            producer.send_nowait(EVENTS_TOPIC, event, key=match, acks="durable")
        except LimitExceeded:  # the buffer is full: wait for room, keeping the order
            await producer.send(EVENTS_TOPIC, event, key=match, acks="durable")
        stats.match_events += 1


async def _play(
    producer: ProducerLike,
    sim: MatchSimulator,
    stats: PublishStats,
    *,
    realtime: bool,
    started_at: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    match = sim.match_id
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    sender = asyncio.ensure_future(_send_events(producer, match, queue, stats))
    # The match started at ``started_at`` (when the factory was asked for it),
    # not when this task got to run: building a simulator takes a while, and
    # anchoring later would publish every event of the match that much late.
    wall0 = started_at
    try:
        for n, (ts, events) in enumerate(sim.ticks()):
            if realtime:
                due = wall0 + (ts - sim.start_ts_ms) / 1000.0
                delay = due - clock()
                if delay > 0:
                    await sleep(delay)
                else:
                    stats.max_lag_ms = max(stats.max_lag_ms, -delay * 1000.0)
            elif n % 8 == 0:
                await sleep(0)  # let the producer and the other matches run
            for event in events:
                if event["type"] == "pos":
                    producer.send_nowait(POSITIONS_TOPIC, event, key=match)
                    stats.positions += 1
                else:
                    queue.put_nowait(event)
            if sender.done():  # a failed durable send ends the match with its error
                sender.result()
        queue.put_nowait(None)
        await sender
    finally:
        if not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    stats.matches += 1


async def publish_matches(
    producer: ProducerLike,
    factory: MatchFactory,
    *,
    concurrent: int,
    total: int | None,
    realtime: bool = True,
    on_start: Callable[[MatchSimulator], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    round_size: int | None = None,
) -> PublishStats:
    """Play ``total`` matches (None: forever), ``concurrent`` at a time.

    When a match ends the next one starts, so a ``--loop`` demo keeps
    ``concurrent`` matches running. With ``round_size`` (a league's lobbies
    per round) match ``i`` belongs to round ``i // round_size`` and a round
    starts only once every match of the one before has ended: the same
    account is in one lobby of every round, and a person does not play two
    matches at once. Returns after the last match is flushed.
    """
    if round_size is not None and round_size < 1:
        raise ValueError(f"round_size must be at least 1, got {round_size}")
    stats = PublishStats()
    next_index = 0
    running: dict[asyncio.Task[None], int] = {}  # task -> its match's round

    def may_start() -> bool:
        if len(running) >= concurrent:
            return False
        if round_size is None or not running:
            return True
        return all(r == next_index // round_size for r in running.values())

    def start_one() -> None:
        nonlocal next_index
        started_at = clock()
        sim = factory(next_index, int(started_at * 1000))
        next_index += 1
        if on_start is not None:
            on_start(sim)
        task = asyncio.ensure_future(
            _play(producer, sim, stats, realtime=realtime, started_at=started_at,
                  clock=clock, sleep=sleep)
        )
        running[task] = (next_index - 1) // round_size if round_size else 0

    try:
        while total is None or next_index < total:
            if may_start():
                start_one()
                continue
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.pop(task)
                task.result()
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.pop(task)
                task.result()
        await producer.flush()
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return stats
