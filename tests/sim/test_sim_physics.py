"""Honest bodies obey the world's limits; each movement cheat breaks them its own way."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from gamebus.sim import MatchRecording, simulate_match
from gamebus.sim.cheats import SUBTLE_BOOST, subtle_boost
from gamebus.sim.state import COMMAND_JITTER_BASE_MS, COMMAND_JITTER_PER_PING
from gamebus.sim.world import (
    GRAVITY,
    MAX_ACCEL_MPS2,
    MAX_AIRTIME_S,
    MAX_JUMP_HEIGHT_M,
    MAX_SPEED_MPS,
    WEAPON_MAX_SPEED_MPS,
)
from tests.sim.sim_analysis import horizontal_speed, lives, step_speeds, within

DT = 0.05
EPS = 1e-6


@functools.cache
def _cheat_match(kind: str, intensity: str, *, closet: float = 0.0, seed: int = 21) -> MatchRecording:
    return simulate_match(seed=seed, match_id=f"{kind}-{intensity}", players=10, cheaters=3,
                          duration_s=20, cheat_kinds=[kind], intensity=intensity,
                          command_jitter=False, closet_share=closet)  # type: ignore[arg-type]


def _speeds(rec: MatchRecording, player: str) -> np.ndarray:
    """The horizontal speed of every position ``player`` published."""
    return np.array([horizontal_speed(e) for e in rec.events
                     if e["type"] == "pos" and e["player"] == player])


def _cheaters(rec: MatchRecording) -> set[str]:
    return {label.player for label in rec.labels}


def _honest_lives(recs: list[MatchRecording]) -> list[list[dict]]:
    out = []
    for rec in recs:
        bad = _cheaters(rec)
        for player, ls in lives(rec.events).items():
            if player not in bad:
                out.extend(ls)
    return out


def test_honest_players_never_exceed_the_top_speed(clean_matches, mixed_match):
    ls = _honest_lives([*clean_matches, mixed_match])
    assert max(horizontal_speed(e) for life in ls for e in life) <= MAX_SPEED_MPS + EPS
    assert max(step_speeds(life).max(initial=0.0) for life in ls) <= MAX_SPEED_MPS + EPS


def test_command_jitter_spreads_a_tick_but_not_a_second():
    """The server's copy of a position is late by a few ms that change every tick.

    So one tick's distance can beat the top speed (more so at a higher
    ping), while a second's distance stays within it but for the lateness
    at its two ends (at most 3 sd each).
    """
    rec = simulate_match(seed=5, match_id="jitter", players=20, cheaters=0, duration_s=20)
    ping = {p.player: p.ping_ms for p in rec.players}
    worst_late_s = 3 * (COMMAND_JITTER_BASE_MS + COMMAND_JITTER_PER_PING * max(ping.values())) / 1000
    spread: dict[str, float] = {}
    for player, ls in lives(rec.events).items():
        for life in ls:
            assert all(e["z"] >= 0.0 for e in life)
            steps = step_speeds(life)
            running = steps[steps > 0.8 * WEAPON_MAX_SPEED_MPS["sniper"]]
            if len(running) >= 20:
                spread[player] = max(spread.get(player, 0.0), float(np.std(running / np.median(running))))
            xy = np.array([(e["x"], e["y"]) for e in life])
            for a in range(len(life) - 20):  # 20 ticks: one second
                assert math.hypot(*(xy[a + 20] - xy[a])) <= MAX_SPEED_MPS * (1.0 + 2 * worst_late_s) + EPS
    assert max(step_speeds(life).max(initial=0.0) for ls in lives(rec.events).values()
               for life in ls) > MAX_SPEED_MPS
    low = [spread[p] for p in spread if ping[p] < 30]
    high = [spread[p] for p in spread if ping[p] > 60]
    assert low and high and np.median(high) > np.median(low)


def test_honest_players_keep_under_the_cap_of_the_weapon_in_hand(clean_matches, mixed_match):
    # A drawn weapon lowers the cap at once and the body slows to it at the
    # acceleration bound within a few ticks, so a speed is within the
    # fastest cap held over the last half second (what the speed rule
    # judges against), and reaches the lower cap once it has been held that long.
    held, ticks = set(), round(0.5 / DT)
    for life in _honest_lives([*clean_matches, mixed_match]):
        for k, now in enumerate(life):
            recent = life[max(0, k - ticks):k + 1]
            assert horizontal_speed(now) <= max(WEAPON_MAX_SPEED_MPS[e["weapon"]] for e in recent) + EPS
            held.add(now["weapon"])
    assert "knife" in held and len(held) >= 3


def test_honest_players_reach_the_top_speed_of_their_weapons(clean_matches):
    speeds = [horizontal_speed(e) for life in _honest_lives(clean_matches) for e in life]
    assert np.percentile(speeds, 90) > WEAPON_MAX_SPEED_MPS["rifle"] - 0.3


def test_honest_acceleration_is_bounded_except_against_walls(clean_matches):
    over = total = 0
    for life in _honest_lives(clean_matches):
        v = np.array([(e["vx"], e["vy"]) for e in life])
        if len(v) < 2:
            continue
        acc = np.hypot(*np.diff(v, axis=0).T) / DT
        over += int((acc > MAX_ACCEL_MPS2 + EPS).sum())
        total += len(acc)
    assert over / total < 0.03  # a wall stops a player at once; nothing else does


def test_honest_jumps_follow_gravity(clean_matches):
    airborne_pairs = 0
    for life in _honest_lives(clean_matches):
        for a, b in itertools.pairwise(life):
            assert 0.0 <= b["z"] <= MAX_JUMP_HEIGHT_M + EPS
            if a["z"] > 0 and b["z"] > 0:
                airborne_pairs += 1
                assert b["vz"] - a["vz"] == pytest.approx(-GRAVITY * DT, abs=1e-9)
                assert b["z"] - a["z"] == pytest.approx(a["vz"] * DT - 0.5 * GRAVITY * DT * DT, abs=1e-9)
    assert airborne_pairs > 100


def _airtimes(life: list[dict]) -> list[float]:
    out, start = [], None
    for e in life:
        if e["z"] > 0 and start is None:
            start = e["ts"]
        elif e["z"] <= 0 and start is not None:
            out.append((e["ts"] - start) / 1000.0)
            start = None
    return out


def test_honest_airtime_is_at_most_one_jump(clean_matches):
    times = [t for life in _honest_lives(clean_matches) for t in _airtimes(life)]
    assert times and max(times) <= MAX_AIRTIME_S + DT


def _cheater_lives(rec: MatchRecording) -> list[list[dict]]:
    bad = _cheaters(rec)
    return [life for p, ls in lives(rec.events).items() if p in bad for life in ls]


def test_blatant_speedhack_runs_above_the_top_speed():
    rec = _cheat_match("speedhack", "blatant")
    profiles = {p.player: p for p in rec.players}
    for label in rec.labels:
        speeds = _speeds(rec, label.player)
        cap = WEAPON_MAX_SPEED_MPS[profiles[label.player].primary] * label.params["factor"]
        assert max(speeds) > MAX_SPEED_MPS * 1.03  # even a sniper at x1.3
        assert 0.97 * cap <= max(speeds) <= MAX_SPEED_MPS * label.params["factor"] + EPS


def test_subtle_speedhack_beats_its_weapon_but_stays_under_the_limit():
    rec = _cheat_match("speedhack", "subtle")
    profiles = {p.player: p for p in rec.players}
    for label in rec.labels:
        speeds = _speeds(rec, label.player)
        assert speeds.max() <= MAX_SPEED_MPS + EPS  # the rule on the top speed never fires
        cap = WEAPON_MAX_SPEED_MPS[profiles[label.player].primary]
        expected = min(cap * label.params["factor"], MAX_SPEED_MPS)
        assert np.percentile(speeds, 90) > 0.93 * expected


def test_subtle_speedhack_keeps_acceleration_within_the_bound():
    rec = _cheat_match("speedhack", "subtle")
    for life in _cheater_lives(rec):
        v = np.array([(e["vx"], e["vy"]) for e in life])
        if len(v) > 1:
            acc = np.hypot(*np.diff(v, axis=0).T) / DT
            assert np.mean(acc > MAX_ACCEL_MPS2 + EPS) < 0.03


@pytest.mark.parametrize(("intensity", "jump_m"), [("blatant", 10.0), ("subtle", 1.5)])
def test_teleports_jump_farther_than_one_tick_allows(intensity: str, jump_m: float):
    rec = _cheat_match("teleport", intensity)
    steps = np.concatenate([step_speeds(life) * DT for life in _cheater_lives(rec)])
    assert steps.max() > jump_m
    honest = np.concatenate([step_speeds(life) * DT for life in _honest_lives([rec])])
    assert honest.max() <= MAX_SPEED_MPS * DT + EPS


def test_blatant_fly_hovers_far_above_any_jump():
    rec = _cheat_match("fly", "blatant")
    for label in rec.labels:
        zs = [e["z"] for e in rec.events if e["type"] == "pos" and e["player"] == label.player]
        assert max(zs) > MAX_JUMP_HEIGHT_M + 1.0


def test_subtle_fly_floats_longer_and_higher_than_gravity_allows():
    rec = _cheat_match("fly", "subtle")
    for label in rec.labels:
        ls = lives(rec.events)[label.player]
        zs = [e["z"] for life in ls for e in life]
        times = [t for life in ls for t in _airtimes(life)]
        assert max(zs) > MAX_JUMP_HEIGHT_M or max(times, default=0.0) > MAX_AIRTIME_S + DT


def test_closet_cheaters_break_physics_only_while_switched_on():
    rec = _cheat_match("teleport", "blatant", closet=1.0, seed=5)
    labels = {label.player: label for label in rec.labels}
    assert all(label.closet for label in labels.values())
    jumps = 0
    for player, ls in lives(rec.events).items():
        for life in ls:
            for a, b in itertools.pairwise(life):
                if math.hypot(b["x"] - a["x"], b["y"] - a["y"]) > MAX_SPEED_MPS * DT + EPS:
                    jumps += 1
                    assert player in labels and within(labels[player], b["ts"])
    assert jumps > 0


def test_subtle_speedhack_speed_up_wanders_inside_its_band_around_its_mean():
    rng = np.random.default_rng(5)
    params = {"factor": 1.12, "wander_sd": 0.03}
    boost, seen = 1.0, []
    for _ in range(20 * 120):  # two minutes of ticks
        boost = subtle_boost(rng, boost, params, DT)
        seen.append(boost)
    values = np.array(seen)
    lo, hi = SUBTLE_BOOST
    assert values.min() >= lo and values.max() <= hi
    assert values[0] == pytest.approx(1.12, abs=0.02)  # switched on: starts near its mean
    assert 0.015 <= values.std() <= 0.04  # it wanders, as a human's pace does
    assert abs(values.mean() - 1.12) < 0.02
    assert len(np.unique(np.round(values, 3))) > 50  # never pinned at one ratio


def test_subtle_speedhack_speed_is_not_pinned_and_stays_in_the_human_band():
    rec = _cheat_match("speedhack", "subtle")
    profiles = {p.player: p for p in rec.players}
    for label in rec.labels:
        speeds = _speeds(rec, label.player)
        cap = WEAPON_MAX_SPEED_MPS[profiles[label.player].primary]
        assert 1.07 - 1e-9 <= label.params["factor"] <= 1.13 + 1e-9  # its mean, inside the band
        assert speeds.max() <= MAX_SPEED_MPS + EPS  # a knife run's speed, never more
        if cap >= MAX_SPEED_MPS:
            continue  # a pistol carrier is already at the limit: the hack has nothing to add
        band = speeds[(speeds > cap * 1.01) & (speeds < MAX_SPEED_MPS - 0.01)]
        assert len(band) > 20  # it does run faster than the weapon allows ...
        # ... at a spread of speeds, not one value (0.05 m/s bins)
        counts = np.unique(np.round(band / 0.05), return_counts=True)[1]
        assert len(counts) >= 4 and counts.max() / len(band) < 0.6
