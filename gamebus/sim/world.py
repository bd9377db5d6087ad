"""Maps, physics constants and line of sight: the world both sides agree on.

The simulator moves players inside these maps and the anti-cheat service
imports the same module to judge them, so everything an honest client can or
cannot do is a named constant here: the fastest legal ground speed, the
acceleration bound, gravity and the jump impulse. A consumer finds the map of
a match from the ``map`` field of ``round_start`` with :func:`get_map`.

Conventions (shared with every ``pos`` event):

- ``x``, ``y`` are metres on the ground plane, ``z`` is the height of the
  player's feet above the floor (the floor is ``z = 0`` everywhere).
- ``yaw`` is in degrees, ``0`` along ``+x``, ``90`` along ``+y``
  (counter-clockwise seen from above), wrapped to ``[-180, 180)``.
- ``pitch`` is in degrees, positive looking up, within ``[-89, 89]``.
- The eye is :data:`EYE_HEIGHT_M` above the feet; "A can see B" means an
  unobstructed segment from A's eye to B's chest (:func:`can_see`).

Walls are axis-aligned boxes. Players cannot climb them; low crates
(:data:`CRATE_HEIGHT_M`) block movement and shots but not the view of a
standing player's eye over them, tall walls block everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.arrays import BoolArray, FloatArray

__all__ = [
    "ARENA_SIZE_M",
    "CHEST_HEIGHT_M",
    "CRATE_HEIGHT_M",
    "EYE_HEIGHT_M",
    "GRAVITY",
    "GRAVITY_MPS2",
    "HEAD_HEIGHT_M",
    "HEAD_RADIUS_M",
    "JUMP_SPEED_MPS",
    "MAPS",
    "MAP_NAMES",
    "MAX_ACCEL_MPS2",
    "MAX_AIRTIME_S",
    "MAX_JUMP_HEIGHT_M",
    "MAX_PITCH_DEG",
    "MAX_SPEED_MPS",
    "PLAYER_HEIGHT_M",
    "PLAYER_RADIUS_M",
    "WALL_HEIGHT_M",
    "WEAPON_MAX_SPEED_MPS",
    "Box",
    "GameMap",
    "Vec3",
    "aim_angles",
    "angle_between",
    "can_see",
    "get_map",
    "line_of_sight",
    "line_of_sight_many",
    "walkable_many",
    "wrap_deg",
]

Vec3 = tuple[float, float, float]

# --- physics: what an honest client can do ---------------------------------

#: The fastest legal horizontal ground speed (knife or pistol out), m/s.
#: Honest players never exceed it; see :data:`WEAPON_MAX_SPEED_MPS` for the
#: lower caps of heavier weapons.
MAX_SPEED_MPS: Final = 6.0
#: Horizontal speed cap by the weapon held; a heavy weapon slows its carrier.
WEAPON_MAX_SPEED_MPS: Final[dict[str, float]] = {
    "knife": 6.0,
    "pistol": 6.0,
    "smg": 5.8,
    "rifle": 5.4,
    "sniper": 4.8,
}
#: Bound on the horizontal acceleration of an honest player, m/s^2
#: (0 to top speed in about a quarter of a second).
MAX_ACCEL_MPS2: Final = 25.0
#: Game gravity, m/s^2 (games use more than Earth's 9.81 for snappy jumps).
GRAVITY_MPS2: Final = 20.0
GRAVITY: Final = GRAVITY_MPS2
#: Vertical speed given by a jump, m/s.
JUMP_SPEED_MPS: Final = 6.3
#: Highest the feet can get above the floor by jumping (v^2 / 2g), m.
MAX_JUMP_HEIGHT_M: Final = JUMP_SPEED_MPS**2 / (2 * GRAVITY_MPS2)
#: Longest an honest jump keeps the feet off the floor (2v / g), s.
MAX_AIRTIME_S: Final = 2 * JUMP_SPEED_MPS / GRAVITY_MPS2
MAX_PITCH_DEG: Final = 89.0

# --- bodies ----------------------------------------------------------------

PLAYER_RADIUS_M: Final = 0.4
PLAYER_HEIGHT_M: Final = 1.8
EYE_HEIGHT_M: Final = 1.6
CHEST_HEIGHT_M: Final = 1.25
HEAD_HEIGHT_M: Final = 1.62
HEAD_RADIUS_M: Final = 0.13

WALL_HEIGHT_M: Final = 4.0
CRATE_HEIGHT_M: Final = 1.1


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned wall or crate: ``[x0, x1] x [y0, y1] x [z0, z1]``."""

    x0: float
    y0: float
    x1: float
    y1: float
    z0: float = 0.0
    z1: float = WALL_HEIGHT_M

    def __post_init__(self) -> None:
        if not (self.x0 < self.x1 and self.y0 < self.y1 and self.z0 < self.z1):
            raise ConfigError(f"box with empty extent: {self}")

    def contains(self, point: Sequence[float]) -> bool:
        x, y, z = point
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1 and self.z0 <= z <= self.z1


