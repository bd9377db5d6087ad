"""A live partition subscription that survives consumer loss and failover.

Offsets are stream sequences, so one partition's offsets rise strictly but
skip the sequences of the topic's other partitions. A :class:`Batch` keeps
its contract (``records[i]`` is at ``base_offset + i``) by holding only
records whose sequences are consecutive; a gap starts a new batch. Resuming
from ``Position(epoch, last_seen + 1)`` is always exact: the consumer starts
at that sequence and the subject filter skips the other partitions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING

import nats.js.errors

from gamebus.engines.base import Batch, Position, Start
from gamebus.engines.jetstream import naming
from gamebus.engines.jetstream.reader import PartitionReader, ReaderBroken
from gamebus.engines.jetstream.translate import is_retriable, to_gamebus
from gamebus.errors import EpochMismatch, GamebusError, OffsetOutOfRange

if TYPE_CHECKING:
    from gamebus.engines.jetstream.bus import JetStreamBus

__all__ = ["JetStreamSubscription", "to_batches"]

log = logging.getLogger(__name__)


def to_batches(
    topic: str, partition: int, epoch: int, taken: Sequence[tuple[naming.AckInfo, bytes]]
) -> list[Batch]:
    """Group deliveries into batches of consecutive stream sequences."""
    batches: list[Batch] = []
    run: list[bytes] = []
    base = first_ts = max_ts = 0
    for info, data in taken:
        if run and info.stream_seq == base + len(run):
            run.append(data)
            max_ts = max(max_ts, info.timestamp_ms)
            continue
        if run:
            batches.append(Batch(topic, partition, epoch, base, run, first_ts, max_ts))
        run, base, first_ts, max_ts = [data], info.stream_seq, info.timestamp_ms, info.timestamp_ms
    if run:
        batches.append(Batch(topic, partition, epoch, base, run, first_ts, max_ts))
    return batches


class JetStreamSubscription:
    """``async for batch in sub``: one partition from ``start``, live, until closed."""

    def __init__(
        self,
        bus: JetStreamBus,
        topic: str,
        partition: int,
        start: Start,
        *,
        credit_bytes: int = 1 << 20,
    ) -> None:
        self.topic, self.partition = topic, partition
        self.start = start
        self.credit_bytes = max(1, credit_bytes)
        self.position: Position | None = None  # next record to hand out, once started
        self._bus = bus
        self._reader: PartitionReader | None = None
        self._closed = False
        self._gen: AsyncGenerator[Batch, None] | None = None
        self.reconnects = 0

    def __aiter__(self) -> AsyncIterator[Batch]:
        # One underlying generator for the subscription's life: a second
        # ``async for`` continues where the first one stopped.
        return self

    async def __anext__(self) -> Batch:
        if self._gen is None:
            self._gen = self._iterate()
        return await self._gen.__anext__()

    async def _resolve_start(self) -> Position:
        info = await self._bus._stream_info(self.topic)
        epoch = self._bus._topics[self.topic].epoch
        start, end = (
            (info.state.first_seq, info.state.last_seq + 1)
            if info.state.messages
            else (info.state.last_seq + 1, info.state.last_seq + 1)
        )
        if self.start == "earliest":
            return Position(epoch, start)
        if self.start == "latest":
            return Position(epoch, end)
        if not isinstance(self.start, Position):
            raise TypeError(f"start must be 'earliest', 'latest' or a Position, not {self.start!r}")
        if self.start.epoch != epoch:
            raise EpochMismatch(self.start.epoch, epoch, resume_offset=start)
        if self.start.offset < start or self.start.offset > end:
            raise OffsetOutOfRange(self.start.offset, start, end)
        return Position(epoch, self.start.offset)

    async def _check_epoch(self, position: Position) -> None:
        """After losing a consumer: a recreated stream means the old offsets are void."""
        info = await self._bus._stream_info(self.topic)
        epoch = self._bus._topics[self.topic].epoch
        if epoch != position.epoch:
            first = info.state.first_seq if info.state.messages else info.state.last_seq + 1
            raise EpochMismatch(position.epoch, epoch, resume_offset=first)

    async def _iterate(self) -> AsyncGenerator[Batch, None]:
        position = self.position or await self._resolve_start()
        self.position = position
        stream = naming.stream_name(self.topic)
        subject = naming.partition_subject(self.topic, self.partition)
        backoff = 0.1
        try:
            while not self._closed:
                reader = self._bus.reader(stream, subject, position.offset)
                self._reader = reader
                try:
                    await reader.open()
                    backoff = 0.1
                    while not self._closed:
                        taken = await reader.take(
                            max_records=max(1, self.credit_bytes // 64),
                            max_bytes=self.credit_bytes,
                        )
                        for batch in to_batches(self.topic, self.partition, position.epoch, taken):
                            position = Position(position.epoch, batch.next_offset)
                            self.position = position
                            yield batch
                except Exception as e:
                    if not (isinstance(e, ReaderBroken) or is_retriable(e)):
                        if isinstance(e, nats.js.errors.NotFoundError):
                            await self._check_epoch(position)  # UnknownTopic, EpochMismatch
                        raise to_gamebus(e, f"subscription {self.topic}/{self.partition}") from e
                    if self._closed:
                        return
                    log.info(
                        "subscription %s/%s: %s; resuming at %s",
                        self.topic,
                        self.partition,
                        e,
                        position,
                    )
                    self.reconnects += 1
                    await reader.close()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                    try:
                        await self._check_epoch(position)
                    except GamebusError as ge:
                        if not ge.retriable:
                            raise  # EpochMismatch, UnknownTopic: the reader must act
                finally:
                    await reader.close()
        finally:
            self._reader = None

    async def close(self) -> None:
        """Stop: a pending ``__anext__`` ends with StopAsyncIteration."""
        self._closed = True
        if self._reader is not None:
            self._reader.interrupt()
            await self._reader.close()
        if self._gen is not None:
            try:
                await self._gen.aclose()
            except RuntimeError:
                pass  # being iterated right now; the interrupted reader ends it
        self._bus.forget(self)
