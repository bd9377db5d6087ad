"""The sparse offset index beside each segment (Kafka's ``OffsetIndex`` shape).

One entry every ``index_interval_bytes`` of log: the batch's offset relative
to the segment base, its byte position, and the largest producer timestamp
of the batches *before* it (so the index doubles as a coarse time index for
retention). A lookup finds the greatest entry at or below an offset by
binary search; the segment scans forward from there.

The index is an optimisation, never the truth: it is written with the log
but not fsynced, and recovery rebuilds it from the log whenever it looks
wrong. Entries are 16 bytes, big-endian ``u32 relative offset, u32
position, i64 max_ts_before``.

In memory the three columns are packed arrays, 16 bytes an entry as on
disk: lists of Python ints cost about 114, which for a topic kept for days
is tens of MiB of broker memory that only grows with retention.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_right
from typing import Final

__all__ = ["ENTRY_BYTES", "OffsetIndex"]

_ENTRY: Final = struct.Struct(">IIq")
ENTRY_BYTES: Final = _ENTRY.size
_NO_TS: Final = -(2**63)


class OffsetIndex:
    """In-memory sparse index of one segment plus its append-only file."""

    __slots__ = (
        "_fd",
        "_unwritten",
        "base_offset",
        "max_ts_before",
        "path",
        "positions",
        "relative",
    )

    def __init__(self, path: str, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.relative = array("I")  # u32, as on disk
        self.positions = array("I")
        self.max_ts_before = array("q")
        self._unwritten: list[bytes] = []
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self.relative)

    def add(self, offset: int, position: int, max_ts_before: int) -> None:
        """Record that the batch at ``offset`` starts at byte ``position``."""
        rel = offset - self.base_offset
        ts = max(max_ts_before, _NO_TS)
        self.relative.append(rel)
        self.positions.append(position)
        self.max_ts_before.append(ts)
        self._unwritten.append(_ENTRY.pack(rel, position, ts))

    def lookup(self, offset: int) -> tuple[int, int]:
        """``(offset, position)`` of the greatest entry at or below ``offset``, else the start."""
        i = bisect_right(self.relative, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self.relative[i], self.positions[i]

    def last(self) -> tuple[int, int, int]:
        """``(offset, position, max_ts_before)`` of the last entry, or the segment start."""
        if not self.relative:
            return self.base_offset, 0, _NO_TS
        return self.base_offset + self.relative[-1], self.positions[-1], self.max_ts_before[-1]

    def write(self) -> None:
        """Append entries added since the last call to the index file (no fsync)."""
        if not self._unwritten:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        data = b"".join(self._unwritten)
        self._unwritten.clear()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def load(self, log_size: int) -> bool:
        """Read the index file; False (and empty) if missing or inconsistent with the log.

        Consistent means whole entries, strictly increasing offsets and
        positions, every position inside a log of ``log_size`` bytes.
        """
        self.clear()
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return log_size == 0
        if len(data) % ENTRY_BYTES:
            return False
        last_rel, last_pos = -1, -1
        for rel, pos, ts in _ENTRY.iter_unpack(data):
            if rel <= last_rel or pos <= last_pos or pos >= log_size:
                self.clear()
                return False
            self.relative.append(rel)
            self.positions.append(pos)
            self.max_ts_before.append(ts)
            last_rel, last_pos = rel, pos
        return True

    def truncate_after(self, position: int) -> None:
        """Drop entries at or past byte ``position`` (the log was cut there) and rewrite the file."""
        keep = bisect_right(self.positions, position - 1)
        del self.relative[keep:], self.positions[keep:], self.max_ts_before[keep:]
        self.rewrite()

    def clear(self) -> None:
        del self.relative[:], self.positions[:], self.max_ts_before[:]
        self._unwritten.clear()

    def rewrite(self) -> None:
        """Replace the file with the in-memory entries (after a rebuild or truncation)."""
        self.close()
        data = b"".join(
            _ENTRY.pack(r, p, t)
            for r, p, t in zip(self.relative, self.positions, self.max_ts_before, strict=True)
        )
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path)
        self._unwritten.clear()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
