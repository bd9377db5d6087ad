"""Whole matches: determinism, the event schema, ordering, and labels kept off the bus."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from gamebus.errors import ConfigError
from gamebus.events import _SCHEMA, MATCH_EVENT_TYPES, validate_event
from gamebus.sim import CHEAT_KINDS, MatchRecording, MatchSimulator, simulate_match
from gamebus.sim.cheats import sample_on_intervals
from gamebus.sim.match import play_together
from gamebus.sim.world import MAP_NAMES


def test_the_same_seed_gives_the_same_match():
    a = simulate_match(seed=5, match_id="d", players=8, cheaters=2, duration_s=6)
    b = simulate_match(seed=5, match_id="d", players=8, cheaters=2, duration_s=6)
    assert a.events == b.events
    assert [x.to_dict() for x in a.labels] == [x.to_dict() for x in b.labels]
    assert a.side_record() == b.side_record()


def test_another_seed_gives_another_match():
    a = simulate_match(seed=5, match_id="d", players=8, cheaters=2, duration_s=6)
    b = simulate_match(seed=6, match_id="d", players=8, cheaters=2, duration_s=6)
    assert a.events != b.events


def test_matches_played_together_are_the_same_as_played_alone():
    kw = {"players": 8, "cheaters": 2, "duration_s": 5}
    alone = [simulate_match(seed=s, match_id=f"t{s}", **kw) for s in (1, 2, 3)]
    together = play_together([MatchSimulator(seed=s, match_id=f"t{s}", **kw) for s in (1, 2, 3)])
    assert [r.events for r in together] == [r.events for r in alone]
    assert len({r.map for r in alone}) > 1  # mixed maps in one batch


def test_a_simulator_plays_once():
    sim = MatchSimulator(seed=1, match_id="once", players=4, duration_s=1)
    list(sim.events())
    with pytest.raises(ConfigError):
        list(sim.events())


def test_the_tick_generator_yields_the_same_events_as_simulate_match():
    rec = simulate_match(seed=9, match_id="g", players=6, duration_s=4)
    sim = MatchSimulator(seed=9, match_id="g", players=6, duration_s=4)
    ticks = list(sim.ticks())
    assert [e for _, evs in ticks for e in evs] == rec.events
    assert len(ticks) == 4 * 20 + 1
    assert all(e["ts"] <= ts for ts, evs in ticks for e in evs)


def test_every_event_passes_the_schema(mixed_match: MatchRecording):
    for event in mixed_match.events:
        assert validate_event(event) == event


def test_events_carry_only_schema_fields_so_no_label_leaks(mixed_match: MatchRecording):
    common = {"type", "match", "ts"}
    for event in mixed_match.events:
        required, optional = _SCHEMA[event["type"]]
        assert set(event) <= common | set(required) | set(optional), event


def test_no_label_value_appears_in_any_event(mixed_match: MatchRecording):
    banned = set(CHEAT_KINDS) | {"blatant", "subtle", "casual", "average", "good", "pro", "cheat"}
    for event in mixed_match.events:
        for value in event.values():
            assert not (isinstance(value, str) and value in banned), event


def test_events_are_ordered_by_timestamp_and_positions_are_per_tick(mixed_match: MatchRecording):
    ts = [e["ts"] for e in mixed_match.events]
    assert ts == sorted(ts)
    pos_ts = sorted({e["ts"] for e in mixed_match.events if e["type"] == "pos"})
    assert set(np.diff(pos_ts)) == {50}
    assert pos_ts[0] == mixed_match.start_ts_ms and pos_ts[-1] == mixed_match.end_ts_ms


def test_a_match_has_the_full_lifecycle_of_events(mixed_match: MatchRecording):
    kinds = Counter(e["type"] for e in mixed_match.events)
    assert kinds["join"] == kinds["leave"] == 20
    assert kinds["round_start"] == kinds["round_end"] == 1  # 30 s match, 30 s rounds
    assert kinds["match_end"] == 1
    assert kinds["kill"] > 10 and kinds["hit"] >= kinds["kill"] and kinds["shot"] > kinds["hit"]
    assert set(kinds) == MATCH_EVENT_TYPES | {"pos"}
    first = mixed_match.events[:21]
    assert [e["type"] for e in first[:20]] == ["join"] * 20
    assert first[20]["type"] == "round_start" and first[20]["map"] in MAP_NAMES
    assert mixed_match.events[-21]["type"] == "match_end"


def test_positions_carry_angles_velocities_and_ping(mixed_match: MatchRecording):
    pos = [e for e in mixed_match.events if e["type"] == "pos"]
    assert all({"vx", "vy", "vz", "ping"} <= set(e) for e in pos)
    assert all(-180.0 <= e["yaw"] < 180.0 and -89.0 <= e["pitch"] <= 89.0 for e in pos)
    assert all(1 <= e["ping"] < 400 for e in pos)


def test_kills_follow_a_hit_on_the_same_target(mixed_match: MatchRecording):
    events = mixed_match.events
    for i, e in enumerate(events):
        if e["type"] == "kill":
            hit = events[i - 1]
            assert hit["type"] == "hit" and hit["target"] == e["target"]
            assert hit["headshot"] == e["headshot"]


def test_dead_players_send_no_positions_until_they_spawn(mixed_match: MatchRecording):
    dead: set[str] = set()
    for e in mixed_match.events:
        if e["type"] == "kill":
            dead.add(e["target"])
        elif e["type"] == "spawn":
            dead.discard(e["player"])
        elif e["type"] == "pos":
            assert e["player"] not in dead


def test_cheaters_as_a_share_or_a_count():
    assert len(simulate_match(seed=1, match_id="c", players=20, cheaters=0.1, duration_s=1).labels) == 2
    assert len(simulate_match(seed=1, match_id="c", players=20, cheaters=3, duration_s=1).labels) == 3
    assert simulate_match(seed=1, match_id="c", players=20, cheaters=0, duration_s=1).labels == []
    with pytest.raises(ConfigError):
        simulate_match(seed=1, match_id="c", players=4, cheaters=5, duration_s=1)
    with pytest.raises(ConfigError):
        simulate_match(seed=1, match_id="c", cheat_kinds=["wallhack"], duration_s=1)


def test_cheat_kinds_and_intensity_can_be_forced():
    rec = simulate_match(seed=2, match_id="k", players=10, cheaters=5, duration_s=1,
                         cheat_kinds=["triggerbot"], intensity="subtle")
    assert {(x.kind, x.intensity) for x in rec.labels} == {("triggerbot", "subtle")}
    assert all(x.match == "k" for x in rec.labels)


def test_labels_name_real_players_and_lie_within_the_match(mixed_match: MatchRecording):
    names = {p.player for p in mixed_match.players}
    assert len(mixed_match.labels) == 6
    for label in mixed_match.labels:
        assert label.player in names
        for a, b in label.on_intervals:
            assert mixed_match.start_ts_ms <= a < b <= mixed_match.end_ts_ms


def test_closet_cheaters_are_on_for_part_of_the_match_only():
    rng = np.random.default_rng(0)
    for _ in range(200):
        iv = sample_on_intervals(rng, start_ms=0, end_ms=60_000, closet=True)
        on = sum(b - a for a, b in iv)
        assert 1 <= len(iv) <= 3
        assert 5_000 <= on <= 40_000
        assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(iv))
    assert sample_on_intervals(rng, start_ms=0, end_ms=60_000, closet=False) == [(0, 60_000)]
