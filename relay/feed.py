"""One bus subscription per partition, shared by every match and client on it.

A relay reads a partition only while some client watches a match in it. The
feed starts at the partition's log end (an explicit ``Position`` read from
metadata, so the relay knows exactly where live begins: resume replays up to
there), survives reconnects by resubscribing from the next offset, and
trims anything the bus sends twice so the channels downstream see each
offset once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gamebus.engines.base import Batch, Bus, Position, Subscription
from gamebus.errors import EpochMismatch, OffsetOutOfRange

__all__ = ["Feed"]

log = logging.getLogger("relay.feed")

#: ``sink(feed, batch, first_offset)`` gets each batch once, from ``first_offset`` on.
Sink = Callable[["Feed", Batch, int], None]


class Feed:
    def __init__(self, bus: Bus, topic: str, partition: int, sink: Sink) -> None:
        self.bus, self.topic, self.partition, self.sink = bus, topic, partition, sink
        self.epoch = 0
        self.next_offset = 0
        self.log_start = 0
        #: Set when a batch arrived in a new epoch, until the relay has told its clients.
        self.new_epoch = False
        #: Matches (or other users) that keep this feed alive.
        self.users: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"Feed({self.topic}/{self.partition} @ {self.epoch}:{self.next_offset})"

    async def start(self) -> None:
        try:
            await self._locate()
            sub = await self._subscribe()
        except BaseException as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
                self.ready.exception()  # mark retrieved: waiters re-raise it
            raise
        self._task = asyncio.create_task(self._run(sub), name=f"feed {self.topic}/{self.partition}")
        self.ready.set_result(None)

    async def _locate(self) -> None:
        for info in await self.bus.metadata(self.topic):
            if info.partition == self.partition:
                self.epoch, self.next_offset, self.log_start = info.epoch, info.log_end, info.log_start
                return
        raise LookupError(f"no partition {self.partition} in {self.topic!r} metadata")

    async def _subscribe(self) -> Subscription:
        return await self.bus.subscribe(self.topic, self.partition, Position(self.epoch, self.next_offset))

    def admit(self, batch: Batch) -> int | None:
        """The first offset of ``batch`` not seen yet, or None if all of it was."""
        if batch.epoch != self.epoch:
            log.warning("%r: epoch %d -> %d", self, self.epoch, batch.epoch)
            self.epoch = batch.epoch
            self.next_offset = batch.base_offset
            self.new_epoch = True
        if batch.next_offset <= self.next_offset:
            return None
        first = max(batch.base_offset, self.next_offset)
        self.next_offset = batch.next_offset
        return first

    def _adopt_epoch(self, epoch: int, resume_offset: int) -> None:
        """The bus refused our position: the tail may be gone, so clients hear of it."""
        if epoch != self.epoch:
            self.new_epoch = True
        self.epoch, self.next_offset = epoch, resume_offset

    async def _run(self, sub: Subscription) -> None:
        backoff_s = 0.05
        while True:
            try:
                async for batch in sub:
                    first = self.admit(batch)
                    if first is not None:
                        self.sink(self, batch, first)
                    backoff_s = 0.05
                log.warning("%r: subscription ended; resubscribing", self)
            except asyncio.CancelledError:
                await _quietly_close(sub)
                raise
            except EpochMismatch as exc:
                log.warning("%r: %s", self, exc)
                self._adopt_epoch(exc.current, exc.resume_offset)
            except OffsetOutOfRange as exc:
                log.warning("%r: %s", self, exc)
                self.next_offset = exc.log_start
            except Exception as exc:
                log.warning("%r: %s: %s; retrying in %.2fs", self, type(exc).__name__, exc, backoff_s)
            await _quietly_close(sub)
            while True:
                await asyncio.sleep(backoff_s)
                backoff_s = min(2.0, backoff_s * 2)
                try:
                    sub = await self._subscribe()
                    break
                except asyncio.CancelledError:
                    raise
                except EpochMismatch as exc:
                    self._adopt_epoch(exc.current, exc.resume_offset)
                except OffsetOutOfRange as exc:
                    self.next_offset = exc.log_start
                except Exception as exc:
                    log.warning("%r: resubscribe failed: %s", self, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None


async def _quietly_close(sub: Subscription) -> None:
    try:
        await sub.close()
    except Exception:
        pass
