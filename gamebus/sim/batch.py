"""Many matches from one seed, for training and evaluation data.

Match ``i`` of ``simulate_matches(seed, n)`` has its own seed
(:func:`match_seed`), so a match does not depend on how many matches came
before it or on how many worker processes made them: ``seed=7`` match 3 is
the same recording whether made alone, in a batch of 10 or by 4 workers.
Recordings are yielded one at a time (a match is ~25,000 events; a thousand
of them do not fit in memory at once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.match import (
    DEFAULT_DURATION_S,
    DEFAULT_START_TS_MS,
    MatchRecording,
    simulate_match,
)

__all__ = ["match_id_for", "match_seed", "simulate_matches"]


def match_seed(seed: int, index: int) -> int:
    """The seed of match ``index`` of a batch made from ``seed`` (a 63-bit integer)."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def match_id_for(seed: int, index: int, prefix: str = "m") -> str:
    return f"{prefix}{seed}-{index:05d}"


def _one(args: tuple[int, int, str, dict[str, Any]]) -> MatchRecording:
    seed, index, prefix, kwargs = args
    duration_s = float(kwargs.get("duration_s", DEFAULT_DURATION_S))
    start = int(kwargs.pop("start_ts_ms", DEFAULT_START_TS_MS))
    # Matches follow one another on the simulated clock, as on one server.
    start += index * round(duration_s * 1000 + 10_000)
    return simulate_match(
        seed=match_seed(seed, index), match_id=match_id_for(seed, index, prefix),
        start_ts_ms=start, **kwargs,
    )


def simulate_matches(
    seed: int,
    n: int,
    *,
    workers: int = 1,
    prefix: str = "m",
    first: int = 0,
    **kwargs: Any,
) -> Iterator[MatchRecording]:
    """Matches ``first .. first + n - 1`` of the batch ``seed``, in order.

    ``kwargs`` go to :func:`~gamebus.sim.match.simulate_match` (players,
    cheaters, tick_hz, duration_s, cheat_kinds, intensity ...).
    ``workers > 1`` simulates in that many processes (0 means one per CPU).
    """
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    jobs = [(seed, i, prefix, dict(kwargs)) for i in range(first, first + n)]
    if workers == 0:
        workers = os.cpu_count() or 1
    if workers <= 1 or n <= 1:
        for job in jobs:
            yield _one(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_one, jobs, chunksize=1)
