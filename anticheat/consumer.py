"""The anti-cheat service's asyncio edge: bus in, scores and alerts out.

Everything that decides lives in :class:`~anticheat.service.ScoringCore`;
this module only moves bytes. It joins the consumer group over
``game.positions`` and ``game.events`` (so several workers share the
partitions and a dead worker's share moves to the others on rebalance),
subscribes to each assigned partition from the group's committed position
(or the earliest retained offset), decodes each record on its own (a
malformed one is counted and skipped, never fatal), feeds the core with the
record's ``(topic, partition, offset)`` as evidence, and produces what the
core returns to ``anticheat.scores`` / ``anticheat.alerts`` keyed by match.

One consumer task per partition keeps a slow partition from stalling the
others; the core is synchronous and shared, and asyncio runs one task at a
time, so no lock is needed. Offsets are committed every ``commit_interval_s``;
feature state is in memory, so a worker that takes over a partition rebuilds
it from the committed position onward (a match in flight loses its earlier
history on that worker: acceptable for 60-second matches, and stated).

Accounts are not partitioned like matches: an account's matches land on
whichever workers own their partitions. With a per-account baseline in the
model, a worker publishes each judged clean match to ``anticheat.history``
(keyed by player, ``durable`` acks, 90 days' retention), and every worker
follows all of that topic from its earliest retained record (a plain
subscription, outside the group), taking every worker's judged matches into
its accounts' history (:meth:`~anticheat.service.ScoringCore.remember`). A
restarted worker, or one after a broker restart, rebuilds the history the
same way: one small record per account and match, not the score stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anticheat.model import ModelBundle
from anticheat.service import CoreConfig, ScoringCore
from gamebus.engines.base import Batch, Bus, Position
from gamebus.errors import GamebusError, InvalidEvent
from gamebus.events import (
    DEFAULT_ACKS,
    EVENTS_TOPIC,
    HISTORY_TOPIC,
    POSITIONS_TOPIC,
    decode_event,
    encode_event,
    now_ms,
    topic_for,
)

__all__ = ["AnticheatService", "ServiceStats", "publish"]

log = logging.getLogger("gamebus.anticheat")


@dataclass(slots=True)
class ServiceStats:
    """Live numbers for operators: lag is wall clock minus the newest event's ``ts``."""

    batches: int = 0
    records: int = 0
    produced: int = 0
    produce_errors: int = 0
    lag_ms: float = 0.0
    max_lag_ms: float = 0.0


async def publish(bus: Bus, events: Sequence[dict[str, Any]]) -> int:
    """Produce the core's events: scores and alerts keyed by match, history by player.

    Each with its topic's ack level (:data:`~gamebus.events.DEFAULT_ACKS`):
    alerts and the accounts' history ``durable`` (an analyst's queue and a
    season of clean matches must survive a broker crash), scores, refreshed
    every few seconds, ``memory``.
    """
    groups: dict[tuple[str, int], list[bytes]] = {}
    for ev in events:
        topic = topic_for(ev["type"])
        key = ev["player"] if topic == HISTORY_TOPIC else ev["match"]
        partition = await bus.partition_for(topic, str(key))
        groups.setdefault((topic, partition), []).append(encode_event(ev))
    for (topic, partition), records in groups.items():
        await bus.produce(topic, partition, records, acks=DEFAULT_ACKS[topic])
    return len(events)


