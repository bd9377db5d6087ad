"""Human aiming: reaction times, flick durations and their speed profile.

These are the motor-control models the anti-cheat has to tell apart from a
bot, kept pure (numbers in, numbers out) so tests check them directly:

- reaction time: ex-Gaussian ``mu + N(0, sigma) + Exp(tau)``, floored near
  150 ms (nobody reacts faster to a visual stimulus);
- flick duration: Fitts' law ``T = a + b * log2(D / W + 1)`` for an angular
  amplitude ``D`` onto a target of angular width ``W``, with lognormal noise;
- flick trajectory: minimum jerk, ``s(u) = 10u^3 - 15u^4 + 6u^5``, whose
  speed ``s'(u) = 30u^2 (1 - u)^2`` is the bell-shaped profile of real aiming;
- endpoint: an overshoot along the movement and a scatter proportional to the
  amplitude (speed-accuracy trade-off), then a shorter corrective flick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from gamebus.sim.arrays import FloatArray
from gamebus.sim.world import wrap_deg

__all__ = [
    "RT_FLOOR_MS",
    "Flick",
    "ex_gaussian_ms",
    "fitts_duration_ms",
    "min_jerk",
    "min_jerk_speed",
    "plan_flick",
    "target_width_deg",
]


#: No human reacts to a visual stimulus faster than this (ms).
RT_FLOOR_MS: Final = 150.0
#: Shortest sub-movement a hand makes (ms).
_MIN_FLICK_MS: Final = 45.0


def ex_gaussian_ms(
    rng: np.random.Generator,
    mu: float,
    sigma: float,
    tau: float,
    *,
    floor_ms: float = RT_FLOOR_MS,
    size: int | None = None,
) -> FloatArray:
    """Draw reaction times (ms); draws below ``floor_ms`` are drawn again.

    Redrawing, not clipping, keeps a smooth left edge instead of a spike of
    identical values at the floor that a detector would learn.
    """
    n = 1 if size is None else size
    out = rng.normal(mu, sigma, n) + rng.exponential(tau, n)
    for _ in range(20):
        low = out < floor_ms
        if not low.any():
            break
        k = int(low.sum())
        out[low] = rng.normal(mu, sigma, k) + rng.exponential(tau, k)
    result: FloatArray = np.maximum(out, floor_ms)
    return result


def fitts_duration_ms(a_ms: float, b_ms: float, amplitude_deg: float, width_deg: float) -> float:
    """Fitts' law (Shannon form): the time to move ``amplitude_deg`` onto a target."""
    width = max(width_deg, 1e-3)
    return a_ms + b_ms * math.log2(amplitude_deg / width + 1.0)


def min_jerk(u: FloatArray) -> FloatArray:
    """Fraction of the distance covered at normalised time ``u`` (clipped to [0, 1])."""
    u = np.clip(u, 0.0, 1.0)
    result: FloatArray = u * u * u * (10.0 + u * (-15.0 + 6.0 * u))
    return result


def min_jerk_speed(u: FloatArray) -> FloatArray:
    """Derivative of :func:`min_jerk`: zero at both ends, peak 1.875 at ``u = 0.5``."""
    u = np.clip(u, 0.0, 1.0)
    result: FloatArray = 30.0 * u * u * (1.0 - u) ** 2
    return result


def target_width_deg(radius_m: float, distance_m: float) -> float:
    """The angular width of a target of ``radius_m`` seen from ``distance_m``."""
    return math.degrees(2.0 * math.atan2(radius_m, max(distance_m, 0.1)))


@dataclass(frozen=True, slots=True)
class Flick:
    """One sub-movement: from ``(yaw0, pitch0)`` by ``(dyaw, dpitch)`` over ``duration_ms``."""

    t0_ms: float
    duration_ms: float
    yaw0: float
    pitch0: float
    dyaw: float
    dpitch: float

    @property
    def end_ms(self) -> float:
        return self.t0_ms + self.duration_ms

    @property
    def end(self) -> tuple[float, float]:
        return wrap_deg(self.yaw0 + self.dyaw), self.pitch0 + self.dpitch


def plan_flick(
    rng: np.random.Generator,
    *,
    t0_ms: float,
    start: tuple[float, float],
    goal: tuple[float, float],
    width_deg: float,
    a_ms: float,
    b_ms: float,
    overshoot: float,
    scatter: float,
    duration_noise: float = 0.12,
) -> Flick:
    """A flick from ``start`` toward ``goal`` (yaw, pitch in degrees).

    The endpoint overshoots along the movement by ``overshoot`` on average
    (sd 60% of it) and scatters by ``scatter`` times the amplitude; the caller
    plans a corrective flick from :attr:`Flick.end` when this one ends.
    """
    dyaw = wrap_deg(goal[0] - start[0])
    dpitch = goal[1] - start[1]
    amplitude = math.hypot(dyaw, dpitch)
    gain = 1.0 + rng.normal(overshoot, 0.6 * overshoot + 1e-6)
    spread = scatter * amplitude
    ex, ey = rng.normal(0.0, spread + 0.05, 2)
    duration = fitts_duration_ms(a_ms, b_ms, amplitude, width_deg)
    duration *= float(np.exp(rng.normal(0.0, duration_noise)))
    return Flick(
        t0_ms=t0_ms,
        duration_ms=max(duration, _MIN_FLICK_MS),
        yaw0=start[0],
        pitch0=start[1],
        dyaw=dyaw * gain + ex,
        dpitch=dpitch * gain + 0.5 * ey,
    )
