"""One segment: a ``.log`` file of whole batches plus its sparse ``.index``.

Named by base offset zero-padded to 20 digits (``00000000000000000042.log``),
as Kafka's ``LogSegment``. A segment only ever grows at its end, except
when recovery truncates a torn or corrupt tail.

Reads use ``os.pread`` on the segment's single file descriptor, so a reader
on one thread and the writer on another never share a file position.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from typing import Final

from gamebus.errors import CorruptBatch
from gamebus.log.batch import HEADER_BYTES, BatchHeader, read_header
from gamebus.log.index import OffsetIndex

__all__ = ["NO_TIMESTAMP", "Segment", "fsync_dir", "segment_name"]

NO_TIMESTAMP: Final = -(2**63)
_FIELDS: Final = struct.Struct(">qi8xq")  # base_offset, count, (first_ts), max_ts at byte 10
_CRC_AT: Final = 2
_CHUNK_BYTES: Final = 1 << 20
_IOV_PAIRS: Final = 500  # below IOV_MAX (1024) iovecs per writev


def segment_name(base_offset: int, suffix: str) -> str:
    """``00000000000000000042.log`` for base offset 42 and suffix ``.log``."""
    return f"{base_offset:020d}{suffix}"


def fsync_dir(path: str) -> None:
    """Make a created, renamed or deleted name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan(fd: int, pos: int, size: int, *, verify: bool) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` of each batch in ``[pos, size)``, reading in big chunks.

    Raises :class:`CorruptBatch` (absolute position) at the first batch that
    is torn, has a bad header or, when ``verify``, a bad CRC32C.
    """
    from crc32c import crc32c

    chunk = _CHUNK_BYTES
    while pos < size:
        buf = os.pread(fd, min(chunk, size - pos), pos)
        if not buf:
            raise CorruptBatch("file shorter than expected", position=pos)
        view = memoryview(buf)
        i = 0
        while i + HEADER_BYTES <= len(buf):
            try:
                header = read_header(buf, i)
            except CorruptBatch as exc:
                raise CorruptBatch(exc.reason, position=pos + i) from None
            end = i + header.size
            if end > len(buf):
                break
            if verify:
                (stored,) = struct.unpack_from(">I", buf, i + _CRC_AT)
                if crc32c(view[i + 6 : end]) != stored:
                    raise CorruptBatch("CRC32C mismatch", position=pos + i)
            yield pos + i, header
            i = end
        if i == 0:
            # One batch bigger than the chunk, or a torn tail.
            if len(buf) < HEADER_BYTES:
                raise CorruptBatch("truncated header", position=pos)
            need = read_header(buf, 0).size
            if pos + need > size:
                raise CorruptBatch("truncated payload", position=pos)
            chunk = need
            continue
        chunk = _CHUNK_BYTES
        pos += i


def _write_all(fd: int, headers: list[bytes], payloads: list[bytes]) -> None:
    """``writev`` header/payload pairs, ``_IOV_PAIRS`` at a time, finishing short writes."""
    for i in range(0, len(headers), _IOV_PAIRS):
        parts: list[bytes] = []
        for header, payload in zip(
            headers[i : i + _IOV_PAIRS], payloads[i : i + _IOV_PAIRS], strict=True
        ):
            parts.append(header)
            parts.append(payload)
        want = sum(len(p) for p in parts)
        done = os.writev(fd, parts)
        if done < want:  # rare for regular files: finish byte-wise
            rest = memoryview(b"".join(parts))[done:]
            while rest:
                rest = rest[os.write(fd, rest) :]


class Segment:
    """A log file of consecutive batches starting at ``base_offset``.

    Attributes the partition reads: ``base_offset``, ``next_offset`` (the
    offset after the last batch), ``size`` (bytes), ``max_ts`` (largest
    producer timestamp, for time retention) and ``created_ms`` (for rolling
    by age; a reopened segment counts from its first batch's ``max_ts``).
    """

    __slots__ = (
        "_fd",
        "_since_index",
        "base_offset",
        "created_ms",
        "directory",
        "index",
        "index_interval_bytes",
        "max_ts",
        "next_offset",
        "path",
        "size",
    )

    def __init__(self, directory: str, base_offset: int, *, index_interval_bytes: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.path = os.path.join(directory, segment_name(base_offset, ".log"))
        self.index = OffsetIndex(
            os.path.join(directory, segment_name(base_offset, ".index")), base_offset
        )
        self.index_interval_bytes = index_interval_bytes
        self.next_offset = base_offset
        self.size = 0
        self.max_ts = NO_TIMESTAMP
        self.created_ms = NO_TIMESTAMP
        self._since_index = 0
        self._fd = -1

    def __repr__(self) -> str:
        return f"Segment({self.base_offset}..{self.next_offset}, {self.size} bytes)"

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    def create(
        cls, directory: str, base_offset: int, *, now_ms: int, index_interval_bytes: int
    ) -> Segment:
        """A new empty segment file; its name is made durable at once."""
        seg = cls(directory, base_offset, index_interval_bytes=index_interval_bytes)
        seg._fd = os.open(seg.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        seg.index.delete()
        seg.created_ms = now_ms
        fsync_dir(directory)
        return seg

    @classmethod
    def open(cls, directory: str, base_offset: int, *, index_interval_bytes: int) -> Segment:
        """An existing segment; call :meth:`recover` before trusting its tail."""
        seg = cls(directory, base_offset, index_interval_bytes=index_interval_bytes)
        seg._fd = os.open(seg.path, os.O_RDWR | os.O_APPEND)
        seg.size = os.fstat(seg._fd).st_size
        return seg

    def recover(self, *, full: bool, on_batch: Callable[[BatchHeader], None] | None = None) -> bool:
        """Validate the tail, truncate at the first bad batch; True if anything was cut.

        With ``full`` (or a missing or inconsistent index) every batch is
        checked and the index rebuilt; otherwise only the batches after the
        last index entry. ``on_batch`` sees each valid batch scanned.
        """
        index_ok = self.index.load(self.size)
        if full or not index_ok:
            return self._scan_from(
                0, self.base_offset, NO_TIMESTAMP, rebuild=True, on_batch=on_batch
            )
        offset, pos, ts_before = self.index.last()
        try:
            return self._scan_from(
                pos, offset, ts_before, rebuild=False, on_batch=on_batch, strict=True
            )
        except CorruptBatch:
            # The last index entry itself points at garbage: trust nothing.
            return self._scan_from(
                0, self.base_offset, NO_TIMESTAMP, rebuild=True, on_batch=on_batch
            )

    def _scan_from(
        self,
        pos: int,
        offset: int,
        max_ts: int,
        *,
        rebuild: bool,
        on_batch: Callable[[BatchHeader], None] | None,
        strict: bool = False,
    ) -> bool:
        # Index entries are added exactly as append() would, so a scan also
        # fills in entries the crash kept from reaching the index file.
        if rebuild:
            self.index.clear()
        start, since, expected = pos, 0, offset
        cut_at: int | None = None
        try:
            for at, header in _scan(self._fd, pos, self.size, verify=True):
                if header.base_offset != expected:
                    raise CorruptBatch(
                        f"base offset {header.base_offset}, expected {expected}", position=at
                    )
                if since >= self.index_interval_bytes:
                    self.index.add(header.base_offset, at, max_ts)
                    since = 0
                since += header.size
                max_ts = max(max_ts, header.max_ts)
                expected = header.next_offset
                if on_batch is not None:
                    on_batch(header)
        except CorruptBatch as exc:
            if strict and exc.position == start and start > 0:
                raise
            cut_at = start if exc.position is None else exc.position
        self.next_offset, self.max_ts, self._since_index = expected, max_ts, since
        if cut_at is not None:
            os.ftruncate(self._fd, cut_at)
            os.fsync(self._fd)
            self.size = cut_at
        if rebuild or cut_at is not None:
            self.index.rewrite()
        else:
            self.index.write()
        if self.size and self.created_ms == NO_TIMESTAMP:
            self.created_ms = read_header(os.pread(self._fd, HEADER_BYTES, 0)).max_ts
        return cut_at is not None

    def headers(self) -> Iterator[BatchHeader]:
        """Every batch header in order, without CRC checks (for state rebuilds)."""
        for _, header in _scan(self._fd, 0, self.size, verify=False):
            yield header

    def close(self) -> None:
        self.index.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        """Close and remove both files (retention, or recovery dropping a tail)."""
        self.close()
        for path in (self.path, self.index.path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # -- writing (the flusher's thread) ------------------------------------

    def should_roll(
        self, *, now_ms: int, incoming_bytes: int, segment_bytes: int, segment_ms: int
    ) -> bool:
        """True when the next write should go to a new segment (never for an empty one)."""
        if not self.size:
            return False
        return self.size + incoming_bytes > segment_bytes or now_ms - self.created_ms >= segment_ms

    def append(self, headers: list[bytes], payloads: list[bytes], *, now_ms: int) -> None:
        """Write whole batches (``headers[i] + payloads[i]``) at the end, without joining them.

        Index entries follow the data. On an error the file is cut back to
        where it was, so a failed write leaves no half batch behind.
        """
        if not headers:
            return
        if not self.size:
            self.created_ms = now_ms
        start = self.size
        try:
            _write_all(self._fd, headers, payloads)
        except BaseException:
            os.ftruncate(self._fd, start)
            raise
        pos, since, max_ts, offset = start, self._since_index, self.max_ts, self.next_offset
        interval = self.index_interval_bytes
        for header, payload in zip(headers, payloads, strict=True):
            base, count, batch_max_ts = _FIELDS.unpack_from(header, 10)
            if since >= interval:
                self.index.add(base, pos, max_ts)
                since = 0
            n = HEADER_BYTES + len(payload)
            since += n
            pos += n
            if batch_max_ts > max_ts:
                max_ts = batch_max_ts
            offset = base + count
        self._since_index, self.max_ts, self.next_offset, self.size = since, max_ts, offset, pos
        self.index.write()

    def fsync(self) -> None:
        os.fdatasync(self._fd)

    # -- reading -----------------------------------------------------------

    def read(
        self, offset: int, *, max_bytes: int, end_offset: int, at_least_one: bool = True
    ) -> list[bytes]:
        """Whole batches from the one containing ``offset``, below ``end_offset``.

        One batch even past ``max_bytes`` when ``at_least_one``, then more
        while the total stays within ``max_bytes``. Headers are framed but CRCs not checked: the
        data was verified on recovery and the consumer checks end to end.
        """
        _, pos = self.index.lookup(offset)
        out: list[bytes] = []
        total = 0
        limit = self.size
        chunk = max(max_bytes, 2 * self.index_interval_bytes, HEADER_BYTES)
        while pos < limit:
            buf = os.pread(self._fd, min(chunk, limit - pos), pos)
            i = 0
            n = len(buf)
            while i + HEADER_BYTES <= n:
                header = read_header(buf, i)
                if header.base_offset >= end_offset:
                    return out
                end = i + header.size
                if end > n:
                    break
                if header.next_offset > offset:
                    if (out or not at_least_one) and total + header.size > max_bytes:
                        return out
                    out.append(buf[i:end])
                    total += header.size
                i = end
            if total >= max_bytes:
                return out
            if i == 0:
                if n < HEADER_BYTES:
                    break
                chunk = read_header(buf, 0).size
                continue
            pos += i
        return out
