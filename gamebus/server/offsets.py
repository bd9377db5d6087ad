"""Durable committed offsets of consumer groups.

One append-only file, ``DATA/__consumer_offsets/commits.log``: each record is
``u32 length | u32 crc32c | msgpack [group, topic, partition, epoch, offset]``.
Opening reads every record up to the first torn or corrupt one (a crash mid
write), keeps the newest per key, and rewrites the file compacted (write to
a temporary file, fsync, rename), so it never grows past one record per
key plus what was committed since the last start. A commit is acknowledged
only after its records are fsynced; commits that arrive together share one
fsync.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import msgpack
from crc32c import crc32c

from gamebus.engines.base import Position

__all__ = ["OffsetStore"]

_HEAD = struct.Struct(">II")
Key = tuple[str, str, int]


def _record(key: Key, pos: Position) -> bytes:
    body: bytes = msgpack.packb([key[0], key[1], key[2], pos.epoch, pos.offset])
    return _HEAD.pack(len(body), crc32c(body)) + body


class OffsetStore:
    """Synchronous and thread-safe: the broker calls :meth:`commit` in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "__consumer_offsets"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "commits.log"
        self._lock = threading.Lock()
        self.offsets: dict[Key, Position] = self._load()
        self._compact()
        self._file = open(self.path, "ab")  # noqa: SIM115 - lives as long as the store

    def _load(self) -> dict[Key, Position]:
        out: dict[Key, Position] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return out
        pos = 0
        while pos + _HEAD.size <= len(data):
            size, crc = _HEAD.unpack_from(data, pos)
            body = data[pos + _HEAD.size : pos + _HEAD.size + size]
            if len(body) != size or crc32c(body) != crc:
                break  # torn tail from a crash: everything before it is good
            try:
                group, topic, partition, epoch, offset = msgpack.unpackb(body)
            except Exception:
                break
            out[(group, topic, partition)] = Position(epoch, offset)
            pos += _HEAD.size + size
        return out

    def _compact(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(_record(k, p) for k, p in self.offsets.items()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, group: str, topic: str, partition: int) -> Position | None:
        return self.offsets.get((group, topic, partition))

    def commit(self, group: str, offsets: dict[tuple[str, int], Position]) -> None:
        """Write and fsync; blocking, so call it from a thread."""
        data = b"".join(_record((group, t, p), pos) for (t, p), pos in offsets.items())
        with self._lock:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
            for (t, p), pos in offsets.items():
                self.offsets[(group, t, p)] = pos

    def groups(self) -> dict[str, dict[tuple[str, int], Position]]:
        out: dict[str, dict[tuple[str, int], Position]] = {}
        for (g, t, p), pos in list(self.offsets.items()):
            out.setdefault(g, {})[(t, p)] = pos
        return out

    def close(self) -> None:
        with self._lock:
            self._file.close()
