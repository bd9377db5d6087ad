"""Many matches from one seed, for training and evaluation data.

Match ``i`` of ``simulate_matches(seed, n)`` has its own seed
(:func:`match_seed`), so a match does not depend on how many matches came
before it or on how many worker processes made them: ``seed=7`` match 3 is
the same recording whether made alone, in a batch of 10 or by 4 workers.
Recordings are yielded one at a time and made a batch at a time (a match
is ~21,000 events; a thousand of them do not fit in memory at once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import msgpack
import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.match import (
    DEFAULT_DURATION_S,
    DEFAULT_START_TS_MS,
    MatchRecording,
    MatchSimulator,
    play_together,
    ticks_together,
)

__all__ = [
    "DEFAULT_BATCH",
    "ENCODED_BATCH",
    "match_id_for",
    "match_seed",
    "match_simulator",
    "simulate_encoded",
    "simulate_matches",
]

#: Matches stepped together per batch: enough to share the per-tick overhead,
#: few enough that a batch's events (~25,000 per match) stay small in memory.
DEFAULT_BATCH = 8
#: Batch of the encoded path, which keeps bytes, not dicts, in memory.
ENCODED_BATCH = 16


def match_seed(seed: int, index: int) -> int:
    """The seed of match ``index`` of a batch made from ``seed`` (a 63-bit integer)."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def match_id_for(seed: int, index: int, prefix: str = "m") -> str:
    return f"{prefix}{seed}-{index:05d}"


def match_simulator(seed: int, index: int, kwargs: dict[str, Any], **extra: Any) -> MatchSimulator:
    """Match ``index`` of the batch ``seed``: its own seed and, when ``kwargs``
    hold a ``league`` (:class:`~gamebus.sim.accounts.League`), the accounts of
    its lobby ``index``; the rest of ``kwargs`` and ``extra`` go to
    :class:`~gamebus.sim.match.MatchSimulator`."""
    rest = dict(kwargs)
    league = rest.pop("league", None)
    roster = league.roster(index) if league is not None else None
    return MatchSimulator(seed=match_seed(seed, index), roster=roster, **rest, **extra)


def _sims(seed: int, indices: list[int], prefix: str, kwargs: dict[str, Any]) -> list[MatchSimulator]:
    duration_s = float(kwargs.get("duration_s", DEFAULT_DURATION_S))
    rest = dict(kwargs)
    start = int(rest.pop("start_ts_ms", DEFAULT_START_TS_MS))
    return [
        match_simulator(
            seed, i, rest, match_id=match_id_for(seed, i, prefix),
            # Matches follow one another on the simulated clock, as on one server.
            start_ts_ms=start + i * round(duration_s * 1000 + 10_000),
        )
        for i in indices
    ]


#: One worker's share: (batch seed, match indices, id prefix, simulator kwargs).
_Job = tuple[int, list[int], str, dict[str, Any]]
T = TypeVar("T")


def _play(args: _Job) -> list[MatchRecording]:
    seed, indices, prefix, kwargs = args
    return play_together(_sims(seed, indices, prefix, kwargs))


Encoded = tuple[dict[str, Any], bytes, int]


def _play_encoded(args: _Job) -> list[Encoded]:
    """Play a batch, packing each tick's events at once (a few MB per match, not ~20)."""
    seed, indices, prefix, kwargs = args
    sims = _sims(seed, indices, prefix, kwargs)
    pack = msgpack.Packer(use_bin_type=True).pack
    buffers = [bytearray() for _ in sims]
    counts = [0] * len(sims)
    for per_match in ticks_together(sims):
        for k, (_, events) in enumerate(per_match):
            buf = buffers[k]
            for event in events:
                buf += pack(event)
            counts[k] += len(events)
    return [(s.side_record(), bytes(b), c) for s, b, c in zip(sims, buffers, counts, strict=True)]


def _jobs(seed: int, n: int, first: int, batch: int, prefix: str,
          kwargs: dict[str, Any]) -> list[_Job]:
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    indices = list(range(first, first + n))
    return [(seed, indices[k : k + batch], prefix, dict(kwargs)) for k in range(0, n, batch)]


def simulate_encoded(
    seed: int,
    n: int,
    *,
    workers: int = 1,
    prefix: str = "m",
    first: int = 0,
    batch: int = ENCODED_BATCH,
    **kwargs: Any,
) -> Iterator[Encoded]:
    """Like :func:`simulate_matches`, as ``(labels record, msgpack events, event count)``.

    The workers encode, so the parent only writes bytes: the fast path of
    ``gamebus sim --out``.
    """
    yield from _run(_play_encoded, _jobs(seed, n, first, batch, prefix, kwargs), workers)


def simulate_matches(
    seed: int,
    n: int,
    *,
    workers: int = 1,
    prefix: str = "m",
    first: int = 0,
    batch: int = DEFAULT_BATCH,
    **kwargs: Any,
) -> Iterator[MatchRecording]:
    """Matches ``first .. first + n - 1`` of the batch ``seed``, in order.

    ``kwargs`` go to :class:`~gamebus.sim.match.MatchSimulator` (players,
    cheaters, tick_hz, duration_s, cheat_kinds, intensity ...), except
    ``league`` (a :class:`~gamebus.sim.accounts.League`), which gives match
    ``i`` the accounts of its lobby ``i``. Matches are
    stepped ``batch`` at a time (:func:`~gamebus.sim.match.play_together`:
    the same recordings, several times faster); ``workers > 1`` spreads the
    batches over that many processes (0 means one per CPU).
    """
    yield from _run(_play, _jobs(seed, n, first, batch, prefix, kwargs), workers)


def _run(play: Callable[[_Job], list[T]], jobs: list[_Job], workers: int) -> Iterator[T]:
    """Each job's results in job order: here, or over ``workers`` processes (0: one per CPU)."""
    if workers == 0:
        workers = os.cpu_count() or 1
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield from play(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for results in pool.map(play, jobs, chunksize=1):
            yield from results
