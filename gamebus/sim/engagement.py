"""Aim of every player, tick by tick: scanning, reacting, flicking, tracking.

Each player is in one aim mode; transitions are per-player decisions (rare,
plain Python) while the angles of all players are evaluated together as
numpy arrays (every tick)::

    IDLE --enemy noticed--> REACT --reaction time + ping--> FLICK
    FLICK --ends--> CORRECT --ends--> TRACK --target lost/dead--> IDLE

A snap aimbot goes from REACT straight to TRACK with no error; a humanised
aimbot runs the same human path with faster, tighter parameters. In TRACK
the aim is the target's direction plus an Ornstein-Uhlenbeck tracking error,
so following a moving target looks like smooth pursuit, not a lock. The
direction is where the hand *sees* the target: a visuomotor delay late,
extrapolated along its velocity then (see ``PlayerState._seen_positions``),
so a target that changes direction is followed late, as people do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from gamebus.sim.aim import Flick, min_jerk
from gamebus.sim.arrays import BoolArray, FloatArray, IntArray
from gamebus.sim.world import MAX_PITCH_DEG

__all__ = [
    "CORRECT",
    "FLICK",
    "IDLE",
    "REACT",
    "TRACK",
    "AimArrays",
    "AimNoise",
    "AimParams",
    "evaluate_aim",
]


IDLE: Final = 0
REACT: Final = 1
FLICK: Final = 2
CORRECT: Final = 3
TRACK: Final = 4

#: Time constant of the tracking error, s.
_TRACK_TAU_S: Final = 0.25
#: Time constant of the view following the walking direction, s.
_LOOK_TAU_S: Final = 0.3
#: Idle look-around: sd (deg) and time constant (s) of the offset from the heading.
_LOOK_SD_DEG: Final = 25.0
_LOOK_OU_TAU_S: Final = 1.5


@dataclass(frozen=True, slots=True)
class AimParams:
    """The aim parameters of one engagement (a human's own, or a bot's)."""

    rt_mu_ms: float
    rt_sigma_ms: float
    rt_tau_ms: float
    rt_shift_ms: float
    fitts_a_ms: float
    fitts_b_ms: float
    overshoot: float
    scatter: float
    track_sd_deg: float
    head_pref: float
    fire_tol: float
    decide_ms: float
    snap: bool = False
    #: Share of the tracking a bot does from where the target *is*; the rest
    #: is the hand's, which sees the target move a visuomotor delay late
    #: (0 for a human, 1 for a snap aimbot; see ``PlayerState._seen_positions``).
    bot_pull: float = 0.0


@dataclass(slots=True)
class AimArrays:
    """Per-player aim state kept as arrays for vectorised evaluation."""

    yaw: FloatArray
    pitch: FloatArray
    mode: IntArray
    fl_t0: FloatArray
    fl_T: FloatArray
    fl_y0: FloatArray
    fl_p0: FloatArray
    fl_dy: FloatArray
    fl_dp: FloatArray
    err_y: FloatArray  # tracking error
    err_p: FloatArray
    track_sd: FloatArray
    look: FloatArray  # idle look-around offset from the heading
    tremor_sd: FloatArray

    @classmethod
    def empty(cls, n: int) -> AimArrays:
        z = np.zeros(n)
        return cls(
            yaw=z.copy(), pitch=z.copy(), mode=np.zeros(n, dtype=np.int64),
            fl_t0=z.copy(), fl_T=np.ones(n), fl_y0=z.copy(), fl_p0=z.copy(),
            fl_dy=z.copy(), fl_dp=z.copy(), err_y=z.copy(), err_p=z.copy(),
            track_sd=np.ones(n), look=z.copy(), tremor_sd=np.full(n, 0.05),
        )

    def set_flick(self, i: int, flick: Flick, mode: int) -> None:
        self.mode[i] = mode
        self.fl_t0[i], self.fl_T[i] = flick.t0_ms, flick.duration_ms
        self.fl_y0[i], self.fl_p0[i] = flick.yaw0, flick.pitch0
        self.fl_dy[i], self.fl_dp[i] = flick.dyaw, flick.dpitch


@dataclass(frozen=True, slots=True)
class AimNoise:
    """Standard normal draws for one tick: ``look`` (n,), ``track`` and ``tremor`` (n, 2).

    Drawn by the caller so that each match draws from its own generator.
    """

    look: FloatArray
    track: FloatArray
    tremor: FloatArray


def _wrap(a: FloatArray) -> FloatArray:
    out: FloatArray = (a + 180.0) % 360.0 - 180.0
    return out


def evaluate_aim(
    aim: AimArrays,
    noise: AimNoise,
    *,
    t_ms: float,
    dt_s: float,
    alive: BoolArray,
    heading: FloatArray,
    moving: BoolArray,
    tgt_yaw: FloatArray,
    tgt_pitch: FloatArray,
) -> None:
    """Set ``aim.yaw``/``aim.pitch`` of every alive player for time ``t_ms``.

    ``heading`` is each player's walking direction (deg) where ``moving``;
    ``tgt_yaw``/``tgt_pitch`` the direction to each player's aim point
    (nan without a target).
    """
    mode = aim.mode
    yaw, pitch = aim.yaw, aim.pitch
    # Idle and reacting players look roughly where they walk, looking around.
    k_look = dt_s / _LOOK_OU_TAU_S
    aim.look += -aim.look * k_look + _LOOK_SD_DEG * np.sqrt(2 * k_look) * noise.look
    idle = np.nonzero(alive & (mode <= REACT))[0]
    if len(idle):
        want = np.where(moving[idle], heading[idle] + aim.look[idle], yaw[idle])
        gain = 1.0 - np.exp(-dt_s / _LOOK_TAU_S)
        yaw[idle] += _wrap(want - yaw[idle]) * gain
        pitch[idle] -= pitch[idle] * gain
    flicking = np.nonzero(alive & ((mode == FLICK) | (mode == CORRECT)))[0]
    if len(flicking):
        s = min_jerk((t_ms - aim.fl_t0[flicking]) / aim.fl_T[flicking])
        yaw[flicking] = aim.fl_y0[flicking] + aim.fl_dy[flicking] * s
        pitch[flicking] = aim.fl_p0[flicking] + aim.fl_dp[flicking] * s
    tracking = np.nonzero(alive & (mode == TRACK) & ~np.isnan(tgt_yaw))[0]
    if len(tracking):
        k = dt_s / _TRACK_TAU_S
        sd = aim.track_sd[tracking] * np.sqrt(2 * k)
        ey = aim.err_y[tracking] * (1 - k) + sd * noise.track[tracking, 0]
        ep = aim.err_p[tracking] * (1 - k) + 0.6 * sd * noise.track[tracking, 1]
        aim.err_y[tracking], aim.err_p[tracking] = ey, ep
        yaw[tracking] = tgt_yaw[tracking] + ey
        pitch[tracking] = tgt_pitch[tracking] + ep
    tremor = noise.tremor * aim.tremor_sd[:, None]
    aim.yaw = _wrap(yaw + tremor[:, 0])
    aim.pitch = np.clip(pitch + tremor[:, 1], -MAX_PITCH_DEG, MAX_PITCH_DEG)
