"""How late a player's crosshair follows a target that changes course.

A person tracking a moving target answers what the eyes saw a visuomotor
delay ago (100-200 ms), extrapolated along the motion seen then: a target
keeping its course is followed without lag, but when it turns (a strafe
reversed, a jump's arc) the crosshair keeps going the old way until the
delay has passed. An aimbot reads where the target *is* from the game's
memory, so the share of the tracking it does has no such delay.

For each tick of tracking, :func:`tracking_error` reads the crosshair's
error ``e`` (crosshair minus the direction to the target's chest) and
``L_d``, the error a tracker delayed by ``d`` would make if it aimed
exactly at its extrapolation, for every ``d`` of :data:`LAG_GRID_MS`. The
extrapolation uses the velocity the server reports with each position when
there is one: published positions are a few ms late by a lateness that
changes every tick, and a velocity differenced from two of them over one
tick carries that noise times ``d / tick`` (three times over at 150 ms and
20 Hz), and noise in ``L_d`` pulls every reading toward "no lag".

:func:`lag_terms` compares how ``e`` and each ``L_d`` *changed* from one
tick to the next, not their values. Most of a hand's error is carried from
tick to tick: an aim point held above the chest for a whole engagement
(the head), a drift off the target that takes a quarter of a second to
come back. Those add to ``e`` without any relation to the target's turns,
and cancel in the change over one tick; what is left is what the delay
predicts (what that gained on simulated matches is in docs/anticheat.md,
"Tracking lag").
:class:`LagFit` sums the products of the changes over a match and reads
two numbers off them:

- :meth:`LagFit.lag_ms`, the delay whose predicted changes leave the least
  squared residual (``sum (de - dL_d)^2``; the change of the hand's own
  noise is independent of ``dL_d``, so it only adds a constant);
- :meth:`LagFit.gain`, the least-squares slope of ``de`` on ``dL_d`` at
  :data:`GAIN_AT_MS`: about 1 for a person with that delay, less for a
  shorter one, and less again for a bot that does part of the tracking.

Pure functions of positions and view angles, so they are tested on
hand-made traces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

from anticheat.physics import Limits, aim_angles, wrap_deg

__all__ = [
    "GAIN_AT_MS",
    "LAG_GRID_MS",
    "ZERO_TERMS",
    "LagFit",
    "LagTerms",
    "Point",
    "TrackingError",
    "add_terms",
    "lag_terms",
    "position_at",
    "velocity_at",
]

#: Candidate delays (ms); 0 is a tracker that sees the target where it is.
LAG_GRID_MS: Final = (0, 50, 100, 150, 200, 250, 300)
#: Delay at which :meth:`LagFit.gain` is read (a typical person's, ms).
GAIN_AT_MS: Final = 150
#: Without a reported velocity, the target's is read over this span before the delayed instant (ms).
VELOCITY_SPAN_MS: Final = 50
#: Fewer ticks than this read no lag (the estimate would be noise).
MIN_TICKS: Final = 20


class Point(Protocol):
    """A player's feet at ``ts`` and velocity (NaN when not reported), from the position history.

    ``anticheat.player_state.Sample`` is one.
    """

    @property
    def ts(self) -> int: ...
    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...
    @property
    def z(self) -> float: ...
    @property
    def vx(self) -> float: ...
    @property
    def vy(self) -> float: ...
    @property
    def vz(self) -> float: ...


class LagTerms(NamedTuple):
    """One tick's (or a sum of ticks') products: ``de.de``, ``de.dL_d`` and ``dL_d.dL_d`` per delay."""

    ticks: int
    ee: float
    el: tuple[float, ...]
    ll: tuple[float, ...]


class TrackingError(NamedTuple):
    """One tick's crosshair error and the delayed trackers' (deg; yaw scaled by the cosine of pitch).

    ``lagged`` holds ``(yaw, pitch)`` of ``L_d`` for each ``d`` of :data:`LAG_GRID_MS`.
    """

    ts: int
    yaw: float
    pitch: float
    lagged: tuple[tuple[float, float], ...]


def _around(history: Sequence[Point], ts: float, max_gap_ms: int) -> tuple[Point, Point, float] | None:
    """The samples at or around ``ts`` and the later one's weight (0 on a sample itself).

    None outside the history or across a gap longer than ``max_gap_ms``
    (a respawn or lost packets: nothing to interpolate).
    """
    if not history or ts < history[0].ts or ts > history[-1].ts:
        return None
    for k in range(len(history) - 1, -1, -1):
        a = history[k]
        if a.ts <= ts:
            if a.ts == ts:
                return a, a, 0.0
            b = history[k + 1]
            if b.ts - a.ts > max_gap_ms:
                return None
            return a, b, (ts - a.ts) / (b.ts - a.ts)
    return None


def position_at(history: Sequence[Point], ts: float, max_gap_ms: int) -> tuple[float, float, float] | None:
    """The position at ``ts``, linear between the two samples around it (None as ``_around``)."""
    around = _around(history, ts, max_gap_ms)
    if around is None:
        return None
    a, b, w = around
    return a.x + (b.x - a.x) * w, a.y + (b.y - a.y) * w, a.z + (b.z - a.z) * w


def velocity_at(history: Sequence[Point], ts: float, max_gap_ms: int) -> tuple[float, float, float] | None:
    """The reported velocity at ``ts`` (m/s), linear between the two samples around it.

    None where :func:`position_at` would be, or when either sample has no
    finite velocity (the game does not report one).
    """
    around = _around(history, ts, max_gap_ms)
    if around is None:
        return None
    a, b, w = around
    if not all(math.isfinite(v) for v in (a.vx, a.vy, a.vz, b.vx, b.vy, b.vz)):
        return None
    return a.vx + (b.vx - a.vx) * w, a.vy + (b.vy - a.vy) * w, a.vz + (b.vz - a.vz) * w


def tracking_error(shooter: Point, yaw: float, pitch: float, target: Sequence[Point],
                   lim: Limits, max_gap_ms: int) -> TrackingError | None:
    """The errors of one tick of tracking; None when the target's history is too short.

    ``shooter`` and ``yaw``/``pitch`` are the tracking player's tick;
    ``target`` the target's position history up to that tick.
    """
    now = position_at(target, shooter.ts, max_gap_ms)
    if now is None:
        return None
    eye = (shooter.x, shooter.y, shooter.z + lim.eye_height_m)
    ty, tp = aim_angles(eye, (now[0], now[1], now[2] + lim.chest_height_m))
    cos_p = math.cos(math.radians(tp))
    lagged: list[tuple[float, float]] = []
    for d in LAG_GRID_MS:
        if d == 0:
            lagged.append((0.0, 0.0))
            continue
        then = position_at(target, shooter.ts - d, max_gap_ms)
        if then is None:
            return None
        vel = velocity_at(target, shooter.ts - d, max_gap_ms)
        if vel is None:
            before = position_at(target, shooter.ts - d - VELOCITY_SPAN_MS, max_gap_ms)
            if before is None:
                return None
            rate = 1000.0 / VELOCITY_SPAN_MS
            vel = ((then[0] - before[0]) * rate, (then[1] - before[1]) * rate, (then[2] - before[2]) * rate)
        seen = tuple(then[i] + vel[i] * (d / 1000.0) for i in range(3))
        sy, sp = aim_angles(eye, (seen[0], seen[1], seen[2] + lim.chest_height_m))
        lagged.append((wrap_deg(sy - ty) * cos_p, sp - tp))
    return TrackingError(shooter.ts, wrap_deg(yaw - ty) * cos_p, pitch - tp, tuple(lagged))


def lag_terms(before: TrackingError, now: TrackingError) -> LagTerms:
    """The products of how the errors changed from tick ``before`` to tick ``now``."""
    ey, ep = now.yaw - before.yaw, now.pitch - before.pitch
    el: list[float] = []
    ll: list[float] = []
    for (ny, np_), (by, bp) in zip(now.lagged, before.lagged, strict=True):
        ly, lp = ny - by, np_ - bp
        el.append(ey * ly + ep * lp)
        ll.append(ly * ly + lp * lp)
    return LagTerms(1, ey * ey + ep * ep, tuple(el), tuple(ll))


def add_terms(a: LagTerms, b: LagTerms) -> LagTerms:
    """The sum of two sets of products."""
    return LagTerms(a.ticks + b.ticks, a.ee + b.ee,
                    tuple(x + y for x, y in zip(a.el, b.el, strict=True)),
                    tuple(x + y for x, y in zip(a.ll, b.ll, strict=True)))


ZERO_TERMS: Final = LagTerms(0, 0.0, (0.0,) * len(LAG_GRID_MS), (0.0,) * len(LAG_GRID_MS))


@dataclass(slots=True)
class LagFit:
    """The products summed over the tick-to-tick changes a player tracked (see the module doc)."""

    terms: LagTerms = field(default=ZERO_TERMS)

    def add(self, t: LagTerms) -> None:
        self.terms = add_terms(self.terms, t)

    def lag_ms(self) -> float:
        """The delay (ms) whose predicted changes fit best; NaN with too few ticks.

        A parabola through the best grid point and its neighbours places
        the minimum between grid points.
        """
        t = self.terms
        if t.ticks < MIN_TICKS:
            return math.nan
        ssr = [t.ee - 2.0 * el + ll for el, ll in zip(t.el, t.ll, strict=True)]
        k = min(range(len(ssr)), key=ssr.__getitem__)
        grid = LAG_GRID_MS
        if k == 0 or k == len(ssr) - 1:
            return float(grid[k])
        a, b, c = ssr[k - 1], ssr[k], ssr[k + 1]
        curve = a - 2.0 * b + c
        shift = 0.5 * (a - c) / curve if curve > 0.0 else 0.0
        return float(grid[k] + shift * (grid[k + 1] - grid[k]))

    def gain(self) -> float:
        """Slope of the error's change on a :data:`GAIN_AT_MS`-late tracker's; NaN with too few ticks."""
        t = self.terms
        k = LAG_GRID_MS.index(GAIN_AT_MS)
        if t.ticks < MIN_TICKS or t.ll[k] <= 0.0:
            return math.nan
        return t.el[k] / t.ll[k]
