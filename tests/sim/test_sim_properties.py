"""Any small configuration gives a valid, ordered, label-free stream (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamebus.events import validate_event
from gamebus.sim import CHEAT_KINDS, simulate_match
from gamebus.sim.world import MAP_NAMES, MAX_SPEED_MPS


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    players=st.integers(2, 8),
    cheaters=st.integers(0, 2),
    tick_hz=st.sampled_from([5, 10, 20, 30, 64]),
    duration_s=st.floats(0.2, 3.0),
    kinds=st.lists(st.sampled_from(CHEAT_KINDS), min_size=1, max_size=3, unique=True),
    map_name=st.sampled_from(MAP_NAMES),
    round_s=st.floats(0.5, 2.0),
)
def test_any_small_match_is_a_valid_ordered_stream(seed, players, cheaters, tick_hz, duration_s,
                                                     kinds, map_name, round_s):
    rec = simulate_match(seed=seed, match_id="h", players=players, cheaters=min(cheaters, players),
                         tick_hz=tick_hz, duration_s=duration_s, cheat_kinds=kinds,
                         map_name=map_name, round_s=round_s)
    ts = [e["ts"] for e in rec.events]
    assert ts == sorted(ts)
    assert ts[0] == rec.start_ts_ms and ts[-1] == rec.end_ts_ms
    for e in rec.events:
        validate_event(e)
    assert [e["type"] for e in rec.events].count("match_end") == 1
    bad = {label.player for label in rec.labels}
    for e in rec.events:
        if e["type"] == "pos" and e["player"] not in bad:
            assert (e["vx"] ** 2 + e["vy"] ** 2) ** 0.5 <= MAX_SPEED_MPS + 1e-9
