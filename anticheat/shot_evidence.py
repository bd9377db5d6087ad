"""How much one shot says about a bot: per-shot log-likelihood ratios for the CUSUMs.

:class:`anticheat.player_state.PlayerState` sums these steps shot after
shot in a CUSUM (floored at zero) and keeps its maximum: the sum climbs
through a stretch of bot-like shots and sinks back after, so a closet
cheater's toggled-on stretch shows wherever it falls in the match. Each
step is ``ln(P(shot | bot) / P(shot | human))`` from rates measured on
simulated play, kept here apart from the state that sums them. The
outcome CUSUMs' steps are plain tables with where their numbers come
from; the aim and trigger CUSUMs', which weigh seventeen readings of a
shot against each other, come from small boosted models shipped beside
this module (:class:`StepModel`), one fitted on humanised aimbots and one
on triggerbots, both on the same row of a shot (:func:`shot_row`).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from anticheat.stats import NAN
from anticheat.tracking_lag import GAIN_AT_MS, LAG_GRID_MS, LagTerms
from anticheat.tree_ensemble import TreeEnsemble

__all__ = [
    "CUSUM_STEPS",
    "SHOT_COLUMNS",
    "STEP_KINDS",
    "STEP_MODEL_PATHS",
    "WEAPON_CODES",
    "ShotFacts",
    "StepModel",
    "outcome_step",
    "packaged_step_model",
    "shot_row",
    "shot_step",
]

#: ln(P(bot-like shot | cheat) / P(... | human)) and the same for the opposite
#: outcome, from rates seen in simulated play: bots ~97% on the hitbox (humans
#: ~50%), aimbots ~90% within 0.5 degrees (humans ~25%).
CUSUM_STEPS: Final[dict[str, tuple[float, float]]] = {
    "cusum_hitbox_max": (math.log(0.97 / 0.50), math.log(0.03 / 0.50)),
    "cusum_lock_max": (math.log(0.90 / 0.25), math.log(0.10 / 0.75)),
    "cusum_turn_max": (math.log(0.60 / 0.15), math.log(0.40 / 0.85)),
}


def outcome_step(name: str, hit: bool) -> float:
    """The step of one of :data:`CUSUM_STEPS`' CUSUMs for a shot that shows (``hit``) or not its tell."""
    up, down = CUSUM_STEPS[name]
    return up if hit else down


class ShotFacts(Protocol):
    """The parts of a shot's reading (:class:`anticheat.player_state.ShotReading`) :func:`shot_row` reads."""

    @property
    def error_deg(self) -> float: ...
    @property
    def on_box(self) -> bool: ...
    @property
    def turn_deg_s(self) -> float: ...
    @property
    def engage_ms(self) -> float: ...
    @property
    def reaction_ms(self) -> float: ...
    @property
    def delay_ms(self) -> float: ...
    @property
    def flick_ms_per_bit(self) -> float: ...
    @property
    def track_errors(self) -> tuple[float, ...]: ...
    @property
    def track_jitter(self) -> tuple[float, ...]: ...
    @property
    def track_lag(self) -> LagTerms: ...
    @property
    def opens_burst(self) -> bool: ...


#: What the step models read of a shot, in this order (NaN where the
#: shot did not measure it: an opening shot has a reaction, a shot inside a
#: burst has tracking). Times are net of the player's ping.
SHOT_COLUMNS: Final[tuple[str, ...]] = (
    "error_deg",          # crosshair's angle off the target at the shot
    "on_box",             # the shot's ray met the hitbox
    "turn_deg_s",         # the view's turn at the shot
    "engage_net_ms",      # target visible -> shot
    "reaction_net_ms",    # target visible -> first aim movement toward it
    "delay_ms",           # crosshair on target -> shot
    "flick_ms_per_bit",   # flick time per Fitts bit
    "track_error_deg",    # median tracking error over the burst
    "track_samples",      # how many ticks of tracking that median read
    "jitter",             # median tick-to-tick jitter over the burst
    "lag_ticks",          # ticks the tracking lag read
    "lag_error",          # their summed squared error
    "lag_gain",           # how much of the error a 150 ms tracker explains
    "lag_motion",         # the 150 ms tracker's summed squared motion
    "opens",              # the shot opens a burst at its target
    "ping_ms",
    "weapon",             # WEAPON_CODES, NaN for another weapon
)

#: Weapons by code for the model's ``weapon`` column: their spread and
#: fire rate shape every error the shot shows.
WEAPON_CODES: Final[dict[str, float]] = {"rifle": 0.0, "smg": 1.0, "pistol": 2.0, "sniper": 3.0}

#: The CUSUMs whose steps come from a :class:`StepModel`, and the cheat each
#: model is fitted on (:mod:`anticheat.step_fit`).
STEP_KINDS: Final[dict[str, str]] = {"aim": "humanised_aimbot", "trigger": "triggerbot"}

#: The models shipped with gamebus (see :class:`StepModel`).
STEP_MODEL_PATHS: Final[dict[str, Path]] = {
    kind: Path(__file__).with_name("data") / f"{kind}_step.npz" for kind in STEP_KINDS}

_GAIN_INDEX: Final = LAG_GRID_MS.index(GAIN_AT_MS)


