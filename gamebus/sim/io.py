"""Recordings on disk: events as a msgpack stream, labels as JSON lines.

The events file is a plain concatenation of msgpack maps, one per event, in
``ts`` order within each match: each map is self-delimiting, so a reader
needs no framing (``msgpack.Unpacker(file)``) and a file can be appended to
match after match. It holds exactly what would go on the bus.

The labels file is the side file: one JSON object per line and per match
(``MatchRecording.side_record()``: map, seed, players with their skill and
ping, cheaters with kind, intensity and on-intervals). It is the only place
the truth is written; nothing in it ever goes on the bus.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgpack

from gamebus.sim.cheats import CheaterLabel

__all__ = [
    "EventWriter",
    "LabelWriter",
    "cheater_labels",
    "read_events",
    "read_labels",
]


class EventWriter:
    """Appends events to a msgpack stream file."""

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        self.path = Path(path)
        self._file: IO[bytes] = open(self.path, "ab" if append else "wb")  # noqa: SIM115
        self._packer = msgpack.Packer(use_bin_type=True)
        self.count = 0

    def write(self, events: Iterable[dict[str, Any]]) -> None:
        pack, out = self._packer.pack, self._file
        n = 0
        for event in events:
            out.write(pack(event))
            n += 1
        self.count += n

    def write_encoded(self, data: bytes, count: int) -> None:
        """Append ``count`` events already packed as a msgpack stream."""
        self._file.write(data)
        self.count += count

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every event of an events file, in file order."""
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=True)
        yield from unpacker


class LabelWriter:
    """Appends one JSON line per match to the labels side file."""

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        self.path = Path(path)
        self._file: IO[str] = open(self.path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()  # a reader may follow the file while matches play

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_labels(path: str | Path) -> list[dict[str, Any]]:
    """The per-match records of a labels file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cheater_labels(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], CheaterLabel]:
    """``(match, player) -> CheaterLabel`` for every cheater in ``records``."""
    out: dict[tuple[str, str], CheaterLabel] = {}
    for rec in records:
        for d in rec.get("cheaters", []):
            label = CheaterLabel.from_dict(d)
            out[(label.match, label.player)] = label
    return out
