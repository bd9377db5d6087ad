"""Training snapshots: match-long and window vectors, labelled by when the cheat was on."""

from __future__ import annotations

from typing import Any

from anticheat_traces import pos, shot, walk

from anticheat.dataset import Snapshot, cheat_shows, replay_match, snapshot_label


def _snap(start_s: float, end_s: float, cheat_s: float, *, window: bool) -> Snapshot:
    return Snapshot(ts=int(end_s * 1000), alive_s=end_s - start_s, cheat_s=cheat_s, features={},
                    counts=(0, 0, 0), start=int(start_s * 1000), window=window)


def test_a_window_is_cheating_when_the_cheat_was_on_for_half_of_it():
    assert snapshot_label(True, _snap(10, 30, 10.0, window=True)) == 1
    assert snapshot_label(True, _snap(10, 30, 20.0, window=True)) == 1
    assert snapshot_label(True, _snap(10, 30, 4.0, window=True)) is None  # too mixed to say


def test_a_closet_cheaters_window_with_the_cheat_off_is_honest_play():
    assert snapshot_label(True, _snap(30, 50, 0.0, window=True)) == 0
    assert snapshot_label(False, _snap(30, 50, 0.0, window=True)) == 0


def test_a_match_long_snapshot_is_cheating_after_fifteen_seconds_of_cheat():
    assert snapshot_label(True, _snap(0, 45, 15.0, window=False)) == 1
    assert snapshot_label(True, _snap(0, 45, 8.0, window=False)) is None
    assert snapshot_label(True, _snap(0, 45, 0.0, window=False)) == 0


def test_window_snapshots_carry_the_cheat_time_of_their_own_span():
    events = sorted(walk("p1", speed_mps=3.0, seconds=40) + walk("p2", speed_mps=2.0, seconds=40),
                    key=lambda e: e["ts"])
    label = {"match": "m1", "player": "p1", "kind": "speedhack", "intensity": "subtle",
             "on_intervals": [[20_000, 30_000]], "closet": True}
    records = {r.player: r for r in replay_match(events, [label])}
    cheat, clean = records["p1"], records["p2"]
    assert (cheat.label, cheat.closet, clean.label) == (1, True, 0)
    windows = [(s.start, s.ts, s.cheat_s) for s in cheat.snapshots if s.window]
    assert windows == [(0, 20_000, 0.0), (10_000, 30_000, 10.0), (20_000, 40_000, 10.0)]
    assert [snapshot_label(True, s) for s in cheat.snapshots if s.window] == [0, 1, 1]
    long = [(s.ts, s.cheat_s) for s in cheat.snapshots if not s.window]
    assert long == [(30_000, 10.0), (40_000, 10.0)]  # at 15 s only 14.95 s of play


def test_a_cheat_shows_only_in_the_events_it_acts_on():
    assert not cheat_shows("fly", pos(0, "p1", 0, 0, z=0.0))
    assert cheat_shows("fly", pos(0, "p1", 0, 0, z=0.6))
    assert not cheat_shows("speedhack", pos(0, "p1", 0, 0, vx=0.1, vy=0.0))
    assert cheat_shows("speedhack", pos(0, "p1", 0, 0, vx=3.0, vy=4.0))
    assert cheat_shows("speedhack", pos(0, "p1", 0, 0))  # no velocity reported: not excused
    assert cheat_shows("teleport", pos(0, "p1", 0, 0))
    for aim in ("snap_aimbot", "humanised_aimbot", "triggerbot"):
        assert cheat_shows(aim, shot(0, "p1", yaw=0.0))
        assert not cheat_shows(aim, pos(0, "p1", 0, 0))
    assert not cheat_shows("fly", shot(0, "p1", yaw=0.0))


def _hop(player: str, t0: int) -> list[dict[str, Any]]:
    """A 0.4 s hop: off the ground for 7 ticks."""
    return [pos(t0 + k * 50, player, 10.0, 30.0, z=0.5) for k in range(1, 8)]


def test_a_record_says_whether_the_cheat_acted_while_it_was_on():
    ground = [pos(t, p, 10.0, 30.0) for t in range(0, 30_000, 50) for p in ("p1", "p2", "p3")]
    # p1 hops only before its cheat goes on; p2 hops while it is on.
    events = [e for e in ground if not (e["player"] == "p1" and 2_000 < e["ts"] < 2_400)
              and not (e["player"] == "p2" and 12_000 < e["ts"] < 12_400)]
    events += _hop("p1", 2_000) + _hop("p2", 12_000)
    labels = [{"match": "m1", "player": p, "kind": "fly", "intensity": "subtle",
               "on_intervals": [[10_000, 20_000]], "closet": True} for p in ("p1", "p2")]
    records = {r.player: r for r in replay_match(sorted(events, key=lambda e: e["ts"]), labels)}
    assert records["p1"].cheat_shown is False
    assert records["p2"].cheat_shown is True
    assert records["p3"].cheat_shown is True  # honest
