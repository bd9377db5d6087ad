"""The analyst's speed trace: what the speed rule saw, against the weapon in hand."""

from __future__ import annotations

import math

import pytest
from anticheat_traces import spawn, walk

from anticheat.explain import speed_trace, timeline_png


def test_the_trace_is_the_half_second_speed_against_the_cap_in_hand():
    run = [dict(e, weapon="sniper") for e in walk("p1", speed_mps=6.3, seconds=3)]
    trace = speed_trace(run, "p1")
    assert trace[0][0] == 500  # nothing before half a second of positions
    assert all(v == pytest.approx(6.3) and cap == 4.8 for _, v, cap in trace)


def test_one_jittered_tick_moves_the_trace_by_a_tenth_of_it():
    run = walk("p1", speed_mps=5.0, seconds=3)
    run[30] = dict(run[30], x=run[30]["x"] + 0.25)  # a tick's speed +5 m/s
    speeds = [v for _, v, _ in speed_trace(run, "p1")]
    assert max(speeds) == pytest.approx(5.5, abs=0.01)
    assert all(math.isnan(cap) for *_, cap in speed_trace(run, "p1"))  # no weapon named


def test_a_gap_or_a_spawn_restarts_the_window():
    before = walk("p1", speed_mps=5.0, seconds=2)
    after = walk("p1", speed_mps=5.0, seconds=2, t0=5000, x0=90.0)  # back after a gap
    trace = speed_trace([*before, *after], "p1")
    assert max(v for _, v, _ in trace) == pytest.approx(5.0)
    assert min(t for t, _, _ in trace if t >= 5000) == 5500
    moved = walk("p1", speed_mps=5.0, seconds=2, t0=2050, x0=90.0)  # spawned at once
    trace = speed_trace([*before, spawn(2025, "p1", 90.0, 10.0), *moved], "p1")
    assert max(v for _, v, _ in trace) == pytest.approx(5.0)
    assert min(t for t, _, _ in trace if t > 2000) == 2550


def test_the_timeline_png_is_written(tmp_path):
    run = [dict(e, weapon="knife" if e["ts"] < 2000 else "rifle")
           for e in walk("p1", speed_mps=5.0, seconds=4)]
    out = timeline_png(run, "p1", [{"ts": 3000, "kind": "speed"}], tmp_path / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
