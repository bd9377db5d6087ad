"""Refit the aim CUSUM's per-shot weights (:data:`anticheat.shot_evidence.AIM_STEP_WEIGHTS`).

The weights are a logistic regression of "the humanised aimbot was on for
this shot" on :func:`anticheat.shot_evidence.aim_terms`, fitted on
simulated play and kept in the code as a table, like the trigger's rates.
When the simulator's hands or bots change, refit them and paste the
printed table over the old one::

    python -m anticheat.aim_step_fit --matches 400 --seed 8600000 --workers 2

(about 5 min on two cores; the simulator's own 60 s matches, as the
published weights were fitted on). The fit standardises the terms, as a
regularised fit must, and prints the weights back in the terms' own units
with the share of cheat-on shots, which :func:`~anticheat.shot_evidence.aim_step`
takes off as the prior. ``docs/anticheat.md`` ("The aim CUSUM") has what
the published weights measured.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from multiprocessing import Pool

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from anticheat.features import MatchFeatures
from anticheat.shot_evidence import AIM_STEP_WEIGHTS, aim_terms
from gamebus.sim.cheats import is_on
from gamebus.sim.match import simulate_match

__all__ = ["AimStepFit", "fit_weights", "main", "shot_terms"]

#: The term names in the fit's column order (every weight but the intercept).
TERMS: tuple[str, ...] = tuple(k for k in AIM_STEP_WEIGHTS if k != "intercept")


def shot_terms(seed: int, *, players: int = 20, cheaters: float = 0.3, closet_share: float = 0.5,
               duration_s: float = 60.0) -> tuple[list[list[float]], list[bool]]:
    """One simulated match of humanised aimbots: every shot's terms and whether the cheat was on."""
    played = simulate_match(seed=seed, match_id=f"fit-{seed}", players=players, cheaters=cheaters,
                            cheat_kinds=["humanised_aimbot"], closet_share=closet_share,
                            duration_s=duration_s)
    features = MatchFeatures(played.match, keep_readings=True)
    for event in played.events:
        features.update(event)
    features.settle()
    on_intervals = {label.player: label.on_intervals for label in played.labels}
    rows, on = [], []
    for player, ts, reading, ping in features.readings or ():
        terms = aim_terms(reading, ping)
        rows.append([terms[k] for k in TERMS])
        on.append(player in on_intervals and is_on(on_intervals[player], ts))
    return rows, on


class AimStepFit(dict[str, float]):
    """Fitted weights by term name (``intercept`` included), with the fit's ``prior`` and ``shots``."""

    prior: float
    shots: int


def fit_weights(rows: Sequence[Sequence[float]], on: Sequence[bool]) -> AimStepFit:
    """A logistic fit of ``on`` on ``rows`` (columns :data:`TERMS`), weights in the terms' own units."""
    x, y = np.asarray(rows, dtype=np.float64), np.asarray(on, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("on: the shots need both cheat-on and cheat-off ones to fit")
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - scaler.mean_) / scale, y)
    coef = model.coef_[0] / scale
    out = AimStepFit(intercept=float(model.intercept_[0] - (coef * scaler.mean_).sum()))
    out.update({k: float(c) for k, c in zip(TERMS, coef, strict=True)})
    out.prior, out.shots = float(y.mean()), len(y)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anticheat.aim_step_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=400, help="matches to simulate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=8_600_000, help="first match's seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="simulating processes (default: %(default)s)")
    args = parser.parse_args(argv)
    seeds = range(args.seed, args.seed + args.matches)
    with Pool(max(args.workers, 1)) as pool:
        played = pool.map(shot_terms, seeds, chunksize=4)
    rows = [r for match_rows, _ in played for r in match_rows]
    on = [o for _, match_on in played for o in match_on]
    fit = fit_weights(rows, on)
    print(f"# {fit.shots:,} shots of {args.matches} matches from seed {args.seed}, "
          f"{sum(on):,} with the cheat on")
    print("AIM_STEP_WEIGHTS: Final[dict[str, float]] = {")
    for name, weight in fit.items():
        print(f'    "{name}": {weight:.4f},')
    print("}")
    print(f"AIM_STEP_PRIOR: Final = {fit.prior:.4f}")
    if not all(math.isfinite(w) for w in fit.values()):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
