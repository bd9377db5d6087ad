"""The human motor models: reaction times, Fitts' law, minimum-jerk flicks."""

from __future__ import annotations

import numpy as np
import pytest

from gamebus.sim.aim import (
    RT_FLOOR_MS,
    ex_gaussian_ms,
    fitts_duration_ms,
    min_jerk,
    min_jerk_speed,
    plan_flick,
    target_width_deg,
)
from gamebus.sim.profiles import sample_profiles


def test_population_reaction_times_average_near_250_ms_with_a_floor_near_150():
    rng = np.random.default_rng(0)
    draws = np.concatenate([
        ex_gaussian_ms(rng, p.rt_mu_ms, p.rt_sigma_ms, p.rt_tau_ms, size=50)
        for p in sample_profiles(rng, 400)
    ])
    assert 235.0 <= draws.mean() <= 275.0
    assert draws.min() >= RT_FLOOR_MS == 150.0
    assert np.percentile(draws, 1) < 175.0  # the floor is approached, not a wall far below
    assert np.percentile(draws, 99) > 380.0  # the exponential tail of slow reactions


def test_reaction_times_have_no_spike_at_the_floor():
    draws = ex_gaussian_ms(np.random.default_rng(1), 160.0, 25.0, 40.0, size=20_000)
    assert (draws == RT_FLOOR_MS).mean() < 0.001


def test_fitts_law_longer_and_narrower_takes_longer():
    times = [fitts_duration_ms(70, 100, d, 2.0) for d in (2, 5, 10, 20, 40, 80)]
    assert times == sorted(times) and times[0] < times[-1]
    assert fitts_duration_ms(70, 100, 20, 1.0) > fitts_duration_ms(70, 100, 20, 4.0)
    assert fitts_duration_ms(70, 100, 30, 2.0) == pytest.approx(70 + 100 * np.log2(16))


def test_planned_flick_durations_grow_with_amplitude_despite_noise():
    rng = np.random.default_rng(2)

    def mean_duration(amplitude: float) -> float:
        return float(np.mean([
            plan_flick(rng, t0_ms=0.0, start=(0.0, 0.0), goal=(amplitude, 0.0), width_deg=1.5,
                       a_ms=70, b_ms=100, overshoot=0.1, scatter=0.08).duration_ms
            for _ in range(300)
        ]))

    short, mid, long = mean_duration(5), mean_duration(30), mean_duration(90)
    assert short < mid < long
    assert long - short > 150.0


def test_flicks_overshoot_on_average():
    rng = np.random.default_rng(3)
    ends = [plan_flick(rng, t0_ms=0.0, start=(0.0, 0.0), goal=(40.0, 0.0), width_deg=1.5,
                       a_ms=70, b_ms=100, overshoot=0.1, scatter=0.05).dyaw for _ in range(500)]
    assert 42.0 < np.mean(ends) < 46.0


def test_minimum_jerk_profile_is_bell_shaped():
    u = np.linspace(0, 1, 101)
    s, v = min_jerk(u), min_jerk_speed(u)
    assert s[0] == 0.0 and s[-1] == pytest.approx(1.0) and s[50] == pytest.approx(0.5)
    assert v[0] == 0.0 and v[-1] == 0.0 and v.argmax() == 50
    assert v[50] == pytest.approx(1.875)
    assert np.allclose(v, v[::-1])
    assert (np.diff(s) >= 0).all()


def test_target_width_shrinks_with_distance():
    assert target_width_deg(0.4, 5.0) > target_width_deg(0.4, 50.0)
    assert target_width_deg(0.4, 10.0) == pytest.approx(2 * np.degrees(np.arctan(0.04)))
