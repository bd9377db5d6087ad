"""An in-memory Bus for the relay's in-process tests.

It keeps the Bus contract the relay relies on (offsets, epochs, log start,
``fetch`` history, ``subscribe`` from an explicit position) with none of a
broker's cost, so edge tests can create gaps and epoch changes at will. The
end-to-end tests run the real broker instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from gamebus.engines.base import Batch, PartitionInfo, Position, ProduceResult, Start
from gamebus.errors import EpochMismatch, OffsetOutOfRange
from gamebus.partitioning import partition_for_key

__all__ = ["FakeBus"]


@dataclass
class _Partition:
    epoch: int = 1
    log_start: int = 0
    records: list[bytes] = field(default_factory=list)  # from offset 0; below log_start is "gone"
    batches: list[Batch] = field(default_factory=list)
    subscribers: list[asyncio.Queue[Batch | BaseException]] = field(default_factory=list)

    @property
    def log_end(self) -> int:
        return len(self.records)


class _Subscription:
    def __init__(self, bus: FakeBus, topic: str, partition: int, queue: asyncio.Queue[Batch | BaseException]) -> None:
        self.topic, self.partition, self._bus, self._queue = topic, partition, bus, queue

    async def __aiter__(self) -> AsyncIterator[Batch]:
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        part = self._bus._part(self.topic, self.partition)
        if self._queue in part.subscribers:
            part.subscribers.remove(self._queue)


class FakeBus:
    url = "fake://"

    def __init__(self, partitions: int = 4) -> None:
        self.n = partitions
        self.topics: dict[str, list[_Partition]] = {}
        self.fetches = 0

    def _part(self, topic: str, partition: int) -> _Partition:
        parts = self.topics.setdefault(topic, [_Partition() for _ in range(self.n)])
        return parts[partition]

    async def close(self) -> None:
        pass

    async def partitions(self, topic: str) -> int:
        return self.n

    async def partition_for(self, topic: str, key: str) -> int:
        return int(partition_for_key(key, self.n))

    async def metadata(self, topic: str | None = None) -> list[PartitionInfo]:
        assert topic is not None
        return [
            PartitionInfo(topic, i, p.epoch, p.log_start, p.log_end, p.log_end)
            for i, p in enumerate(self._part(topic, j) for j in range(self.n))
        ]

    async def create_topic(self, topic: str, *, partitions: int, **config: Any) -> None:
        pass

    async def produce(self, topic: str, partition: int, records: list[bytes], **_: Any) -> ProduceResult:
        part = self._part(topic, partition)
        batch = Batch(topic, partition, part.epoch, part.log_end, list(records), 0, 0)
        part.records.extend(records)
        part.batches.append(batch)
        for queue in part.subscribers:
            queue.put_nowait(batch)
        return ProduceResult(topic, partition, part.epoch, batch.base_offset)

    async def subscribe(self, topic: str, partition: int, start: Start = "latest", *, credit_bytes: int = 1 << 20) -> _Subscription:
        part = self._part(topic, partition)
        queue: asyncio.Queue[Batch | BaseException] = asyncio.Queue()
        if isinstance(start, Position):
            if start.epoch != part.epoch:
                queue.put_nowait(EpochMismatch(start.epoch, part.epoch, resume_offset=part.log_end))
            elif start.offset < part.log_end:
                queue.put_nowait(
                    Batch(topic, partition, part.epoch, start.offset, part.records[start.offset :], 0, 0)
                )
        part.subscribers.append(queue)
        return _Subscription(self, topic, partition, queue)

    async def fetch(self, topic: str, partition: int, offset: int, *, max_bytes: int = 1 << 20) -> list[Batch]:
        self.fetches += 1
        await asyncio.sleep(0.01)  # history takes a while: live batches overtake it
        part = self._part(topic, partition)
        if offset < part.log_start or offset > part.log_end:
            raise OffsetOutOfRange(offset, part.log_start, part.log_end)
        return [Batch(topic, partition, part.epoch, offset, part.records[offset : offset + 100], 0, 0)]
