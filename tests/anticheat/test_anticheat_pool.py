"""Pooling evaluations: one cut over every run's honest players, intervals from resampled matches."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from anticheat.evaluate import PlayerRow, auc, recall_at_fpr
from anticheat.pool import PoolRejected, pool, pool_markdown, read_players
from gamebus.cli import main

scores = st.lists(st.integers(0, 20).map(lambda k: k / 20), min_size=1, max_size=60)


@given(clean=scores, cheat=scores)
def test_auc_counts_ties_half_as_scikit_learn_does(clean, cheat):
    y = np.r_[np.zeros(len(clean)), np.ones(len(cheat))]
    expected = roc_auc_score(y, np.r_[clean, cheat])
    assert auc(np.array(clean), np.array(cheat)) == pytest.approx(expected, abs=1e-12)


def _row(match: str, player: str, group: str, score: float) -> PlayerRow:
    return PlayerRow(match=match, player=player, group=group, closet=False, skill="average", ping_ms=40.0,
                     cheat_shown=True, best_match=score, best_window=score, score=score, rules=())


def _run(tag: str, honest: list[float], cheats: dict[str, list[float]]) -> list[PlayerRow]:
    """One match per ten honest players; each cheater in the match of its index."""
    rows = [_row(f"{tag}{i // 10}", f"h{i}", "clean", s) for i, s in enumerate(honest)]
    for group, values in cheats.items():
        rows += [_row(f"{tag}{i % max(1, len(honest) // 10)}", f"{group}{i}", group, s) for i, s in enumerate(values)]
    return rows


def test_every_run_s_honest_players_share_one_cut():
    # Run a's honest players sit low, run b's high: each run's own 1% cut differs from the pooled one.
    a = _run("a", [i / 1000 for i in range(100)], {"triggerbot/blatant": [0.5, 0.95]})
    b = _run("b", [0.9 + i / 10_000 for i in range(100)], {"triggerbot/blatant": [0.995, 0.905]})
    (trig, everyone) = pool([a, b], resamples=20)
    assert trig.group == "triggerbot/blatant" and everyone.group == "all cheaters"
    # Alone, a's cut is 0.098 (both caught) and b's 0.9098 (only 0.995 caught).
    assert [r.recall for r in trig.per_run] == [1.0, 0.5]
    assert [r.n for r in trig.per_run] == [2, 2]
    # Pooled, the cut is the 200 honest players' 1%, 0.9097: a's 0.5 is no longer past it.
    honest = np.array([r.score for r in a + b if r.group == "clean"])
    cheat = np.array([0.5, 0.95, 0.995, 0.905])
    assert trig.pooled.recall == recall_at_fpr(honest, cheat, 0.01) == 0.5
    assert trig.pooled.auc == pytest.approx(roc_auc_score(np.r_[np.zeros(200), np.ones(4)], np.r_[honest, cheat]))
    assert everyone.pooled == trig.pooled


def test_a_group_caught_whole_has_no_spread_and_a_noisy_one_brackets_its_reading():
    rng = np.random.default_rng(7)
    runs = [_run(t, list(rng.random(200)), {"fly/blatant": [2.0] * 20,
                                            "humanised_aimbot/subtle": list(rng.random(30) + 0.4)})
            for t in ("a", "b", "c")]
    fly, humanised, _ = pool(runs, resamples=100)
    assert (fly.pooled.auc, fly.pooled.recall) == (1.0, 1.0)
    assert fly.auc_interval == (1.0, 1.0) and fly.recall_interval == (1.0, 1.0)
    lo, hi = humanised.recall_interval
    assert lo < humanised.pooled.recall < hi and hi - lo > 0.05
    lo, hi = humanised.auc_interval
    assert lo < humanised.pooled.auc < hi


def test_resampling_is_by_match_and_repeatable():
    rng = np.random.default_rng(3)
    runs = [_run("a", list(rng.random(100)), {"speedhack/subtle": list(rng.random(20) + 0.3)})]
    first, second = pool(runs, resamples=50, seed=1), pool(runs, resamples=50, seed=1)
    assert first == second
    # Ten matches only: a resampling of whole matches moves the reading more than one of 120 players would.
    assert first[0].recall_interval[1] - first[0].recall_interval[0] > 0.1


def _write(path: Path, rows: list[PlayerRow]) -> Path:
    path.mkdir(parents=True)
    with (path / "players.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PlayerRow.CSV_FIELDS)
        writer.writerows(r.csv_row() for r in rows)
    return path


def test_players_csv_reads_back_what_evaluate_wrote(tmp_path):
    rows = _run("m", [0.125, 0.25], {"teleport/subtle": [0.75]})
    rows[0] = dataclasses.replace(rows[0], rules=("teleport", "fly"))
    rows[1] = dataclasses.replace(rows[1], best_window=float("nan"))
    back = read_players(_write(tmp_path / "run", rows))
    assert [r.csv_row() for r in back] == [r.csv_row() for r in rows]


def test_a_file_that_is_not_an_evaluation_s_players_is_refused_by_name(tmp_path):
    (tmp_path / "other.csv").write_text("match,player\nm,p\n")
    with pytest.raises(PoolRejected, match=r"no best_match, best_window, .*score"):
        read_players(tmp_path / "other.csv")
    run = _write(tmp_path / "run", _run("m", [0.1], {}))
    text = (run / "players.csv").read_text().replace(",0.1,0.1,0.1,", ",0.1,0.1,high,")
    (run / "players.csv").write_text(text)
    with pytest.raises(PoolRejected, match=r"line 2: score is not a number: 'high'"):
        read_players(run)
    with pytest.raises(PoolRejected, match="missing"):
        read_players(tmp_path / "missing")


def test_the_cli_prints_each_run_and_the_pooled_table(tmp_path, capsys):
    rng = np.random.default_rng(11)
    dirs = [str(_write(tmp_path / f"seed{s}", _run(f"s{s}-", list(rng.random(100)),
                                                    {"triggerbot/blatant": list(rng.random(10) + 0.9)})))
            for s in (79, 78)]
    assert main(["anticheat", "pool", *dirs, "--resamples", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 runs pooled: 20 matches, 200 honest players under one cut at 1% FPR")
    assert "| cheat / intensity | seed79 | seed78 |" in out
    trig = next(line for line in out.splitlines() if line.startswith("| triggerbot/blatant |"))
    assert trig.endswith(" of 20 |") and trig.count("(10)") == 2
    assert main(["anticheat", "pool", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_the_markdown_says_what_it_cannot_read():
    result = pool([_run("a", [0.1, 0.2], {"fly/subtle": [0.9]}), _run("b", [0.3], {})], resamples=5)
    text = pool_markdown(result, ["a", "b"], honest=3, matches=2, resamples=5)
    fly = next(line for line in text.splitlines() if line.startswith("| fly/subtle |"))
    # Run b had no flier: its cell says so instead of a reading of nobody.
    assert "| fly/subtle | 1.0000 / 100.0% (1) | - |" in fly
