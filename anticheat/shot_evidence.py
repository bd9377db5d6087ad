"""How much one shot says about a bot: per-shot log-likelihood ratios for the CUSUMs.

:class:`anticheat.player_state.PlayerState` sums these steps shot after
shot in a CUSUM (floored at zero) and keeps its maximum: the sum climbs
through a stretch of bot-like shots and sinks back after, so a closet
cheater's toggled-on stretch shows wherever it falls in the match. Each
step is ``ln(P(shot | bot) / P(shot | human))`` from rates measured on
simulated play, kept here as plain tables with where their numbers come
from, apart from the state that sums them; the aim CUSUM's, which weighs
seventeen readings of a shot against each other, comes from a small
boosted model shipped beside this module (:class:`AimModel`).
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
    "AIM_COLUMNS",
    "AIM_MODEL_PATH",
    "AIM_WEAPON_CODES",
    "CONTACT_FIRST",
    "CONTACT_OFF",
    "CONTACT_ON",
    "CUSUM_STEPS",
    "FAST_OPENING_STEP",
    "TRIGGER_STEPS",
    "AimModel",
    "AimReading",
    "aim_row",
    "aim_step",
    "outcome_step",
    "packaged_aim_model",
    "trigger_step",
]

#: ln(P(bot-like shot | cheat) / P(... | human)) and the same for the opposite
#: outcome, from rates seen in simulated play: bots ~97% on the hitbox (humans
#: ~50%), aimbots ~90% within 0.5 degrees (humans ~25%).
CUSUM_STEPS: Final[dict[str, tuple[float, float]]] = {
    "cusum_hitbox_max": (math.log(0.97 / 0.50), math.log(0.03 / 0.50)),
    "cusum_lock_max": (math.log(0.90 / 0.25), math.log(0.10 / 0.75)),
    "cusum_turn_max": (math.log(0.60 / 0.15), math.log(0.40 / 0.85)),
}

#: Where the crosshair was when a shot was fired: off the hitbox, on it
#: since an earlier tick, or on it since this very tick (first contact).
CONTACT_OFF: Final = 0
CONTACT_ON: Final = 1
CONTACT_FIRST: Final = 2

#: The trigger's CUSUM steps, ln(P(shot | blatant triggerbot on) / P(shot |
#: honest)), for each contact, whether the view was turning fast at the shot
#: and whether the shot opens a burst (no shot at this target in the last
#: ``track_gap_ms``). Rates from 40 simulated matches of closet blatant
#: triggerbots (2,010 shots while on, 23,362 honest; docs/anticheat.md,
#: "Opening shots"), a cell never seen counted as half a shot. A bot fires as
#: the crosshair crosses a target: first contact is two thirds of its shots
#: and a fifth of a human's, and a bot's first contact mostly *opens* fire
#: (33% of its shots against 6% of a human's, still view), where a human's
#: comes inside a burst, the crosshair dragged back over a target it is
#: already shooting. A shot off the hitbox inside a burst (spray) is 38% of
#: a human's shots and 2% of a bot's.
TRIGGER_STEPS: Final[dict[tuple[int, bool, bool], float]] = {
    # (contact, turning, opens): ln(bot rate / human rate)
    (CONTACT_OFF, False, False): math.log(0.020 / 0.38),
    (CONTACT_OFF, False, True): math.log(0.017 / 0.146),
    (CONTACT_OFF, True, False): math.log(0.00025 / 0.0045),
    (CONTACT_OFF, True, True): math.log(0.005 / 0.0045),
    (CONTACT_ON, False, False): math.log(0.24 / 0.176),
    (CONTACT_ON, False, True): math.log(0.035 / 0.081),
    (CONTACT_ON, True, False): math.log(0.0045 / 0.0069),
    (CONTACT_ON, True, True): math.log(0.0005 / 0.0037),
    (CONTACT_FIRST, False, False): math.log(0.205 / 0.135),
    (CONTACT_FIRST, False, True): math.log(0.33 / 0.060),
    (CONTACT_FIRST, True, False): math.log(0.008 / 0.0017),
    (CONTACT_FIRST, True, True): math.log(0.078 / 0.0022),
}

#: A shot on the hitbox fired under ``fast_engage_ms`` after its target came
#: into view, whatever the contact: 5.4% of the bot's shots, 0.03% of a
#: human's (7 of 23,362), whose reaction, flick and settling take longer.
FAST_OPENING_STEP: Final = math.log(0.054 / 0.0003)


def trigger_step(*, on_box: bool, first_contact: bool, turning: bool, opens: bool,
                 fast_opening: bool) -> float:
    """The trigger CUSUM's step for one shot.

    ``first_contact``: fired the tick the crosshair met the hitbox;
    ``fast_opening`` (see :data:`FAST_OPENING_STEP`) overrides the rest.

    >>> trigger_step(on_box=True, first_contact=True, turning=False, opens=True,
    ...              fast_opening=False) > 0 > trigger_step(on_box=False, first_contact=False,
    ...              turning=False, opens=False, fast_opening=False)
    True
    """
    if fast_opening:
        return FAST_OPENING_STEP
    contact = CONTACT_FIRST if first_contact else CONTACT_ON if on_box else CONTACT_OFF
    return TRIGGER_STEPS[contact, turning, opens]


def outcome_step(name: str, hit: bool) -> float:
    """The step of one of :data:`CUSUM_STEPS`' CUSUMs for a shot that shows (``hit``) or not its tell."""
    up, down = CUSUM_STEPS[name]
    return up if hit else down