@dataclass(frozen=True, slots=True)
class GameMap:
    """A named arena: its size, walls and spawn points.

    ``walls_array`` is the walls as an ``(n, 6)`` array of
    ``x0, y0, z0, x1, y1, z1`` rows, kept for the vectorised tests.
    """

    name: str
    size_x_m: float
    size_y_m: float
    walls: tuple[Box, ...]
    spawns: tuple[Vec3, ...]
    walls_array: FloatArray = field(init=False, repr=False, compare=False)
    grown_cache: dict[float, FloatArray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = [(w.x0, w.y0, w.z0, w.x1, w.y1, w.z1) for w in self.walls]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
        object.__setattr__(self, "walls_array", arr)
        object.__setattr__(self, "grown_cache", {})
        for spawn in self.spawns:
            if self.blocked(spawn[0], spawn[1]):
                raise ConfigError(f"map {self.name}: spawn {spawn} is inside a wall")

    def inside(self, x: float, y: float, *, margin_m: float = PLAYER_RADIUS_M) -> bool:
        """Whether ``(x, y)`` is on the map, at least ``margin_m`` from its edge."""
        return margin_m <= x <= self.size_x_m - margin_m and margin_m <= y <= self.size_y_m - margin_m

    def blocked(self, x: float, y: float, *, radius_m: float = PLAYER_RADIUS_M) -> bool:
        """Whether a player of ``radius_m`` standing at ``(x, y)`` overlaps a wall or the edge."""
        if not self.inside(x, y, margin_m=radius_m):
            return True
        return bool(self.blocked_many(np.array([[x, y]]), radius_m=radius_m)[0])

    def blocked_many(self, xy: FloatArray, *, radius_m: float = PLAYER_RADIUS_M) -> BoolArray:
        """Vectorised :meth:`blocked` for an ``(n, 2)`` array of positions."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        x = xy[:, 0:1]
        y = xy[:, 1:2]
        w = _grown_walls(self, radius_m)
        hit = (
            np.logical_or.reduce((x > w[:, 0]) & (x < w[:, 3]) & (y > w[:, 1]) & (y < w[:, 4]), axis=1)
            if len(w)
            else np.zeros(len(xy), dtype=np.bool_)
        )
        off = (
            (xy[:, 0] < radius_m)
            | (xy[:, 0] > self.size_x_m - radius_m)
            | (xy[:, 1] < radius_m)
            | (xy[:, 1] > self.size_y_m - radius_m)
        )
        result: BoolArray = hit | off
        return result


#: Layouts are drawn on a 100 x 100 grid and scaled to this many metres a side:
#: ten against ten on 64 m meet every few seconds, as in arena shooters.
ARENA_SIZE_M: Final = 64.0


def walkable_many(
    game_map: GameMap, a_xy: FloatArray, b_xy: FloatArray, *, radius_m: float = PLAYER_RADIUS_M
) -> BoolArray:
    """Whether a player of ``radius_m`` can walk straight from each ``a`` to each ``b``.

    The segment is tested against every wall and crate grown by the radius
    (a player cannot climb crates), in the ground plane.
    """
    a = np.asarray(a_xy, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b_xy, dtype=np.float64).reshape(-1, 2)
    lo, hi_x, hi_y = radius_m, game_map.size_x_m - radius_m, game_map.size_y_m - radius_m
    ok = (
        (a[:, 0] >= lo) & (a[:, 1] >= lo) & (a[:, 0] <= hi_x) & (a[:, 1] <= hi_y)
        & (b[:, 0] >= lo) & (b[:, 1] >= lo) & (b[:, 0] <= hi_x) & (b[:, 1] <= hi_y)
    )
    grown = _grown_walls(game_map, radius_m)
    if len(grown):
        ok &= ~_slab_blocked(a, b, grown, axes=2)  # the 2-D test reads x and y only
    return ok


def _grown_walls(game_map: GameMap, radius_m: float) -> FloatArray:
    """The walls grown by ``radius_m`` on the ground plane, kept per map and radius."""
    cache = game_map.grown_cache
    grown = cache.get(radius_m)
    if grown is None:
        grown = game_map.walls_array.copy()
        grown[:, 0:2] -= radius_m
        grown[:, 3:5] += radius_m
        cache[radius_m] = grown
    return grown


def _arena(name: str, walls: list[Box], spawns: list[Vec3]) -> GameMap:
    k = ARENA_SIZE_M / 100.0
    scaled = tuple(Box(w.x0 * k, w.y0 * k, w.x1 * k, w.y1 * k, w.z0, w.z1) for w in walls)
    points = tuple((x * k, y * k, z) for x, y, z in spawns)
    return GameMap(name=name, size_x_m=ARENA_SIZE_M, size_y_m=ARENA_SIZE_M, walls=scaled, spawns=points)


def _crate(x: float, y: float, size: float = 2.0) -> Box:
    return Box(x, y, x + size, y + size, 0.0, CRATE_HEIGHT_M)


_WAREHOUSE = _arena(
    "warehouse",
    [
        # rows of shelves with gaps: long lanes north-south, short sightlines across
        Box(16, 10, 18, 42), Box(16, 52, 18, 90),
        Box(32, 20, 34, 48), Box(32, 58, 34, 100),
        Box(48, 0, 52, 30), Box(48, 40, 52, 60), Box(48, 70, 52, 100),
        Box(66, 0, 68, 42), Box(66, 52, 68, 80),
        Box(82, 10, 84, 48), Box(82, 58, 84, 90),
        # cross walls and crates
        Box(20, 48, 30, 50), Box(70, 50, 80, 52),
        Box(36, 34, 46, 36), Box(54, 64, 64, 66),
        _crate(24, 20), _crate(24, 74), _crate(40, 60), _crate(58, 20),
        _crate(74, 30), _crate(74, 70), _crate(8, 46), _crate(90, 52),
    ],
    [(5, 5, 0), (5, 95, 0), (6, 40, 0), (5, 20, 0), (5, 80, 0),
     (95, 5, 0), (95, 95, 0), (94, 60, 0), (95, 20, 0), (95, 80, 0)],
)

_COURTYARD = _arena(
    "courtyard",
    [
        Box(35, 35, 65, 40),  # a U-shaped building in the middle
        Box(35, 60, 65, 65),
        Box(35, 40, 40, 52),
        # houses around the yard
        Box(12, 12, 24, 24), Box(76, 12, 88, 24), Box(12, 76, 24, 88), Box(76, 76, 88, 88),
        Box(44, 8, 56, 18), Box(44, 82, 56, 92),
        Box(8, 44, 18, 56), Box(82, 44, 92, 56),
        Box(26, 30, 29, 45), Box(71, 55, 74, 70),
        Box(26, 62, 34, 65), Box(66, 35, 74, 38),
        _crate(48, 48), _crate(25, 50), _crate(73, 48),
        _crate(30, 8), _crate(68, 90), _crate(60, 26), _crate(38, 72),
    ],
    [(4, 4, 0), (4, 96, 0), (4, 35, 0), (4, 65, 0), (30, 4, 0),
     (96, 96, 0), (96, 4, 0), (96, 35, 0), (96, 65, 0), (70, 96, 0)],
)

_CANYON = _arena(
    "canyon",
    [
        Box(30, 0, 33, 40),  # two ridges with gaps make three chokepoints
        Box(30, 48, 33, 75),
        Box(30, 83, 33, 100),
        Box(67, 0, 70, 17),
        Box(67, 25, 70, 52),
        Box(67, 60, 70, 100),
        # boulders in the valley and on both banks
        Box(40, 10, 46, 16), Box(54, 22, 60, 28), Box(40, 38, 47, 44), Box(53, 50, 60, 56),
        Box(40, 64, 46, 70), Box(54, 78, 60, 84), Box(42, 88, 48, 94),
        Box(12, 20, 18, 26), Box(14, 55, 20, 61), Box(10, 80, 16, 86),
        Box(82, 14, 88, 20), Box(80, 40, 86, 46), Box(84, 70, 90, 76),
        _crate(48, 30), _crate(50, 72), _crate(45, 58, 3.0), _crate(22, 40), _crate(76, 60),
    ],
    [(5, 10, 0), (5, 30, 0), (5, 50, 0), (5, 70, 0), (5, 90, 0),
     (95, 10, 0), (95, 30, 0), (95, 50, 0), (95, 70, 0), (95, 90, 0)],
)

#: Every arena by name.
MAPS: Final[dict[str, GameMap]] = {m.name: m for m in (_WAREHOUSE, _COURTYARD, _CANYON)}
MAP_NAMES: Final = tuple(MAPS)


def get_map(name: str) -> GameMap:
    """The arena called ``name`` (the ``map`` field of ``round_start``)."""
    try:
        return MAPS[name]
    except KeyError:
        raise ConfigError(f"unknown map {name!r}; known: {', '.join(MAP_NAMES)}") from None


def _as_map(world_or_map: GameMap | str) -> GameMap:
    return get_map(world_or_map) if isinstance(world_or_map, str) else world_or_map


def line_of_sight_many(world_or_map: GameMap | str, a: FloatArray, b: FloatArray) -> BoolArray:
    """Vectorised :func:`line_of_sight` for ``(n, 3)`` arrays of segment ends.

    Slab test of every segment against every wall box: a segment is blocked
    when its parameter intervals inside the three slabs of one box overlap
    within ``(0, 1)``. Touching a box at one point does not block; a segment
    running exactly along a face may count as blocked.
    """
    game_map = _as_map(world_or_map)
    a = np.asarray(a, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 3)
    walls = game_map.walls_array
    if len(walls) == 0 or len(a) == 0:
        return np.ones(len(a), dtype=np.bool_)
    # Walls entirely below every segment cannot block; walls spanning the
    # whole height range of the batch block exactly when the ground-plane
    # projection crosses them (a 2-D test); only the rest need the 3-D test.
    zmin = min(float(a[:, 2].min()), float(b[:, 2].min()))
    zmax = max(float(a[:, 2].max()), float(b[:, 2].max()))
    relevant = walls[:, 5] > zmin
    spanning = relevant & (walls[:, 2] <= zmin) & (walls[:, 5] >= zmax)
    partial = relevant & ~spanning
    blocked = np.zeros(len(a), dtype=np.bool_)
    if spanning.any():
        blocked |= _slab_blocked(a, b, walls[spanning], axes=2)
    if partial.any():
        blocked |= _slab_blocked(a, b, walls[partial], axes=3)
    result: BoolArray = np.logical_not(blocked)
    return result


def _slab_blocked(a: FloatArray, b: FloatArray, walls: FloatArray, *, axes: int) -> BoolArray:
    """Whether each segment ``a -> b`` enters one of ``walls`` (slab test on ``axes`` axes)."""
    d = b - a
    # A zero direction component becomes a tiny one: the slab interval is then
    # (-huge, huge) inside the slab and empty outside, without special cases.
    d[d == 0.0] = 1e-12
    inv = 1.0 / d
    enter: FloatArray | None = None
    leave: FloatArray | None = None
    for k in range(axes):  # per axis on (n, w) arrays: reducing a size-3 axis is slow
        t1 = (walls[None, :, k] - a[:, k : k + 1]) * inv[:, k : k + 1]
        t2 = (walls[None, :, k + 3] - a[:, k : k + 1]) * inv[:, k : k + 1]
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        enter = lo if enter is None else np.maximum(enter, lo)
        leave = hi if leave is None else np.minimum(leave, hi)
    assert enter is not None and leave is not None
    eps = 1e-9
    hit = (enter < leave - eps) & (leave > eps) & (enter < 1.0 - eps)
    result: BoolArray = np.any(hit, axis=1)
    return result


def line_of_sight(world_or_map: GameMap | str, a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the segment from point ``a`` to point ``b`` crosses no wall.

    Points are ``(x, y, z)`` in metres; pass eye and target heights yourself,
    or use :func:`can_see` for the player-to-player test the game uses.
    """
    return bool(line_of_sight_many(world_or_map, np.array([a]), np.array([b]))[0])


def can_see(world_or_map: GameMap | str, viewer_feet: Sequence[float], target_feet: Sequence[float]) -> bool:
    """The game's visibility test: ``viewer``'s eye to ``target``'s chest is clear.

    Both arguments are feet positions as in ``pos`` events. This is the
    definition of "target became visible" for reaction times.
    """
    ax, ay, az = viewer_feet
    bx, by, bz = target_feet
    return line_of_sight(world_or_map, (ax, ay, az + EYE_HEIGHT_M), (bx, by, bz + CHEST_HEIGHT_M))


def wrap_deg(angle: float) -> float:
    """``angle`` wrapped to ``[-180, 180)`` degrees."""
    return (angle + 180.0) % 360.0 - 180.0


def aim_angles(eye: Sequence[float], point: Sequence[float]) -> tuple[float, float]:
    """The ``(yaw, pitch)`` in degrees that looks from ``eye`` straight at ``point``."""
    dx, dy, dz = point[0] - eye[0], point[1] - eye[1], point[2] - eye[2]
    yaw = math.degrees(math.atan2(dy, dx))
    pitch = math.degrees(math.atan2(dz, math.hypot(dx, dy)))
    return wrap_deg(yaw), pitch


def angle_between(yaw1: float, pitch1: float, yaw2: float, pitch2: float) -> float:
    """The angle in degrees between two view directions (great-circle distance)."""
    y1, p1, y2, p2 = map(math.radians, (yaw1, pitch1, yaw2, pitch2))
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(y1 - y2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))
