"""Partition behaviour: reads from every tier, flush policies, idempotence, rolling, retention."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest
from log_helpers import SMALL, append_n, make_payload, read_all

from gamebus.errors import (
    EpochMismatch,
    InvalidRequest,
    LimitExceeded,
    OffsetOutOfRange,
    OutOfOrderSequence,
)
from gamebus.log import LogConfig, Partition, decode_batches


def open_part(path: Path, config: LogConfig = SMALL) -> Partition:
    return Partition.open(str(path), config)


def test_reads_return_the_same_bytes_from_memory_pending_and_segments(tmp_path: Path):
    part = open_part(tmp_path)
    first_seen: dict[int, bytes] = {}
    for i in range(40):
        base = append_n(part, 1, start=i)[0]
        first_seen[base] = part.read(base, max_bytes=1)[0]
        if i % 5 == 4 and i < 35:
            part.flush(now_ms=2_000 + i)
    # all three tiers are in use: segments only, written and in the window, pending
    assert len(part.segments) >= 3
    assert part.log_start_offset == 0
    assert part.pending_bytes > 0
    assert part.written_offset == 105
    assert part.memory_bytes < sum(len(b) for b in first_seen.values())
    expected = [first_seen[o] for o in sorted(first_seen)]
    assert read_all(part, max_bytes=1) == expected
    assert read_all(part, max_bytes=10**9) == expected
    assert part.read(0, max_bytes=10**9) == expected
    part.close()
    reopened = open_part(tmp_path)
    assert reopened.next_offset == 120
    assert reopened.epoch == 0
    assert read_all(reopened, max_bytes=1) == expected
    assert read_all(reopened, max_bytes=300) == expected
    assert [b.base_offset for b in decode_batches(expected)] == list(range(0, 120, 3))


def test_read_from_inside_a_batch_starts_with_that_batch(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 10)
    part.flush(now_ms=5_000)
    assert decode_batches(part.read(7, max_bytes=1))[0].base_offset == 6
    part.close()
    reopened = open_part(tmp_path)  # now from the segment, through the index
    assert decode_batches(reopened.read(7, max_bytes=1))[0].base_offset == 6
    assert decode_batches(reopened.read(8, max_bytes=1))[0].base_offset == 6


def test_read_returns_at_least_one_batch_then_stays_within_max_bytes(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 6)
    size = len(part.read(0, max_bytes=1)[0])
    assert len(part.read(0, max_bytes=0)) == 1
    assert len(part.read(0, max_bytes=2 * size)) == 2
    assert len(part.read(0, max_bytes=2 * size + 1)) == 2
    part.flush(now_ms=5_000)
    part.close()
    part = open_part(tmp_path)
    assert len(part.read(0, max_bytes=0)) == 1
    assert len(part.read(0, max_bytes=2 * size)) == 2
    assert len(part.read(3, max_bytes=3 * size - 1)) == 2


def test_read_at_the_log_end_is_empty_and_past_it_raises(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 2)
    assert part.read(6, max_bytes=100) == []
    with pytest.raises(OffsetOutOfRange) as info:
        part.read(7, max_bytes=100)
    assert (info.value.offset, info.value.log_start, info.value.log_end) == (7, 0, 6)
    with pytest.raises(OffsetOutOfRange):
        part.read(-1, max_bytes=100)


def test_flush_with_fsync_always_makes_everything_durable(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 4)
    assert part.durable_offset == 0
    assert part.flush(now_ms=10) == 12
    assert (part.written_offset, part.durable_offset, part.pending_bytes) == (12, 12, 0)


def test_flush_with_fsync_interval_advances_durable_only_when_the_interval_passed(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, fsync="interval", fsync_interval_ms=100))
    append_n(part, 1)
    assert part.flush(now_ms=1_000) == 3
    append_n(part, 1, start=1)
    assert part.flush(now_ms=1_050) == 3
    assert part.written_offset == 6
    assert part.flush(now_ms=1_099) == 3
    assert part.flush(now_ms=1_100) == 6  # nothing new to write, but the fsync is due
    assert part.flush(now_ms=1_150, fsync=True) == 6


def test_flush_with_fsync_never_counts_written_data_as_durable(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, fsync="never"))
    append_n(part, 2)
    assert part.flush(now_ms=1) == 6


def test_flush_io_can_run_in_another_thread_while_appends_continue(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 20)
    plan = part.take_pending(now_ms=3_000)
    assert plan.end_offset == 60 and plan.fsync
    with pytest.raises(RuntimeError):
        part.take_pending(now_ms=3_000)
    writer = threading.Thread(target=part.write_pending, args=(plan,))
    writer.start()
    append_n(part, 5, start=20)
    assert len(part.read(0, max_bytes=10**9)) == 25
    writer.join()
    assert part.durable_offset == 0
    assert part.complete_write(plan) == 60
    assert part.written_offset == 60
    assert part.pending_bytes == sum(len(b) for b in part.read(60, max_bytes=10**9))
    assert part.flush(now_ms=3_001) == 75


def test_segments_are_named_by_base_offset_and_roll_at_segment_bytes(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 30)
    part.flush(now_ms=5_000)
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".log"))
    assert names[0] == "00000000000000000000.log"
    assert [s.base_offset for s in part.segments] == [int(n[:20]) for n in names]
    assert all(s.size <= SMALL.segment_bytes for s in part.segments)
    assert all(
        s.next_offset == n.base_offset
        for s, n in zip(part.segments, part.segments[1:], strict=False)
    )


def test_segment_rolls_when_it_is_older_than_segment_ms(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, segment_bytes=10**6, segment_ms=1_000))
    append_n(part, 1)
    part.flush(now_ms=10_000)
    append_n(part, 1, start=1)
    part.flush(now_ms=10_999)
    assert [s.base_offset for s in part.segments] == [0]
    append_n(part, 1, start=2)
    part.flush(now_ms=11_000)
    assert [s.base_offset for s in part.segments] == [0, 6]


def test_retention_by_bytes_deletes_whole_old_segments(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, retention_bytes=2_000))
    append_n(part, 60)
    part.flush(now_ms=5_000)
    sizes = [s.size for s in part.segments]
    deleted = part.apply_retention(now_ms=5_000)
    kept = part.segments
    assert deleted == len(sizes) - len(kept) > 0
    assert sum(s.size for s in kept) >= 2_000 - max(sizes) and sum(s.size for s in kept[1:]) < 2_000
    assert part.log_start_offset == kept[0].base_offset
    assert not os.path.exists(tmp_path / "00000000000000000000.log")
    with pytest.raises(OffsetOutOfRange) as info:
        part.read(0, max_bytes=1)
    assert info.value.log_start == kept[0].base_offset
    assert (
        decode_batches(part.read(part.log_start_offset, max_bytes=1))[0].base_offset
        == kept[0].base_offset
    )
    assert part.apply_retention(now_ms=5_000) == 0


def test_retention_by_time_uses_the_newest_timestamp_in_each_segment(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, retention_ms=1_000))
    append_n(part, 30, now_ms=1_000)
    part.flush(now_ms=2_000)
    segs = part.segments
    assert len(segs) >= 3
    # at now = max_ts(first) + 1000 nothing is older than retention yet
    assert part.apply_retention(now_ms=segs[0].max_ts + 1_000) == 0
    assert part.apply_retention(now_ms=segs[1].max_ts + 1_001) == 2
    assert part.log_start_offset == segs[2].base_offset
    # the active segment stays, however old
    assert part.apply_retention(now_ms=10**12) == len(segs) - 3
    assert len(part.segments) == 1


def test_retention_survives_reopen(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, retention_bytes=1_500))
    append_n(part, 40)
    part.flush(now_ms=5_000)
    part.apply_retention(now_ms=5_000)
    start, data = part.log_start_offset, read_all(part)
    part.close()
    again = open_part(tmp_path)
    assert again.log_start_offset == start
    assert read_all(again) == data


def test_a_retried_batch_returns_its_original_offset(tmp_path: Path):
    part = open_part(tmp_path)
    first = part.append(
        make_payload(0), count=3, first_ts=1, max_ts=1, producer_id=9, sequence=0, now_ms=1
    )
    part.append(make_payload(1), count=3, first_ts=1, max_ts=1, producer_id=9, sequence=1, now_ms=1)
    retry = part.append(
        make_payload(0), count=3, first_ts=1, max_ts=1, producer_id=9, sequence=0, now_ms=1
    )
    assert (retry.base_offset, retry.duplicate, retry.batch_bytes) == (0, True, first.batch_bytes)
    assert part.next_offset == 6
    with pytest.raises(OutOfOrderSequence) as info:
        part.append(
            make_payload(3), count=3, first_ts=1, max_ts=1, producer_id=9, sequence=3, now_ms=1
        )
    assert (info.value.expected, info.value.got) == (2, 3)


@pytest.mark.parametrize("clean", [True, False])
def test_idempotence_state_survives_reopen(tmp_path: Path, clean: bool):
    part = open_part(tmp_path)
    for seq in range(8):
        part.append(
            make_payload(seq), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=seq, now_ms=1
        )
    if clean:
        part.close()  # saved with the clean-shutdown marker
    else:
        part.flush(now_ms=1)  # rebuilt from the batch headers
    part = open_part(tmp_path)
    retry = part.append(
        make_payload(7), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=7, now_ms=2
    )
    assert (retry.base_offset, retry.duplicate) == (21, True)
    assert (
        part.append(
            make_payload(3), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=3, now_ms=2
        ).base_offset
        == 9
    )
    with pytest.raises(OutOfOrderSequence):  # older than the remembered window
        part.append(
            make_payload(0), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=0, now_ms=2
        )
    assert (
        part.append(
            make_payload(8), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=8, now_ms=2
        ).base_offset
        == 24
    )


def test_a_sequence_gap_after_an_unclean_restart_is_accepted(tmp_path: Path):
    part = open_part(tmp_path)
    part.append(make_payload(0), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=0, now_ms=1)
    part.flush(now_ms=1)
    part.append(make_payload(1), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=1, now_ms=1)
    # crash: sequence 1 was only in memory
    again = open_part(tmp_path)
    assert (again.epoch, again.next_offset) == (1, 3)
    res = again.append(
        make_payload(2), count=3, first_ts=1, max_ts=1, producer_id=4, sequence=2, now_ms=2
    )
    assert (res.base_offset, res.epoch, res.duplicate) == (3, 1, False)


def test_bad_appends_are_refused_before_anything_is_stored(tmp_path: Path):
    part = open_part(tmp_path, dataclasses.replace(SMALL, max_batch_bytes=100))
    with pytest.raises(LimitExceeded):
        part.append(b"x" * 101, count=1, first_ts=0, max_ts=0, now_ms=0)
    with pytest.raises(InvalidRequest):
        part.append(b"x", count=0, first_ts=0, max_ts=0, now_ms=0)
    with pytest.raises(InvalidRequest):
        part.append(b"x", count=1, first_ts=2**63, max_ts=0, now_ms=0)
    with pytest.raises(InvalidRequest):
        part.append(b"x", count=1, first_ts=0, max_ts=0, producer_id=1, sequence=-1, now_ms=0)
    assert (part.next_offset, part.pending_bytes) == (0, 0)


def test_positions_from_an_older_epoch_are_checked_against_where_it_ended(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 2)
    part.flush(now_ms=1)
    append_n(part, 1, start=2)  # lost in the crash below
    part = open_part(tmp_path)
    assert part.epoch == 1
    part.check_position(1, 6)
    part.check_position(0, 6)  # everything below 6 is unchanged
    with pytest.raises(EpochMismatch) as info:
        part.check_position(0, 9)
    assert (info.value.given, info.value.current, info.value.resume_offset) == (0, 1, 6)
    with pytest.raises(EpochMismatch) as future:
        part.check_position(5, 0)
    assert future.value.resume_offset == 0


def test_the_memory_window_never_drops_unwritten_batches(tmp_path: Path):
    part = open_part(tmp_path)
    append_n(part, 50)
    assert part.memory_bytes == part.pending_bytes > SMALL.memory_window_bytes
    part.flush(now_ms=9_000)
    assert part.memory_bytes <= SMALL.memory_window_bytes


def test_the_memory_window_lets_go_of_an_evicted_batch_at_once() -> None:
    """A busy partition must not pin evicted batches until the next compaction."""
    import sys

    from gamebus.log.window import MemoryWindow

    window = MemoryWindow()
    payload = bytes(bytearray(b"x" * 100))
    before = sys.getrefcount(payload)
    window.offsets.extend([0, 1])
    window.headers.extend([b"h" * 54, b"h" * 54])
    window.payloads.extend([payload, b"y"])
    window.nbytes += 209
    window.evict(max_bytes=60, written_end=2, next_offset=2)
    assert len(window) == 1
    assert sys.getrefcount(payload) == before
