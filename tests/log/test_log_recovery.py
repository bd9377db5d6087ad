"""Recovery on open: torn and corrupt tails, clean and unclean shutdowns, damaged indexes."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_helpers import SMALL, append_n, make_payload, read_all

from gamebus.log import Partition, Recovery, decode_batches, encode_records


def build(path: Path, batches: int = 12, *, clean: bool = True) -> tuple[list[bytes], int]:
    """A partition of ``batches`` batches over several segments; (stored bytes, epoch)."""
    part = Partition.open(str(path), SMALL)
    append_n(part, batches)
    part.flush(now_ms=9_000)
    data, epoch = read_all(part), part.epoch
    if clean:
        part.close()
    return data, epoch


def last_segment(path: Path) -> Path:
    return path / sorted(n for n in os.listdir(path) if n.endswith(".log"))[-1]


def snapshot(path: Path) -> dict[str, bytes]:
    return {n: (path / n).read_bytes() for n in sorted(os.listdir(path))}


def test_reopening_a_cleanly_closed_log_changes_nothing(tmp_path: Path):
    data, epoch = build(tmp_path)
    before = snapshot(tmp_path)
    part = Partition.open(str(tmp_path), SMALL)
    assert (part.epoch, part.next_offset, read_all(part)) == (epoch, 36, data)
    assert part.recovery == Recovery(clean=True, cut_bytes=0, dropped_segments=0, new_epoch=False)
    part.close()
    assert snapshot(tmp_path) == before


def test_an_unclean_reopen_keeps_written_data_and_starts_a_new_epoch(tmp_path: Path):
    data, epoch = build(tmp_path, clean=False)
    part = Partition.open(str(tmp_path), SMALL)
    assert (part.epoch, part.next_offset, read_all(part)) == (epoch + 1, 36, data)
    assert decode_batches(read_all(part))[-1].epoch == epoch
    append_n(part, 1, start=12)
    assert decode_batches(part.read(36, max_bytes=1))[0].epoch == epoch + 1
    part.close()
    assert Partition.open(str(tmp_path), SMALL).epoch == epoch + 1


def cases(tmp_path: Path) -> tuple[Path, list[bytes], int, int, int]:
    pristine = tmp_path / "pristine"
    data, epoch = build(pristine)
    seg = last_segment(pristine)
    size = seg.stat().st_size
    last = len(data[-1])
    assert size > last  # the last batch is not alone in its segment
    return pristine, data, epoch, size - last, size


@pytest.mark.parametrize("clean", [True, False])
def test_truncating_inside_the_last_batch_recovers_exactly_the_batches_before_it(
    tmp_path: Path, clean: bool
):
    pristine, data, epoch, start, size = cases(tmp_path)
    if not clean:
        os.unlink(pristine / "clean-shutdown")
    for cut in range(start, size):
        work = tmp_path / f"cut{cut}"
        shutil.copytree(pristine, work)
        os.truncate(last_segment(work), cut)
        part = Partition.open(str(work), SMALL)
        assert part.epoch == epoch + 1, cut
        assert part.next_offset == 33, cut
        assert read_all(part) == data[:-1], cut
        assert last_segment(work).stat().st_size == start, cut
        assert part.recovery == Recovery(clean, cut - start, 0, True), cut
        shutil.rmtree(work)


def test_flipping_any_byte_of_the_last_batch_recovers_exactly_the_batches_before_it(tmp_path: Path):
    pristine, data, epoch, start, size = cases(tmp_path)
    for pos in range(start, size):
        work = tmp_path / f"flip{pos}"
        shutil.copytree(pristine, work)
        seg = last_segment(work)
        raw = bytearray(seg.read_bytes())
        raw[pos] ^= 0xFF
        seg.write_bytes(bytes(raw))
        part = Partition.open(str(work), SMALL)
        assert (part.epoch, part.next_offset) == (epoch + 1, 33), pos
        assert read_all(part) == data[:-1], pos
        shutil.rmtree(work)


def test_appends_after_recovery_continue_from_the_cut_and_reopen_cleanly(tmp_path: Path):
    data, epoch = build(tmp_path)
    seg = last_segment(tmp_path)
    os.truncate(seg, seg.stat().st_size - 1)
    part = Partition.open(str(tmp_path), SMALL)
    assert append_n(part, 1, start=50) == [33]
    part.close()
    part = Partition.open(str(tmp_path), SMALL)
    assert part.epoch == epoch + 1
    assert read_all(part)[:-1] == data[:-1]
    assert decode_batches(read_all(part))[-1].base_offset == 33


def test_a_corrupt_older_segment_cuts_the_log_there_and_drops_later_segments(tmp_path: Path):
    data, epoch = build(tmp_path, batches=30)
    logs = sorted(n for n in os.listdir(tmp_path) if n.endswith(".log"))
    assert len(logs) >= 3
    first = tmp_path / logs[0]
    raw = bytearray(first.read_bytes())
    raw[-1] ^= 0x01
    first.write_bytes(bytes(raw))
    part = Partition.open(str(tmp_path), SMALL)
    assert part.epoch == epoch + 1
    assert [s.base_offset for s in part.segments] == [0]
    kept = read_all(part)
    assert kept == data[: len(kept)]
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".log")) == [logs[0]]


@pytest.mark.parametrize("damage", ["delete", "garbage", "truncate"])
def test_a_damaged_index_is_rebuilt_from_the_log(tmp_path: Path, damage: str):
    data, epoch = build(tmp_path, batches=30)
    index = last_segment(tmp_path).with_suffix(".index")
    original = index.read_bytes()
    assert len(original) > 0
    if damage == "delete":
        index.unlink()
    elif damage == "garbage":
        index.write_bytes(b"\xff" * len(original))
    else:
        index.write_bytes(original[:-3])
    part = Partition.open(str(tmp_path), SMALL)
    assert (part.epoch, read_all(part)) == (epoch, data)
    assert index.read_bytes() == original


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(min_size=1, max_size=300))
def test_garbage_after_the_last_batch_is_cut_and_nothing_else(tmp_path: Path, garbage: bytes):
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    data, epoch = build(work, batches=4)
    seg = last_segment(work)
    with seg.open("ab") as f:
        f.write(garbage)
    part = Partition.open(str(work), SMALL)
    assert read_all(part) == data
    assert (part.epoch, part.next_offset) == (epoch + 1, 12)
    assert part.recovery.cut_bytes == len(garbage)
    part.close()
    shutil.rmtree(work)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=400), clean=st.booleans())
def test_a_segment_of_pure_garbage_recovers_to_an_empty_log(
    tmp_path: Path, garbage: bytes, clean: bool
):
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    (work / "00000000000000000000.log").write_bytes(garbage)
    (work / "00000000000000000000.index").write_bytes(garbage[:32])
    (work / "epochs").write_text("0 0\n")
    if clean:
        (work / "clean-shutdown").write_bytes(garbage[:20])
    part = Partition.open(str(work), SMALL)
    assert (part.next_offset, part.log_start_offset) == (0, 0)
    assert part.read(0, max_bytes=100) == []
    append_n(part, 2)
    assert len(read_all(part)) == 2
    part.close()
    shutil.rmtree(work)


def test_batches_bigger_than_the_scan_chunk_recover_and_read_back(tmp_path: Path):
    config = dataclasses.replace(SMALL, max_batch_bytes=3 << 20, segment_bytes=8 << 20)
    part = Partition.open(str(tmp_path), config)
    big = encode_records([bytes([i]) * (1 << 20) for i in range(2)])  # > the 1 MiB scan chunk
    part.append(make_payload(0), count=3, first_ts=1, max_ts=1, now_ms=1)
    part.append(big, count=2, first_ts=2, max_ts=2, now_ms=2)
    part.append(make_payload(1), count=3, first_ts=3, max_ts=3, now_ms=3)
    part.flush(now_ms=4)
    data = read_all(part)
    seg = last_segment(tmp_path)
    os.truncate(seg, seg.stat().st_size - 1)  # unclean and torn: a full scan
    again = Partition.open(str(tmp_path), config)
    assert again.next_offset == 5
    assert read_all(again) == data[:2]
    assert decode_batches(again.read(4, max_bytes=1))[0].records() == [
        b"\x00" * (1 << 20),
        b"\x01" * (1 << 20),
    ]
