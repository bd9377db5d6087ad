"""The broker's view of one partition: the log plus who listens and who waits.

:class:`PartitionState` is the only place the broker calls into
:class:`gamebus.log.partition.Partition`, so the storage contract is visible
in one screen: ``append`` / ``read`` / ``check_position`` on the loop
thread, ``take_pending`` -> ``write_pending`` (worker thread) ->
``complete_write`` for the write-behind flusher.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from gamebus.engines.base import Position, Start
from gamebus.errors import GamebusError, OffsetOutOfRange
from gamebus.events import now_ms
from gamebus.log.partition import Partition, PendingWrite

if TYPE_CHECKING:
    from gamebus.server.subscriptions import Subscriber

__all__ = ["Appended", "PartitionState"]


class Appended(NamedTuple):
    base_offset: int
    next_offset: int
    epoch: int
    duplicate: bool
    batch: bytes  # the stored batch, header included ("" for a duplicate)


class PartitionState:
    __slots__ = ("index", "log", "subscribers", "topic", "waiters")

    def __init__(self, topic: str, index: int, log: Partition) -> None:
        self.topic, self.index, self.log = topic, index, log
        self.subscribers: dict[tuple[int, int], Subscriber] = {}
        self.waiters: deque[tuple[int, Callable[[GamebusError | None], None]]] = deque()

    # -- offsets ------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.log.epoch

    @property
    def log_start(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end(self) -> int:
        return self.log.next_offset

    @property
    def durable_end(self) -> int:
        return self.log.durable_offset

    @property
    def has_unflushed(self) -> bool:
        return self.log.written_offset < self.log.next_offset

    def info(self) -> dict[str, Any]:
        log = self.log
        return {
            "topic": self.topic,
            "partition": self.index,
            "epoch": log.epoch,
            "log_start": log.log_start_offset,
            "log_end": log.next_offset,
            "durable_end": log.durable_offset,
            "extra": {
                "size_bytes": log.size_bytes,
                "memory_bytes": log.memory_bytes,
                "pending_bytes": log.pending_bytes,
                "subscribers": len(self.subscribers),
            },
        }

    def resolve_start(self, start: Start) -> int:
        """The offset a subscription starting at ``start`` reads first."""
        if start == "earliest":
            return self.log_start
        if start == "latest":
            return self.log_end
        assert isinstance(start, Position)
        self.log.check_position(start.epoch, start.offset)
        if not self.log_start <= start.offset <= self.log_end:
            raise OffsetOutOfRange(start.offset, self.log_start, self.log_end)
        return start.offset

    # -- data ---------------------------------------------------------------

    def append(
        self,
        payload: bytes,
        *,
        count: int,
        first_ts: int,
        max_ts: int,
        producer_id: int,
        sequence: int,
    ) -> Appended:
        r = self.log.append(
            payload,
            count=count,
            first_ts=first_ts,
            max_ts=max_ts,
            producer_id=producer_id,
            sequence=sequence,
            now_ms=now_ms(),
        )
        if r.duplicate:
            # A retried batch is acked durable only once the original is durable.
            return Appended(r.base_offset, r.base_offset + count, r.epoch, True, b"")
        batch = self.log.read(r.base_offset, max_bytes=1)[0] if self.subscribers else b""
        return Appended(r.base_offset, r.base_offset + count, r.epoch, False, batch)

    def read(self, offset: int, *, max_bytes: int) -> list[bytes]:
        return self.log.read(offset, max_bytes=max_bytes)

    # -- write-behind (see gamebus.log.partition's threading contract) -----

    def take_pending(self, now: int) -> PendingWrite:
        return self.log.take_pending(now_ms=now)

    def write_pending(self, plan: PendingWrite) -> None:
        self.log.write_pending(plan)

    def complete_write(self, plan: PendingWrite) -> int:
        return self.log.complete_write(plan)

    def close(self) -> None:
        self.log.close()
