"""Read several evaluations as one held-out set, with intervals from resampled matches.

One ``gamebus anticheat evaluate`` run is 300 matches and about 100
cheaters of a kind: a row's recall at 1% FPR moves by about five points
from one seed to the next, so one run can read under a target the model
meets, or over one it misses. Pooling the runs' ``players.csv`` files
puts every run's honest players under one cut and gives each row a 95%
interval from resampling *whole matches* (the players of a match share
its map, its lobby and its cheaters, so they are not independent draws).

Pure: rows in, readings out. ``gamebus anticheat pool RUN_DIR ...`` is the
edge that reads the files and prints :func:`pool_markdown`.

Example::

    gamebus anticheat evaluate --model M --matches 300 --seed 79 --out runs/79
    gamebus anticheat evaluate --model M --matches 300 --seed 78 --out runs/78
    gamebus anticheat pool runs/79 runs/78
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anticheat.evaluate import PlayerRow, auc, auc_text, pct_text, recall_at_fpr
from gamebus.errors import FileRejected

__all__ = ["PoolRejected", "PooledGroup", "Reading", "pool", "pool_markdown", "read_players"]

ALL_CHEATERS = "all cheaters"


class PoolRejected(FileRejected):
    """A run whose ``players.csv`` cannot be read as an evaluation's players."""


@dataclass(frozen=True, slots=True)
class Reading:
    """ROC-AUC and recall at the FPR asked for, over ``n`` cheaters."""

    auc: float
    recall: float
    n: int


@dataclass(frozen=True, slots=True)
class PooledGroup:
    """One cheat group: each run alone, then every run under one cut with 95% intervals."""

    group: str
    per_run: tuple[Reading, ...]
    pooled: Reading
    auc_interval: tuple[float, float]
    recall_interval: tuple[float, float]


def read_players(path: Path) -> list[PlayerRow]:
    """The rows ``evaluate`` wrote to ``players.csv`` (a run directory or the file itself)."""
    file = path / "players.csv" if path.is_dir() else path
    try:
        with file.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = set(PlayerRow.CSV_FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise PoolRejected(str(file), f"not an evaluation's players.csv: no {', '.join(sorted(missing))} column")
            return [_row(r, file, n) for n, r in enumerate(reader, start=2)]
    except OSError as exc:
        raise PoolRejected(str(file), exc.strerror or str(exc)) from exc


def _row(r: dict[str, str], file: Path, line: int) -> PlayerRow:
    def num(field: str) -> float:
        text = r[field]
        try:
            return float(text) if text else math.nan
        except ValueError:
            raise PoolRejected(str(file), f"line {line}: {field} is not a number: {text!r}") from None

    return PlayerRow(match=r["match"], player=r["player"], group=r["group"], closet=r["closet"] == "1",
                     skill=r["skill"], ping_ms=num("ping_ms"), cheat_shown=r["cheat_shown"] == "1",
                     best_match=num("best_match"), best_window=num("best_window"), score=num("score"),
                     rules=tuple(r["rules"].split()))


def _read(clean: np.ndarray, cheat: np.ndarray, fpr: float) -> Reading:
    return Reading(auc(clean, cheat), recall_at_fpr(clean, cheat, fpr), len(cheat))


def pool(runs: Sequence[Sequence[PlayerRow]], *, fpr: float = 0.01, resamples: int = 200,
         seed: int = 0) -> list[PooledGroup]:
    """Each cheat group of ``runs`` alone and pooled, plus every cheater together as ``all cheaters``.

    Matches are told apart by run as well as by id, so two runs of the
    same seed are two draws, as they would be if resampled.
    """
    rows = [(k, r) for k, run in enumerate(runs) for r in run]
    score = np.nan_to_num(np.array([r.score for _, r in rows], dtype=np.float64), nan=0.0)
    group = np.array([r.group for _, r in rows], dtype=object)
    match = np.array([f"{k}\x00{r.match}" for k, r in rows], dtype=object)
    ends = np.cumsum([len(run) for run in runs], dtype=np.int64)
    names = [*sorted(set(group) - {"clean"}), ALL_CHEATERS]

    def cheats_of(g: str, gr: np.ndarray) -> np.ndarray:
        return np.asarray(gr != "clean") if g == ALL_CHEATERS else np.asarray(gr == g)

    def read_all(idx: np.ndarray) -> list[Reading]:
        s, gr = score[idx], group[idx]
        clean = s[gr == "clean"]
        return [_read(clean, s[cheats_of(g, gr)], fpr) for g in names]

    per_run = [read_all(np.arange(end - len(run), end)) for run, end in zip(runs, ends, strict=True)]
    pooled = read_all(np.arange(len(score)))

    matches, inverse = np.unique(match, return_inverse=True)
    members = [np.flatnonzero(inverse == m) for m in range(len(matches))]
    rng = np.random.default_rng(seed)
    draws = np.full((resamples, len(names), 2), np.nan)
    for b in range(resamples):
        idx = np.concatenate([members[m] for m in rng.integers(0, len(matches), len(matches))])
        draws[b] = [(r.auc, r.recall) for r in read_all(idx)]

    def interval(values: np.ndarray) -> tuple[float, float]:
        values = values[~np.isnan(values)]
        if len(values) == 0:
            return math.nan, math.nan
        lo, hi = np.percentile(values, [2.5, 97.5])
        return float(lo), float(hi)

    return [PooledGroup(g, tuple(run[i] for run in per_run), pooled[i],
                        interval(draws[:, i, 0]), interval(draws[:, i, 1]))
            for i, g in enumerate(names)]


def pool_markdown(result: Sequence[PooledGroup], run_names: Sequence[str], *, honest: int, matches: int,
                  fpr: float = 0.01, resamples: int = 200) -> str:
    """The table the docs quote: each run's ROC-AUC / recall, then the pooled reading and its intervals."""
    at = f"{100 * fpr:g}% FPR"
    lines = [
        f"{len(run_names)} runs pooled: {matches:,} matches, {honest:,} honest players under one cut at {at}; "
        f"95% intervals from {resamples} resamplings of whole matches. Cells: ROC-AUC / recall @{at} (cheaters).",
        "",
        "| cheat / intensity | " + " | ".join(run_names) + f" | pooled ROC-AUC (95%) | pooled recall @{at} (95%) |",
        "|---|" + "---:|" * (len(run_names) + 2),
    ]
    for g in result:
        cells = [f"{auc_text(r.auc)} / {pct_text(r.recall)} ({r.n:,})" if r.n else "-" for r in g.per_run]
        lines.append(
            f"| {g.group} | " + " | ".join(cells)
            + f" | {auc_text(g.pooled.auc)} ({auc_text(g.auc_interval[0])}-{auc_text(g.auc_interval[1])})"
            + f" | {pct_text(g.pooled.recall)} ({pct_text(g.recall_interval[0])}-{pct_text(g.recall_interval[1])})"
            + f" of {g.pooled.n:,} |")
    return "\n".join(lines) + "\n"

