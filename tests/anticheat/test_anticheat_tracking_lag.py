"""The tracking lag on hand-made traces: a target strafing back and forth, trackers of known delay."""

from __future__ import annotations

import math
import random
import statistics
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anticheat.features import Sample
from anticheat.physics import Limits, aim_angles
from anticheat.tracking_lag import (
    GAIN_AT_MS,
    LAG_GRID_MS,
    MIN_TICKS,
    VELOCITY_SPAN_MS,
    LagFit,
    TrackingError,
    lag_terms,
    position_at,
    tracking_error,
    velocity_at,
)

LIM = Limits()
TICK_MS = 50
SHOOTER = Sample(0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _strafe(ts: float) -> tuple[float, float, float]:
    """15 m ahead, strafing across the line of fire: 0.4 m either way, 0.8 s a cycle."""
    return 15.0, 0.4 * math.sin(2.0 * math.pi * ts / 800.0), 0.0


def _target_history(until_ms: int) -> list[Sample]:
    return [Sample(ts, *_strafe(ts), 0.0, 0.0) for ts in range(0, until_ms + 1, TICK_MS)]


def _seen(ts: int, delay_ms: int) -> tuple[float, float, float]:
    """Where a hand ``delay_ms`` late aims: the target then, extrapolated by its motion then."""
    then, before = _strafe(ts - delay_ms), _strafe(ts - delay_ms - VELOCITY_SPAN_MS)
    k = delay_ms / VELOCITY_SPAN_MS
    return tuple(a + (a - b) * k for a, b in zip(then, before, strict=True))  # type: ignore[return-value]


def _add_ticks(fit: LagFit, errors: list[TrackingError | None]) -> LagFit:
    """Fold consecutive ticks' errors into ``fit`` as the service does: one change per pair."""
    for before, now in pairwise(errors):
        assert before is not None and now is not None
        fit.add(lag_terms(before, now))
    return fit


def _fit(delay_ms: int, pull: float = 0.0, ticks: int = 60) -> LagFit:
    """A tracker ``delay_ms`` late, of which a bot does ``pull`` from where the target is."""
    eye = (0.0, 0.0, LIM.eye_height_m)
    errors = []
    for k in range(ticks + 1):
        ts = 1000 + k * TICK_MS
        seen, now = _seen(ts, delay_ms), _strafe(ts)
        point = tuple(s * (1.0 - pull) + n * pull for s, n in zip(seen, now, strict=True))
        yaw, pitch = aim_angles(eye, (point[0], point[1], point[2] + LIM.chest_height_m))
        errors.append(tracking_error(SHOOTER._replace(ts=ts), yaw, pitch, _target_history(ts), LIM, 250))
    return _add_ticks(LagFit(), errors)


def test_position_between_two_ticks_is_interpolated_and_nothing_is_read_across_a_gap():
    h = [Sample(0, 0.0, 0.0, 0.0, 0.0, 0.0), Sample(50, 1.0, 2.0, 0.0, 0.0, 0.0),
         Sample(900, 5.0, 5.0, 0.0, 0.0, 0.0)]
    assert position_at(h, 20, 250) == pytest.approx((0.4, 0.8, 0.0))
    assert position_at(h, 50, 250) == (1.0, 2.0, 0.0)
    assert position_at(h, -1, 250) is None
    assert position_at(h, 901, 250) is None
    assert position_at(h, 400, 250) is None  # a respawn or lost packets between 50 and 900


@pytest.mark.parametrize("delay_ms", [*(d for d in LAG_GRID_MS if d), 120, 180])
def test_a_tracker_reads_near_its_delay_and_later_trackers_read_later(delay_ms):
    # The parabola through the grid's best point and its neighbours is not
    # the residual's true curve, so the reading sits up to 15 ms early on
    # this trace; the order of trackers is what the model needs.
    lag = _fit(delay_ms).lag_ms()
    assert delay_ms - 16.0 <= lag <= delay_ms + 5.0
    if delay_ms + 20 <= LAG_GRID_MS[-1]:  # past the grid every tracker reads its end
        assert _fit(delay_ms + 20).lag_ms() > lag


def test_a_tracker_on_the_target_itself_reads_no_lag_and_no_gain():
    fit = _fit(GAIN_AT_MS, pull=1.0)
    assert fit.lag_ms() == 0.0
    assert fit.gain() == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(pull=st.floats(0.0, 1.0))
def test_the_gain_is_the_hands_share_of_a_typical_delay(pull):
    # (up to the angles' own curvature, a thousandth)
    assert _fit(GAIN_AT_MS, pull=pull).gain() == pytest.approx(1.0 - pull, abs=1e-3)


def test_a_bot_doing_part_of_the_tracking_looks_like_a_shorter_delay():
    human, bot = _fit(150).lag_ms(), _fit(150, pull=0.6).lag_ms()
    assert bot < human - 40.0


def _ad_strafe(ts: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """15 m ahead, strafing at 4 m/s and reversing at once every 400 ms (position, velocity)."""
    leg, into = divmod(ts, 400)
    right = leg % 2 == 0
    y = (into if right else 400 - into) * 4.0 / 1000.0 - 0.8
    return (15.0, y, 0.0), (0.0, 4.0 if right else -4.0, 0.0)


def _drifting_fit(delay_ms: int, seed: int, *, ticks: int = 60) -> LagFit:
    """A hand ``delay_ms`` late on the A-D strafe, drifting off by 1 deg over a quarter of a second."""
    rng = random.Random(seed)
    history = [Sample(ts, *_ad_strafe(ts)[0], 0.0, 0.0, *_ad_strafe(ts)[1])
               for ts in range(0, 1000 + (ticks + 1) * TICK_MS, TICK_MS)]
    eye = (0.0, 0.0, LIM.eye_height_m)
    keep = math.exp(-TICK_MS / 250.0)
    drift = [0.0, 0.0]
    errors = []
    for k in range(ticks + 1):
        ts = 1000 + k * TICK_MS
        then, v = _ad_strafe(ts - delay_ms)
        seen = tuple(p + u * delay_ms / 1000.0 for p, u in zip(then, v, strict=True))
        yaw, pitch = aim_angles(eye, (seen[0], seen[1], seen[2] + LIM.chest_height_m))
        drift = [d * keep + rng.gauss(0.0, 1.0) * math.sqrt(1.0 - keep * keep) for d in drift]
        upto = [h for h in history if h.ts <= ts]
        errors.append(tracking_error(SHOOTER._replace(ts=ts), yaw + drift[0], pitch + drift[1], upto, LIM, 250))
    return _add_ticks(LagFit(), errors)


def test_a_hands_slow_drift_hardly_moves_the_reading_on_a_strafe_that_reverses():
    # The delay shows where the target turns: a late tracker keeps going the
    # old way, then catches up, a sharp change from one tick to the next.
    # A hand's own error drifts off and back over a quarter of a second,
    # mostly carried from tick to tick. Read on the changes, the drift
    # cancels: across 40 hands the gain spreads by 0.068 and the lag by
    # 1.1 ms; read on the errors themselves, by 0.123 and 3.8 ms.
    gains, lags = [], []
    for seed in range(1, 41):
        fit = _drifting_fit(150, seed)
        gains.append(fit.gain())
        lags.append(fit.lag_ms())
    assert statistics.fmean(gains) == pytest.approx(1.0, abs=0.03)
    assert statistics.stdev(gains) < 0.09
    assert 130.0 <= statistics.fmean(lags) <= 155.0
    assert statistics.stdev(lags) < 2.0


def test_too_few_ticks_read_nothing():
    fit = _fit(150, ticks=MIN_TICKS - 1)
    assert math.isnan(fit.lag_ms())
    assert math.isnan(fit.gain())


def test_a_tick_without_the_targets_past_reads_nothing():
    history = _target_history(1000)[-3:]  # 100 ms of history: not enough for any delay
    assert tracking_error(SHOOTER._replace(ts=1000), 0.0, 0.0, history, LIM, 250) is None


def test_reported_velocity_is_interpolated_and_a_missing_one_reads_nothing():
    nan, inf = math.nan, math.inf
    h = [Sample(0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0), Sample(50, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, -2.0, 1.0),
         Sample(100, 0.0, 0.0, 0.0, 0.0, 0.0, nan, nan, nan), Sample(150, 0.0, 0.0, 0.0, 0.0, 0.0, inf, 0.0, 0.0),
         Sample(900, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0), Sample(950, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0)]
    assert velocity_at(h, 25, 250) == pytest.approx((2.0, -1.0, 0.5))
    assert velocity_at(h, 50, 250) == (3.0, -2.0, 1.0)
    assert velocity_at(h, 75, 250) is None  # the game did not report it at 100
    assert velocity_at(h, 150, 250) is None  # nor a finite one at 150
    assert velocity_at(h, 500, 250) is None  # across a gap
    assert velocity_at(h, 925, 250) == (1.0, 1.0, 1.0)
    assert velocity_at(h, 951, 250) is None


def _strafe_velocity(ts: float) -> tuple[float, float, float]:
    w = 2.0 * math.pi / 800.0
    return 0.0, 0.4 * w * math.cos(w * ts) * 1000.0, 0.0


def _published_fit(delay_ms: int, *, report_velocity: bool, late_sd_ms: float = 15.0) -> LagFit:
    """A hand ``delay_ms`` late on the true motion; the server publishes each position late.

    As a game server does: a position is where the client was a few ms ago,
    by a lateness that changes every tick; the velocity is the server's own.
    """
    rng = random.Random(7)
    history = []
    for ts in range(0, 5001, TICK_MS):
        late = min(abs(rng.gauss(0.0, 1.0)), 3.0) * late_sd_ms
        v = _strafe_velocity(ts) if report_velocity else (math.nan,) * 3
        history.append(Sample(ts, *_strafe(ts - late), 0.0, 0.0, *v))
    eye = (0.0, 0.0, LIM.eye_height_m)
    errors = []
    for k in range(81):
        ts = 1000 + k * TICK_MS
        then, v = _strafe(ts - delay_ms), _strafe_velocity(ts - delay_ms)
        seen = tuple(p + u * delay_ms / 1000.0 for p, u in zip(then, v, strict=True))
        yaw, pitch = aim_angles(eye, (seen[0], seen[1], seen[2] + LIM.chest_height_m))
        upto = [h for h in history if h.ts <= ts]
        errors.append(tracking_error(SHOOTER._replace(ts=ts), yaw, pitch, upto, LIM, 250))
    return _add_ticks(LagFit(), errors)


def test_the_reported_velocity_keeps_late_published_positions_from_hiding_the_lag():
    # A velocity differenced from two positions is the mean of the last tick,
    # half a tick behind the hand's, and extrapolating it 150 ms multiplies
    # the positions' lateness threefold: both are noise in what a late
    # tracker would do, which pulls the gain toward 0, a bot's reading
    # (here 0.58 against 1.06 with the reported velocity).
    reported = _published_fit(150, report_velocity=True)
    differenced = _published_fit(150, report_velocity=False)
    assert reported.gain() == pytest.approx(1.0, abs=0.1)
    assert abs(reported.lag_ms() - 150.0) <= 20.0
    assert differenced.gain() < reported.gain() - 0.1
