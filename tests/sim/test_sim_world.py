"""The world both sides agree on: maps, line of sight, angles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gamebus.errors import ConfigError
from gamebus.sim import world
from gamebus.sim.world import Box, GameMap, can_see, get_map, line_of_sight, line_of_sight_many

ROOM = GameMap(
    name="room",
    size_x_m=20.0,
    size_y_m=20.0,
    walls=(Box(9, 5, 11, 15), Box(2, 2, 4, 4, 0.0, 1.0)),  # a tall wall and a low crate
    spawns=((1.0, 10.0, 0.0), (19.0, 10.0, 0.0)),
)


def test_a_tall_wall_between_two_eyes_blocks_the_line_of_sight():
    assert not line_of_sight(ROOM, (5, 10, 1.6), (15, 10, 1.6))


def test_a_line_passing_beside_the_wall_is_clear():
    assert line_of_sight(ROOM, (5, 2, 1.6), (15, 2, 1.6))
    assert line_of_sight(ROOM, (5, 17, 1.6), (15, 17, 1.6))


def test_a_line_above_a_crate_is_clear_and_one_through_it_is_blocked():
    assert line_of_sight(ROOM, (1, 3, 1.6), (6, 3, 1.25))
    assert not line_of_sight(ROOM, (1, 3, 0.5), (6, 3, 0.5))


def test_a_line_over_the_top_of_a_wall_is_clear():
    assert line_of_sight(ROOM, (5, 10, 4.5), (15, 10, 4.5))
    assert not line_of_sight(ROOM, (5, 10, 3.9), (15, 10, 3.9))


def test_a_line_ending_before_the_wall_is_clear():
    assert line_of_sight(ROOM, (5, 10, 1.6), (8.9, 10, 1.6))
    assert not line_of_sight(ROOM, (5, 10, 1.6), (9.1, 10, 1.6))


def test_axis_parallel_and_degenerate_segments_are_handled():
    assert not line_of_sight(ROOM, (10, 0.5, 1.0), (10, 19.5, 1.0))  # along y through the wall
    assert line_of_sight(ROOM, (12, 0.5, 1.0), (12, 19.5, 1.0))
    assert line_of_sight(ROOM, (5, 10, 1.6), (5, 10, 1.6))


def test_line_of_sight_is_symmetric_on_random_segments():
    rng = np.random.default_rng(3)
    m = get_map("warehouse")
    a = np.c_[rng.uniform(0, 100, (500, 2)), rng.uniform(0, 5, 500)]
    b = np.c_[rng.uniform(0, 100, (500, 2)), rng.uniform(0, 5, 500)]
    assert (line_of_sight_many(m, a, b) == line_of_sight_many(m, b, a)).all()


def test_vectorised_line_of_sight_matches_the_single_segment_form():
    rng = np.random.default_rng(4)
    m = get_map("canyon")
    a = np.c_[rng.uniform(0, 100, (200, 2)), rng.uniform(0, 6, 200)]
    b = np.c_[rng.uniform(0, 100, (200, 2)), rng.uniform(0, 6, 200)]
    many = line_of_sight_many(m, a, b)
    assert many.tolist() == [line_of_sight(m, tuple(p), tuple(q)) for p, q in zip(a, b, strict=True)]


def test_can_see_goes_from_the_eye_to_the_chest():
    assert not can_see(ROOM, (5, 10, 0), (15, 10, 0))
    assert can_see(ROOM, (1, 3, 0), (6, 3, 0))  # the eye is above the crate


def test_maps_are_found_by_the_name_in_round_start():
    for name in world.MAP_NAMES:
        assert get_map(name).name == name
    with pytest.raises(ConfigError):
        get_map("atlantis")


def test_every_spawn_point_is_free():
    for m in world.MAPS.values():
        assert all(not m.blocked(x, y) for x, y, _ in m.spawns)


def test_physics_constants_agree_with_each_other():
    assert pytest.approx(world.JUMP_SPEED_MPS**2 / (2 * world.GRAVITY)) == world.MAX_JUMP_HEIGHT_M
    assert pytest.approx(2 * world.JUMP_SPEED_MPS / world.GRAVITY) == world.MAX_AIRTIME_S
    assert max(world.WEAPON_MAX_SPEED_MPS.values()) == world.MAX_SPEED_MPS


def test_aim_angles_and_angle_between():
    yaw, pitch = world.aim_angles((0, 0, 0), (0, 10, 10))
    assert (yaw, pitch) == pytest.approx((90.0, 45.0))
    assert world.angle_between(179.0, 0.0, -179.0, 0.0) == pytest.approx(2.0)
    assert world.wrap_deg(540.0) == -180.0
    assert math.isclose(world.angle_between(10, 20, 10, 20), 0.0, abs_tol=1e-6)
