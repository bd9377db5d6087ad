"""Weapons and the server's hit test.

A shot is a ray from the shooter's eye along ``(yaw, pitch)`` plus spread;
it hits the head when it passes within :data:`HEAD_RADIUS_M` of the head
centre, else the body when it crosses the body cylinder. Spread grows with
speed, with being airborne and along a spray, so moving and spraying miss
more, as in the games this imitates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from gamebus.sim.world import (
    EYE_HEIGHT_M,
    HEAD_HEIGHT_M,
    HEAD_RADIUS_M,
    PLAYER_RADIUS_M,
)

__all__ = ["WEAPONS", "Weapon", "hit_test", "spread_sd_deg"]

Hit = Literal["head", "body"] | None

_BODY_TOP_M: Final = HEAD_HEIGHT_M - HEAD_RADIUS_M
_BODY_RADIUS_M: Final = 0.8 * PLAYER_RADIUS_M


@dataclass(frozen=True, slots=True)
class Weapon:
    name: str
    interval_ms: float  # time between shots
    body_damage: float
    head_damage: float
    spread_deg: float  # standing still, first shot
    draw_ms: float  # time to bring it up from the knife


WEAPONS: Final[dict[str, Weapon]] = {
    w.name: w
    for w in (
        Weapon("rifle", 100.0, 30.0, 115.0, 0.12, 450.0),
        Weapon("smg", 75.0, 22.0, 70.0, 0.25, 350.0),
        Weapon("pistol", 180.0, 26.0, 100.0, 0.15, 250.0),
        Weapon("sniper", 1250.0, 95.0, 250.0, 0.02, 600.0),
    )
}


def spread_sd_deg(weapon: Weapon, *, speed_frac: float, airborne: bool, burst: int) -> float:
    """Standard deviation of the random deviation of one shot, in degrees."""
    sd = weapon.spread_deg + 0.8 * speed_frac * speed_frac + 0.1 * min(burst, 8)
    return sd + (2.0 if airborne else 0.0)


def hit_test(
    shooter_feet: tuple[float, float, float],
    yaw_deg: float,
    pitch_deg: float,
    target_feet: tuple[float, float, float],
) -> Hit:
    """Where a ray from the shooter's eye along ``(yaw, pitch)`` meets the target."""
    ex, ey, ez = shooter_feet[0], shooter_feet[1], shooter_feet[2] + EYE_HEIGHT_M
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    cp = math.cos(pitch)
    ux, uy, uz = cp * math.cos(yaw), cp * math.sin(yaw), math.sin(pitch)
    hx, hy, hz = target_feet[0] - ex, target_feet[1] - ey, target_feet[2] + HEAD_HEIGHT_M - ez
    along = hx * ux + hy * uy + hz * uz
    if along <= 0.0:
        return None
    cx, cy, cz = hx - along * ux, hy - along * uy, hz - along * uz
    if cx * cx + cy * cy + cz * cz <= HEAD_RADIUS_M * HEAD_RADIUS_M:
        return "head"
    # Body: where the ray passes closest to the body axis (horizontally).
    bx, by = target_feet[0] - ex, target_feet[1] - ey
    h2 = ux * ux + uy * uy
    if h2 < 1e-9:
        return None
    s = (bx * ux + by * uy) / h2
    if s <= 0.0:
        return None
    px, py = s * ux - bx, s * uy - by
    if px * px + py * py > _BODY_RADIUS_M * _BODY_RADIUS_M:
        return None
    height = ez + s * uz - target_feet[2]
    return "body" if 0.05 <= height <= _BODY_TOP_M else None