class AnticheatService:
    """One worker of the ``anticheat`` consumer group."""

    def __init__(
        self,
        bus: Bus,
        bundle: ModelBundle | None,
        *,
        group: str = "anticheat",
        topics: Sequence[str] = (POSITIONS_TOPIC, EVENTS_TOPIC),
        config: CoreConfig | None = None,
        commit_interval_s: float = 2.0,
        start: str = "earliest",
    ) -> None:
        self.bus = bus
        self.core = ScoringCore(bundle, config=config)
        self.group = group
        self.topics = list(topics)
        self.commit_interval_s = commit_interval_s
        self.start = start
        self.stats = ServiceStats()
        self.positions: dict[tuple[str, int], Position] = {}
        self._outbox: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._busy_ms = 0.0

    @property
    def counters(self) -> dict[str, int]:
        return self.core.counters.as_dict()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    # --- the loop -----------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`stop`; rejoin on every rebalance."""
        membership = await self.bus.join_group(self.group, self.topics)
        publisher = asyncio.ensure_future(self._publisher())
        committer = asyncio.ensure_future(self._committer())
        poller = asyncio.ensure_future(self._poller())
        followers = await self._follow_accounts()
        try:
            while not self._stopping.is_set():
                readers = [asyncio.ensure_future(self._read(t, p)) for t, p in membership.assignment]
                log.info("anticheat member %s gen %s: %s", membership.member,
                         membership.generation, membership.assignment)
                change = asyncio.ensure_future(membership.wait_for_change())
                stop = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait([change, stop, *readers], return_when=asyncio.FIRST_COMPLETED)
                for task in (change, stop, *readers):
                    task.cancel()
                failed = False
                for task in readers:
                    with contextlib.suppress(asyncio.CancelledError, GamebusError):
                        await task
                    if not task.cancelled() and task.exception() is not None:
                        failed = True
                        log.warning("reader stopped: %s", task.exception())
                with contextlib.suppress(GamebusError):
                    await self._commit()
                if failed and not self._stopping.is_set():
                    await asyncio.sleep(1.0)  # a broken partition must not spin the loop
        finally:
            self._outbox.extend(self.core.flush())
            await self._drain_outbox()
            helpers: list[asyncio.Future[Any]] = [publisher, committer, poller, *followers]
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            with contextlib.suppress(GamebusError, OSError):
                await self._commit()
                await membership.leave()

    async def _read(self, topic: str, partition: int) -> None:
        start: Any = await self.bus.committed(self.group, topic, partition) or self.start
        sub = await self.bus.subscribe(topic, partition, start)
        try:
            async for batch in sub:
                self.handle_batch(batch)
        finally:
            await sub.close()

    async def _follow_accounts(self) -> list[asyncio.Future[Any]]:
        """One task per ``anticheat.history`` partition feeding the accounts' history."""
        bundle = self.core.bundle
        if bundle is None or bundle.baseline is None:
            return []
        try:
            partitions = await self.bus.partitions(HISTORY_TOPIC)
        except GamebusError as exc:
            log.warning("no account history from %s: %s", HISTORY_TOPIC, exc)
            return []
        return [asyncio.ensure_future(self._follow(p)) for p in range(partitions)]

    async def _follow(self, partition: int) -> None:
        while True:
            try:
                sub = await self.bus.subscribe(HISTORY_TOPIC, partition, "earliest")
                try:
                    async for batch in sub:
                        for record in batch.records:
                            with contextlib.suppress(InvalidEvent, KeyError, TypeError, ValueError):
                                self.core.remember(decode_event(record))
                finally:
                    await sub.close()
            except GamebusError as exc:
                log.warning("following %s/%d: %s", HISTORY_TOPIC, partition, exc)
            await asyncio.sleep(1.0)  # resubscribe from the start: known matches count once

    def clock_ms(self) -> int:
        """Wall-clock milliseconds less the time this worker has spent scoring.

        The core lets a source that delivered nothing for ``idle_source_ms``
        stop holding its matches back. Catching up a backlog (a restart, a
        rebalance), one partition's batch can take the loop a second or more,
        and on the wall clock every other partition would look quiet
        meanwhile: their matches would be released early and the rest of
        their events dropped as late. Time spent scoring is not silence, so
        this clock stands still while the worker is busy.
        """
        return now_ms() - int(self._busy_ms)

    def handle_batch(self, batch: Batch) -> None:
        """Decode and score one batch (synchronous: the hot path never awaits)."""
        started = time.perf_counter()
        core, stats = self.core, self.stats
        newest = 0
        arrival = self.clock_ms()
        for i, record in enumerate(batch.records):
            try:
                event = decode_event(record)
            except InvalidEvent:
                core.malformed()
                continue
            ts = event["ts"]
            newest = max(newest, ts)
            try:
                out = core.feed(event, (batch.topic, batch.partition, batch.base_offset + i),
                                arrival_ms=arrival)
            except (KeyError, TypeError, ValueError, OverflowError):
                core.malformed()
                continue
            if out:
                self._outbox.extend(out)
        stats.batches += 1
        stats.records += len(batch.records)
        if newest:
            stats.lag_ms = max(0.0, float(now_ms() - newest))
            stats.max_lag_ms = max(stats.max_lag_ms, stats.lag_ms)
        self.positions[(batch.topic, batch.partition)] = batch.position
        if self._outbox:
            self._wake.set()
        self._busy_ms += (time.perf_counter() - started) * 1000.0

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain_outbox()

    async def _drain_outbox(self) -> None:
        while self._outbox:
            out, self._outbox = self._outbox, []
            try:
                self.stats.produced += await publish(self.bus, out)
            except GamebusError as exc:
                self.stats.produce_errors += 1
                log.warning("could not publish %d anti-cheat events: %s", len(out), exc)
                return

    async def _poller(self) -> None:
        """Release events held for a source that went quiet (watermarks need a clock)."""
        while True:
            await asyncio.sleep(0.2)
            out = self.core.poll(self.clock_ms())
            if out:
                self._outbox.extend(out)
                self._wake.set()

    async def _committer(self) -> None:
        last_idle = time.monotonic()
        while True:
            await asyncio.sleep(self.commit_interval_s)
            with contextlib.suppress(GamebusError):
                await self._commit()
            if time.monotonic() - last_idle > 30.0:
                self.core.close_idle(arrival_ms=self.clock_ms())
                last_idle = time.monotonic()

    async def _commit(self) -> None:
        if self.positions:
            await self.bus.commit(self.group, dict(self.positions))
