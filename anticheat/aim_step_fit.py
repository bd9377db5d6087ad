"""Refit the aim CUSUM's per-shot model (:class:`anticheat.shot_evidence.AimModel`).

The model is a boosted classifier of "the humanised aimbot was on for this
shot" on :func:`anticheat.shot_evidence.aim_row`, fitted on simulated play
and shipped as ``anticheat/data/aim_step.npz``, like the trigger's rates
are shipped as a table. When the simulator's hands or bots change, refit
it::

    python -m anticheat.aim_step_fit --matches 400 --seed 8600000 --workers 2

(about 6 min on two cores; the simulator's own 60 s matches, as the
shipped model was fitted on). It first fits on four fifths of the matches
and prints the ROC-AUC, shot by shot, on the fifth it did not see, then
fits on all of them and writes the file, stamped with a version (a hash
of its numbers), what it was fitted on and the share of cheat-on shots,
which :class:`~anticheat.shot_evidence.AimModel` takes off as the prior.
Models trained on the aim CUSUM of one version are refused with another
(the features' recipe names it): retrain after refitting.
``docs/anticheat.md`` ("The aim CUSUM") has what the shipped model measured.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from anticheat.features import MatchFeatures
from anticheat.shot_evidence import AIM_COLUMNS, AIM_MODEL_PATH, AimModel, aim_row
from anticheat.tree_ensemble import TreeEnsemble, from_hist_gradient_boosting
from gamebus.sim.cheats import is_on
from gamebus.sim.match import simulate_match

__all__ = ["BOOSTER", "fit_model", "main", "shot_rows"]

#: The booster's settings: small leaves would learn single matches' players.
BOOSTER: dict[str, Any] = {"max_iter": 300, "learning_rate": 0.06, "max_leaf_nodes": 31,
                           "min_samples_leaf": 50, "random_state": 0}


def shot_rows(seed: int, *, players: int = 20, cheaters: float = 0.3, closet_share: float = 0.5,
              duration_s: float = 60.0) -> tuple[list[list[float]], list[bool]]:
    """One simulated match of humanised aimbots: every shot's row and whether the cheat was on."""
    played = simulate_match(seed=seed, match_id=f"fit-{seed}", players=players, cheaters=cheaters,
                            cheat_kinds=["humanised_aimbot"], closet_share=closet_share,
                            duration_s=duration_s)
    features = MatchFeatures(played.match, keep_readings=True, aim_model=AimModel.neutral())
    for event in played.events:
        features.update(event)
    features.settle()
    on_intervals = {label.player: label.on_intervals for label in played.labels}
    rows, on = [], []
    for player, ts, reading, ping, weapon in features.readings or ():
        rows.append(aim_row(reading, ping, weapon))
        on.append(player in on_intervals and is_on(on_intervals[player], ts))
    return rows, on


def fit_model(rows: Sequence[Sequence[float]], on: Sequence[bool], *,
              fitted_on: str = "", booster: dict[str, Any] | None = None) -> TreeEnsemble:
    """A boosted fit of ``on`` on ``rows`` (columns :data:`AIM_COLUMNS`), compiled and stamped."""
    x, y = np.asarray(rows, dtype=np.float64), np.asarray(on, dtype=bool)
    if x.ndim != 2 or x.shape[1] != len(AIM_COLUMNS):
        raise ValueError(f"rows: expected {len(AIM_COLUMNS)} columns ({', '.join(AIM_COLUMNS)}), "
                         f"got shape {x.shape}")
    if y.all() or not y.any():
        raise ValueError("on: the shots need both cheat-on and cheat-off ones to fit")
    model = HistGradientBoostingClassifier(**(booster or BOOSTER)).fit(x, y)
    meta: dict[str, Any] = {"columns": list(AIM_COLUMNS), "prior": float(y.mean()), "shots": len(y),
                            "fitted_on": fitted_on}
    ensemble = from_hist_gradient_boosting(model, meta)
    digest = hashlib.sha256()
    for part in (ensemble.feature, ensemble.threshold, ensemble.left, ensemble.right,
                 ensemble.missing_left, ensemble.value, np.array([ensemble.baseline, meta["prior"]])):
        digest.update(np.ascontiguousarray(part).tobytes())
    ensemble.meta["version"] = f"aim-{digest.hexdigest()[:12]}"
    return ensemble


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anticheat.aim_step_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=400, help="matches to simulate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=8_600_000, help="first match's seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="simulating processes (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=AIM_MODEL_PATH, help="model file (default: the shipped one)")
    args = parser.parse_args(argv)
    if args.matches < 5:
        parser.error("--matches: at least 5, one fifth is held out")
    seeds = range(args.seed, args.seed + args.matches)
    with Pool(max(args.workers, 1)) as pool:
        played = pool.map(shot_rows, seeds, chunksize=4)
    held = [i % 5 == 4 for i in range(len(played))]
    split = [([r for (rows, _), h in zip(played, held, strict=True) if h == side for r in rows],
              [o for (_, on), h in zip(played, held, strict=True) if h == side for o in on])
             for side in (False, True)]
    (fit_rows, fit_on), (held_rows, held_on) = split
    check = fit_model(fit_rows, fit_on)
    auc = roc_auc_score(held_on, check.raw(np.asarray(held_rows, dtype=np.float64)))
    rows, on = fit_rows + held_rows, fit_on + held_on
    fitted_on = f"{args.matches} simulated 60 s matches of humanised aimbots from seed {args.seed}"
    ensemble = fit_model(rows, on, fitted_on=fitted_on)
    ensemble.save(args.out)
    print(f"# {len(on):,} shots of {args.matches} matches from seed {args.seed}, {sum(on):,} with the cheat on")
    print(f"# ROC-AUC shot by shot on the fifth of the matches held out: {auc:.4f}")
    print(f"# {ensemble.meta['version']}: {len(ensemble.roots)} trees, {len(ensemble.feature):,} nodes, "
          f"prior {ensemble.meta['prior']:.4f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