def shot_row(r: ShotFacts, ping_ms: float, weapon: str | None) -> list[float]:
    """The :data:`SHOT_COLUMNS` of one shot.

    One function for the service's steps and for :mod:`anticheat.step_fit`,
    which fits the models on these same rows.
    """
    lag = r.track_lag
    motion = lag.ll[_GAIN_INDEX] if lag.ticks else 0.0
    return [
        r.error_deg, float(r.on_box), r.turn_deg_s,
        r.engage_ms - ping_ms, r.reaction_ms - ping_ms,  # NaN stays NaN
        r.delay_ms, r.flick_ms_per_bit,
        statistics.median(r.track_errors) if r.track_errors else NAN, float(len(r.track_errors)),
        statistics.median(r.track_jitter) if r.track_jitter else NAN,
        float(lag.ticks), lag.ee,
        lag.el[_GAIN_INDEX] / motion if motion > 0.0 else NAN, motion,
        float(r.opens_burst), ping_ms,
        WEAPON_CODES.get(weapon, NAN) if weapon is not None else NAN,
    ]


class StepModel:
    """A CUSUM's per-shot model: a step is ``ln(P(shot | cheat on) / P(shot | not))``.

    A boosted classifier of "the cheat was on for this shot" on
    :func:`shot_row`, fitted on simulated play by :mod:`anticheat.step_fit`
    and shipped as a :class:`~anticheat.tree_ensemble.TreeEnsemble` file
    (``anticheat/data/<kind>_step.npz``): too many numbers for a table. Its
    log-odds less the fit's prior log-odds are the step, so an honest
    shot's step is negative on average. No single reading of a shot says
    much and each is within what some honest tier shows; read together,
    and against each other (an error that is small *for a rifle*, a fast
    engage *at this ping*, first contact *while opening fire*), over a
    toggled-on stretch they climb where match-long medians are diluted
    (docs/anticheat.md, "The aim CUSUM" and "The trigger CUSUM").

    ``kind`` is one of :data:`STEP_KINDS`: the aim model is fitted on
    humanised aimbots, the trigger model on triggerbots.
    """

    def __init__(self, ensemble: TreeEnsemble) -> None:
        meta = ensemble.meta
        if tuple(meta.get("columns", ())) != SHOT_COLUMNS:
            raise ValueError(f"ensemble: reads columns {meta.get('columns')}, expected {list(SHOT_COLUMNS)}")
        kind = meta.get("kind")
        if kind not in STEP_KINDS:
            raise ValueError(f"ensemble: meta.kind must be one of {sorted(STEP_KINDS)}, got {kind!r}")
        prior = float(meta.get("prior", NAN))
        if not 0.0 < prior < 1.0:
            raise ValueError(f"ensemble: meta.prior must be a share in (0, 1), got {meta.get('prior')!r}")
        self.ensemble = ensemble
        self.kind: str = kind
        self.prior = prior
        #: Names the model in the features' recipe: a match model trained on
        #: one step model's CUSUM is refused with another's.
        self.version = str(meta.get("version", "unversioned"))
        self._prior_logit = math.log(prior / (1.0 - prior))

    @classmethod
    def load(cls, path: str | Path) -> StepModel:
        return cls(TreeEnsemble.load(path))

    @classmethod
    def neutral(cls, kind: str) -> StepModel:
        """A model that weighs every shot 0: for reading shots before any model exists (the fit)."""
        leaf = np.zeros(1, dtype=np.int64)
        return cls(TreeEnsemble(
            feature=leaf, threshold=np.zeros(1), left=leaf, right=leaf,
            missing_left=np.zeros(1, dtype=bool), is_leaf=np.ones(1, dtype=bool), value=np.zeros(1),
            roots=leaf, baseline=0.0,
            meta={"columns": list(SHOT_COLUMNS), "kind": kind, "prior": 0.5, "version": "neutral"}))

    def steps(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """The step of each row of :data:`SHOT_COLUMNS`, in one pass over the trees."""
        if not rows:
            return []
        return (self.ensemble.raw(rows) - self._prior_logit).tolist()


@functools.cache
def packaged_step_model(kind: str) -> StepModel:
    """The ``kind`` model shipped with gamebus, loaded once a process."""
    model = StepModel.load(STEP_MODEL_PATHS[kind])
    if model.kind != kind:
        raise ValueError(f"{STEP_MODEL_PATHS[kind]}: holds a {model.kind} model, not a {kind} one")
    return model


def shot_step(kind: str, r: ShotFacts, ping_ms: float, weapon: str | None = None, *,
              model: StepModel | None = None) -> float:
    """The ``kind`` CUSUM's step for one shot: its log-likelihood ratio, cheat on against not.

    :class:`anticheat.features.MatchFeatures` weighs the shots a tick
    settles in one :meth:`StepModel.steps` call instead.

    >>> from anticheat.player_state import ShotReading
    >>> steady = ShotReading(0.1, True, 2.0, 420.0, 170.0, 30.0, 60.0, (0.1, 0.12), (3.0,))
    >>> loose = ShotReading(2.5, False, 40.0, 900.0, 420.0, 200.0, 140.0, (1.5, 1.8), (30.0,))
    >>> shot_step("aim", steady, 40.0, "rifle") > 0 > shot_step("aim", loose, 40.0, "rifle")
    True
    """
    return (model or packaged_step_model(kind)).steps([shot_row(r, ping_ms, weapon)])[0]
