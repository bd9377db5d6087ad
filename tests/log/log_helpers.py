"""Helpers shared by the log tests: deterministic batches and full-log reads."""

from __future__ import annotations

from gamebus.log import LogConfig, Partition, decode_batches, encode_records

__all__ = ["SMALL", "append_n", "make_payload", "read_all"]

#: Small segments, window and index interval so a few batches cross every boundary.
SMALL = LogConfig(
    segment_bytes=1000,
    memory_window_bytes=600,
    index_interval_bytes=200,
    fsync="always",
    retention_ms=None,
)


def make_payload(i: int, count: int = 3) -> bytes:
    return encode_records([b"rec-%d-%d" % (i, j) * 4 for j in range(count)])


def append_n(
    part: Partition, n: int, *, start: int = 0, now_ms: int = 1_000, count: int = 3
) -> list[int]:
    """Append batches ``start .. start+n-1``; their base offsets."""
    return [
        part.append(
            make_payload(i, count),
            count=count,
            first_ts=now_ms + i,
            max_ts=now_ms + i,
            now_ms=now_ms + i,
        ).base_offset
        for i in range(start, start + n)
    ]


def read_all(part: Partition, offset: int | None = None, *, max_bytes: int = 1) -> list[bytes]:
    """Every stored batch from ``offset`` (default: log start) to the end, one read per step."""
    pos = part.log_start_offset if offset is None else offset
    out: list[bytes] = []
    while pos < part.next_offset:
        got = part.read(pos, max_bytes=max_bytes)
        assert got, f"empty read at {pos}"
        out.extend(got)
        pos = decode_batches(got[-1:])[0].next_offset
    return out
