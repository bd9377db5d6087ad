"""The analyst's speed trace: what the speed rule saw, against the limit it judged by."""

from __future__ import annotations

import pytest
from anticheat_traces import spawn, walk

from anticheat.explain import speed_trace, timeline_png


def test_the_trace_is_the_half_second_speed_against_the_limit_of_the_weapon_in_hand():
    run = [dict(e, weapon="sniper") for e in walk("p1", speed_mps=6.3, seconds=3)]
    trace = speed_trace(run, "p1")
    assert trace[0][0] == 500  # nothing before half a second of positions
    assert all(v == pytest.approx(6.3) and limit == pytest.approx(4.8 * 1.1) for _, v, limit in trace)
    # Without the weapon the rule must allow the knife's speed.
    assert {round(limit, 2) for *_, limit in speed_trace(walk("p1", speed_mps=6.3, seconds=3), "p1")} == {6.6}


def test_one_jittered_tick_moves_the_trace_by_a_tenth_of_it():
    run = walk("p1", speed_mps=5.0, seconds=3)
    run[30] = dict(run[30], x=run[30]["x"] + 0.25)  # a tick's speed +5 m/s
    speeds = [v for _, v, _ in speed_trace(run, "p1")]
    assert max(speeds) == pytest.approx(5.5, abs=0.01)


def test_a_gap_or_a_spawn_restarts_the_window():
    before = walk("p1", speed_mps=5.0, seconds=2)
    after = walk("p1", speed_mps=5.0, seconds=2, t0=5000, x0=90.0)  # back after a gap
    trace = speed_trace([*before, *after], "p1")
    assert max(v for _, v, _ in trace) == pytest.approx(5.0)
    assert min(t for t, _, _ in trace if t >= 5000) == 5500
    # Spawned far away at once: the rule's grace (0.5 s), then a fresh window.
    moved = walk("p1", speed_mps=5.0, seconds=2, t0=2050, x0=90.0)
    trace = speed_trace([*before, spawn(2025, "p1", 90.0, 10.0), *moved], "p1")
    assert max(v for _, v, _ in trace) == pytest.approx(5.0)
    assert min(t for t, _, _ in trace if t > 2000) == 3000


def test_the_timeline_png_is_written(tmp_path):
    run = [dict(e, weapon="knife" if e["ts"] < 2000 else "rifle")
           for e in walk("p1", speed_mps=5.0, seconds=4)]
    out = timeline_png(run, "p1", [{"ts": 3000, "kind": "speed"}], tmp_path / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_timeline_shades_where_each_cusum_climbed(tmp_path):
    run = walk("p1", speed_mps=5.0, seconds=4)
    plain = timeline_png(run, "p1", [], tmp_path / "plain.png").read_bytes()
    climbs = {"cusum_aim_max": {"from": 1000, "to": 2500, "height": 7.5}}
    shaded = timeline_png(run, "p1", [], tmp_path / "shaded.png", climbs=climbs).read_bytes()
    assert shaded[:8] == b"\x89PNG\r\n\x1a\n" and shaded != plain