class AimReading(Protocol):
    """The parts of a shot's reading (:class:`anticheat.player_state.ShotReading`) :func:`aim_step` weighs."""

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


#: What the aim CUSUM's model reads of a shot, in this order (NaN where the
#: shot did not measure it: an opening shot has a reaction, a shot inside a
#: burst has tracking). Times are net of the player's ping.
AIM_COLUMNS: Final[tuple[str, ...]] = (
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
    "weapon",             # AIM_WEAPON_CODES, NaN for another weapon
)

#: Weapons by code for the model's ``weapon`` column: their spread and
#: fire rate shape every error the shot shows.
AIM_WEAPON_CODES: Final[dict[str, float]] = {"rifle": 0.0, "smg": 1.0, "pistol": 2.0, "sniper": 3.0}

#: The model shipped with gamebus (see :class:`AimModel`).
AIM_MODEL_PATH: Final = Path(__file__).with_name("data") / "aim_step.npz"

_GAIN_INDEX: Final = LAG_GRID_MS.index(GAIN_AT_MS)


def aim_row(r: AimReading, ping_ms: float, weapon: str | None) -> list[float]:
    """The :data:`AIM_COLUMNS` of one shot.

    One function for the service's steps and for :mod:`anticheat.aim_step_fit`,
    which fits the model on these same rows.
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
        AIM_WEAPON_CODES.get(weapon, NAN) if weapon is not None else NAN,
    ]


class AimModel:
    """The aim CUSUM's per-shot model: a step is ``ln(P(shot | aimbot on) / P(shot | not))``.

    A boosted classifier of "the humanised aimbot was on for this shot" on
    :func:`aim_row`, fitted on simulated play by :mod:`anticheat.aim_step_fit`
    and shipped as a :class:`~anticheat.tree_ensemble.TreeEnsemble` file
    (``anticheat/data/aim_step.npz``), like the trigger's rates above but
    too many numbers for a table. Its log-odds less the fit's prior
    log-odds are the step, so an honest shot's step is negative on
    average. No single reading of a shot says much and each is within what
    some honest tier shows; read together, and against each other (an
    error that is small *for a rifle*, a fast engage *at this ping*), over
    a toggled-on stretch they climb where match-long medians are diluted
    (docs/anticheat.md, "The aim CUSUM").
    """

    def __init__(self, ensemble: TreeEnsemble) -> None:
        meta = ensemble.meta
        if tuple(meta.get("columns", ())) != AIM_COLUMNS:
            raise ValueError(f"ensemble: reads columns {meta.get('columns')}, expected {list(AIM_COLUMNS)}")
        prior = float(meta.get("prior", NAN))
        if not 0.0 < prior < 1.0:
            raise ValueError(f"ensemble: meta.prior must be a share in (0, 1), got {meta.get('prior')!r}")
        self.ensemble = ensemble
        self.prior = prior
        #: Names the model in the features' recipe: a match model trained on
        #: one aim model's CUSUM is refused with another's.
        self.version = str(meta.get("version", "unversioned"))
        self._prior_logit = math.log(prior / (1.0 - prior))

    @classmethod
    def load(cls, path: str | Path = AIM_MODEL_PATH) -> AimModel:
        return cls(TreeEnsemble.load(path))

    @classmethod
    def neutral(cls) -> AimModel:
        """A model that weighs every shot 0: for reading shots before any model exists (the fit)."""
        leaf = np.zeros(1, dtype=np.int64)
        return cls(TreeEnsemble(
            feature=leaf, threshold=np.zeros(1), left=leaf, right=leaf,
            missing_left=np.zeros(1, dtype=bool), is_leaf=np.ones(1, dtype=bool), value=np.zeros(1),
            roots=leaf, baseline=0.0, meta={"columns": list(AIM_COLUMNS), "prior": 0.5, "version": "neutral"}))

    def steps(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """The step of each row of :data:`AIM_COLUMNS`, in one pass over the trees."""
        if not rows:
            return []
        return (self.ensemble.raw(rows) - self._prior_logit).tolist()


@functools.cache
def packaged_aim_model() -> AimModel:
    """The model shipped with gamebus, loaded once a process."""
    return AimModel.load(AIM_MODEL_PATH)


def aim_step(r: AimReading, ping_ms: float, weapon: str | None = None, *,
             model: AimModel | None = None) -> float:
    """The aim CUSUM's step for one shot: its log-likelihood ratio, aimbot on against not.

    :class:`anticheat.features.MatchFeatures` weighs the shots a tick
    settles in one :meth:`AimModel.steps` call instead.

    >>> from anticheat.player_state import ShotReading
    >>> steady = ShotReading(0.1, True, 2.0, 420.0, 170.0, 30.0, 60.0, (0.1, 0.12), (3.0,))
    >>> loose = ShotReading(2.5, False, 40.0, 900.0, 420.0, 200.0, 140.0, (1.5, 1.8), (30.0,))
    >>> aim_step(steady, 40.0, "rifle") > 0 > aim_step(loose, 40.0, "rifle")
    True
    """
    return (model or packaged_aim_model()).steps([aim_row(r, ping_ms, weapon)])[0]
