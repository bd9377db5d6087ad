"""What one shot shows against its target: error, hit test, reaction, flick, tracking.

The geometry of a shot read against the positions of its shooter and
target around it: the angular error and the game's hit test at the shot,
the reaction from the target's appearance (the game's own line-of-sight
test) to the flick toward it, the flick's time per bit of Fitts' index of
difficulty, how long the crosshair had rested on the hitbox, the view's
turn over the shot's tick, and the tracking between shots at the same
target (error, jitter and the lag of :mod:`anticheat.tracking_lag`).
:func:`read_shot` returns it all as a
:class:`~anticheat.player_state.ShotReading`, which
:mod:`anticheat.features` folds into the shooter's state and windows.
Pure functions of position histories, tested through
:class:`anticheat.features.MatchFeatures` on hand-made traces.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from anticheat.physics import Limits, aim_angles, angle_between, visible_many, wrap_deg
from anticheat.player_state import PlayerState, Sample, ShotReading
from anticheat.schema import FeatureConfig
from anticheat.stats import NAN
from anticheat.tracking_lag import (
    ZERO_TERMS,
    LagTerms,
    TrackingError,
    add_terms,
    lag_terms,
    tracking_error,
)
from gamebus.sim.weapons import hit_test
from gamebus.sim.world import PLAYER_RADIUS_M, GameMap

__all__ = ["nearest_in_view", "read_shot"]

def read_shot(shooter: PlayerState, target: PlayerState, shot: Sample, *,
              config: FeatureConfig, game_map: GameMap | None) -> ShotReading:
    """What one shot of ``shooter`` at ``target`` shows, once its tick's positions are in.

    Remembers on ``shooter`` what the next shot needs (its last aimed shot,
    the visibility onsets already reacted to), so shots must be read in
    order.
    """
    feet = (shot.x, shot.y, shot.z)
    t = _after(target.history, shot.ts)
    error = _error_to(shot, t, config.limits)
    on_box = hit_test(feet, shot.yaw, shot.pitch, (t.x, t.y, t.z)) is not None
    engage, reaction, delay, flick = _reaction(shooter, target, shot, config=config, game_map=game_map)
    errors: tuple[float, ...] = ()
    jitter: tuple[float, ...] = ()
    lag = ZERO_TERMS
    tick = _after(shooter.history, shot.ts).ts
    # The last aimed shot at this same target, read once for both gaps:
    # None when there is none (another target, the first shot, or a
    # shot in the same tick).
    last = shooter.last_aimed
    since = last[0] if last is not None and last[1] == target.player and last[0] < tick else None
    burst = since is not None and tick - since <= config.track_gap_ms
    if since is not None and tick - since <= config.lag_gap_ms:
        # Error and jitter read one burst (shots at most track_gap_ms
        # apart); the lag reads across the burst pauses too.
        errors, jitter, lag = _tracking(shooter, target, since, tick, burst=burst, config=config)
    opens = not burst
    shooter.last_aimed = (tick, target.player)
    return ShotReading(error, on_box, _turn_at(shooter, shot, config.max_step_ms), engage, reaction,
                       delay, flick, errors, jitter, lag, opens)


def nearest_in_view(shot: Sample, enemies: Iterable[PlayerState], lim: Limits) -> PlayerState | None:
    """The enemy nearest the crosshair (within 30 degrees) at their latest position.

    A shot's target when the game's shot event names none.
    """
    best, best_err = None, 30.0
    for other in enemies:
        err = _error_to(shot, other.history[-1], lim)
        if err < best_err:
            best, best_err = other, err
    return best


def _tracking(shooter: PlayerState, target: PlayerState, since_ts: int, end_ts: int,
              *, burst: bool, config: FeatureConfig) -> tuple[tuple[float, ...], tuple[float, ...], LagTerms]:
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
    lim, step = config.limits, config.max_step_ms
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


def _turn_at(state: PlayerState, shot: Sample, max_step_ms: int) -> float:
    """Angular speed of the view over the tick the shot was fired in (deg/s)."""
    if not state.history:
        return NAN
    before = _at(state.history, shot.ts - 1)
    after = _after(state.history, shot.ts)
    dt_ms = after.ts - before.ts
    if before.ts >= shot.ts or not 0 < dt_ms <= max_step_ms:
        return NAN
    return angle_between(before.yaw, before.pitch, shot.yaw, shot.pitch) * 1000.0 / dt_ms


def _reaction(shooter: PlayerState, target: PlayerState, shot: Sample, *,
              config: FeatureConfig, game_map: GameMap | None) -> tuple[float, float, float, float]:
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
    cfg, lim = config, config.limits
    engage = reaction = delay = flick = NAN
    ts = shot.ts
    window = [shot]
    window += [s for s in reversed(shooter.history) if ts - cfg.reaction_window_ms <= s.ts < ts]
    if len(window) < 3:
        return engage, reaction, delay, flick
    targets = [_after(target.history, ts)] + [_at(target.history, s.ts) for s in window[1:]]
    seen = visible_many(game_map, [(s.x, s.y, s.z) for s in window],
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


def _error_to(s: Sample, t: Sample, lim: Limits) -> float:
    """Angle from ``s``'s view to the nearer of ``t``'s chest and head."""
    eye = (s.x, s.y, s.z + lim.eye_height_m)
    best = math.inf
    for height in (lim.chest_height_m, lim.head_height_m):
        ty, tp = aim_angles(eye, (t.x, t.y, t.z + height))
        best = min(best, angle_between(s.yaw, s.pitch, ty, tp))
    return best


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
