"""Opening a partition directory: verify the tail, cut what is bad, pick the epoch.

Every segment's tail after its last index entry is verified (magic,
length, CRC32C, contiguous offsets); after an unclean shutdown the whole
last segment is, and its index rebuilt. The log is cut at the first bad
batch and every later segment dropped, since nothing after a gap is
reachable.

A clean close leaves ``clean-shutdown`` (JSON: next offset, epoch,
producer state); open removes it at once, so a crash after this open looks
unclean. A new epoch starts when the shutdown was unclean (memory-acked
batches may be gone and their offsets will be reused) or anything was cut;
a cleanly closed, intact log reopens in the same epoch.
"""

from __future__ import annotations

import json
import os
import re
from typing import Final, NamedTuple

from gamebus.errors import CorruptBatch
from gamebus.log.config import LogConfig
from gamebus.log.epochs import EpochHistory
from gamebus.log.producers import ProducerBatch, ProducerState
from gamebus.log.segment import Segment, fsync_dir

__all__ = ["CLEAN_MARKER", "Recovered", "Recovery", "recover", "write_clean_marker"]

CLEAN_MARKER: Final = "clean-shutdown"
_SEGMENT_FILE: Final = re.compile(r"^(\d{20})\.log$")


class Recovery(NamedTuple):
    """What opening a partition found: a clean shutdown or not, and what was cut."""

    clean: bool
    cut_bytes: int
    dropped_segments: int
    new_epoch: bool


class Recovered(NamedTuple):
    """Everything a :class:`~gamebus.log.partition.Partition` starts from."""

    segments: list[Segment]
    history: EpochHistory
    producers: ProducerState
    next_offset: int
    recovery: Recovery


class _Shutdown(NamedTuple):
    next_offset: int
    epoch: int
    producers: ProducerState | None


def recover(directory: str, config: LogConfig) -> Recovered:
    """Open (or create) the partition files in ``directory`` and recover them."""
    os.makedirs(directory, exist_ok=True)
    _remove_temporaries(directory)
    bases = sorted(int(m.group(1)) for n in os.listdir(directory) if (m := _SEGMENT_FILE.match(n)))
    is_new = not bases and not os.path.exists(os.path.join(directory, "epochs"))
    history = EpochHistory.load(directory)
    marker = os.path.join(directory, CLEAN_MARKER)
    shutdown = _read_marker(marker)
    clean = is_new or shutdown is not None
    segments: list[Segment] = []
    cut = False
    cut_bytes = dropped = 0
    for i, base in enumerate(bases):
        seg = Segment.open(directory, base, index_interval_bytes=config.index_interval_bytes)
        if cut or (segments and base != segments[-1].next_offset):
            cut_bytes += seg.size
            dropped += 1
            seg.delete()
            cut = True
            continue
        size = seg.size
        cut |= seg.recover(full=not clean and i == len(bases) - 1)
        cut_bytes += size - seg.size
        segments.append(seg)
    next_offset = segments[-1].next_offset if segments else history.entries[-1][1]
    if shutdown is not None and shutdown.next_offset != next_offset:
        cut = True  # something shortened the log after the clean close
    if shutdown is not None and shutdown.producers is not None and not cut:
        producers, max_epoch = shutdown.producers, shutdown.epoch  # no header scan needed
    else:
        producers, max_epoch = _rebuild_producers(segments)
    epoch_before = history.current
    if is_new:
        history.save()
    elif not clean or cut or max_epoch > history.current:
        history.bump(at_least=max_epoch, start_offset=next_offset)
    if os.path.exists(marker):
        os.unlink(marker)
        fsync_dir(directory)
    recovery = Recovery(clean, cut_bytes, dropped, history.current != epoch_before)
    return Recovered(segments, history, producers, next_offset, recovery)


def write_clean_marker(
    directory: str, *, next_offset: int, epoch: int, producers: ProducerState
) -> None:
    """Record a clean close (after the final fsync); durable before this returns."""
    path = os.path.join(directory, CLEAN_MARKER)
    data = {"next_offset": next_offset, "epoch": epoch, "producers": producers.to_json()}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)


def _read_marker(path: str) -> _Shutdown | None:
    """The clean-shutdown record, or None (no marker, or one we cannot trust)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        next_offset, epoch = data["next_offset"], data["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if type(next_offset) is not int or type(epoch) is not int:
        return None
    return _Shutdown(next_offset, epoch, ProducerState.from_json(data.get("producers")))


def _remove_temporaries(directory: str) -> None:
    for name in os.listdir(directory):
        if name.endswith(".tmp"):
            os.unlink(os.path.join(directory, name))


def _rebuild_producers(segments: list[Segment]) -> tuple[ProducerState, int]:
    """Idempotence state and the largest epoch seen, from every batch header."""
    producers = ProducerState()
    max_epoch = 0
    for seg in segments:
        try:
            for h in seg.headers():
                max_epoch = max(max_epoch, h.epoch)
                if h.producer_id >= 0:
                    producers.record(
                        h.producer_id, ProducerBatch(h.sequence, h.base_offset, h.epoch, h.size)
                    )
        except CorruptBatch:  # pragma: no cover - recovery verified these already
            continue
    return producers, max_epoch
