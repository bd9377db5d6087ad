"""Training snapshots: match-long and window vectors, labelled by when the cheat was on."""

from __future__ import annotations

from anticheat_traces import walk

from anticheat.dataset import Snapshot, replay_match, snapshot_label


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
