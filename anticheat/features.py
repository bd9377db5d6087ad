"""Online features of each player's stream, one event at a time.

:class:`MatchFeatures` holds the state of one match and routes every event
to the :class:`PlayerState` of its player with :meth:`MatchFeatures.update`;
:meth:`MatchFeatures.vector` returns the player's feature vector as a plain
``dict[str, float]`` whose keys are exactly :data:`FEATURE_NAMES`, the schema
a model is trained on and refuses to load without. A value is NaN while
there is not enough data to measure it (no shot yet, say): the model treats
missing as its own case instead of guessing a number.

Why these features. Cheats break one of three things, and each group of
features measures one against what the game allows (:mod:`anticheat.physics`)
or against the population:

- movement (speedhack, teleport, fly): horizontal speed against the cap of
  the weapon held, acceleration, displacement a tick cannot explain, time
  and height in the air against a jump, position rate against the match's
  tick cadence (timer hacks send more ticks than the server clock allows);
- aim (aimbots): angular speed, acceleration and jerk of the view, snaps that
  stop dead (a human flick decelerates over several ticks), angular error at
  the shot, reaction time from the moment the target became visible (the
  game's own line-of-sight test), how long the crosshair rested on the
  target before the shot (a triggerbot fires on contact), and how closely
  and how late it follows a target between shots (a hand answers a
  target's turns a visuomotor delay late, :mod:`anticheat.tracking_lag`;
  a bot steering from the game's memory does not);
- outcomes: accuracy and headshot ratio shrunk toward the population by
  empirical Bayes (a newcomer with 3 hits out of 4 shots is not a cheater),
  time-to-kill and the regularity of inter-shot intervals.

Pure and synchronous: no clock (time is the events' ``ts``), no I/O. Events
must arrive in ``ts`` order per match (the consumer's reorder buffer sees to
that); a late event is dropped from the derivatives rather than corrupting them.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, NamedTuple

from anticheat.physics import Limits, aim_angles, angle_between, map_for, visible_many, wrap_deg
from anticheat.stats import Histogram, Samples, quantile
from anticheat.tracking_lag import (
    ZERO_TERMS,
    LagFit,
    LagTerms,
    TrackingError,
    add_terms,
    lag_terms,
    tracking_error,
)
from gamebus.sim.weapons import hit_test
from gamebus.sim.world import PLAYER_RADIUS_M, GameMap

__all__ = [
    "FEATURES_REVISION",
    "FEATURE_NAMES",
    "FeatureConfig",
    "MatchFeatures",
    "PlayerState",
    "Sample",
    "ShotReading",
    "Window",
    "feature_recipe",
    "shrink",
]

NAN: Final = float("nan")

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
    #: A shot on the hitbox this soon after its target came into view opens
    #: fire faster than a hand can see, flick and settle: 0.03% of honest
    #: shots, 5% of a blatant triggerbot's (docs/anticheat.md, "Opening shots").
    fast_engage_ms: int = 400
    window_ms: int = 20_000
    window_step_ms: int = 10_000
    accuracy_prior: tuple[float, float] = (3.0, 7.0)
    headshot_prior: tuple[float, float] = (2.0, 8.0)


#: Bump when a feature keeps its name but is read differently by the code
#: (a change no tunable shows): models trained before then are refused.
#: 2: the trigger CUSUM reads contact and turning jointly (_TRIGGER_STEPS).
#: 3: ... and whether the shot opens a burst, with fast openings apart.
FEATURES_REVISION: Final = 3

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
    return {"revision": FEATURES_REVISION, **tunables}


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively: the form a skops document stores and loads back."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Sample(NamedTuple):
    """One position of a player: feet position, view direction, and velocity when reported.

    The velocity (m/s) is the server's own, read from the event's optional
    ``vx, vy, vz``; NaN when the game does not send it (or for a shot's
    position, which carries none).
    """

    ts: int
    x: float
    y: float
    z: float
    yaw: float
    pitch: float
    vx: float = NAN
    vy: float = NAN
    vz: float = NAN


class ShotReading(NamedTuple):
    """What one settled shot showed; NaN where the shot does not measure it.

    Computed once per shot (line of sight is the expensive part) and folded
    into the match-long state and into every window the shot falls in.
    """

    error_deg: float  # crosshair to the nearer of chest and head, at the shot
    on_box: bool  # the game's hit test on the crosshair at the shot's tick
    turn_deg_s: float  # how fast the view turned over the tick of the shot
    engage_ms: float  # target became visible -> this shot (first shot of an onset)
    reaction_ms: float  # target appeared -> the flick toward it starts
    delay_ms: float  # crosshair met the hitbox -> shot
    flick_ms_per_bit: float  # flick time over its Fitts index of difficulty
    track_errors: tuple[float, ...] = ()  # per tick since the burst's previous shot, deg
    track_jitter: tuple[float, ...] = ()  # crosshair speed relative to the target, deg/s
    track_lag: LagTerms = ZERO_TERMS  # the same ticks against delayed trackers (anticheat.tracking_lag)
    opens_burst: bool = True  # no earlier aimed shot at this target within track_gap_ms


def shrink(successes: float, trials: float, prior: tuple[float, float]) -> float:
    """Empirical-Bayes posterior mean of a ratio under a Beta(a, b) population prior."""
    a, b = prior
    return (successes + a) / (trials + a + b)


def _num(event: Mapping[str, Any], key: str, default: float = NAN) -> float:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


class PlayerState:
    """Everything the features remember about one player in one match."""

    def __init__(self, player: str, config: FeatureConfig) -> None:
        self.player = player
        self.config = config
        self.team: str | None = None
        self.weapon: str | None = None
        self.ping_ms = NAN
        self.history: deque[Sample] = deque()
        self.grace_until = -1
        self.alive_ms = 0
        # movement
        self.speed = Histogram.linear(0.0, 15.0, 750)  # m/s; judged against the weapon later
        self.run_speed = Histogram.linear(0.0, 15.0, 750)  # m/s over run_window_ms
        self.trail: deque[tuple[int, float, float]] = deque()  # (ts, x, y) of the run window
        self.fight_speed = Samples()
        self.accel = Histogram.linear(0.0, 4.0, 200)
        self.velocity: tuple[float, float] | None = None
        self.teleports = 0
        self.teleport_excess_max = 0.0
        self.air_start: int | None = None
        self.air_time_max_s = 0.0
        self.air_height_max = 0.0
        self.steps = Histogram.geometric(1.0, 2000.0, 120)
        # aim
        self.aim_speed = Histogram.geometric(1.0, 20000.0, 160)
        self.aim_accel = Histogram.geometric(10.0, 2e6, 160)
        self.aim_jerk = Histogram.geometric(100.0, 1e8, 160)
        self.last_w: float | None = None
        self.last_acc: float | None = None
        self.snaps = 0
        self.last_snap_ts = -(10**12)
        # shots and outcomes
        self.shots = 0
        self.snap_shots = 0
        self.hits = 0
        self.headshots = 0
        self.kills = 0
        self.kill_headshots = 0
        self.last_shot_ts: int | None = None
        self.shot_error = Samples()
        self.shot_error_last = NAN
        self.locked_shots = 0
        self.on_hitbox = 0
        # Rolling windows of the last few shots, and the most extreme window
        # seen: a closet cheater's toggled-on stretch shows here even when the
        # match-long figures dilute it, whenever the snapshot is taken.
        self.recent: deque[tuple[float, bool, bool]] = deque(maxlen=config.recent_shots)
        self.recent_reactions: deque[float] = deque(maxlen=4)
        self.last_delay = NAN
        self.win = {"win_max_hitbox_frac": NAN, "win_max_trigger_frac": NAN,
                    "win_max_lock_frac": NAN, "win_min_error_deg": NAN, "win_min_reaction_ms": NAN}
        # CUSUM of per-shot log-likelihood ratios (bot-like vs human-like): it
        # climbs during a toggled-on stretch and sinks back after, so its
        # maximum finds a closet cheater's burst wherever it falls.
        self.cusum = {"cusum_trigger_max": 0.0, "cusum_hitbox_max": 0.0, "cusum_lock_max": 0.0,
                      "cusum_turn_max": 0.0}
        self.cusum_now = {k: 0.0 for k in self.cusum}
        self.aimed_shots = 0
        self.reaction = Samples()
        self.reaction_net = Samples()
        self.engage_ms = Samples()
        self.engage_net = Samples()
        self.flick = Samples()
        self.track_error = Samples(2048)
        self.track_jitter = Samples(2048)
        self.track_lag = LagFit()
        self.last_aimed: tuple[int, str] | None = None  # (tick, target) of the last analysed shot
        self.shot_turn = Samples()
        self.turn_fast = 0
        self.on_target = Samples()
        self.on_target_zero = 0
        self.intervals = Samples()
        self.ttk = Samples()
        self.reacted_onsets: dict[str, int] = {}
        self.engagements: dict[str, tuple[int, int]] = {}  # target -> (first shot, last shot)

    # --- movement and aim -------------------------------------------------

    def spawn(self, ts: int, event: Mapping[str, Any]) -> None:
        """A (re)spawn moves the player legitimately: forget the last position."""
        self.history.clear()
        self.trail.clear()
        self.velocity = None
        self.last_w = self.last_acc = None
        self.air_start = None
        self.grace_until = ts + self.config.spawn_grace_ms
        x, y, z = _num(event, "x"), _num(event, "y"), _num(event, "z")
        if not math.isnan(x + y + z):
            yaw, pitch = _num(event, "yaw", 0.0), _num(event, "pitch", 0.0)
            self.history.append(Sample(ts, x, y, z, yaw, pitch))

    def position(self, s: Sample) -> None:
        cfg = self.config
        prev = self.history[-1] if self.history else None
        self.history.append(s)
        while self.history and self.history[0].ts < s.ts - cfg.history_ms:
            self.history.popleft()
        if prev is None:
            return
        dt_ms = s.ts - prev.ts
        if dt_ms <= 0:
            return
        self.steps.add(float(dt_ms))
        if dt_ms <= cfg.max_step_ms:
            self.alive_ms += dt_ms
        self._air(s)
        if s.ts < self.grace_until:
            return
        dt = dt_ms / 1000.0
        self._move(prev, s, dt)
        if dt_ms <= cfg.max_step_ms:
            self._aim(prev, s, dt)

    def _move(self, prev: Sample, s: Sample, dt: float) -> None:
        cfg, lim = self.config, self.config.limits
        dx, dy = s.x - prev.x, s.y - prev.y
        dist = math.hypot(dx, dy)
        allowed = lim.max_speed_mps * dt
        if dist > allowed * cfg.teleport_factor + cfg.teleport_slack_m:
            self.teleports += 1
            self.teleport_excess_max = max(self.teleport_excess_max, dist - allowed)
            self.velocity = None
            self.trail.clear()
            return
        if dt * 1000.0 > cfg.max_step_ms:
            self.velocity = None
            self.trail.clear()
            return
        self.speed.add(dist / dt)
        self._run(s)
        v = (dx / dt, dy / dt)
        if self.velocity is not None:
            acc = math.hypot(v[0] - self.velocity[0], v[1] - self.velocity[1]) / dt
            self.accel.add(acc / lim.max_accel_mps2)
        self.velocity = v

    def _run(self, s: Sample) -> None:
        """Speed over the last ``run_window_ms`` of one unbroken stretch of movement."""
        trail, span = self.trail, self.config.run_window_ms
        trail.append((s.ts, s.x, s.y))
        while len(trail) > 2 and trail[1][0] <= s.ts - span:
            trail.popleft()
        t0, x0, y0 = trail[0]
        if s.ts - t0 >= span:
            self.run_speed.add(math.hypot(s.x - x0, s.y - y0) * 1000.0 / (s.ts - t0))

    def _air(self, s: Sample) -> None:
        cfg = self.config
        height = s.z  # the floor is z = 0 everywhere (gamebus.sim.world)
        if height > cfg.airborne_m:
            if self.air_start is None:
                self.air_start = s.ts
            self.air_time_max_s = max(self.air_time_max_s, (s.ts - self.air_start) / 1000.0)
            self.air_height_max = max(self.air_height_max, height)
        else:
            self.air_start = None

    def _aim(self, prev: Sample, s: Sample, dt: float) -> None:
        cfg = self.config
        dyaw = wrap_deg(s.yaw - prev.yaw)
        dpitch = s.pitch - prev.pitch
        w = math.hypot(dyaw * math.cos(math.radians(s.pitch)), dpitch) / dt
        self.aim_speed.add(w)
        if self.last_w is not None:
            acc = (w - self.last_w) / dt
            self.aim_accel.add(abs(acc))
            if self.last_acc is not None:
                self.aim_jerk.add(abs(acc - self.last_acc) / dt)
            self.last_acc = acc
            # A snap: fast rotation that stops dead on the next tick.
            if self.last_w >= cfg.snap_deg_s and w <= cfg.stop_ratio * self.last_w:
                self.snaps += 1
                self.last_snap_ts = s.ts
        self.last_w = w

    # --- shots and outcomes ----------------------------------------------

    def shot(self, ts: int, weapon: str | None) -> None:
        cfg = self.config
        self.shots += 1
        if weapon and weapon != "knife":
            self.weapon = weapon
        # Movement while fighting: the weapon is out, so its cap is known.
        recent = [s for s in self.history if ts - 500 <= s.ts <= ts]
        cap = cfg.limits.speed_cap(self.weapon)
        for a, b in itertools.pairwise(recent):
            if 0 < b.ts - a.ts <= cfg.max_step_ms and b.ts >= self.grace_until:
                v = math.hypot(b.x - a.x, b.y - a.y) / ((b.ts - a.ts) / 1000.0)
                self.fight_speed.add(v / cap)
        if ts - self.last_snap_ts <= cfg.snap_window_ms:
            self.snap_shots += 1
        if self.last_shot_ts is not None and 0 < ts - self.last_shot_ts <= cfg.burst_gap_ms:
            self.intervals.add(float(ts - self.last_shot_ts))
        self.last_shot_ts = ts

    def aimed(self, error_deg: float) -> None:
        self.shot_error_last = error_deg
        self.aimed_shots += 1
        self.shot_error.add(error_deg)
        if error_deg <= self.config.lock_deg:
            self.locked_shots += 1

    def engage(self, target: str, ts: int) -> None:
        first, last = self.engagements.get(target, (ts, ts))
        if ts - last > self.config.engagement_gap_ms:
            first = ts
        self.engagements[target] = (first, ts)

    def killed(self, target: str, ts: int, headshot: bool) -> None:
        self.kills += 1
        self.kill_headshots += int(headshot)
        engagement = self.engagements.pop(target, None)
        if engagement is not None and ts - engagement[1] <= self.config.engagement_gap_ms:
            self.ttk.add(float(ts - engagement[0]))

    def settled(self, r: ShotReading) -> None:
        """Fold one analysed shot into the state (see :class:`ShotReading`)."""
        self.aimed(r.error_deg)
        self.on_hitbox += int(r.on_box)
        self.last_delay = r.delay_ms
        ping = self.ping_ms
        if not math.isnan(r.turn_deg_s):
            self.shot_turn.add(r.turn_deg_s)
            self.turn_fast += int(r.turn_deg_s >= self.config.turn_fast_deg_s)
        if not math.isnan(r.engage_ms):
            self.engage_ms.add(r.engage_ms)
            if not math.isnan(ping):
                self.engage_net.add(r.engage_ms - ping)
        if not math.isnan(r.reaction_ms):
            self.reaction.add(r.reaction_ms)
            if not math.isnan(ping):
                self.reaction_net.add(r.reaction_ms - ping)
            self.window_reaction(r.reaction_ms)
        if not math.isnan(r.flick_ms_per_bit):
            self.flick.add(r.flick_ms_per_bit)
        for e in r.track_errors:
            self.track_error.add(e)
        for j in r.track_jitter:
            self.track_jitter.add(j)
        self.track_lag.add(r.track_lag)
        if not math.isnan(r.delay_ms):
            self.on_target.add(r.delay_ms)
            self.on_target_zero += int(r.delay_ms <= 1.0)
        fast_opening = r.on_box and r.engage_ms < self.config.fast_engage_ms  # NaN: not an opening
        self.window_shot(r.on_box, r.turn_deg_s >= self.config.turn_fast_deg_s,
                         opens=r.opens_burst, fast_opening=fast_opening)

    # --- the vector -------------------------------------------------------

    def window_shot(self, on_box: bool, turning: bool = False, *, opens: bool = True,
                    fast_opening: bool = False) -> None:
        """Fold the settled shot into the rolling window and keep its extremes."""
        trigger = on_box and self.last_delay <= 1.0  # fired the tick the crosshair met the hitbox
        locked = self.shot_error_last <= self.config.lock_deg
        contact = _CONTACT_FIRST if trigger else _CONTACT_ON if on_box else _CONTACT_OFF
        trigger_step = _FAST_OPENING_STEP if fast_opening else _TRIGGER_STEPS[contact, turning, opens]
        steps = {"cusum_trigger_max": trigger_step}
        for name, hit in (("cusum_hitbox_max", on_box), ("cusum_lock_max", locked),
                          ("cusum_turn_max", turning)):
            up, down = _CUSUM_STEPS[name]
            steps[name] = up if hit else down
        for name, step in steps.items():
            now = max(0.0, self.cusum_now[name] + step)
            self.cusum_now[name] = now
            self.cusum[name] = max(self.cusum[name], now)
        self.recent.append((self.shot_error_last, on_box, trigger))
        if len(self.recent) < self.recent.maxlen:  # type: ignore[operator]
            return
        n = len(self.recent)
        errors = [e for e, _, _ in self.recent]
        w = self.win
        w["win_max_hitbox_frac"] = _nanmax(w["win_max_hitbox_frac"], sum(b for _, b, _ in self.recent) / n)
        w["win_max_trigger_frac"] = _nanmax(w["win_max_trigger_frac"], sum(t for _, _, t in self.recent) / n)
        w["win_max_lock_frac"] = _nanmax(
            w["win_max_lock_frac"], sum(e <= self.config.lock_deg for e in errors) / n)
        w["win_min_error_deg"] = -_nanmax(-w["win_min_error_deg"], -quantile(errors, 0.5))

    def window_reaction(self, reaction_ms: float) -> None:
        self.recent_reactions.append(reaction_ms)
        if len(self.recent_reactions) == self.recent_reactions.maxlen:
            med = quantile(self.recent_reactions, 0.5)
            self.win["win_min_reaction_ms"] = -_nanmax(-self.win["win_min_reaction_ms"], -med)

    def outcome_counts(self) -> tuple[int, int, int]:
        """Shots, hits and headshots (kills stand in when the game reports no hits)."""
        if self.hits:
            return self.shots, self.hits, self.headshots
        return self.shots, self.kills, self.kill_headshots

    def _run_band(self, cap: float) -> float:
        """Share of the running seconds faster than the weapon allows but slower than a knife.

        A second's distance is off by a few percent at most (the lateness at
        its two ends), so the band's edges keep that far from the weapon's
        cap and from the knife's speed, which any honest player may run at.
        """
        runs = self.run_speed
        moving = runs.count * (1.0 - runs.fraction_between(-1.0, 1.0)) if runs.count else 0.0
        if moving < 10:
            return NAN
        lo, hi = cap * 1.03, self.config.limits.max_speed_mps * 0.985
        if lo >= hi:
            return NAN  # the weapon is as fast as a knife: no band to run in
        return runs.fraction_between(lo, hi) * runs.count / moving

    def vector(self, *, median_step_ms: float = NAN) -> dict[str, float]:
        """The feature vector now; keys are :data:`FEATURE_NAMES`."""
        cfg, lim = self.config, self.config.limits
        minutes = self.alive_ms / 60_000.0
        per_min = (lambda n: n / minutes) if minutes > 0.05 else (lambda n: NAN)
        shots, hits, heads = self.outcome_counts()
        own_step = self.steps.quantile(0.5)
        drift = own_step and median_step_ms / own_step - 1.0 if self.steps.count >= 20 else NAN
        cap = lim.speed_cap(self.weapon)
        moving = 1.0 - self.speed.fraction_between(-1.0, 1.0) if self.speed.count else NAN
        moving_n = moving * self.speed.count if self.speed.count else 0.0

        def share(lo: float, hi: float) -> float:
            if moving_n < 20:
                return NAN
            return self.speed.fraction_between(lo, hi) * self.speed.count / moving_n

        air_time = self.air_time_max_s / lim.jump_airtime_s if self.speed.count else NAN
        air_height = self.air_height_max / lim.jump_apex_m if self.speed.count else NAN
        v: dict[str, float] = {
            "speed_p50": self.speed.quantile(0.5) / cap,
            "speed_p95": self.speed.quantile(0.95) / cap,
            "speed_max": self.speed.max / cap if self.speed.count else NAN,
            "speed_over_cap_frac": share(cap * 1.01, 1e9),
            "speed_band_frac": share(cap * 1.01, lim.max_speed_mps * 0.995),
            "speed_over_max_frac": share(lim.max_speed_mps * 1.01, 1e9),
            "run_speed_p95": self.run_speed.quantile(0.95) / cap,
            "run_speed_band_frac": self._run_band(cap),
            "fight_speed_p50": self.fight_speed.quantile(0.5),
            "accel_p95": self.accel.quantile(0.95),
            "teleport_count": float(self.teleports),
            "teleport_excess_max_m": self.teleport_excess_max,
            "air_time_ratio": air_time,
            "air_height_ratio": air_height,
            "tick_rate_drift": float(drift),
            "aim_speed_p50": self.aim_speed.quantile(0.5),
            "aim_speed_p95": self.aim_speed.quantile(0.95),
            "aim_speed_max": self.aim_speed.max if self.aim_speed.count else NAN,
            "aim_accel_p95": self.aim_accel.quantile(0.95),
            "aim_jerk_p95": self.aim_jerk.quantile(0.95),
            "snap_stop_per_min": per_min(self.snaps),
            "snap_before_shot_frac": self.snap_shots / self.shots if self.shots else NAN,
            "shot_error_median_deg": self.shot_error.quantile(0.5),
            "shot_error_p90_deg": self.shot_error.quantile(0.9),
            "shot_lock_frac": self.locked_shots / self.aimed_shots if self.aimed_shots else NAN,
            "shot_on_hitbox_frac": self.on_hitbox / self.aimed_shots if self.aimed_shots else NAN,
            **self.win,
            **(self.cusum if self.aimed_shots else dict.fromkeys(self.cusum, NAN)),
            "shot_turn_median_deg_s": self.shot_turn.quantile(0.5),
            "shot_turn_fast_frac": self.turn_fast / len(self.shot_turn) if len(self.shot_turn) else NAN,
            "reaction_median_ms": self.reaction.quantile(0.5),
            "reaction_p10_ms": self.reaction.quantile(0.1),
            "reaction_std_ms": self.reaction.std(),
            "engage_median_ms": self.engage_ms.quantile(0.5),
            "on_target_delay_median_ms": self.on_target.quantile(0.5),
            "on_target_delay_std_ms": self.on_target.std(),
            "on_target_zero_frac": self.on_target_zero / len(self.on_target) if len(self.on_target) else NAN,
            "reaction_net_median_ms": self.reaction_net.quantile(0.5),
            "engage_net_median_ms": self.engage_net.quantile(0.5),
            "flick_ms_per_bit_median": self.flick.quantile(0.5),
            "track_error_median_deg": self.track_error.quantile(0.5),
            "track_jitter_median_deg_s": self.track_jitter.quantile(0.5),
            "track_lag_ms": self.track_lag.lag_ms(),
            "track_lag_gain": self.track_lag.gain(),
            "accuracy_eb": shrink(hits, shots, cfg.accuracy_prior),
            "headshot_eb": shrink(heads, hits, cfg.headshot_prior),
            "ttk_median_ms": self.ttk.quantile(0.5),
            "shot_interval_cv": self.intervals.cv() if len(self.intervals) >= 5 else NAN,
            "shots_per_min": per_min(self.shots),
            "kills_per_min": per_min(self.kills),
            "ping_ms": self.ping_ms,
            "alive_s": self.alive_ms / 1000.0,
        }
        return v


class Window:
    """One sliding window of a match: fresh per-player states for ``[start, end)``.

    A window's players start from nothing at ``start``, so its vector reads
    only what happened inside it: a closet cheater's toggled-on stretch
    fills a window as a full-time cheater's play does, instead of being
    diluted by the rest of the match.
    """

    __slots__ = ("end", "players", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.players: dict[str, PlayerState] = {}

    def state(self, base: PlayerState) -> PlayerState:
        st = self.players.get(base.player)
        if st is None:
            st = self.players[base.player] = PlayerState(base.player, base.config)
            st.team, st.weapon, st.ping_ms = base.team, base.weapon, base.ping_ms
        return st


class MatchFeatures:
    """The features of every player of one match, fed in ``ts`` order.

    Besides the match-long state of each player (:attr:`players`) it keeps
    sliding windows (:class:`Window`, ``window_ms`` long, one starting every
    ``window_step_ms``): every event of a player goes to the match-long
    state and to the states of the windows its ``ts`` falls in. A window is
    complete once an event at or past its end arrives;
    :meth:`take_windows` hands complete windows over (once) for scoring.
    """

    def __init__(self, match: str, config: FeatureConfig | None = None) -> None:
        self.match = match
        self.config = config or FeatureConfig()
        self.players: dict[str, PlayerState] = {}
        self.map_name: str | None = None
        self.game_map: GameMap | None = None
        self.last_ts = 0
        self.last_pos_ts = -1
        # Shots wait for the positions of their tick: the game server sends a
        # shot before the tick's positions, and the hit test it ran used them.
        self.pending: list[tuple[PlayerState, str | None, Sample]] = []
        self.windows: list[Window] = []
        self.next_window_ts: int | None = None

    def player(self, player: str) -> PlayerState:
        state = self.players.get(player)
        if state is None:
            state = self.players[player] = PlayerState(player, self.config)
        return state

    # --- windows ----------------------------------------------------------

    def _roll(self, ts: int) -> None:
        cfg = self.config
        if cfg.window_ms <= 0 or cfg.window_step_ms <= 0:
            return
        if self.next_window_ts is None:
            self.next_window_ts = ts
        while ts >= self.next_window_ts:
            self.windows.append(Window(self.next_window_ts, self.next_window_ts + cfg.window_ms))
            self.next_window_ts += cfg.window_step_ms
        # Complete windows nobody took (no scorer attached) are not kept forever.
        stale = ts - 2 * cfg.window_ms
        if self.windows and self.windows[0].end < stale:
            self.windows = [w for w in self.windows if w.end >= stale]

    def _views(self, state: PlayerState, ts: int) -> list[PlayerState]:
        """The match-long state and the window states an event at ``ts`` belongs to."""
        views = [state]
        for w in self.windows:
            if w.start <= ts < w.end:
                views.append(w.state(state))
        return views

    def take_windows(self) -> list[Window]:
        """Complete windows not handed over yet (each is handed over once)."""
        self.settle(self.last_pos_ts)
        done = [w for w in self.windows if w.end <= self.last_ts]
        if done:
            self.windows = [w for w in self.windows if w.end > self.last_ts]
        return done

    def window_vectors(self, window: Window, *, min_alive_ms: int) -> dict[str, dict[str, float]]:
        """Vectors of the players of ``window`` with at least ``min_alive_ms`` of play in it."""
        step = self.median_step_ms()
        return {name: st.vector(median_step_ms=step) for name, st in window.players.items()
                if st.alive_ms >= min_alive_ms}

    # --- events -----------------------------------------------------------

    def update(self, event: Mapping[str, Any]) -> None:
        """Fold one decoded, validated event into the state."""
        etype = event.get("type")
        ts = int(event.get("ts", 0))
        self.last_ts = max(self.last_ts, ts)
        if self.pending and ts > self.last_pos_ts:
            self.settle(self.last_pos_ts)
        self._roll(ts)
        if etype == "round_start" or etype == "match_end":
            if isinstance(event.get("map"), str):
                self.map_name = event["map"]
                self.game_map = map_for(self.map_name)
            if etype == "round_start":
                grace = ts + self.config.spawn_grace_ms
                for state in self.players.values():
                    state.grace_until = grace
                for w in self.windows:
                    for state in w.players.values():
                        state.grace_until = grace
            return
        player = event.get("player")
        if not isinstance(player, str):
            return
        state = self.player(player)
        if etype == "pos":
            self.last_pos_ts = max(self.last_pos_ts, ts)
            ping = event.get("ping")
            ping_ms = float(ping) if isinstance(ping, int) and not isinstance(ping, bool) else None
            # The weapon in hand, when the server says: the features judge
            # speed against the weapon the player fights with, so a knife
            # run (any player may) does not change it.
            weapon = event.get("weapon")
            weapon = weapon if isinstance(weapon, str) and weapon != "knife" else None
            sample = Sample(ts, float(event["x"]), float(event["y"]), float(event["z"]),
                            float(event["yaw"]), float(event["pitch"]),
                            _num(event, "vx"), _num(event, "vy"), _num(event, "vz"))
            for st in self._views(state, ts):
                if ping_ms is not None:
                    st.ping_ms = ping_ms
                if weapon is not None:
                    st.weapon = weapon
                st.position(sample)
        elif etype == "spawn":
            team = event.get("team")
            for st in self._views(state, ts):
                if isinstance(team, str):
                    st.team = team
                st.spawn(ts, event)
        elif etype == "join":
            if isinstance(event.get("team"), str):
                state.team = event["team"]
            ping = event.get("ping")
            if isinstance(ping, int) and not isinstance(ping, bool):
                state.ping_ms = float(ping)
        elif etype == "shot":
            self._shot(state, ts, event)
        elif etype == "hit":
            for st in self._views(state, ts):
                st.hits += 1
                st.headshots += int(bool(event.get("headshot")))
        elif etype == "kill":
            target = event.get("target")
            if isinstance(target, str):
                for st in self._views(state, ts):
                    st.killed(target, ts, bool(event.get("headshot")))
                victim = self.players.get(target)
                if victim is not None:
                    for st in self._views(victim, ts):
                        st.engagements.clear()

    def _shot(self, state: PlayerState, ts: int, event: Mapping[str, Any]) -> None:
        weapon = event.get("weapon")
        target = event.get("target")
        for st in self._views(state, ts):
            st.shot(ts, weapon if isinstance(weapon, str) else None)
            if isinstance(target, str):
                st.engage(target, ts)  # at once: a kill in the same tick ends the engagement
        here = state.history[-1] if state.history else None
        x, y, z = _num(event, "x"), _num(event, "y"), _num(event, "z")
        if math.isnan(x + y + z):
            if here is None:
                return
            x, y, z = here.x, here.y, here.z
        yaw, pitch = float(event["yaw"]), float(event["pitch"])
        self.pending.append((state, target if isinstance(target, str) else None,
                             Sample(ts, x, y, z, yaw, pitch)))

    def settle(self, upto_ts: float = math.inf) -> None:
        """Analyse the pending shots whose tick's positions have all arrived."""
        keep = []
        for state, target, shot in self.pending:
            if shot.ts > upto_ts:
                keep.append((state, target, shot))
                continue
            reading, target_state = self._read_shot(state, target, shot)
            if reading is None or target_state is None:
                continue
            for st in self._views(state, shot.ts):
                if target is None:
                    st.engage(target_state.player, shot.ts)
                st.settled(reading)
        self.pending = keep

    def _read_shot(self, state: PlayerState, target: str | None,
                   shot: Sample) -> tuple[ShotReading | None, PlayerState | None]:
        target_state = self.players.get(target) if target is not None else None
        feet = (shot.x, shot.y, shot.z)
        if target_state is None:
            target_state = self._nearest_in_view(state, feet, shot.yaw, shot.pitch)
        if target_state is None or not target_state.history:
            return None, None
        t = _after(target_state.history, shot.ts)
        error = _error_to(shot, t, self.config.limits)
        on_box = hit_test(feet, shot.yaw, shot.pitch, (t.x, t.y, t.z)) is not None
        engage, reaction, delay, flick = self._reaction(state, target_state, shot)
        errors: tuple[float, ...] = ()
        jitter: tuple[float, ...] = ()
        lag = ZERO_TERMS
        tick = _after(state.history, shot.ts).ts
        # The last aimed shot at this same target, read once for both gaps:
        # None when there is none (another target, the first shot, or a
        # shot in the same tick).
        last = state.last_aimed
        since = last[0] if last is not None and last[1] == target_state.player and last[0] < tick else None
        burst = since is not None and tick - since <= self.config.track_gap_ms
        if since is not None and tick - since <= self.config.lag_gap_ms:
            # Error and jitter read one burst (shots at most track_gap_ms
            # apart); the lag reads across the burst pauses too.
            errors, jitter, lag = self._tracking(state, target_state, since, tick, burst=burst)
        opens = not burst
        state.last_aimed = (tick, target_state.player)
        return ShotReading(error, on_box, self._turn_at(state, shot), engage, reaction,
                           delay, flick, errors, jitter, lag, opens), target_state

    def _tracking(self, shooter: PlayerState, target: PlayerState, since_ts: int, end_ts: int,
                  *, burst: bool) -> tuple[tuple[float, ...], tuple[float, ...], LagTerms]:
        """The crosshair against the target over the ticks after ``since_ts`` up to ``end_ts``.

        The two are the ticks of two shots at the target. Between the shots
        of a burst the shooter is following the target, so these ticks read
        the quality of tracking alone, free of reaction and flick: the
        angular error to the nearer of chest and head each tick, and the
        *jitter*, how fast the crosshair moves relative to the target's
        chest from tick to tick (deg/s). A hand wobbles around a moving
        target; an aimbot's smoothing holds it, so both are small for it
        whatever the owner's skill would give. The same ticks are read
        against trackers that see the target late (:mod:`anticheat.tracking_lag`):
        a hand follows a target's turns a visuomotor delay late, a bot does
        not; the tick at ``since_ts`` (read by the previous shot) is where
        the first change is measured from. Only ticks where both players'
        positions share a timestamp (one server tick) are read. Outside a
        ``burst`` (a pause between bursts) only the lag is read: errors and
        jitter come back empty.
        """
        lim, step = self.config.limits, self.config.max_step_ms
        errors: list[float] = []
        jitter: list[float] = []
        lag = ZERO_TERMS
        prev: tuple[int, float, float] | None = None
        before: TrackingError | None = None
        for s in shooter.history:
            if not since_ts <= s.ts <= end_ts:
                continue
            t = _at(target.history, s.ts)
            if t.ts != s.ts:
                prev = before = None
                continue
            now = tracking_error(s, s.yaw, s.pitch, target.history, lim, step)
            if now is not None and before is not None and now.ts - before.ts <= step:
                lag = add_terms(lag, lag_terms(before, now))
            before = now
            if s.ts == since_ts or not burst:
                continue
            errors.append(_error_to(s, t, lim))
            ty, tp = aim_angles((s.x, s.y, s.z + lim.eye_height_m), (t.x, t.y, t.z + lim.chest_height_m))
            ey, ep = wrap_deg(s.yaw - ty) * math.cos(math.radians(tp)), s.pitch - tp
            if prev is not None and 0 < s.ts - prev[0] <= step:
                jitter.append(math.hypot(ey - prev[1], ep - prev[2]) * 1000.0 / (s.ts - prev[0]))
            prev = (s.ts, ey, ep)
        return tuple(errors), tuple(jitter), lag

    def _turn_at(self, state: PlayerState, shot: Sample) -> float:
        """Angular speed of the view over the tick the shot was fired in (deg/s)."""
        if not state.history:
            return NAN
        before = _at(state.history, shot.ts - 1)
        after = _after(state.history, shot.ts)
        dt_ms = after.ts - before.ts
        if before.ts >= shot.ts or not 0 < dt_ms <= self.config.max_step_ms:
            return NAN
        return angle_between(before.yaw, before.pitch, shot.yaw, shot.pitch) * 1000.0 / dt_ms

    def _enemies(self, state: PlayerState) -> list[PlayerState]:
        return [
            p for p in self.players.values()
            if p is not state and p.history and (state.team is None or p.team != state.team)
        ]

    def _error(self, target: PlayerState, feet: tuple[float, float, float], yaw: float,
               pitch: float, ts: int) -> float:
        """Angle between the shot and the nearer of the target's head and chest."""
        lim = self.config.limits
        t = _at(target.history, ts)
        eye = (feet[0], feet[1], feet[2] + lim.eye_height_m)
        best = math.inf
        for height in (lim.chest_height_m, lim.head_height_m):
            ty, tp = aim_angles(eye, (t.x, t.y, t.z + height))
            best = min(best, angle_between(yaw, pitch, ty, tp))
        return best

    def _nearest_in_view(self, state: PlayerState, feet: tuple[float, float, float],
                         yaw: float, pitch: float) -> PlayerState | None:
        best, best_err = None, 30.0
        for other in self._enemies(state):
            err = self._error(other, feet, yaw, pitch, other.history[-1].ts)
            if err < best_err:
                best, best_err = other, err
        return best

    def _reaction(self, shooter: PlayerState, target: PlayerState,
                  shot: Sample) -> tuple[float, float, float, float]:
        """Engagement, reaction, on-target and flick times of one shot at ``target``.

        Walks back from the shot through the shooter's recent positions (one
        vectorised line-of-sight call per shot, not per tick):

        - *engage*: from the tick the target appeared (the game's own
          eye-to-chest test, after at least ``hidden_before_ms`` out of
          sight) to the shot;
        - *reaction*: from that tick to the start of the flick toward the
          target, read between ticks from the flick's middle and peak speed
          (:func:`_flick_start`): the human's perception-to-motion delay;
        - *flick*: from that start to the first tick the crosshair is
          within the target's body radius, per bit of Fitts' index of
          difficulty ``log2(A / W + 1)`` (ms/bit: a human's ``b``, plus ``a``
          spread over the bits); an aimbot's flick is faster than its
          owner's hand;
        - *on-target delay*: how long the crosshair had been on the target's
          hitbox (the game's hit test) before the shot; a triggerbot fires on
          contact.

        A visibility onset is counted once: the first shot is the reaction,
        the rest of the spray are follow-ups (NaN for them).
        """
        cfg, lim = self.config, self.config.limits
        engage = reaction = delay = flick = NAN
        ts = shot.ts
        window = [shot]
        window += [s for s in reversed(shooter.history) if ts - cfg.reaction_window_ms <= s.ts < ts]
        if len(window) < 3:
            return engage, reaction, delay, flick
        targets = [_after(target.history, ts)] + [_at(target.history, s.ts) for s in window[1:]]
        seen = visible_many(self.game_map, [(s.x, s.y, s.z) for s in window],
                            [(t.x, t.y, t.z) for t in targets], lim)
        # A window cut short by the history (a spawn) has seen the target hidden since then.
        since_spawn = window[-1] is shooter.history[0] and window[-1].ts > ts - cfg.reaction_window_ms
        onset = _fresh_onset(window, seen, cfg.hidden_before_ms, since_spawn=since_spawn)
        if onset is not None and shooter.reacted_onsets.get(target.player) != window[onset].ts:
            onset_ts = window[onset].ts
            shooter.reacted_onsets[target.player] = onset_ts
            engage = float(ts - onset_ts)
            chrono = window[: onset + 1][::-1]  # from the onset tick to the shot
            chrono_t = targets[: onset + 1][::-1]
            errors = [_error_to(s, t, lim) for s, t in zip(chrono, chrono_t, strict=True)]
            turn = _flick_start(chrono, errors)
            # A movement that began well before the target appeared (a sweep
            # that ends on it) is no reaction to it.
            if turn is not None and turn[0] >= onset_ts - 25.0:
                reaction = max(turn[0] - onset_ts, 0.0)
                flick = _flick_ms_per_bit(chrono, chrono_t, errors, turn, lim)
        on_since = None
        for s, t in zip(window, targets, strict=True):
            if hit_test((s.x, s.y, s.z), s.yaw, s.pitch, (t.x, t.y, t.z)) is None:
                break
            on_since = s.ts
        else:
            return engage, reaction, delay, flick  # on target all along: tracking, not a trigger
        if on_since is not None:
            delay = float(ts - on_since)
        return engage, reaction, delay, flick

    # --- vectors ----------------------------------------------------------

    def median_step_ms(self) -> float:
        """The match's tick cadence: median of the players' median steps."""
        steps = sorted(
            p.steps.quantile(0.5) for p in self.players.values() if p.steps.count >= 20
        )
        return steps[len(steps) // 2] if steps else NAN

    def vector(self, player: str) -> dict[str, float]:
        self.settle(self.last_pos_ts)
        return self.player(player).vector(median_step_ms=self.median_step_ms())

    def vectors(self) -> dict[str, dict[str, float]]:
        self.settle(self.last_pos_ts)
        step = self.median_step_ms()
        return {name: p.vector(median_step_ms=step) for name, p in self.players.items()}


def _error_to(s: Sample, t: Sample, lim: Limits) -> float:
    """Angle from ``s``'s view to the nearer of ``t``'s chest and head."""
    eye = (s.x, s.y, s.z + lim.eye_height_m)
    best = math.inf
    for height in (lim.chest_height_m, lim.head_height_m):
        ty, tp = aim_angles(eye, (t.x, t.y, t.z + height))
        best = min(best, angle_between(s.yaw, s.pitch, ty, tp))
    return best


#: ln(P(bot-like shot | cheat) / P(... | human)) and the same for the opposite
#: outcome, from rates seen in simulated play: bots ~97% on the hitbox (humans
#: ~50%), aimbots ~90% within 0.5 degrees (humans ~25%).
_CUSUM_STEPS: Final[dict[str, tuple[float, float]]] = {
    "cusum_hitbox_max": (math.log(0.97 / 0.50), math.log(0.03 / 0.50)),
    "cusum_lock_max": (math.log(0.90 / 0.25), math.log(0.10 / 0.75)),
    "cusum_turn_max": (math.log(0.60 / 0.15), math.log(0.40 / 0.85)),
}

#: Where the crosshair was when a shot was fired: off the hitbox, on it
#: since an earlier tick, or on it since this very tick (first contact).
_CONTACT_OFF: Final = 0
_CONTACT_ON: Final = 1
_CONTACT_FIRST: Final = 2

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
_TRIGGER_STEPS: Final[dict[tuple[int, bool, bool], float]] = {
    # (contact, turning, opens): ln(bot rate / human rate)
    (_CONTACT_OFF, False, False): math.log(0.020 / 0.38),
    (_CONTACT_OFF, False, True): math.log(0.017 / 0.146),
    (_CONTACT_OFF, True, False): math.log(0.00025 / 0.0045),
    (_CONTACT_OFF, True, True): math.log(0.005 / 0.0045),
    (_CONTACT_ON, False, False): math.log(0.24 / 0.176),
    (_CONTACT_ON, False, True): math.log(0.035 / 0.081),
    (_CONTACT_ON, True, False): math.log(0.0045 / 0.0069),
    (_CONTACT_ON, True, True): math.log(0.0005 / 0.0037),
    (_CONTACT_FIRST, False, False): math.log(0.205 / 0.135),
    (_CONTACT_FIRST, False, True): math.log(0.33 / 0.060),
    (_CONTACT_FIRST, True, False): math.log(0.008 / 0.0017),
    (_CONTACT_FIRST, True, True): math.log(0.078 / 0.0022),
}

#: A shot on the hitbox fired under ``fast_engage_ms`` after its target came
#: into view, whatever the contact: 5.4% of the bot's shots, 0.03% of a
#: human's (7 of 23,362), whose reaction, flick and settling take longer.
_FAST_OPENING_STEP: Final = math.log(0.054 / 0.0003)


def _flick_ms_per_bit(chrono: list[Sample], targets: list[Sample], errors: list[float],
                      start: tuple[float, int], lim: Limits) -> float:
    """Time from the flick's ``start`` to the first tick within the target's body radius, per bit.

    ``start`` is :func:`_flick_start`'s (ms, index of the last tick at or
    before it); the amplitude is the error at that tick. NaN when the
    crosshair never got there before the shot or the flick is too easy
    (under one bit) to say anything.
    """
    start_ms, still = start
    s, t = chrono[still], targets[still]
    dist = math.hypot(t.x - s.x, t.y - s.y)
    if dist <= 0.0:
        return NAN
    width = 2.0 * math.degrees(math.atan2(PLAYER_RADIUS_M, dist))
    bits = math.log2(errors[still] / width + 1.0)
    if bits < 1.0:
        return NAN
    for k in range(still + 1, len(errors)):
        if errors[k] <= width / 2.0:
            return (chrono[k].ts - start_ms) / bits
    return NAN


def _fresh_onset(window: list[Sample], seen: list[bool], hidden_ms: int, *,
                 since_spawn: bool = False) -> int | None:
    """Index in ``window`` (newest first) of the tick the target appeared, or None.

    The target must be visible from that tick to the shot and hidden for at
    least ``hidden_ms`` before it (or since the shooter's spawn, when
    ``since_spawn`` says the window starts there): a target that ducks
    behind a pillar for a moment mid-fight has not appeared, and the
    shooter still engaged with it is not reacting to it.
    """
    if not seen[1]:
        return None
    for i in range(2, len(window)):
        if not seen[i]:
            onset = i - 1
            hidden_from = window[onset].ts - hidden_ms
            for k in range(i, len(window)):
                if seen[k]:
                    return None
                if window[k].ts <= hidden_from:
                    return onset
            return onset if since_spawn else None
    return None


def _flick_start(chrono: list[Sample], errors: list[float]) -> tuple[float, int] | None:
    """When the flick toward the target began, from its middle and its peak speed.

    A human flick follows a minimum-jerk profile: it reaches half its
    amplitude ``A`` at mid-duration and peaks there at ``1.875 A / T``. So the
    start is the interpolated half-way crossing minus ``T / 2``, with ``T``
    from the fastest tick-to-tick closing speed. Reading the start off the
    middle of the movement rather than its first visible tick keeps the
    look-around of an idle view (a few degrees per tick either way) and the
    flick's slow first milliseconds out of the reaction time. Returns the
    start (ms) and the index of the last tick at or before it; None when the
    view never closed in on the target.
    """
    first = errors[0]
    if first < 3.0 or len(errors) < 3:
        return None
    low = min(range(len(errors)), key=errors.__getitem__)
    amplitude = first - errors[low]
    if amplitude < max(2.0, 0.3 * first):
        return None
    half = first - amplitude / 2.0
    k = next(i for i in range(1, low + 1) if errors[i] <= half)
    e0, e1, t0, t1 = errors[k - 1], errors[k], chrono[k - 1].ts, chrono[k].ts
    mid = t0 + (t1 - t0) * (e0 - half) / (e0 - e1)
    peak = max(
        (errors[i - 1] - errors[i]) / (chrono[i].ts - chrono[i - 1].ts)
        for i in range(1, low + 1) if chrono[i].ts > chrono[i - 1].ts
    )
    if peak <= 0.0:
        return None
    duration = 1.875 * amplitude / peak
    start = mid - duration / 2.0
    if duration <= 2.0 * (chrono[k].ts - chrono[k - 1].ts):
        # Too fast for the tick rate to show its profile (a snap): it began
        # after the last tick at which the view had not yet moved.
        resting = max(i for i in range(k) if errors[i] >= first - 0.01 * amplitude)
        start = max(start, float(chrono[resting].ts))
    still = max((i for i in range(low + 1) if chrono[i].ts <= start), default=0)
    if first - errors[still] > max(2.0, 0.25 * amplitude):
        return None  # the view was already closing in (walking that way, a drifting look): no clean start
    return start, still


def _nanmax(a: float, b: float) -> float:
    """``max`` where NaN means "nothing yet"."""
    if math.isnan(a):
        return b
    return a if math.isnan(b) or a >= b else b


def _after(history: deque[Sample], ts: int) -> Sample:
    """The first sample at or after ``ts`` (the newest one if none): the shot's tick."""
    for s in history:
        if s.ts >= ts:
            return s
    return history[-1]


def _at(history: deque[Sample], ts: int) -> Sample:
    """The latest sample at or before ``ts`` (the oldest one if none)."""
    for s in reversed(history):
        if s.ts <= ts:
            return s
    return history[0]
