"""Idempotent producer state of one partition: producer id -> recent batches.

A producer numbers its batches to a partition 0, 1, 2, ... (one sequence
per batch, not per record). The partition accepts ``last + 1``, answers a
retry of one of the last :data:`RECENT_BATCHES` batches with that batch's
original offset, and refuses a gap with
:class:`~gamebus.errors.OutOfOrderSequence`.

One exception to the gap rule: when the producer's last batch belongs to
an older epoch, the gap may be batches an unclean restart lost, so the next
sequence is accepted as a fresh start rather than blocking the producer
forever. The state is rebuilt from the batch headers on recovery.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, NamedTuple

from gamebus.errors import OutOfOrderSequence

__all__ = ["RECENT_BATCHES", "ProducerBatch", "ProducerState"]

#: How many of a producer's latest batches a retry can still be matched against.
RECENT_BATCHES: Final = 5


class ProducerBatch(NamedTuple):
    sequence: int
    base_offset: int
    epoch: int
    batch_bytes: int


class ProducerState:
    """Last batches per producer id; the partition consults it before appending."""

    __slots__ = ("_producers",)

    def __init__(self) -> None:
        self._producers: dict[int, deque[ProducerBatch]] = {}

    def __len__(self) -> int:
        return len(self._producers)

    def check(self, producer_id: int, sequence: int, *, epoch: int) -> ProducerBatch | None:
        """The original batch if ``sequence`` is a retry, None if it is next; raises on a gap."""
        recent = self._producers.get(producer_id)
        if recent is None:
            return None
        last = recent[-1]
        if sequence == last.sequence + 1:
            return None
        if sequence <= last.sequence:
            for batch in recent:
                if batch.sequence == sequence:
                    return batch
        elif last.epoch != epoch:
            return None  # the gap may be a lost tail: start afresh
        raise OutOfOrderSequence(producer_id, last.sequence + 1, sequence)

    def record(self, producer_id: int, batch: ProducerBatch) -> None:
        recent = self._producers.get(producer_id)
        if recent is None:
            recent = self._producers[producer_id] = deque(maxlen=RECENT_BATCHES)
        elif recent[-1].sequence >= batch.sequence:
            recent.clear()  # a restart from a lower sequence (see check())
        recent.append(batch)

    def last_sequence(self, producer_id: int) -> int | None:
        recent = self._producers.get(producer_id)
        return recent[-1].sequence if recent else None

    def clear(self) -> None:
        self._producers.clear()

    def to_json(self) -> list[Any]:
        """``[[producer_id, [[sequence, base_offset, epoch, batch_bytes], ...]], ...]``."""
        return [[pid, [list(b) for b in recent]] for pid, recent in self._producers.items()]

    @classmethod
    def from_json(cls, data: Any) -> ProducerState | None:
        """The state :meth:`to_json` wrote, or None when ``data`` is not that shape."""
        state = cls()
        try:
            for pid, batches in data:
                for seq, base, epoch, size in batches:
                    if not all(type(v) is int for v in (pid, seq, base, epoch, size)):
                        return None
                    state.record(pid, ProducerBatch(seq, base, epoch, size))
        except (TypeError, ValueError):
            return None
        return state
