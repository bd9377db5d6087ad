"""What the game allows: speed, gravity, jumps, and who can see whom.

Features and rules measure players *against the game's own limits*, so the
limits come from the simulator's world module (:mod:`gamebus.sim.world`),
the module the game itself moves players with. Keeping one source means the
anti-cheat's idea of "too fast" or "visible" cannot drift from the game's.
:class:`Limits` is a frozen copy so tests can pass other values.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim import world

__all__ = [
    "Limits",
    "aim_angles",
    "angle_between",
    "angular_speed",
    "map_for",
    "visible_many",
    "wrap_deg",
]

aim_angles = world.aim_angles
angle_between = world.angle_between
wrap_deg = world.wrap_deg


@dataclass(frozen=True, slots=True)
class Limits:
    """The game's physical limits, in SI units (metres, seconds, degrees)."""

    max_speed_mps: float = world.MAX_SPEED_MPS
    weapon_max_speed_mps: dict[str, float] = field(
        default_factory=lambda: dict(world.WEAPON_MAX_SPEED_MPS)
    )
    max_accel_mps2: float = world.MAX_ACCEL_MPS2
    gravity_mps2: float = world.GRAVITY_MPS2
    jump_speed_mps: float = world.JUMP_SPEED_MPS
    eye_height_m: float = world.EYE_HEIGHT_M
    chest_height_m: float = world.CHEST_HEIGHT_M
    head_height_m: float = world.HEAD_HEIGHT_M
    target_radius_m: float = world.PLAYER_RADIUS_M

    @property
    def jump_airtime_s(self) -> float:
        """How long a legitimate jump keeps the feet off the floor."""
        return 2.0 * self.jump_speed_mps / self.gravity_mps2

    @property
    def jump_apex_m(self) -> float:
        """How high a legitimate jump lifts the feet."""
        return self.jump_speed_mps**2 / (2.0 * self.gravity_mps2)

    def speed_cap(self, weapon: str | None) -> float:
        """The speed an honest player holding ``weapon`` can reach."""
        if weapon is None:
            return self.max_speed_mps
        return self.weapon_max_speed_mps.get(weapon, self.max_speed_mps)


def map_for(name: str | None) -> world.GameMap | None:
    """The arena named in ``round_start``; None when unknown (no walls assumed)."""
    if name is None:
        return None
    try:
        return world.get_map(name)
    except ConfigError:
        return None


def visible_many(
    game_map: world.GameMap | None,
    viewers: Sequence[Sequence[float]],
    targets: Sequence[Sequence[float]],
    limits: Limits,
) -> list[bool]:
    """The game's ``can_see`` for many (viewer feet, target feet) pairs in one call.

    One vectorised call per shot instead of one per look-back sample keeps the
    reaction-time feature cheap enough for the online path.
    """
    if not viewers:
        return []
    if game_map is None:
        return [True] * len(viewers)
    a = np.asarray(viewers, dtype=np.float64).reshape(-1, 3) + np.array([0.0, 0.0, limits.eye_height_m])
    b = np.asarray(targets, dtype=np.float64).reshape(-1, 3) + np.array([0.0, 0.0, limits.chest_height_m])
    return [bool(v) for v in world.line_of_sight_many(game_map, a, b)]


def angular_speed(dyaw_deg: float, dpitch_deg: float, pitch_deg: float) -> float:
    """Small-angle view rotation in degrees (cheap enough for every tick)."""
    return math.hypot(dyaw_deg * math.cos(math.radians(pitch_deg)), dpitch_deg)
