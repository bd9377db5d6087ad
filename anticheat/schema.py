"""What a feature vector is: the names of its columns, the tunables it is read with, the code's revision.

A trained model saves :data:`FEATURE_NAMES` and :func:`feature_recipe` and
refuses to load against a version that reads vectors another way, so these
three live apart from the code that computes the features
(:mod:`anticheat.features`): a model, the CLI and the tests can ask what a
vector is without the machinery that reads one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from anticheat.physics import Limits
from anticheat.shot_evidence import STEP_KINDS, packaged_step_model

__all__ = ["FEATURES_REVISION", "FEATURE_NAMES", "FeatureConfig", "feature_recipe"]

#: The feature schema: names and order of every vector. Changing it means
#: retraining; saved models record it and refuse to load against another.
FEATURE_NAMES: Final[tuple[str, ...]] = (
    # movement, speeds as a ratio of the cap of the weapon held
    "speed_p50",
    "speed_p95",
    "speed_max",
    "speed_over_cap_frac",
    "speed_band_frac",
    "speed_over_max_frac",
    "run_speed_p95",
    "run_speed_band_frac",
    "fight_speed_p50",
    "accel_p95",
    "teleport_count",
    "teleport_excess_max_m",
    "air_time_ratio",
    "air_height_ratio",
    "tick_rate_drift",
    # aim
    "aim_speed_p50",
    "aim_speed_p95",
    "aim_speed_max",
    "aim_accel_p95",
    "aim_jerk_p95",
    "snap_stop_per_min",
    "snap_before_shot_frac",
    "shot_error_median_deg",
    "shot_error_p90_deg",
    "shot_lock_frac",
    "shot_on_hitbox_frac",
    "win_max_hitbox_frac",
    "win_max_trigger_frac",
    "win_max_lock_frac",
    "win_min_error_deg",
    "win_min_reaction_ms",
    "cusum_trigger_max",
    "cusum_hitbox_max",
    "cusum_lock_max",
    "cusum_turn_max",
    "cusum_aim_max",
    "shot_turn_median_deg_s",
    "shot_turn_fast_frac",
    "reaction_median_ms",
    "reaction_p10_ms",
    "reaction_std_ms",
    "engage_median_ms",
    "on_target_delay_median_ms",
    "on_target_delay_std_ms",
    "on_target_zero_frac",
    "reaction_net_median_ms",
    "engage_net_median_ms",
    "flick_ms_per_bit_median",
    "track_error_median_deg",
    "track_jitter_median_deg_s",
    "track_lag_ms",
    "track_lag_gain",
    # outcomes
    "accuracy_eb",
    "headshot_eb",
    "ttk_median_ms",
    "shot_interval_cv",
    "shots_per_min",
    "kills_per_min",
    "ping_ms",
    "alive_s",
)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Tunables of the features; the priors come from the trained model.

    ``accuracy_prior`` and ``headshot_prior`` are Beta(a, b) pseudo-counts
    fitted on the training population (:func:`anticheat.stats.beta_prior`).
    """

    limits: Limits = field(default_factory=Limits)
    spawn_grace_ms: int = 1000
    max_step_ms: int = 250
    #: Speeds over this long: a server's copy of a position is late by a few
    #: ms that change every tick, which one tick's speed cannot tell from a
    #: speed-up and a second's distance can.
    run_window_ms: int = 1000
    teleport_factor: float = 2.0
    teleport_slack_m: float = 1.0
    airborne_m: float = 0.05
    snap_deg_s: float = 400.0
    stop_ratio: float = 0.2
    snap_window_ms: int = 250
    lock_deg: float = 0.5
    track_gap_ms: int = 400
    #: Shots at one target at most this far apart frame ticks read for the
    #: tracking lag (a burst's pause included: the hand keeps following).
    #: At 2 s rather than 1 s, a tenth of a match's players are left without
    #: a reading instead of a sixth (docs/anticheat.md, "Pauses").
    lag_gap_ms: int = 2000
    reaction_window_ms: int = 2500
    hidden_before_ms: int = 1000
    recent_shots: int = 8
    engagement_gap_ms: int = 3000
    burst_gap_ms: int = 1500
    history_ms: int = 3000
    turn_fast_deg_s: float = 90.0
    window_ms: int = 20_000
    window_step_ms: int = 10_000
    accuracy_prior: tuple[float, float] = (3.0, 7.0)
    headshot_prior: tuple[float, float] = (2.0, 8.0)


#: Bump when a feature keeps its name but is read differently by the code
#: (a change no tunable shows): models trained before then are refused.
#: 2: the trigger CUSUM reads contact and turning jointly (shot_evidence.TRIGGER_STEPS).
#: 3: ... and whether the shot opens a burst, with fast openings apart.
#: 4: the aim CUSUM's step comes from a boosted per-shot model (shot_evidence.StepModel),
#:    whose version the recipe names too.
#: 5: ... and the trigger CUSUM's from another, fitted on triggerbots.
FEATURES_REVISION: Final = 5

#: Tunables that come from the trained model rather than from this code.
_LEARNED: Final = frozenset({"accuracy_prior", "headshot_prior"})


def feature_recipe(config: FeatureConfig | None = None) -> dict[str, Any]:
    """How this version reads a vector: :data:`FEATURES_REVISION` and ``config``'s tunables.

    Saved with a model and checked on load, as plain data. The schema alone
    does not tell apart two versions whose features keep their names but
    read differently (the tracking lag across 1 s or 2 s pauses): a model
    trained on one would score the other's vectors without a word, at an
    alert rate nobody measured. The empirical-Bayes priors are left out;
    they belong to the model, not to the code.
    """
    doc = asdict(config or FeatureConfig())
    tunables = {k: _plain(v) for k, v in doc.items() if k not in _LEARNED}
    models = {f"{kind}_model": packaged_step_model(kind).version for kind in STEP_KINDS}
    return {"revision": FEATURES_REVISION, **models, **tunables}


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: the form a skops document stores and loads back."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
