"""How much one shot says about a bot: per-shot log-likelihood ratios for the CUSUMs.

:class:`anticheat.player_state.PlayerState` sums these steps shot after
shot in a CUSUM (floored at zero) and keeps its maximum: the sum climbs
through a stretch of bot-like shots and sinks back after, so a closet
cheater's toggled-on stretch shows wherever it falls in the match. Each
step is ``ln(P(shot | bot) / P(shot | human))`` from rates measured on
simulated play, kept here as plain tables with where their numbers come
from, apart from the state that sums them.
"""

from __future__ import annotations

import math
import statistics
from typing import Final, Protocol

from anticheat.tracking_lag import GAIN_AT_MS, LAG_GRID_MS, LagTerms

__all__ = [
    "AIM_STEP_WEIGHTS",
    "CONTACT_FIRST",
    "CONTACT_OFF",
    "CONTACT_ON",
    "CUSUM_STEPS",
    "FAST_OPENING_STEP",
    "TRIGGER_STEPS",
    "AimReading",
    "aim_step",
    "aim_terms",
    "outcome_step",
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


#: The aim CUSUM's step is a logistic regression of "the aimbot was on for
#: this shot" on what the shot showed, its log-odds less the fit's prior
#: log-odds, so a step is ln(P(shot | aimbot on) / P(shot | not)). Fitted
#: (standardised, C = 1, scikit-learn's ``LogisticRegression``) on 400
#: simulated 60 s matches of humanised aimbots, half of them closet cheaters
#: (seeds 8,600,000-8,600,399: 304,715 shots, 73,176 with the cheat on),
#: and written here in the terms' own units (:mod:`anticheat.aim_step_fit`
#: refits them). No single reading of a shot says much (ROC-AUC 0.82 shot
#: by shot, cross-validated by match) and each is within what some honest
#: tier shows; read together over a
#: toggled-on stretch they climb where match-long medians are diluted
#: (docs/anticheat.md, "The aim CUSUM"). A ``has_`` term weighs whether
#: the shot measured that reading at all (an opening shot has a reaction,
#: a shot inside a burst has tracking).
AIM_STEP_WEIGHTS: Final[dict[str, float]] = {
    "intercept": -0.6040,
    "log_error": -0.5297,  # ln(error_deg + 0.05)
    "on_box": -0.2400,
    "log_turn": -0.2032,  # ln(1 + turn_deg_s)
    "has_engage": 0.8894,
    "engage_s": -0.8556,  # engage_ms - ping, in [0, 1.5] s
    "has_reaction": 0.5226,
    "reaction_s": -0.4260,  # reaction_ms - ping, in [0, 1] s
    "has_delay": -0.2284,
    "log_delay": 0.1547,  # ln(1 + delay_ms)
    "has_flick": 1.2982,
    "log_flick": -0.3637,  # ln(flick_ms_per_bit), at least 1
    "has_track": -0.2526,
    "log_track_error": -0.4376,  # ln(median track error + 0.01)
    "has_jitter": 0.9271,
    "log_jitter": -0.3627,  # ln(1 + median jitter)
    "has_lag": -0.7390,
    "log_lag_error": -0.7132,  # ln(mean squared error of the lag ticks + 0.001)
    "log_lag_motion": 0.1497,  # ln(summed squared motion of the 150 ms tracker + 1e-6)
    "opens": -0.2524,
}

#: Share of the fit's shots fired with the cheat on: its prior log-odds are
#: taken off, so an honest shot's step is negative on average.
AIM_STEP_PRIOR: Final = 0.2401
_GAIN_INDEX: Final = LAG_GRID_MS.index(GAIN_AT_MS)


def aim_terms(r: AimReading, ping_ms: float) -> dict[str, float]:
    """The terms :data:`AIM_STEP_WEIGHTS` weigh for one shot (all but the intercept; 0 where unread).

    One function for the step and for :mod:`anticheat.aim_step_fit`, which
    refits the weights on these same terms.
    """
    t = dict.fromkeys(AIM_STEP_WEIGHTS, 0.0)
    del t["intercept"]
    if not math.isnan(r.error_deg):
        t["log_error"] = math.log(r.error_deg + 0.05)
    t["on_box"] = float(r.on_box)
    if not math.isnan(r.turn_deg_s):
        t["log_turn"] = math.log1p(r.turn_deg_s)
    engage, reaction = r.engage_ms - ping_ms, r.reaction_ms - ping_ms  # NaN stays NaN
    if not math.isnan(engage):
        t["has_engage"], t["engage_s"] = 1.0, min(max(engage, 0.0), 1500.0) / 1000.0
    if not math.isnan(reaction):
        t["has_reaction"], t["reaction_s"] = 1.0, min(max(reaction, 0.0), 1000.0) / 1000.0
    if not math.isnan(r.delay_ms):
        t["has_delay"], t["log_delay"] = 1.0, math.log1p(max(r.delay_ms, 0.0))
    if not math.isnan(r.flick_ms_per_bit):
        t["has_flick"], t["log_flick"] = 1.0, math.log(max(r.flick_ms_per_bit, 1.0))
    if r.track_errors:
        t["has_track"], t["log_track_error"] = 1.0, math.log(statistics.median(r.track_errors) + 0.01)
    if r.track_jitter:
        t["has_jitter"], t["log_jitter"] = 1.0, math.log1p(statistics.median(r.track_jitter))
    lag = r.track_lag
    if lag.ticks > 0:
        t["has_lag"], t["log_lag_error"] = 1.0, math.log(lag.ee / lag.ticks + 1e-3)
        motion = lag.ll[_GAIN_INDEX]
        if motion > 0.0:
            t["log_lag_motion"] = math.log(motion + 1e-6)
    t["opens"] = float(r.opens_burst)
    return t


def aim_step(r: AimReading, ping_ms: float) -> float:
    """The aim CUSUM's step for one shot: its log-likelihood ratio, aimbot on against not.

    >>> from anticheat.player_state import ShotReading
    >>> steady = ShotReading(0.1, True, 2.0, 420.0, 170.0, 30.0, 60.0, (0.1, 0.12), (3.0,))
    >>> loose = ShotReading(2.5, False, 40.0, 900.0, 420.0, 200.0, 140.0, (1.5, 1.8), (30.0,))
    >>> aim_step(steady, 40.0) > 0 > aim_step(loose, 40.0)
    True
    """
    w = AIM_STEP_WEIGHTS
    z = w["intercept"] - math.log(AIM_STEP_PRIOR / (1.0 - AIM_STEP_PRIOR))
    return z + sum(w[k] * v for k, v in aim_terms(r, ping_ms).items())
