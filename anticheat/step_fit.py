"""Refit a CUSUM's per-shot model (:class:`anticheat.shot_evidence.StepModel`).

Each model is a boosted classifier of "the cheat was on for this shot" on
:func:`anticheat.shot_evidence.shot_row`, fitted on simulated play and
shipped as ``anticheat/data/<kind>_step.npz``: the aim model on matches of
humanised aimbots, the trigger model on matches of triggerbots (both
intensities). When the simulator's hands or bots change, refit them::

    python -m anticheat.step_fit aim --matches 400 --seed 8600000 --workers 2
    python -m anticheat.step_fit trigger --matches 400 --seed 8800000 --workers 2

(about 6 min each on two cores; the simulator's own 60 s matches, as the
shipped models were fitted on). It first fits on four fifths of the
matches and prints the ROC-AUC, shot by shot, on the fifth it did not
see, then fits on all of them and writes the file, stamped with a version
(the kind and a hash of its numbers), what it was fitted on and the share
of cheat-on shots, which :class:`~anticheat.shot_evidence.StepModel`
takes off as the prior. Match models trained on the CUSUMs of one version
are refused with another (the features' recipe names both): retrain after
refitting. ``docs/anticheat.md`` ("The aim CUSUM", "The trigger CUSUM")
has what the shipped models measured.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
from collections.abc import Sequence
from multiprocessing import Pool
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from anticheat.features import MatchFeatures
from anticheat.shot_evidence import SHOT_COLUMNS, STEP_KINDS, STEP_MODEL_PATHS, StepModel, shot_row
from anticheat.tree_ensemble import TreeEnsemble, from_hist_gradient_boosting
from gamebus.sim.cheats import is_on
from gamebus.sim.match import simulate_match

__all__ = ["BOOSTER", "FIT_SEEDS", "fit_model", "main", "shot_rows"]

#: The booster's settings: small leaves would learn single matches' players.
BOOSTER: dict[str, Any] = {"max_iter": 300, "learning_rate": 0.06, "max_leaf_nodes": 31,
                           "min_samples_leaf": 50, "random_state": 0}

#: The first match seed each shipped model was fitted from.
FIT_SEEDS: dict[str, int] = {"aim": 8_600_000, "trigger": 8_800_000}


def shot_rows(seed: int, *, kind: str = "aim", players: int = 20, cheaters: float = 0.3,
              closet_share: float = 0.5, duration_s: float = 60.0) -> tuple[list[list[float]], list[bool]]:
    """One simulated match of ``kind``'s cheat: every shot's row and whether the cheat was on."""
    played = simulate_match(seed=seed, match_id=f"fit-{seed}", players=players, cheaters=cheaters,
                            cheat_kinds=[STEP_KINDS[kind]], closet_share=closet_share,
                            duration_s=duration_s)
    neutral = {k: StepModel.neutral(k) for k in STEP_KINDS}
    features = MatchFeatures(played.match, keep_readings=True, step_models=neutral)
    for event in played.events:
        features.update(event)
    features.settle()
    on_intervals = {label.player: label.on_intervals for label in played.labels}
    rows, on = [], []
    for player, ts, reading, ping, weapon in features.readings or ():
        rows.append(shot_row(reading, ping, weapon))
        on.append(player in on_intervals and is_on(on_intervals[player], ts))
    return rows, on


def fit_model(rows: Sequence[Sequence[float]], on: Sequence[bool], *, kind: str = "aim",
              fitted_on: str = "", booster: dict[str, Any] | None = None) -> TreeEnsemble:
    """A boosted fit of ``on`` on ``rows`` (columns :data:`SHOT_COLUMNS`), compiled and stamped."""
    if kind not in STEP_KINDS:
        raise ValueError(f"kind: expected one of {sorted(STEP_KINDS)}, got {kind!r}")
    x, y = np.asarray(rows, dtype=np.float64), np.asarray(on, dtype=bool)
    if x.ndim != 2 or x.shape[1] != len(SHOT_COLUMNS):
        raise ValueError(f"rows: expected {len(SHOT_COLUMNS)} columns ({', '.join(SHOT_COLUMNS)}), "
                         f"got shape {x.shape}")
    if y.all() or not y.any():
        raise ValueError("on: the shots need both cheat-on and cheat-off ones to fit")
    model = HistGradientBoostingClassifier(**(booster or BOOSTER)).fit(x, y)
    meta: dict[str, Any] = {"columns": list(SHOT_COLUMNS), "kind": kind, "prior": float(y.mean()),
                            "shots": len(y), "fitted_on": fitted_on}
    ensemble = from_hist_gradient_boosting(model, meta)
    digest = hashlib.sha256()
    for part in (ensemble.feature, ensemble.threshold, ensemble.left, ensemble.right,
                 ensemble.missing_left, ensemble.value, np.array([ensemble.baseline, meta["prior"]])):
        digest.update(np.ascontiguousarray(part).tobytes())
    ensemble.meta["version"] = f"{kind}-{digest.hexdigest()[:12]}"
    return ensemble


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anticheat.step_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(STEP_KINDS), help="which CUSUM's model to refit")
    parser.add_argument("--matches", type=int, default=400, help="matches to simulate (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="first match's seed (default: the shipped model's, FIT_SEEDS)")
    parser.add_argument("--workers", type=int, default=2, help="simulating processes (default: %(default)s)")
    parser.add_argument("--out", help="model file (default: the shipped one)")
    args = parser.parse_args(argv)
    if args.matches < 5:
        parser.error("--matches: at least 5, one fifth is held out")
    kind = args.kind
    first = FIT_SEEDS[kind] if args.seed is None else args.seed
    out = args.out or STEP_MODEL_PATHS[kind]
    seeds = range(first, first + args.matches)
    with Pool(max(args.workers, 1)) as pool:
        played = pool.map(functools.partial(shot_rows, kind=kind), seeds, chunksize=4)
    held = [i % 5 == 4 for i in range(len(played))]
    split = [([r for (rows, _), h in zip(played, held, strict=True) if h == side for r in rows],
              [o for (_, on), h in zip(played, held, strict=True) if h == side for o in on])
             for side in (False, True)]
    (fit_rows, fit_on), (held_rows, held_on) = split
    check = fit_model(fit_rows, fit_on, kind=kind)
    auc = roc_auc_score(held_on, check.raw(np.asarray(held_rows, dtype=np.float64)))
    rows, on = fit_rows + held_rows, fit_on + held_on
    fitted_on = f"{args.matches} simulated 60 s matches of {STEP_KINDS[kind]}s from seed {first}"
    ensemble = fit_model(rows, on, kind=kind, fitted_on=fitted_on)
    ensemble.save(out)
    print(f"# {len(on):,} shots of {args.matches} matches from seed {first}, {sum(on):,} with the cheat on")
    print(f"# ROC-AUC shot by shot on the fifth of the matches held out: {auc:.4f}")
    print(f"# {ensemble.meta['version']}: {len(ensemble.roots)} trees, {len(ensemble.feature):,} nodes, "
          f"prior {ensemble.meta['prior']:.4f} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
