"""The write-behind flusher: one task per broker, group commit across partitions.

Appends land in the partitions' memory (visible to subscribers at once);
this task writes them to the segments and fsyncs, off the event loop in a
worker thread, and then releases ``durable`` acknowledgements in offset
order. Whatever is appended while a flush runs waits for the next one, so
under load many producers' batches share one write and one fsync per
partition: the fsync cost is paid per flush, not per request.

Flushes are prompt when someone waits for durability, and otherwise happen
every ``idle_interval_ms`` or when ``flush_bytes`` are pending, which keeps
``memory``-acked topics written behind too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from gamebus.errors import GamebusError, LogError
from gamebus.events import now_ms
from gamebus.log.partition import PendingWrite
from gamebus.server.metrics import BrokerMetrics
from gamebus.server.partitions import PartitionState

__all__ = ["DurableCallback", "Flusher"]

log = logging.getLogger("gamebus.flusher")

#: Called once the batch is durable (None) or the flush failed (the error).
DurableCallback = Callable[[GamebusError | None], None]


class Flusher:
    def __init__(
        self,
        metrics: BrokerMetrics,
        *,
        linger_ms: float = 0.0,
        idle_interval_ms: float = 200.0,
        flush_bytes: int = 1 << 20,
        max_unflushed_bytes: int = 16 << 20,
    ) -> None:
        self.metrics = metrics
        self.linger_s = linger_ms / 1000
        self.idle_interval_s = idle_interval_ms / 1000
        self.flush_bytes = flush_bytes
        self.pending_bytes = 0
        #: Appended but not yet written, over every partition; past
        #: ``max_unflushed_bytes`` producers are paused until a flush lands.
        self.unflushed_bytes = 0
        self.max_unflushed_bytes = max_unflushed_bytes
        self._blocked: list[Callable[[], None]] = []
        self._dirty: dict[PartitionState, None] = {}
        self._urgent = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    def mark(self, pstate: PartitionState, nbytes: int) -> None:
        """``pstate`` has unwritten appends."""
        self._dirty[pstate] = None
        self.pending_bytes += nbytes
        self.unflushed_bytes += nbytes
        if self.pending_bytes >= self.flush_bytes:
            self._urgent.set()

    @property
    def over_limit(self) -> bool:
        return self.unflushed_bytes > self.max_unflushed_bytes

    def block_until_flushed(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` once unflushed bytes are back under the limit."""
        self._blocked.append(resume)
        self._urgent.set()

    def wait_durable(self, pstate: PartitionState, end_offset: int, callback: DurableCallback) -> None:
        """Call ``callback`` once everything below ``end_offset`` is durable."""
        if pstate.durable_end >= end_offset:
            callback(None)
            return
        pstate.waiters.append((end_offset, callback))
        self._dirty[pstate] = None
        self._urgent.set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._urgent.wait(), self.idle_interval_s)
            except TimeoutError:
                pass
            if self.linger_s:
                await asyncio.sleep(self.linger_s)
            if not await self.flush_once():
                # Waiters remain but nothing became durable (fsync "interval"
                # not due yet): do not spin.
                await asyncio.sleep(0.005)

    async def flush_once(self) -> bool:
        """Write and sync every dirty partition, then release its waiters.

        The plans are taken on the loop thread, written in one worker thread
        hop for all partitions, and completed back on the loop thread, per
        the log's threading contract.
        """
        self._urgent.clear()
        if not self._dirty:
            return True
        dirty = list(self._dirty)
        self._dirty.clear()
        self.pending_bytes = 0
        now = now_ms()
        before = {p: p.durable_end for p in dirty}
        plans = [(p, p.take_pending(now)) for p in dirty]
        t0 = time.perf_counter()
        errors = await asyncio.to_thread(_write_all, plans)
        self.metrics.flush_latency.observe(time.perf_counter() - t0)
        self.flushes += 1
        for pstate, plan in plans:
            durable = pstate.complete_write(plan)
            error = errors.get(pstate)
            if error is not None:
                log.error("flush of %s/%d failed: %s", pstate.topic, pstate.index, error)
                _release(pstate.waiters, durable, None)
                _release(pstate.waiters, None, error)
                self._dirty[pstate] = None  # try again next round
            else:
                _release(pstate.waiters, durable, None)
                if pstate.has_unflushed or pstate.waiters:
                    self._dirty[pstate] = None
        self.unflushed_bytes = sum(p.log.pending_bytes for p in self._dirty)
        if self._blocked and not self.over_limit:
            blocked, self._blocked = self._blocked, []
            for resume in blocked:
                resume()
        if self.over_limit or any(p.waiters for p in self._dirty):
            self._urgent.set()
        return any(p.durable_end > before[p] or not p.waiters for p in dirty)

    async def stop(self) -> None:
        """Final flush of everything (graceful shutdown)."""
        self._stopping = True
        self._urgent.set()
        for resume in self._blocked:
            resume()
        self._blocked.clear()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush_once()


def _write_all(plans: list[tuple[PartitionState, PendingWrite]]) -> dict[PartitionState, GamebusError]:
    """The blocking part (worker thread): write and fsync each partition's plan."""
    errors: dict[PartitionState, GamebusError] = {}
    for pstate, plan in plans:
        try:
            pstate.write_pending(plan)
        except GamebusError as exc:
            errors[pstate] = exc
        except OSError as exc:
            errors[pstate] = LogError(f"write-behind failed: {exc}")
    return errors


def _release(
    waiters: deque[tuple[int, DurableCallback]], durable_end: int | None, error: GamebusError | None
) -> None:
    """Release waiters in order: all up to ``durable_end``, or all with ``error``."""
    while waiters:
        end, callback = waiters[0]
        if error is None and durable_end is not None and end > durable_end:
            break
        waiters.popleft()
        try:
            callback(error)
        except Exception:  # a callback must not stop the releases behind it
            log.exception("durable callback failed")
