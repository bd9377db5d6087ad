"""Player bodies: bounded, noisy, wall-respecting movement and jumps.

All players of a match step together as numpy arrays, which is what makes
a thousand training matches take minutes rather than hours.

Horizontal velocity is an Ornstein-Uhlenbeck process around the velocity
the player wants (toward a waypoint, or a strafe in a fight)::

    v <- v + theta * (v_wanted - v) * dt + sigma * sqrt(dt) * N(0, I)

with ``v_wanted`` and the noisy target capped at the speed of the weapon
held, and the change bounded by the acceleration limit. Positions integrate exactly (``x += v * dt``), so the
speed an observer measures from consecutive positions never exceeds the cap
(walls only slow a player down). Vertically, a jump gives ``JUMP_SPEED_MPS``
and the feet follow the exact ballistic arc under ``GRAVITY`` until the
floor. Cheats enter only through :class:`Controls`: a speed factor, a
different gravity, a hover altitude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gamebus.sim.arrays import BoolArray, FloatArray
from gamebus.sim.world import GRAVITY_MPS2, JUMP_SPEED_MPS, MAX_ACCEL_MPS2

__all__ = ["AIR_CONTROL", "OU_SIGMA", "OU_THETA", "BlockedFn", "Bodies", "Controls", "step_bodies"]


#: Mean reversion rate of the velocity toward the wanted one, 1/s.
OU_THETA = 6.0
#: Noise of the velocity process, m/s per sqrt(s).
OU_SIGMA = 2.5
#: Share of the ground acceleration a player keeps in the air.
AIR_CONTROL = 0.35


@dataclass(slots=True)
class Bodies:
    """Positions and velocities of every player of a match.

    ``base_vel`` is the velocity the player's own input produces; ``vel``
    is the one the world sees (they differ only under a speedhack).
    """

    pos: FloatArray  # (n, 3) feet
    vel: FloatArray  # (n, 3) reported velocity
    base_vel: FloatArray  # (n, 2) input velocity, before any speedhack

    @classmethod
    def empty(cls, n: int) -> Bodies:
        return cls(np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 2)))


@dataclass(slots=True)
class Controls:
    """What each player does this tick, one entry per player."""

    active: BoolArray  # alive players move; the dead stay put
    wanted: FloatArray  # (n, 2) wanted horizontal velocity
    cap: FloatArray  # speed cap of the weapon held
    factor: FloatArray  # 1.0, or the speedhack multiplier
    accel: FloatArray  # acceleration bound of the player's input
    ceiling: FloatArray  # absolute cap on the reported speed (inf for none)
    gravity: FloatArray  # gravity felt by the player
    hover: FloatArray  # altitude a fly hack holds, nan when none
    jump: BoolArray  # wants to jump this tick (only from the floor)

    @classmethod
    def honest(cls, n: int) -> Controls:
        return cls(
            active=np.ones(n, dtype=np.bool_),
            wanted=np.zeros((n, 2)),
            cap=np.full(n, 5.4),
            factor=np.ones(n),
            accel=np.full(n, MAX_ACCEL_MPS2),
            ceiling=np.full(n, np.inf),
            gravity=np.full(n, GRAVITY_MPS2),
            hover=np.full(n, np.nan),
            jump=np.zeros(n, dtype=np.bool_),
        )


def _limit(v: FloatArray, limit: FloatArray) -> FloatArray:
    """Scale each row of ``v`` down to a norm of at most ``limit``."""
    norm = np.hypot(v[:, 0], v[:, 1])
    over = norm > limit
    if not over.any():
        return v
    scale = np.ones_like(norm)
    scale[over] = limit[over] / norm[over]
    out: FloatArray = v * scale[:, None]
    return out


#: ``blocked(xy, rows)``: whether players ``rows`` (None: all) would be in a wall at ``xy``.
BlockedFn = Callable[[FloatArray, "npt.NDArray[np.int64] | None"], BoolArray]


def step_bodies(
    noise: FloatArray, blocked_at: BlockedFn, bodies: Bodies, ctl: Controls, dt_s: float
) -> None:
    """Advance every active body by ``dt_s`` seconds, in place (the dead stay put).

    ``noise`` is ``(n, 2)`` standard normal draws for the velocity process
    (drawn by the caller, each match from its own generator).
    """
    pos, vel, base = bodies.pos, bodies.vel, bodies.base_vel
    act = ctl.active
    z = pos[:, 2]
    grounded = z <= 0.0
    # --- horizontal: OU toward the wanted velocity, bounded change and speed
    shake = noise * (OU_SIGMA * np.sqrt(dt_s))
    target = _limit(base + OU_THETA * (ctl.wanted - base) * dt_s + shake, ctl.cap)
    accel = ctl.accel * np.where(grounded, 1.0, AIR_CONTROL)
    # Capping the target, not the result, makes a lower cap (a heavier weapon
    # drawn) slow the player at the acceleration bound, never faster.
    new_base = base + _limit(target - base, accel * dt_s)
    seen = _limit(new_base * ctl.factor[:, None], ctl.ceiling)
    # --- walls: slide along them, losing the blocked component
    step = seen * dt_s
    cand = pos[:, :2] + step
    blocked = blocked_at(cand, None) & act
    if blocked.any():
        seen = seen.copy()
        for axis in (0, 1):
            rows = np.nonzero(blocked)[0]
            trial = pos[rows, :2].copy()
            trial[:, axis] += step[rows, axis]
            ok = ~blocked_at(trial, rows)
            keep = rows[ok]
            cand[keep] = trial[ok]
            other = 1 - axis
            seen[keep, other] = 0.0
            new_base[keep, other] = 0.0
            blocked[keep] = False
        stuck = np.nonzero(blocked)[0]
        cand[stuck] = pos[stuck, :2]
        seen[stuck] = 0.0
        new_base[stuck] = 0.0
    # --- vertical, only for who is in the air, jumps or hovers
    hovering = ~np.isnan(ctl.hover)
    up = np.nonzero(act & (~grounded | ctl.jump | hovering))[0]
    if len(up):
        zu, vz = z[up].copy(), vel[up, 2].copy()
        start = ctl.jump[up] & grounded[up]
        vz[start] = JUMP_SPEED_MPS
        g = ctl.gravity[up]
        z_next = zu + vz * dt_s - 0.5 * g * dt_s * dt_s
        vz_next = vz - g * dt_s
        landed = z_next <= 0.0
        z_next[landed] = 0.0
        vz_next[landed] = 0.0
        h = hovering[up]
        if h.any():
            vz_h = np.clip(2.5 * (ctl.hover[up][h] - zu[h]), -4.0, 4.0)
            z_next[h] = np.maximum(zu[h] + vz_h * dt_s, 0.0)
            vz_next[h] = vz_h
        pos[up, 2] = z_next
        vel[up, 2] = vz_next
    # --- commit; the dead keep their last state until they respawn
    if act.all():
        pos[:, 0:2] = cand
        vel[:, 0:2] = seen
        base[:] = new_base
    else:
        a = np.nonzero(act)[0]
        pos[a, 0:2] = cand[a]
        vel[a, 0:2] = seen[a]
        base[a] = new_base[a]
