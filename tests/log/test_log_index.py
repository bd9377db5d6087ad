"""The sparse offset index on its own: lookups, reload, truncation, and its memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gamebus.log.index import ENTRY_BYTES, OffsetIndex

BASE = 5_000_000_000  # past u32: only offsets relative to the base are stored


def _filled(path: Path, entries: list[tuple[int, int, int]]) -> OffsetIndex:
    index = OffsetIndex(str(path), BASE)
    for rel, pos, ts in entries:
        index.add(BASE + rel, pos, ts)
    index.write()
    return index


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=60, unique=True), st.integers(0, 700_000))
def test_lookup_finds_the_greatest_entry_at_or_below_the_offset(tmp_path_factory, gaps, probe) -> None:
    rels = sorted(gaps)
    entries = [(r * 10, r * 4096, r) for r in rels]
    index = _filled(tmp_path_factory.mktemp("idx") / "00.index", entries)
    below = [(r, p) for r, p, _ in entries if r <= probe]
    want = (BASE + below[-1][0], below[-1][1]) if below else (BASE, 0)
    assert index.lookup(BASE + probe) == want


def test_reload_and_truncate_round_trip(tmp_path: Path) -> None:
    entries = [(i * 7, i * 4096, 1_764_000_000_000 + i) for i in range(1, 200)]
    path = tmp_path / "00.index"
    _filled(path, entries).close()
    assert path.stat().st_size == len(entries) * ENTRY_BYTES
    again = OffsetIndex(str(path), BASE)
    assert again.load(log_size=10**9) and len(again) == len(entries)
    assert again.last() == (BASE + entries[-1][0], entries[-1][1], entries[-1][2])
    again.truncate_after(100 * 4096)  # the log was cut inside the 100th entry's batch
    assert again.last()[1] == 99 * 4096
    reread = OffsetIndex(str(path), BASE)
    assert reread.load(log_size=100 * 4096) and len(reread) == 99
    assert not OffsetIndex(str(path), BASE).load(log_size=50 * 4096), "positions past the log"


def test_entries_cost_about_what_they_cost_on_disk(tmp_path: Path) -> None:
    """Retained history must not cost the broker 7x its index files in RAM."""
    index = OffsetIndex(str(tmp_path / "00.index"), BASE)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(50_000):
            index.add(BASE + i * 40, i * 4096, 1_764_000_000_000 + i)
        index.write()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (after - before) / 50_000 < 2 * ENTRY_BYTES
