"""Fit a :class:`~anticheat.model.ModelBundle` from simulated matches.

Splits are by match, never by player or snapshot: snapshots of one player
are strongly correlated, and a model that saw a player's first minute in
training would look far better on that player's second minute than it will
on a stranger. Training seeds give the fitting and calibration matches; a
held-out slice of them (``calib_share``) sets the threshold and the
isolation-forest cut-off on clean players only. Evaluation uses other seeds
altogether (:mod:`anticheat.evaluate`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from anticheat.baseline import BaselineModel, Vector, fit_baseline, season_rows
from anticheat.dataset import PlayerRecord, build_records, reshrink, snapshot_label
from anticheat.features import FEATURE_NAMES
from anticheat.model import (
    MIN_ALIVE_S,
    Combiner,
    ModelBundle,
    Scorer,
    combine_scores,
    threshold_for_fpr,
    to_matrix,
)
from anticheat.stats import beta_prior

__all__ = ["combine_best", "fit", "fit_baseline_season", "fit_bundle", "model_version", "priors_from", "season_matches"]

#: Rounds of the baseline's training season: up to 4 clean matches, then the cheat.
SEASON_ROUNDS = 5


def model_version(seed: int, matches: int) -> str:
    """A readable, sortable version stamp: schema size, data size, seed, time."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"hgb-f{len(FEATURE_NAMES)}-m{matches}-s{seed}-{stamp}"


def priors_from(records: Sequence[PlayerRecord]) -> dict[str, tuple[float, float]]:
    """Empirical-Bayes priors for accuracy and headshot ratio from clean players."""
    clean = [r for r in records if not r.label]
    return {
        "accuracy": beta_prior([r.hits for r in clean], [r.shots for r in clean]),
        "headshot": beta_prior([r.headshots for r in clean], [r.hits for r in clean]),
    }


