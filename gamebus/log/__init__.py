"""gamebus's storage engine: synchronous, no event loop, time passed in.

Layout (one job per module)::

    batch.py      RecordBatch header + payload, CRC32C, encode/decode_records
    index.py      OffsetIndex: sparse, rebuildable offset (and coarse time) index
    segment.py    Segment: one .log + .index, append, read, recover
    window.py     MemoryWindow: newest batches in memory
    producers.py  ProducerState: idempotent producer sequences
    epochs.py     EpochHistory: epoch -> start offset, persisted
    recovery.py   recover(): verify and cut the tail, choose the epoch, on open
    partition.py  Partition: window + write-behind queue + segments + epoch
    topic.py      Topic: N partitions, key -> partition, per-topic config
    log.py        Log: all topics under one data directory

Typical use by the broker::

    log = Log.open("data", default_config=LogConfig(fsync="always"))
    topic = log.create_topic("game.events", 8)
    part = topic.partitions[topic.partition_for("match-42")]
    res = part.append(payload, count=n, first_ts=t0, max_ts=t1, now_ms=now)
    plan = part.take_pending(now_ms=now)          # owner thread, pure
    await asyncio.to_thread(part.write_pending, plan)   # I/O, another thread
    durable = part.complete_write(plan)           # release acks below this
    part.read(offset, max_bytes=1 << 20)          # list of stored batch bytes

See :mod:`gamebus.log.partition` for the threading contract.
"""

from __future__ import annotations

from gamebus.log.batch import (
    HEADER_BYTES,
    BatchHeader,
    RecordBatch,
    decode_batches,
    decode_records,
    encode_batch,
    encode_header,
    encode_records,
    read_header,
)
from gamebus.log.config import FsyncPolicy, LogConfig
from gamebus.log.log import Log
from gamebus.log.partition import AppendResult, Partition, PendingWrite
from gamebus.log.recovery import Recovery
from gamebus.log.segment import Segment
from gamebus.log.topic import Topic

__all__ = [
    "HEADER_BYTES",
    "AppendResult",
    "BatchHeader",
    "FsyncPolicy",
    "Log",
    "LogConfig",
    "Partition",
    "PendingWrite",
    "RecordBatch",
    "Recovery",
    "Segment",
    "Topic",
    "decode_batches",
    "decode_records",
    "encode_batch",
    "encode_header",
    "encode_records",
    "read_header",
]
