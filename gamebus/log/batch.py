"""Record batches: the unit of storage and of transfer.

A batch is a fixed 54-byte big-endian header followed by a payload. The
payload is ``msgpack.packb([record, ...])`` (a msgpack array of ``bin``
items); the log never looks inside it, so appending costs per batch, not per
record. The same bytes are written to segments and pushed to subscribers, so
a consumer can check the CRC end to end.

Header layout (offsets in bytes)::

     0  magic            u8    0xB7
     1  version          u8    1
     2  crc              u32   CRC32C (Castagnoli) of bytes [6, end)
     6  payload_length   u32
    10  base_offset      i64   offset of the first record
    18  record_count     i32   >= 1; offsets base .. base + count - 1
    22  first_ts         i64   ms, producer time of the first record
    30  max_ts           i64   ms, largest producer time in the batch
    38  producer_id      i64   -1 when not idempotent
    46  sequence         i32   producer's batch sequence, -1 when not idempotent
    50  epoch            u32   partition epoch the batch was appended in
    54  payload

The CRC sits right after magic/version and covers everything after itself,
payload length and base offset included, so any flipped byte past the
magic is caught by the CRC and a flipped magic by the magic check.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import msgpack
from crc32c import crc32c

from gamebus.errors import CorruptBatch

__all__ = [
    "HEADER_BYTES",
    "MAGIC",
    "VERSION",
    "BatchHeader",
    "RecordBatch",
    "decode_batches",
    "decode_records",
    "encode_batch",
    "encode_header",
    "encode_records",
    "read_header",
    "split_batches",
]

MAGIC: Final = 0xB7
VERSION: Final = 1
_PREFIX: Final = struct.Struct(">BBI")
_TAIL: Final = struct.Struct(">IqiqqqiI")
_HEADER: Final = struct.Struct(">BBIIqiqqqiI")
HEADER_BYTES: Final = _HEADER.size  # 54
_CRC_FROM: Final = _PREFIX.size  # 6

assert HEADER_BYTES == 54


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The header fields of one stored batch (no payload)."""

    base_offset: int
    count: int
    first_ts: int
    max_ts: int
    producer_id: int
    sequence: int
    epoch: int
    payload_length: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch, header included."""
        return HEADER_BYTES + self.payload_length

    @property
    def next_offset(self) -> int:
        """The offset right after this batch's last record."""
        return self.base_offset + self.count


def encode_header(
    payload: bytes,
    *,
    base_offset: int,
    count: int,
    first_ts: int,
    max_ts: int,
    producer_id: int = -1,
    sequence: int = -1,
    epoch: int = 0,
) -> bytes:
    """The 54-byte header for ``payload`` (CRC included); the batch is header + payload.

    The partition stores header and payload apart, so the producer's
    payload is never copied on append. Raises :class:`struct.error` when a
    field does not fit its width.
    """
    tail = _TAIL.pack(
        len(payload), base_offset, count, first_ts, max_ts, producer_id, sequence, epoch
    )
    return _PREFIX.pack(MAGIC, VERSION, crc32c(payload, crc32c(tail))) + tail


def encode_batch(
    payload: bytes,
    *,
    base_offset: int,
    count: int,
    first_ts: int,
    max_ts: int,
    producer_id: int = -1,
    sequence: int = -1,
    epoch: int = 0,
) -> bytes:
    """Header + ``payload`` as one bytes object (see :func:`encode_header`)."""
    header = encode_header(
        payload,
        base_offset=base_offset,
        count=count,
        first_ts=first_ts,
        max_ts=max_ts,
        producer_id=producer_id,
        sequence=sequence,
        epoch=epoch,
    )
    return header + payload


def read_header(buf: bytes | memoryview, pos: int = 0) -> BatchHeader:
    """Parse and sanity-check the header at ``buf[pos:]`` without the CRC.

    Used to frame batches in a buffer; :func:`RecordBatch.decode` and
    :func:`split_batches` with ``verify=True`` also check the CRC.
    """
    if len(buf) - pos < HEADER_BYTES:
        raise CorruptBatch("truncated header", position=pos)
    magic, version, _crc, length, base, count, first_ts, max_ts, pid, seq, epoch = (
        _HEADER.unpack_from(buf, pos)
    )
    if magic != MAGIC:
        raise CorruptBatch(f"bad magic 0x{magic:02x}", position=pos)
    if version != VERSION:
        raise CorruptBatch(f"unsupported version {version}", position=pos)
    if count < 1:
        raise CorruptBatch(f"record count {count}", position=pos)
    return BatchHeader(base, count, first_ts, max_ts, pid, seq, epoch, length)


def _check_crc(buf: bytes | memoryview, pos: int, end: int) -> None:
    (stored,) = struct.unpack_from(">I", buf, pos + 2)
    if crc32c(memoryview(buf)[pos + _CRC_FROM : end]) != stored:
        raise CorruptBatch("CRC32C mismatch", position=pos)


def split_batches(
    buf: bytes | memoryview, *, verify: bool = True, start: int = 0
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for each whole batch in ``buf``.

    Raises :class:`CorruptBatch` at the first bad header, bad CRC (when
    ``verify``) or a batch that runs past the end of ``buf``.
    """
    pos, total = start, len(buf)
    while pos < total:
        header = read_header(buf, pos)
        end = pos + header.size
        if end > total:
            raise CorruptBatch("truncated payload", position=pos)
        if verify:
            _check_crc(buf, pos, end)
        yield pos, header
        pos = end


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """A decoded batch: header fields and the opaque payload."""

    base_offset: int
    count: int
    first_ts: int
    max_ts: int
    producer_id: int
    sequence: int
    epoch: int
    payload: bytes

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.count

    def records(self) -> list[bytes]:
        """The records in the payload; :class:`CorruptBatch` if it is not a bin array."""
        records = decode_records(self.payload)
        if len(records) != self.count:
            raise CorruptBatch(f"header says {self.count} records, payload has {len(records)}")
        return records

    def encode(self) -> bytes:
        return encode_batch(
            self.payload,
            base_offset=self.base_offset,
            count=self.count,
            first_ts=self.first_ts,
            max_ts=self.max_ts,
            producer_id=self.producer_id,
            sequence=self.sequence,
            epoch=self.epoch,
        )

    @classmethod
    def decode(cls, buf: bytes | memoryview) -> RecordBatch:
        """Decode exactly one batch; any defect raises :class:`CorruptBatch`."""
        header = read_header(buf)
        if header.size != len(buf):
            raise CorruptBatch(f"length field says {header.size} bytes, buffer has {len(buf)}")
        _check_crc(buf, 0, len(buf))
        return cls(
            header.base_offset,
            header.count,
            header.first_ts,
            header.max_ts,
            header.producer_id,
            header.sequence,
            header.epoch,
            bytes(buf[HEADER_BYTES:]),
        )


def decode_batches(batches: Iterable[bytes]) -> list[RecordBatch]:
    """Decode what :meth:`Partition.read` returned into :class:`RecordBatch` objects."""
    return [RecordBatch.decode(b) for b in batches]


def encode_records(records: list[bytes]) -> bytes:
    """The batch payload for ``records``: a msgpack array of bin items."""
    data: bytes = msgpack.packb(records, use_bin_type=True)
    return data


def decode_records(payload: bytes) -> list[bytes]:
    """The records of a payload; anything but an array of bin raises :class:`CorruptBatch`."""
    try:
        records = msgpack.unpackb(payload, raw=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CorruptBatch(f"payload is not msgpack: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, bytes) for r in records):
        raise CorruptBatch("payload is not an array of bin")
    return records
