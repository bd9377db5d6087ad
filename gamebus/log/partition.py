"""A partition: memory window, write-behind queue, segments, epoch, producers.

Appends go to memory only: the batch is encoded once (header + CRC32C over
the producer's opaque payload), put in the memory window (visible to reads
at once) and queued for write-behind. A flush writes the queue to the
active segment and fsyncs per policy; the offset it returns is what the
broker may acknowledge as ``durable``, for every producer at once.

Threading contract (the broker runs on one asyncio loop thread):

* the *owner thread* calls everything except :meth:`write_pending`;
* :meth:`write_pending` may run in one other thread (``asyncio.to_thread``)
  on the plan :meth:`take_pending` returned, while the owner keeps calling
  :meth:`append` and :meth:`read`; it touches only segment files and the
  segment list, which it replaces (never mutates) when it rolls;
* one write in flight at a time: :meth:`take_pending` again, :meth:`close`
  during a write raise :class:`RuntimeError`, and :meth:`apply_retention`
  skips its turn;
* :meth:`complete_write` (owner thread, also after a failed write) makes the
  written prefix visible to segment reads and advances the durable offset.

Reads below the window come from segments and only below the written
offset, so a reader never sees bytes the writer is still producing.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from gamebus.errors import (
    EpochMismatch,
    InvalidRequest,
    LimitExceeded,
    OffsetOutOfRange,
)
from gamebus.log.batch import HEADER_BYTES, encode_header
from gamebus.log.config import LogConfig
from gamebus.log.epochs import EpochHistory
from gamebus.log.producers import ProducerBatch, ProducerState
from gamebus.log.recovery import Recovery, recover, write_clean_marker
from gamebus.log.segment import NO_TIMESTAMP, Segment
from gamebus.log.window import MemoryWindow

__all__ = ["AppendResult", "Partition", "PendingWrite"]

_BASE_COUNT: Final = struct.Struct(">qi")  # at byte 10 of a batch
_INT32_MAX: Final = 2**31 - 1


class AppendResult(NamedTuple):
    """Where an append landed. ``duplicate``: a retried batch, stored once already."""

    base_offset: int
    epoch: int
    duplicate: bool
    batch_bytes: int


@dataclass(slots=True)
class PendingWrite:
    """A snapshot of the write-behind queue for one flush (see the threading contract).

    ``written_*`` advance as :meth:`Partition.write_pending` makes progress,
    so a write that fails halfway still completes what reached the file.
    """

    headers: list[bytes]
    payloads: list[bytes]
    end_offset: int
    fsync: bool
    now_ms: int
    written_batches: int = 0
    written_bytes: int = 0
    written_end: int = -1
    synced: bool = False
    done: bool = field(default=False, repr=False)


class Partition:
    """One partition's log. Open with :meth:`open`; append, read, flush, close."""

    def __init__(
        self,
        directory: str,
        config: LogConfig,
        *,
        segments: list[Segment],
        history: EpochHistory,
        producers: ProducerState,
        next_offset: int,
        recovery: Recovery | None = None,
    ) -> None:
        self.directory = directory
        self.config = config
        #: What :meth:`open` found and did, for the broker's log and metrics.
        self.recovery = recovery or Recovery(
            clean=True, cut_bytes=0, dropped_segments=0, new_epoch=False
        )
        self._segments = segments
        self._history = history
        self._epoch = history.current
        self._producers = producers
        self._next_offset = next_offset
        self._log_start = segments[0].base_offset if segments else next_offset
        self._written = next_offset
        self._durable = next_offset
        self._synced = next_offset
        self._window = MemoryWindow()
        self._pending_headers: list[bytes] = []
        self._pending_payloads: list[bytes] = []
        self._pending_bytes = 0
        self._writing = False
        self._closed = False
        self._last_fsync_ms = NO_TIMESTAMP
        self._last_now_ms = 0

    def __repr__(self) -> str:
        return (
            f"Partition({self.directory!r}, epoch={self._epoch}, "
            f"offsets=[{self._log_start}, {self._next_offset}), durable={self._durable})"
        )

    # -- opening and recovery ----------------------------------------------

    @classmethod
    def open(cls, directory: str, config: LogConfig) -> Partition:
        """Open (or create) the partition in ``directory``, recovering its tail.

        See :mod:`gamebus.log.recovery`: the tail is verified and cut at
        the first torn or corrupt batch; a new epoch starts after an
        unclean shutdown or a cut; a cleanly closed log reopens unchanged.
        :attr:`recovery` says what happened.
        """
        state = recover(directory, config)
        return cls(
            directory,
            config,
            segments=state.segments,
            history=state.history,
            producers=state.producers,
            next_offset=state.next_offset,
            recovery=state.recovery,
        )

    # -- properties ----------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def log_start_offset(self) -> int:
        """The oldest offset still readable."""
        return self._log_start

    @property
    def next_offset(self) -> int:
        """The log end: the offset the next appended record gets."""
        return self._next_offset

    @property
    def written_offset(self) -> int:
        """First offset not yet written to a segment (safe from a process crash)."""
        return self._written

    @property
    def durable_offset(self) -> int:
        """First offset not yet durable: acknowledge ``durable`` below it."""
        return self._durable

    @property
    def pending_bytes(self) -> int:
        """Bytes appended but not yet written to a segment."""
        return self._pending_bytes

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the memory window (pending batches included)."""
        return self._window.nbytes

    @property
    def size_bytes(self) -> int:
        """Bytes of the whole log: segment files plus what is pending."""
        return sum(s.size for s in self._segments) + self._pending_bytes

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    # -- appending -----------------------------------------------------------

    def append(
        self,
        payload: bytes,
        *,
        count: int,
        first_ts: int,
        max_ts: int,
        producer_id: int = -1,
        sequence: int = -1,
        now_ms: int,
    ) -> AppendResult:
        """Append one batch of ``count`` records (``payload`` as the SDK encoded it).

        Memory only: visible to :meth:`read` at once, durable after a
        :meth:`flush` covers it. With ``producer_id >= 0`` the batch is
        idempotent: a retry returns the original offset with
        ``duplicate=True``; a gap raises :class:`OutOfOrderSequence`.
        """
        if producer_id >= 0:
            if not 0 <= sequence <= _INT32_MAX:
                raise InvalidRequest(
                    "sequence", f"must be in [0, {_INT32_MAX}] for an idempotent producer"
                )
            dup = self._producers.check(producer_id, sequence, epoch=self._epoch)
            if dup is not None:
                return AppendResult(dup.base_offset, self._epoch, True, dup.batch_bytes)
        if type(payload) is not bytes:
            payload = bytes(payload)  # never keep a view of the caller's buffer
        size = len(payload)
        if size > self.config.max_batch_bytes:
            raise LimitExceeded("batch bytes", size, self.config.max_batch_bytes)
        if count < 1:
            raise InvalidRequest("count", f"a batch holds at least one record, not {count}")
        if self._closed:
            raise RuntimeError("partition is closed")
        base = self._next_offset
        epoch = self._epoch
        try:
            header = encode_header(
                payload,
                base_offset=base,
                count=count,
                first_ts=first_ts,
                max_ts=max_ts,
                producer_id=producer_id,
                sequence=sequence,
                epoch=epoch,
            )
        except struct.error as exc:
            raise InvalidRequest("batch", f"a header field is out of range: {exc}") from None
        n = size + HEADER_BYTES
        window = self._window
        window.offsets.append(base)
        window.headers.append(header)
        window.payloads.append(payload)
        window.nbytes += n
        self._pending_headers.append(header)
        self._pending_payloads.append(payload)
        self._pending_bytes += n
        self._next_offset = base + count
        self._last_now_ms = now_ms
        if producer_id >= 0:
            self._producers.record(producer_id, ProducerBatch(sequence, base, epoch, n))
        if (
            window.nbytes > self.config.memory_window_bytes
            and self._written > window.offsets[window.head]
        ):
            window.evict(
                max_bytes=self.config.memory_window_bytes,
                written_end=self._written,
                next_offset=self._next_offset,
            )
        return AppendResult(base, epoch, False, n)

    # -- reading ---------------------------------------------------------------

    def read(self, offset: int, *, max_bytes: int) -> list[bytes]:
        """Whole stored batches (header included), from the one containing ``offset``.

        At least one batch, then more while the total stays within
        ``max_bytes``. From memory inside the window, from segments below
        it. ``offset == next_offset`` returns ``[]`` (caught up); below the
        log start or past the end raises :class:`OffsetOutOfRange`.
        """
        end = self._next_offset
        if offset < self._log_start or offset > end:
            raise OffsetOutOfRange(offset, self._log_start, end)
        out: list[bytes] = []
        if offset == end:
            return out
        window_start = self._window.start(end)
        total = 0
        if offset < window_start:
            total = self._read_segments(offset, max_bytes, window_start, out)
            if not out:
                return out
            base, count = _BASE_COUNT.unpack_from(out[-1], 10)
            offset = base + count
            if offset < window_start or total >= max_bytes:
                return out
        self._window.read(offset, max_bytes=max_bytes, out=out, total=total)
        return out

    def _read_segments(self, offset: int, max_bytes: int, end: int, out: list[bytes]) -> int:
        segments = self._segments  # the writer replaces the list, never mutates it
        i = max(bisect_right(segments, offset, key=_base_offset) - 1, 0)
        total = 0
        while i < len(segments) and offset < end:
            if out and total >= max_bytes:
                break
            seg = segments[i]
            got = seg.read(
                offset, max_bytes=max_bytes - total, end_offset=end, at_least_one=not out
            )
            if got:
                for b in got:
                    total += len(b)
                out.extend(got)
                base, count = _BASE_COUNT.unpack_from(got[-1], 10)
                offset = base + count
                if offset < min(seg.next_offset, end):
                    break  # the byte budget ran out inside this segment
            elif out:
                break
            else:
                offset = max(offset, seg.next_offset)
            i += 1
        return total

    def check_position(self, epoch: int, offset: int) -> None:
        """Raise :class:`EpochMismatch` if a consumer at ``(epoch, offset)`` must resync.

        A position from an older epoch is still good when ``offset`` is at or
        below the start of the epoch that followed it (nothing there changed);
        otherwise the consumer should resume from that start. A position from
        an unknown future epoch (the log was replaced) resumes at the log start.
        """
        if epoch == self._epoch:
            return
        if epoch > self._epoch:
            raise EpochMismatch(epoch, self._epoch, resume_offset=self._log_start)
        boundary = self._history.start_of_next(epoch)
        if boundary is not None and offset > boundary:
            raise EpochMismatch(epoch, self._epoch, resume_offset=boundary)

    # -- flushing --------------------------------------------------------------

    def take_pending(self, *, now_ms: int, fsync: bool | None = None) -> PendingWrite:
        """Snapshot the write-behind queue for :meth:`write_pending` (pure, owner thread).

        ``fsync``: None follows the policy, True forces an fsync, False skips it.
        """
        if self._writing:
            raise RuntimeError("a write is already in flight for this partition")
        if fsync is None:
            policy = self.config.fsync
            if policy == "always":
                fsync = True
            elif policy == "interval":
                fsync = now_ms - self._last_fsync_ms >= self.config.fsync_interval_ms
            else:
                fsync = False
        if fsync and not self._pending_headers and self._synced >= self._written:
            fsync = False  # nothing new to make durable
        if fsync:
            self._last_fsync_ms = now_ms
        self._writing = True
        self._last_now_ms = now_ms
        return PendingWrite(
            self._pending_headers[:], self._pending_payloads[:], self._next_offset, fsync, now_ms
        )

    def write_pending(self, plan: PendingWrite) -> None:
        """Write the plan's batches to segments, rolling as needed, and fsync if planned.

        The I/O step: may run in another thread (see the module docstring).
        On error the written prefix is recorded in ``plan``; call
        :meth:`complete_write` either way.
        """
        config = self.config
        segments = self._segments
        active = segments[-1] if segments else None
        if active is not None and not active.size:
            active.created_ms = plan.now_ms
        start = 0  # first batch of the group going to ``active``
        group_bytes = 0
        headers, payloads = plan.headers, plan.payloads
        for i, header in enumerate(headers):
            n = HEADER_BYTES + len(payloads[i])
            if active is None or (
                active.size + group_bytes > 0
                and (
                    active.size + group_bytes + n > config.segment_bytes
                    or plan.now_ms - active.created_ms >= config.segment_ms
                )
            ):
                if active is not None:
                    self._write_group(active, plan, start, i, group_bytes)
                    if config.fsync != "never":
                        active.fsync()  # a rolled segment is never written again
                    start, group_bytes = i, 0
                base, _ = _BASE_COUNT.unpack_from(header, 10)
                active = Segment.create(
                    self.directory,
                    base,
                    now_ms=plan.now_ms,
                    index_interval_bytes=config.index_interval_bytes,
                )
                segments = [*segments, active]
                self._segments = segments
            group_bytes += n
        if active is not None:
            self._write_group(active, plan, start, len(headers), group_bytes)
            if plan.fsync:
                active.fsync()
                plan.synced = True

    def _write_group(
        self, seg: Segment, plan: PendingWrite, start: int, stop: int, nbytes: int
    ) -> None:
        if start == stop:
            return
        seg.append(plan.headers[start:stop], plan.payloads[start:stop], now_ms=plan.now_ms)
        plan.written_batches += stop - start
        plan.written_bytes += nbytes
        plan.written_end = seg.next_offset

    def complete_write(self, plan: PendingWrite) -> int:
        """Account for what ``plan`` wrote (owner thread); return the durable offset."""
        if plan.done:
            return self._durable
        plan.done = True
        self._writing = False
        if plan.written_batches:
            del self._pending_headers[: plan.written_batches]
            del self._pending_payloads[: plan.written_batches]
            self._pending_bytes -= plan.written_bytes
            self._written = plan.written_end
        if plan.synced:
            self._synced = self._written
        if plan.synced or self.config.fsync == "never":
            self._durable = max(self._durable, self._written)
        window = self._window
        if window.nbytes > self.config.memory_window_bytes:
            window.evict(
                max_bytes=self.config.memory_window_bytes,
                written_end=self._written,
                next_offset=self._next_offset,
            )
        return self._durable

    def flush(self, *, now_ms: int, fsync: bool | None = None) -> int:
        """Write everything pending and fsync per policy; return the durable offset.

        The synchronous composition of :meth:`take_pending`,
        :meth:`write_pending` and :meth:`complete_write`.
        """
        plan = self.take_pending(now_ms=now_ms, fsync=fsync)
        try:
            self.write_pending(plan)
        finally:
            durable = self.complete_write(plan)
        return durable

    # -- retention and shutdown ----------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Delete whole old segments past ``retention_ms`` / ``retention_bytes``; return how many.

        The active (last) segment is never deleted. Skipped while a write is
        in flight.
        """
        if self._writing or len(self._segments) < 2:
            return 0
        segments = list(self._segments)
        total = sum(s.size for s in segments)
        retention_ms, retention_bytes = self.config.retention_ms, self.config.retention_bytes
        deleted = 0
        while len(segments) > 1:
            first = segments[0]
            too_old = (
                retention_ms is not None
                and first.max_ts != NO_TIMESTAMP
                and now_ms - first.max_ts > retention_ms
            )
            too_big = retention_bytes is not None and total - first.size >= retention_bytes
            if not (too_old or too_big):
                break
            total -= first.size
            segments.pop(0)
            first.delete()
            deleted += 1
        if deleted:
            self._segments = segments
            self._log_start = segments[0].base_offset
            self._window.drop_below(self._log_start)
        return deleted

    def close(self) -> None:
        """Flush with fsync, mark the shutdown clean, close the files."""
        if self._closed:
            return
        if self._writing:
            raise RuntimeError("close() while a write is in flight")
        self.flush(now_ms=self._last_now_ms, fsync=True)
        self._closed = True
        for seg in self._segments:
            seg.close()
        write_clean_marker(
            self.directory,
            next_offset=self._next_offset,
            epoch=self._epoch,
            producers=self._producers,
        )


def _base_offset(seg: Segment) -> int:
    return seg.base_offset
