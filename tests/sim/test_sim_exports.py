"""The simulator's public names: other parts (anti-cheat, demo, load tests) import these."""

from __future__ import annotations

import importlib

import pytest

import gamebus.sim
from gamebus.sim import world

MODULES = ["accounts", "aim", "arrays", "batch", "cheats", "cli", "combat", "engagement", "engine", "io", "match",
           "movement", "navigation", "profiles", "publish", "state", "weapons", "world"]


def test_the_package_exports_the_recording_api():
    assert set(gamebus.sim.__all__) == {
        "CHEAT_KINDS", "DEFAULT_DURATION_S", "DEFAULT_START_TS_MS", "INTENSITIES",
        "CheaterLabel", "MatchRecording", "MatchSimulator", "play_together", "simulate_match",
        "simulate_matches",
    }


def test_world_exports_what_the_anti_cheat_imports():
    assert {
        "MAX_SPEED_MPS", "WEAPON_MAX_SPEED_MPS", "MAX_ACCEL_MPS2", "GRAVITY", "GRAVITY_MPS2",
        "JUMP_SPEED_MPS", "MAX_JUMP_HEIGHT_M", "MAX_AIRTIME_S", "EYE_HEIGHT_M", "CHEST_HEIGHT_M",
        "HEAD_HEIGHT_M", "PLAYER_RADIUS_M", "GameMap", "get_map", "line_of_sight",
        "line_of_sight_many", "can_see", "aim_angles", "angle_between", "wrap_deg", "MAP_NAMES",
    } <= set(world.__all__)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_its_public_names(name: str):
    module = importlib.import_module(f"gamebus.sim.{name}")
    assert module.__all__
    for public in module.__all__:
        assert hasattr(module, public), public
