"""A partition's epoch history: which epoch started at which offset.

The epoch changes whenever the partition may have lost a tail (an unclean
restart). Keeping the start offset of every epoch (Kafka's leader-epoch
cache) lets the partition tell a consumer holding ``(epoch, offset)``
whether its position is still valid: everything below the start of the
next epoch is unchanged, so a consumer at or below it needs no resync.

Stored as text lines ``"<epoch> <start_offset>"`` in ``epochs``, replaced
atomically (write, fsync, rename, fsync the directory).
"""

from __future__ import annotations

import os

from gamebus.log.segment import fsync_dir

__all__ = ["EpochHistory"]

_FILE = "epochs"


class EpochHistory:
    """Ordered ``(epoch, start_offset)`` pairs; the last one is current."""

    __slots__ = ("directory", "entries")

    def __init__(self, directory: str, entries: list[tuple[int, int]]) -> None:
        self.directory = directory
        self.entries = entries

    @classmethod
    def load(cls, directory: str) -> EpochHistory:
        """The stored history, or epoch 0 from offset 0 for a new partition.

        Unparsable lines are ignored rather than fatal: losing history only
        makes old positions resync, it never loses data.
        """
        entries: list[tuple[int, int]] = []
        try:
            with open(os.path.join(directory, _FILE), encoding="ascii") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                        epoch, start = int(parts[0]), int(parts[1])
                        if not entries or (epoch > entries[-1][0] and start >= entries[-1][1]):
                            entries.append((epoch, start))
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        return cls(directory, entries or [(0, 0)])

    @property
    def current(self) -> int:
        return self.entries[-1][0]

    def start_of_next(self, epoch: int) -> int | None:
        """Start offset of the first epoch after ``epoch``, None if ``epoch`` is current or later."""
        for e, start in self.entries:
            if e > epoch:
                return start
        return None

    def bump(self, *, at_least: int, start_offset: int) -> int:
        """Start a new epoch (above ``at_least`` and the current one) at ``start_offset``; persist."""
        epoch = max(self.current, at_least) + 1
        self.entries.append((epoch, start_offset))
        self.save()
        return epoch

    def save(self) -> None:
        path = os.path.join(self.directory, _FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.writelines(f"{e} {s}\n" for e, s in self.entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(self.directory)
