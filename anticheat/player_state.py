"""Everything the features remember about one player in one match, and the vector read from it.

:class:`PlayerState` folds a player's positions (movement and the view's
motion), shots and outcomes into running histograms, samples and CUSUMs,
and :meth:`PlayerState.vector` reads them into the feature vector
(:data:`anticheat.schema.FEATURE_NAMES`). It knows nothing of other
players: what a shot shows against its target (reaction, tracking, the
hit test) is read by :mod:`anticheat.shot_reading` and handed over as a
:class:`ShotReading`. :mod:`anticheat.features` routes a match's events to
the states of its players and windows.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple

from anticheat.physics import wrap_deg
from anticheat.schema import FeatureConfig
from anticheat.shot_evidence import STEP_KINDS, outcome_step, shot_step
from anticheat.stats import NAN, Histogram, Samples, quantile
from anticheat.tracking_lag import ZERO_TERMS, LagFit, LagTerms

__all__ = ["PlayerState", "Sample", "ShotReading", "event_number", "shrink"]

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


def event_number(event: Mapping[str, Any], key: str, default: float = NAN) -> float:
    """``event[key]`` as a float; ``default`` when missing or not a number (a bool is not one)."""
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
                      "cusum_turn_max": 0.0, "cusum_aim_max": 0.0}
        self.cusum_now = {k: 0.0 for k in self.cusum}
        # Where each CUSUM's highest climb began and peaked (shot ticks), for
        # the analyst: the stretch a closet cheater had it on. Kept on the
        # match-long state, whose shots carry their tick (``last_aimed``).
        self.climb_from: dict[str, int] = {}
        self.climbs: dict[str, tuple[int, int]] = {}
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
        x, y, z = event_number(event, "x"), event_number(event, "y"), event_number(event, "z")
        if not math.isnan(x + y + z):
            yaw, pitch = event_number(event, "yaw", 0.0), event_number(event, "pitch", 0.0)
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

    def settled(self, r: ShotReading, steps: Mapping[str, float] | None = None) -> None:
        """Fold one analysed shot into the state (see :class:`ShotReading`).

        ``steps`` are the shot's aim and trigger CUSUM steps
        (:func:`~anticheat.shot_evidence.shot_step`) when the caller has
        them already: :class:`anticheat.features.MatchFeatures` weighs the
        shots of a tick in one call to each step model and folds each shot
        into the match-long state and every window's.
        """
        if steps is None:
            steps = {kind: shot_step(kind, r, self.ping_ms, self.weapon) for kind in STEP_KINDS}
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
        self._climb("cusum_aim_max", steps["aim"])
        self.window_shot(r.on_box, r.turn_deg_s >= self.config.turn_fast_deg_s, trigger_step=steps["trigger"])

    # --- the vector -------------------------------------------------------

    def window_shot(self, on_box: bool, turning: bool = False, *, trigger_step: float = 0.0) -> None:
        """Fold the settled shot into the rolling window and the outcome CUSUMs, and keep their extremes."""
        trigger = on_box and self.last_delay <= 1.0  # fired the tick the crosshair met the hitbox
        locked = self.shot_error_last <= self.config.lock_deg
        steps = {
            "cusum_trigger_max": trigger_step,
            "cusum_hitbox_max": outcome_step("cusum_hitbox_max", on_box),
            "cusum_lock_max": outcome_step("cusum_lock_max", locked),
            "cusum_turn_max": outcome_step("cusum_turn_max", turning),
        }
        for name, step in steps.items():
            self._climb(name, step)
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

    def _climb(self, name: str, step: float) -> None:
        """Add ``step`` to the CUSUM ``name`` (floored at zero) and keep its highest."""
        before = self.cusum_now[name]
        now = max(0.0, before + step)
        self.cusum_now[name] = now
        tick = self.last_aimed[0] if self.last_aimed is not None else None
        if tick is not None and before == 0.0 and now > 0.0:
            self.climb_from[name] = tick
        if now > self.cusum[name]:
            self.cusum[name] = now
            if tick is not None and name in self.climb_from:
                self.climbs[name] = (self.climb_from[name], tick)

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


def _nanmax(a: float, b: float) -> float:
    """``max`` where NaN means "nothing yet"."""
    if math.isnan(a):
        return b
    return a if math.isnan(b) or a >= b else b
