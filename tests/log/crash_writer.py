"""Crash-test writer: appends forever with fsync and prints every durable offset.

Run as ``python crash_writer.py DIR SEED``. On start it recovers the
partition in DIR, checks what it finds (exit code 3 on a defect), prints
``ready <epoch> <next_offset> <bytes cut by recovery>``, then loops: append a few batches whose
records spell their own offsets, flush (half the time through the threaded
take/write/complete path the broker uses), print ``durable <offset>``.
The test kills it with SIGKILL at random moments.
"""

from __future__ import annotations

import random
import sys
import threading

from gamebus.log import LogConfig, Partition, decode_batches, encode_records

__all__ = ["CONFIG", "check_records", "record_for"]

CONFIG = LogConfig(
    segment_bytes=48 * 1024,
    index_interval_bytes=1024,
    memory_window_bytes=16 * 1024,
    fsync="always",
    retention_ms=None,
)


def record_for(offset: int) -> bytes:
    """The record stored at ``offset``: derived from the offset, so misplacement shows."""
    return b"record-%d-" % offset + b"x" * (offset % 61)


def check_records(part: Partition) -> int:
    """Read the whole log; every offset once, in order, with its own bytes. Returns the end."""
    expected = part.log_start_offset
    while expected < part.next_offset:
        got = decode_batches(part.read(expected, max_bytes=256 * 1024))
        for batch in got:
            if batch.base_offset != expected:
                raise AssertionError(f"batch at {batch.base_offset}, expected {expected}")
            if batch.records() != [record_for(expected + i) for i in range(batch.count)]:
                raise AssertionError(f"wrong records in batch {batch.base_offset}")
            expected = batch.next_offset
    return expected


def main() -> int:
    directory, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    part = Partition.open(directory, CONFIG)
    try:
        check_records(part)
    except AssertionError as exc:
        print(f"defect {exc}", flush=True)
        return 3
    print(f"ready {part.epoch} {part.next_offset} {part.recovery.cut_bytes}", flush=True)
    now_ms = 0
    while True:
        for _ in range(rng.randint(1, 6)):
            base, count = part.next_offset, rng.randint(1, 25)
            payload = encode_records([record_for(base + i) for i in range(count)])
            part.append(payload, count=count, first_ts=now_ms, max_ts=now_ms, now_ms=now_ms)
            now_ms += 1
        if rng.random() < 0.5:
            durable = part.flush(now_ms=now_ms)
        else:
            plan = part.take_pending(now_ms=now_ms)
            writer = threading.Thread(target=part.write_pending, args=(plan,))
            writer.start()
            writer.join()
            durable = part.complete_write(plan)
        print(f"durable {durable}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
