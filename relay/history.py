"""Reading a match's missed records back from the bus, for resume.

The relay asks for ``[start, end)`` of one partition: ``end`` is where its
live feed stood when the subscriber attached, so history and live meet
exactly (see :mod:`relay.channels`). Anything that makes the range
unreadable becomes a :class:`ReplayGap` with the reason the client is told:
``history`` (retention removed the start), ``epoch`` (the partition's tail
may have changed) or ``too_far`` (more than the configured bound).
"""

from __future__ import annotations

from collections.abc import Callable

from gamebus.engines.base import Bus
from gamebus.errors import OffsetOutOfRange
from relay.records import Record

__all__ = ["ReplayGap", "fetch_range"]


class ReplayGap(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def fetch_range(
    bus: Bus,
    topic: str,
    partition: int,
    *,
    epoch: int,
    start: int,
    end: int,
    match: str,
    max_records: int,
    decode: Callable[[int, bytes], Record | None],
) -> list[Record]:
    """The decoded records of ``match`` in ``[start, end)``, in offset order."""
    out: list[Record] = []
    offset = start
    while offset < end:
        try:
            batches = await bus.fetch(topic, partition, offset)
        except OffsetOutOfRange:
            raise ReplayGap("history") from None
        if not batches:
            break  # nothing more below ``end`` in this partition
        # A first batch that starts past ``offset`` is no gap: on JetStream a
        # partition's offsets are stream sequences, sparse per partition.
        # History that retention removed raises OffsetOutOfRange above.
        for batch in batches:
            if batch.epoch != epoch:
                raise ReplayGap("epoch")
            for i, raw in enumerate(batch.records):
                off = batch.base_offset + i
                if off < offset:
                    continue
                if off >= end:
                    break
                rec = decode(off, raw)
                if rec is not None and rec.event.get("match") == match:
                    out.append(rec)
            offset = max(offset, min(batch.next_offset, end))
        if len(out) > max_records:
            raise ReplayGap("too_far")
    return out
