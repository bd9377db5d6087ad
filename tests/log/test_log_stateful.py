"""A hypothesis state machine: append / read / flush / roll / retention / reopen against a model.

The model is a list of the batches the partition must still hold, each with
its fields and records. A clean reopen keeps everything and the epoch; a
crash (files closed without the clean-shutdown marker) keeps exactly what
was written and starts a new epoch.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gamebus.errors import OutOfOrderSequence
from gamebus.log import LogConfig, Partition, decode_batches, encode_records

RETENTION_MS = 20_000
RETENTION_BYTES = 2_000
CONFIG = LogConfig(
    segment_bytes=700,
    segment_ms=5_000,
    memory_window_bytes=400,
    index_interval_bytes=120,
    retention_bytes=RETENTION_BYTES,
    retention_ms=RETENTION_MS,
    fsync="interval",
    fsync_interval_ms=50,
)


@dataclass(frozen=True)
class ModelBatch:
    base_offset: int
    records: tuple[bytes, ...]
    ts: int
    epoch: int
    producer_id: int = -1
    sequence: int = -1

    @property
    def next_offset(self) -> int:
        return self.base_offset + len(self.records)


class PartitionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="gamebus-stateful-")
        self.part = Partition.open(self.directory, CONFIG)
        self.batches: list[ModelBatch] = []
        self.next_offset = 0
        self.epoch = 0
        self.now_ms = 1_000
        self.durable = 0
        # producer id -> its last (sequence, base offset, epoch), at most 5, as the partition keeps
        self.producers: dict[int, list[tuple[int, int, int]]] = {}

    def _remember(self, pid: int, seq: int, base: int, epoch: int) -> None:
        recent = self.producers.setdefault(pid, [])
        if recent and recent[-1][0] >= seq:
            recent.clear()
        recent.append((seq, base, epoch))
        del recent[:-5]

    def teardown(self) -> None:
        self.part.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(
        records=st.lists(st.binary(min_size=0, max_size=60), min_size=1, max_size=5),
        dt=st.integers(0, 30),
    )
    def append(self, records: list[bytes], dt: int) -> None:
        self.now_ms += dt
        res = self.part.append(
            encode_records(records),
            count=len(records),
            first_ts=self.now_ms,
            max_ts=self.now_ms,
            now_ms=self.now_ms,
        )
        assert (res.base_offset, res.epoch, res.duplicate) == (self.next_offset, self.epoch, False)
        self.batches.append(ModelBatch(self.next_offset, tuple(records), self.now_ms, self.epoch))
        self.next_offset += len(records)

    @rule(pid=st.integers(0, 2), kind=st.sampled_from(["next", "retry", "gap"]), data=st.data())
    def append_idempotent(self, pid: int, kind: str, data: st.DataObject) -> None:
        recent = self.producers.get(pid, [])
        records = (b"p%d" % pid,)
        payload = encode_records(list(records))
        if kind == "retry" and recent:
            seq, base, _ = data.draw(st.sampled_from(recent))
            res = self.part.append(
                payload,
                count=1,
                first_ts=self.now_ms,
                max_ts=self.now_ms,
                producer_id=pid,
                sequence=seq,
                now_ms=self.now_ms,
            )
            assert (res.base_offset, res.duplicate, res.epoch) == (base, True, self.epoch)
            return
        seq = (
            recent[-1][0] + (2 if kind == "gap" else 1) if recent else data.draw(st.integers(0, 3))
        )
        if kind == "gap" and recent and recent[-1][2] == self.epoch:
            try:
                self.part.append(
                    payload,
                    count=1,
                    first_ts=self.now_ms,
                    max_ts=self.now_ms,
                    producer_id=pid,
                    sequence=seq,
                    now_ms=self.now_ms,
                )
            except OutOfOrderSequence as exc:
                assert (exc.expected, exc.got) == (recent[-1][0] + 1, seq)
            else:
                raise AssertionError("a sequence gap in the current epoch was accepted")
            return
        res = self.part.append(
            payload,
            count=1,
            first_ts=self.now_ms,
            max_ts=self.now_ms,
            producer_id=pid,
            sequence=seq,
            now_ms=self.now_ms,
        )
        assert (res.base_offset, res.duplicate) == (self.next_offset, False)
        self.batches.append(
            ModelBatch(self.next_offset, records, self.now_ms, self.epoch, pid, seq)
        )
        self._remember(pid, seq, self.next_offset, self.epoch)
        self.next_offset += 1

    @precondition(lambda self: self.batches)
    @rule(data=st.data(), max_bytes=st.integers(0, 1_500))
    def read(self, data: st.DataObject, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.batches[0].base_offset, self.next_offset))
        got = decode_batches(self.part.read(offset, max_bytes=max_bytes))
        if offset == self.next_offset:
            assert got == []
            return
        first = next(i for i, b in enumerate(self.batches) if b.next_offset > offset)
        assert len(got) >= 1
        assert sum(len(b.payload) + 54 for b in got[1:]) <= max(
            max_bytes - len(got[0].payload) - 54, 0
        )
        for batch, model in zip(got, self.batches[first:], strict=False):
            assert (batch.base_offset, tuple(batch.records()), batch.max_ts, batch.epoch) == (
                model.base_offset,
                model.records,
                model.ts,
                model.epoch,
            )

    @rule(dt=st.integers(0, 100), fsync=st.sampled_from([None, True, False]))
    def flush(self, dt: int, fsync: bool | None) -> None:
        self.now_ms += dt
        durable = self.part.flush(now_ms=self.now_ms, fsync=fsync)
        assert self.part.written_offset == self.next_offset
        assert self.durable <= durable <= self.next_offset
        if fsync:
            assert durable == self.next_offset
        self.durable = durable

    @rule(records=st.lists(st.binary(max_size=40), min_size=1, max_size=3))
    def flush_in_steps_while_appending(self, records: list[bytes]) -> None:
        """The broker's split flush: plan, append meanwhile, write, complete."""
        self.now_ms += 1
        plan = self.part.take_pending(now_ms=self.now_ms, fsync=True)
        planned_end = self.next_offset
        self.append(records, 0)  # lands after the plan: stays pending
        self.part.write_pending(plan)
        assert self.part.complete_write(plan) == planned_end
        assert self.part.written_offset == planned_end
        self.durable = planned_end

    @rule()
    def roll_by_age(self) -> None:
        self.now_ms += CONFIG.segment_ms
        segments = len(self.part.segments)
        pending = self.part.pending_bytes
        self.part.flush(now_ms=self.now_ms)
        if pending and segments:
            assert len(self.part.segments) == segments + 1

    @rule(dt=st.integers(0, 30_000))
    def retention(self, dt: int) -> None:
        self.now_ms += dt
        before = self.part.log_start_offset
        self.part.apply_retention(self.now_ms)
        start = self.part.log_start_offset
        assert before <= start <= self.part.written_offset
        segments = self.part.segments
        if len(segments) > 1:  # retention stopped at the first segment it must keep
            first = segments[0]
            assert self.now_ms - first.max_ts <= RETENTION_MS
            assert sum(s.size for s in segments) - first.size < RETENTION_BYTES
        bases = [b.base_offset for b in self.batches]
        assert start == self.next_offset or start in bases
        self.batches = [b for b in self.batches if b.base_offset >= start]

    @rule()
    def reopen_clean(self) -> None:
        self.part.close()
        self.part = Partition.open(self.directory, CONFIG)
        self.durable = self.next_offset
        assert self.part.epoch == self.epoch

    @rule()
    def crash_and_reopen(self) -> None:
        written = self.part.written_offset
        for seg in self.part.segments:
            seg.close()  # no clean-shutdown marker: an unclean stop
        self.part = Partition.open(self.directory, CONFIG)
        self.epoch += 1
        self.batches = [b for b in self.batches if b.next_offset <= written]
        self.next_offset = written
        self.durable = written
        assert self.part.epoch == self.epoch
        self.producers = {}  # rebuilt from the batches that survived
        for b in self.batches:
            if b.producer_id >= 0:
                self._remember(b.producer_id, b.sequence, b.base_offset, b.epoch)

    @invariant()
    def offsets_match_the_model(self) -> None:
        assert self.part.next_offset == self.next_offset
        start = self.batches[0].base_offset if self.batches else self.next_offset
        assert self.part.log_start_offset == start


PartitionMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None
)
test_partition_behaves_like_the_model = PartitionMachine.TestCase
