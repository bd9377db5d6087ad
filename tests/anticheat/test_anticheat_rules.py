"""Rules on crafted streams: what fires, what never fires, and the legit-teleport exclusions."""

from __future__ import annotations

import pytest
from anticheat_traces import pos, run, spawn, walk

from anticheat.physics import Limits
from anticheat.rules import MatchRules, RuleConfig


def fired(events, config=None):
    return run(MatchRules("m1", config), events)


def test_honest_run_at_the_speed_cap_never_fires():
    assert fired(walk("p1", speed_mps=6.0, seconds=30)) == []


def test_speed_one_and_a_half_times_the_cap_fires_speed_once_with_evidence():
    out = fired(walk("p1", speed_mps=9.0, seconds=10))
    assert [v.rule for v in out] == ["speed"]
    assert out[0].value == pytest.approx(9.0, rel=0.01)  # m/s
    assert out[0].limit == pytest.approx(6.6) and out[0].weapon is None
    assert out[0].evidence  # offsets of the offending events


def held(events, weapon):
    return [dict(e, weapon=weapon) for e in events]


def test_a_sniper_in_hand_at_a_third_over_its_cap_fires_speed():
    # 4.8 m/s x 1.32: under the knife's speed with a margin, so only the
    # weapon in hand gives it away.
    hacked = walk("p1", speed_mps=4.8 * 1.32, seconds=10)
    assert fired(hacked) == []
    out = fired(held(hacked, "sniper"))
    assert [v.rule for v in out] == ["speed"]
    assert out[0].value == pytest.approx(4.8 * 1.32, rel=0.01)
    assert (out[0].limit, out[0].weapon) == (pytest.approx(4.8 * 1.1), "sniper")
    assert out[0].reason().startswith("rule speed: 6.34 m/s over 0.5 s against 5.28 m/s, sniper in hand")


def test_a_speed_violation_names_the_window_it_was_measured_over():
    out = fired(held(walk("p1", speed_mps=4.8 * 1.32, seconds=10), "sniper"),
                RuleConfig(speed_window_ms=1000))
    assert out[0].window_ms == 1000 and out[0].to_dict()["window_ms"] == 1000
    assert " over 1 s against " in out[0].reason()


def test_a_sniper_carrier_running_with_the_knife_out_never_fires():
    assert fired(held(walk("p1", speed_mps=6.0, seconds=30), "knife")) == []


def test_drawing_a_slow_weapon_mid_run_never_fires():
    # A knife run at 6.0 m/s, then the sniper comes out and the player slows
    # to its 4.8 m/s at the acceleration bound (25 m/s^2, about 50 ms).
    events, x, v = [], 10.0, 6.0
    for i in range(400):
        weapon = "knife" if i % 100 < 50 else "sniper"
        v = min(6.0, v + 25.0 * 0.05) if weapon == "knife" else max(4.8, v - 25.0 * 0.05)
        x += v * 0.05
        events.append(pos(i * 50, "p1", x, 10.0, weapon=weapon))
    assert fired(events) == []


def test_a_single_glitchy_tick_does_not_fire_speed():
    events = walk("p1", speed_mps=5.0, seconds=5)
    events[50] = dict(events[50], x=events[50]["x"] + 0.8)  # one jittered position
    assert fired(events) == []


def test_jumping_thirty_metres_in_a_tick_fires_teleport():
    events = walk("p1", speed_mps=3.0, seconds=3)
    events.append(pos(3050, "p1", 50.0, 10.0))
    out = fired(events)
    assert [v.rule for v in out] == ["teleport"]
    assert out[0].value == pytest.approx(50.0 - 19.0 - 0.3, abs=1e-6)


def test_respawn_across_the_map_is_excluded():
    events = walk("p1", speed_mps=6.0, seconds=3)
    events.append(spawn(3025, "p1", 90.0, 90.0))
    events += walk("p1", speed_mps=6.0, seconds=3, t0=3050, x0=90.0, y0=90.0)
    assert fired(events) == []


def test_round_start_moves_everyone_without_firing():
    events = walk("p1", speed_mps=3.0, seconds=3)
    events.append({"type": "round_start", "match": "m1", "ts": 3025, "round": 2, "map": "canyon"})
    events += walk("p1", speed_mps=3.0, seconds=3, t0=3050, x0=80.0, y0=80.0)
    assert fired(events) == []


def test_teleport_right_after_the_grace_window_is_judged_again():
    config = RuleConfig(grace_ms=1000)
    events = [spawn(0, "p1", 10.0, 10.0)]
    events += walk("p1", speed_mps=3.0, seconds=2, t0=50)
    events.append(pos(2100, "p1", 60.0, 10.0))
    assert [v.rule for v in fired(events, config)] == ["teleport"]


def test_an_honest_jump_never_fires_fly():
    lim = Limits()
    events = []
    for jump in range(10):
        for i in range(30):
            t = i * 0.05
            z = max(0.0, lim.jump_speed_mps * t - lim.gravity_mps2 * t * t / 2)
            events.append(pos(jump * 1500 + i * 50, "p1", 10.0, 10.0, z))
    assert fired(events) == []


def test_hovering_fires_fly():
    events = [pos(i * 50, "p1", 10.0, 10.0, 0.0 if i < 5 else 2.5) for i in range(100)]
    out = fired(events)
    assert [v.rule for v in out] == ["fly"]


def test_levels_decay_with_the_half_life_and_rearm():
    config = RuleConfig(half_life_s=10.0)
    rules = MatchRules("m1", config)
    run(rules, [*walk("p1", speed_mps=3.0, seconds=1), pos(1050, "p1", 40.0, 10.0)])
    state = rules.player("p1")
    start = state.level("teleport", 1050)
    assert state.level("teleport", 11_050) == pytest.approx(start / 2)
    # Once decayed, a second teleport fires again.
    later = walk("p1", speed_mps=3.0, seconds=1, t0=60_000, x0=40.0)
    later.append(pos(61_050, "p1", 80.0, 10.0))
    assert [v.rule for v in run(rules, later)] == ["teleport"]


def test_one_subtle_hop_fires_teleport_on_its_own():
    # 3 m in one 50 ms tick, where 0.3 m is allowed: a closet cheater's
    # single hop, with no second one inside the half-life.
    events = walk("p1", speed_mps=0.0, seconds=2)
    events += walk("p1", speed_mps=0.0, seconds=2, t0=2050, x0=13.0)
    out = fired(events)
    assert [v.rule for v in out] == ["teleport"]
    assert out[0].value == pytest.approx(3.0 - 0.3, abs=1e-6)


def test_a_step_just_past_the_slack_needs_a_second_one():
    # 2.2 m in a tick: past the 2.1 m the rule judges from, 1.9 m past the
    # allowed 0.3 m, so its level is under 1 until another such step.
    one = [*walk("p1", speed_mps=0.0, seconds=2), *walk("p1", speed_mps=0.0, seconds=2, t0=2050, x0=12.2)]
    assert fired(one) == []
    two = [*one, *walk("p1", speed_mps=0.0, seconds=2, t0=4100, x0=14.4)]
    assert [v.rule for v in fired(two)] == ["teleport"]