def _training_rows(records: Sequence[PlayerRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, labels, groups = [], [], []
    for r in records:
        for snap in r.snapshots:
            # Labelled by what the snapshot covers: a closet cheater's window
            # with the cheat off is honest play, one with it on is cheating.
            label = snapshot_label(bool(r.label), snap)
            if label is None:
                continue
            rows.append(snap.features)
            labels.append(label)
            groups.append(r.match_index)
    return to_matrix(rows), np.array(labels, dtype=np.int64), np.array(groups, dtype=np.int64)


def best_by_kind(records: Sequence[PlayerRecord], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per player per match: the best match-long and the best window score (NaN where none)."""
    best_match = np.full(len(records), np.nan)
    best_window = np.full(len(records), np.nan)
    i = 0
    for k, r in enumerate(records):
        for snap in r.snapshots:
            best = best_window if snap.window else best_match
            best[k] = np.fmax(best[k], scores[i])
            i += 1
    return best_match, best_window


def aggregate(records: Sequence[PlayerRecord], scores: np.ndarray,
              combiner: Combiner | None = None) -> np.ndarray:
    """Per player per match score, as the service aggregates it (NaN for a player never scored).

    With a :class:`~anticheat.model.Combiner`, the rarer of the best
    match-long and best window score; without one, the plain maximum.
    """
    return combine_best(*best_by_kind(records, scores), combiner)


def combine_best(best_match: np.ndarray, best_window: np.ndarray, combiner: Combiner | None) -> np.ndarray:
    """One score per player from its best match-long and best window scores (NaN where neither).

    With a :class:`~anticheat.model.Combiner`, the rarer of the two; without one, the plain maximum.
    """
    combined = [combine_scores(combiner, m, w)
                for m, w in zip(best_match.tolist(), best_window.tolist(), strict=True)]
    out = np.array(combined, dtype=np.float64)
    out[np.isnan(best_match) & np.isnan(best_window)] = np.nan
    return out


def snapshot_matrix(records: Sequence[PlayerRecord]) -> np.ndarray:
    return to_matrix([s.features for r in records for s in r.snapshots])


def _match_long(records: Sequence[PlayerRecord]) -> list[PlayerRecord]:
    """The records with their match-long snapshots only (the anomaly score reads those)."""
    out = []
    for r in records:
        snaps = [s for s in r.snapshots if not s.window]
        if snaps:
            out.append(PlayerRecord(match=r.match, match_index=r.match_index, seed=r.seed,
                                    player=r.player, label=r.label, snapshots=snaps))
    return out


def fit(
    train: Sequence[PlayerRecord],
    calib: Sequence[PlayerRecord],
    *,
    seed: int,
    target_fpr: float = 0.01,
    version: str = "dev",
    priors: dict[str, tuple[float, float]] | None = None,
    boosting_rounds: int = 300,
    forest_trees: int = 200,
) -> ModelBundle:
    """Fit the supervised and unsupervised models and choose their cut-offs.

    ``boosting_rounds`` and ``forest_trees`` exist so tests can fit in a second.
    Fitting runs on one OpenMP thread: on a machine shared with other work,
    scikit-learn's threads wait on each other and a small fit was measured
    8x slower with two threads than with one.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit(train, calib, seed=seed, target_fpr=target_fpr, version=version, priors=priors,
                    boosting_rounds=boosting_rounds, forest_trees=forest_trees)


def _fit(
    train: Sequence[PlayerRecord],
    calib: Sequence[PlayerRecord],
    *,
    seed: int,
    target_fpr: float,
    version: str,
    priors: dict[str, tuple[float, float]] | None,
    boosting_rounds: int,
    forest_trees: int,
) -> ModelBundle:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import Pipeline

    x, y, groups = _training_rows(train)
    # A feature the game never reports (no ping, say) is all NaN; the binner
    # of HistGradientBoosting cannot bin an empty column, so make it constant.
    x[:, np.all(np.isnan(x), axis=0)] = 0.0
    if len(set(y.tolist())) < 2:
        raise ValueError("training data needs both clean players and cheaters")
    hgb = HistGradientBoostingClassifier(
        max_iter=boosting_rounds, learning_rate=0.06, max_leaf_nodes=31,
        min_samples_leaf=min(20, max(3, len(y) // 40)),  # small data (tests) still splits
        l2_regularization=1.0, random_state=seed,
    )
    folds = min(3, len(set(groups.tolist())))
    splits = list(GroupKFold(n_splits=folds).split(x, y, groups))
    # ensemble=False: one booster (fitted on everything) calibrated on the
    # out-of-fold predictions, so scoring walks one set of trees, not three.
    supervised = CalibratedClassifierCV(hgb, method="sigmoid", cv=splits, ensemble=False)
    supervised.fit(x, y)
    isolation = Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("forest", IsolationForest(n_estimators=forest_trees, random_state=seed)),
    ])
    isolation.fit(x[y == 0])
    scorer = Scorer(supervised, isolation, math.inf)
    # Cut-offs on clean held-out players, per player per match (the best
    # match-long and window scores combined, as the service aggregates; the
    # anomaly score over match-long snapshots only, the ones the service
    # reads it on).
    clean = [r for r in calib if not r.label and r.snapshots]
    clean_scores = scorer.score_many(snapshot_matrix(clean))
    combiner = Combiner.fit(*best_by_kind(clean, clean_scores))
    policy = threshold_for_fpr(aggregate(clean, clean_scores, combiner), target_fpr)
    long = _match_long(clean)
    iso = threshold_for_fpr(aggregate(long, scorer.anomaly_many(snapshot_matrix(long))), target_fpr / 2)
    scorer.iso_cutoff = iso.threshold
    population = _population(long)
    # The rules' own false-positive rate, on every clean calibration player
    # (a rule alert quotes it, as a model alert quotes the policy's).
    calib_clean = [r for r in calib if not r.label]
    rule_fpr = float(np.mean([bool(r.rules) for r in calib_clean])) if calib_clean else math.nan
    return ModelBundle(
        scorer=scorer, policy=policy, version=version, seed=seed, combiner=combiner,
        priors=priors or priors_from(train), population=population,
        metrics={"train_rows": len(y), "train_cheat_rows": int(y.sum()),
                 "calib_clean_players": len(clean), "iso_fpr": iso.fpr,
                 "rule_fpr": rule_fpr, "rule_clean_players": len(calib_clean),
                 "min_alive_s": MIN_ALIVE_S},
    )


def _population(match_long: Sequence[PlayerRecord]) -> dict[str, list[float]]:
    """101 percentiles of each feature over clean players' last match-long snapshots."""
    x = to_matrix([r.snapshots[-1].features for r in match_long])
    out: dict[str, list[float]] = {}
    for j, name in enumerate(FEATURE_NAMES):
        col = x[:, j]
        col = col[~np.isnan(col)]
        out[name] = [float(v) for v in np.percentile(col, np.arange(101))] if len(col) else []
    return out


def fit_bundle(
    *, matches: int, seed: int, players: int = 20, cheaters: float = 0.15, calib_share: float = 0.25,
    target_fpr: float = 0.01, workers: int = 1, progress: Any = None, season_accounts: int = 0,
    **sim: Any,
) -> tuple[ModelBundle, list[PlayerRecord]]:
    """Simulate ``matches`` from ``seed``, split by match, fit, return the bundle and the records.

    ``season_accounts`` > 0 also fits the per-account baseline on a season
    of that many accounts (:func:`fit_baseline_season`).
    """
    records = build_records(range(seed * 100_000, seed * 100_000 + matches), players=players,
                            cheaters=cheaters, workers=workers, progress=progress, **sim)
    n_calib = max(1, round(matches * calib_share))
    calib_ids = set(range(matches - n_calib, matches))
    train = [r for r in records if r.match_index not in calib_ids]
    calib = [r for r in records if r.match_index in calib_ids]
    priors = priors_from(train)
    reshrink(records, priors)
    bundle = fit(train, calib, seed=seed, target_fpr=target_fpr,
                 version=model_version(seed, matches), priors=priors)
    if season_accounts:
        bundle.baseline = fit_baseline_season(
            accounts=season_accounts, seed=seed, priors=priors, players=players,
            target_fpr=target_fpr, workers=workers, progress=progress, **sim)
    return bundle, records


def season_matches(records: Sequence[PlayerRecord], lobbies: int) -> list[tuple[str, int, Vector, int, str]]:
    """``(account, round, final match-long vector, label, group)`` of a season's records."""
    out: list[tuple[str, int, Vector, int, str]] = []
    for r in records:
        vector = r.final_vector
        if vector is not None:
            out.append((r.player, r.match_index // lobbies, vector, r.label, r.group))
    return out


def fit_baseline_season(
    *, accounts: int, seed: int, priors: dict[str, tuple[float, float]], players: int = 20,
    cheaters: float = 0.2, cheat_kinds: Sequence[str] | None = None, intensity: Any = None,
    closet_share: float | None = None, target_fpr: float = 0.01, workers: int = 1,
    progress: Any = None, **sim: Any,
) -> BaselineModel:
    """Play a season of ``accounts`` whose cheaters all start clean, and fit the baseline on it.

    Every cheating account plays 2-4 clean matches before its cheat goes on
    (:func:`gamebus.sim.accounts.sample_accounts` with ``turn_share=1``), so
    the regression sees honest accounts' match-to-match form next to
    accounts that changed. Its seeds are apart from the per-match training
    matches (``seed * 100_000 + 50_000 + k``).
    """
    from gamebus.sim.accounts import sample_accounts, season_rosters

    closet: dict[str, Any] = {} if closet_share is None else {"closet_share": closet_share}
    pool = sample_accounts(seed=seed * 7 + 3, n=accounts, cheaters=cheaters, turn_share=1.0,
                           cheat_kinds=cheat_kinds, intensity=intensity, **closet)
    rosters = season_rosters(seed=seed * 7 + 4, accounts=pool, players=players, rounds=SEASON_ROUNDS)
    base = seed * 100_000 + 50_000
    records = build_records(range(base, base + len(rosters)), players=players, workers=workers,
                            progress=progress, rosters=rosters, **sim)
    reshrink(records, priors)
    rows = season_rows(season_matches(records, accounts // players))
    return fit_baseline(rows, target_fpr=target_fpr, seed=seed)
