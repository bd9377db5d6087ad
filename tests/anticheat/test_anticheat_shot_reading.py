"""shot_reading on hand-made positions: which enemy a shot was at, and what it shows."""

from __future__ import annotations

import math

import pytest

from anticheat.physics import Limits, aim_angles
from anticheat.player_state import PlayerState, Sample
from anticheat.schema import FeatureConfig
from anticheat.shot_reading import nearest_in_view, read_shot

LIM = Limits()
CONFIG = FeatureConfig()


def _standing(name: str, x: float, y: float, ticks: range, yaw: float = 0.0,
              pitch: float = 0.0) -> PlayerState:
    st = PlayerState(name, CONFIG)
    for ts in ticks:
        st.history.append(Sample(ts, x, y, 0.0, yaw, pitch))
    return st


def _aim_at(x: float, y: float) -> tuple[float, float]:
    return aim_angles((0.0, 0.0, LIM.eye_height_m), (x, y, LIM.chest_height_m))


def test_a_shot_without_a_named_target_is_at_the_enemy_nearest_the_crosshair() -> None:
    ahead = _standing("ahead", 20.0, 0.0, range(0, 100, 50))
    aside = _standing("aside", 0.0, 20.0, range(0, 100, 50))  # 90 degrees off
    yaw, pitch = _aim_at(20.0, 1.0)  # a few degrees beside `ahead`
    shot = Sample(50, 0.0, 0.0, 0.0, yaw, pitch)
    assert nearest_in_view(shot, [aside, ahead], LIM) is ahead


def test_no_enemy_within_thirty_degrees_means_no_target() -> None:
    aside = _standing("aside", 0.0, 20.0, range(0, 100, 50))
    yaw, pitch = _aim_at(20.0, 0.0)
    assert nearest_in_view(Sample(50, 0.0, 0.0, 0.0, yaw, pitch), [aside], LIM) is None


def test_a_shot_on_a_still_target_reads_its_error_and_the_hit_test() -> None:
    target = _standing("t", 20.0, 0.0, range(0, 1050, 50))
    shooter = _standing("s", 0.0, 0.0, range(0, 1050, 50))
    yaw, pitch = _aim_at(20.0, 0.0)
    on = read_shot(shooter, target, Sample(1000, 0.0, 0.0, 0.0, yaw, pitch), config=CONFIG, game_map=None)
    assert on.error_deg == pytest.approx(0.0, abs=1e-6)
    assert on.on_box
    assert on.opens_burst  # the first shot at it
    off = read_shot(shooter, target, Sample(1000, 0.0, 0.0, 0.0, yaw + 5.0, pitch), config=CONFIG,
                    game_map=None)
    assert off.error_deg == pytest.approx(5.0, abs=0.05)
    assert not off.on_box


def test_the_next_shot_at_the_same_target_continues_the_burst_and_reads_the_tracking() -> None:
    target = _standing("t", 20.0, 0.0, range(0, 1250, 50))
    yaw, pitch = _aim_at(20.0, 0.0)
    shooter = _standing("s", 0.0, 0.0, range(0, 1250, 50), yaw, pitch)  # on the chest all along
    read_shot(shooter, target, Sample(1000, 0.0, 0.0, 0.0, yaw, pitch), config=CONFIG, game_map=None)
    second = read_shot(shooter, target, Sample(1200, 0.0, 0.0, 0.0, yaw, pitch), config=CONFIG,
                       game_map=None)
    assert not second.opens_burst
    # The ticks after the first shot up to the second: 1050, 1100, 1150, 1200.
    assert len(second.track_errors) == 4
    assert all(math.isclose(e, 0.0, abs_tol=1e-6) for e in second.track_errors)
    assert second.track_lag.ticks == 4
