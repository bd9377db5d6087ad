"""The Bus interface: where the embedded broker and NATS JetStream meet.

The SDK façade (:mod:`gamebus.client`), the relay and the anti-cheat service
talk only to a :class:`Bus`. Two engines implement it: the embedded broker
(``gamebus://host:port``) and NATS JetStream (``nats://host:port[,host:port]``).
Nothing above this line knows which one it runs on.

The value types here are plain frozen dataclasses so that both engines, the
wire codec and the tests can build and compare them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Acks",
    "Batch",
    "Bus",
    "GroupMembership",
    "PartitionInfo",
    "Position",
    "ProduceResult",
    "Start",
    "Subscription",
]

Acks = Literal["none", "memory", "durable"]


@dataclass(frozen=True, slots=True)
class Position:
    """A consumer position in one partition: the next offset to read, in an epoch.

    The epoch changes whenever the partition may have lost a tail (an unclean
    restart, a recreated stream). A position from an older epoch is answered
    with :class:`~gamebus.errors.EpochMismatch` so the reader can resync.
    """

    epoch: int
    offset: int


Start = Literal["earliest", "latest"] | Position


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive records of one partition, as a subscriber receives them.

    ``records[i]`` is the encoded event at offset ``base_offset + i``.
    """

    topic: str
    partition: int
    epoch: int
    base_offset: int
    records: list[bytes]
    first_ts: int = 0
    max_ts: int = 0

    @property
    def next_offset(self) -> int:
        return self.base_offset + len(self.records)

    @property
    def position(self) -> Position:
        """Where a reader resumes after this batch."""
        return Position(self.epoch, self.next_offset)


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """Where a produced batch landed.

    ``offsets`` is empty when the records got consecutive offsets from
    ``base_offset`` (the embedded broker, always). On JetStream an offset is
    a stream sequence shared by all of a topic's partitions, so a batch's
    records can be interleaved with other partitions' records; the engine
    then lists every record's offset. :meth:`offset_of` covers both.
    """

    topic: str
    partition: int
    epoch: int
    base_offset: int
    duplicate: bool = False
    offsets: tuple[int, ...] = ()

    def offset_of(self, index: int) -> int:
        """The offset of record ``index`` of the produced batch."""
        return self.offsets[index] if self.offsets else self.base_offset + index


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    topic: str
    partition: int
    epoch: int
    log_start: int
    log_end: int
    durable_end: int
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Subscription(Protocol):
    """A live stream of one partition's batches, from a start position.

    Iteration raises :class:`~gamebus.errors.EpochMismatch` when the start
    position's epoch is stale and :class:`~gamebus.errors.OffsetOutOfRange`
    when the history it asks for is gone.
    """

    topic: str
    partition: int

    def __aiter__(self) -> AsyncIterator[Batch]: ...

    async def close(self) -> None: ...


@runtime_checkable
class GroupMembership(Protocol):
    """This member's share of a consumer group's partitions.

    Heartbeats run in the background while the membership is alive; when the
    group rebalances, ``assignment`` and ``generation`` change and
    :meth:`wait_for_change` returns.
    """

    group: str
    member: str
    generation: int
    assignment: list[tuple[str, int]]

    async def wait_for_change(self) -> None: ...

    async def leave(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """A connection to an engine, shared by producers and consumers."""

    url: str

    async def close(self) -> None: ...

    async def partitions(self, topic: str) -> int: ...

    async def partition_for(self, topic: str, key: str) -> int: ...

    async def metadata(self, topic: str | None = None) -> list[PartitionInfo]: ...

    async def create_topic(self, topic: str, *, partitions: int, **config: Any) -> None: ...

    async def produce(
        self,
        topic: str,
        partition: int,
        records: list[bytes],
        *,
        acks: Acks = "memory",
        producer_id: int = -1,
        sequence: int = -1,
    ) -> ProduceResult | None: ...

    async def subscribe(
        self, topic: str, partition: int, start: Start = "latest", *, credit_bytes: int = 1 << 20
    ) -> Subscription: ...

    async def fetch(
        self, topic: str, partition: int, offset: int, *, max_bytes: int = 1 << 20
    ) -> list[Batch]: ...

    async def join_group(
        self,
        group: str,
        topics: list[str],
        *,
        member: str | None = None,
        session_timeout_ms: int = 10_000,
    ) -> GroupMembership: ...

    async def commit(self, group: str, offsets: dict[tuple[str, int], Position]) -> None: ...

    async def committed(self, group: str, topic: str, partition: int) -> Position | None: ...
