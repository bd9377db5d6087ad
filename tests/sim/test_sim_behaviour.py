"""Seen from the bus: human reactions and aim, and how each aim cheat departs from them."""

from __future__ import annotations

import functools

import numpy as np

from gamebus.sim import MatchRecording, simulate_match
from gamebus.sim.aim import RT_FLOOR_MS
from gamebus.sim.weapons import hit_test
from tests.sim.sim_analysis import angular_steps, lives, reactions


@functools.cache
def _aim_match(kind: str, intensity: str) -> MatchRecording:
    return simulate_match(seed=31, match_id=f"{kind}-{intensity}", players=12, cheaters=4,
                          duration_s=25, cheat_kinds=[kind], intensity=intensity,
                          command_jitter=False, closet_share=0.0)  # type: ignore[arg-type]


def _human_reactions(recs: list[MatchRecording]):
    out = []
    for rec in recs:
        bad = {label.player for label in rec.labels}
        out += [r for r in reactions(rec.events) if r.player not in bad]
    return out


def test_humans_never_shoot_sooner_than_a_human_reaction_after_seeing(clean_matches):
    rs = _human_reactions(clean_matches)
    assert len(rs) > 50
    assert min(r.delay_ms - r.ping for r in rs) >= RT_FLOOR_MS


def test_human_time_to_first_shot_looks_human(clean_matches):
    delays = np.array([r.delay_ms - r.ping for r in _human_reactions(clean_matches)])
    # reaction (~250 ms) + flick + correction + decision, plus noticing
    # enemies that appear outside the field of view
    assert 450.0 <= np.median(delays) <= 900.0
    assert np.percentile(delays, 10) >= 300.0


def test_longer_flicks_take_longer_fitts_trend(clean_matches):
    rs = _human_reactions(clean_matches)
    near = [r.delay_ms for r in rs if r.offset_deg < 15.0]
    far = [r.delay_ms for r in rs if r.offset_deg > 45.0]
    assert len(near) > 10 and len(far) > 10
    assert np.median(far) > np.median(near) + 50.0


def test_snap_aimbot_shoots_within_a_tick_or_two_of_seeing():
    rec = _aim_match("snap_aimbot", "blatant")
    bad = {label.player for label in rec.labels}
    rs = [r for r in reactions(rec.events) if r.player in bad]
    assert len(rs) > 5
    assert np.median([r.delay_ms - r.ping for r in rs]) < 100.0


def test_snap_aimbot_turns_farther_in_one_tick_than_any_human():
    rec = _aim_match("snap_aimbot", "blatant")
    bad = {label.player for label in rec.labels}
    by_player = lives(rec.events)
    bot = max(angular_steps(life).max(initial=0) for p in bad for life in by_player[p])
    human = max(angular_steps(life).max(initial=0)
                for p, ls in by_player.items() if p not in bad for life in ls)
    assert bot > 60.0
    assert bot > human


def test_humanised_aimbot_reacts_faster_than_humans_but_not_inhumanly():
    rec = _aim_match("humanised_aimbot", "blatant")
    bad = {label.player for label in rec.labels}
    rs = reactions(rec.events)
    bot = [r.delay_ms - r.ping for r in rs if r.player in bad]
    human = [r.delay_ms - r.ping for r in rs if r.player not in bad]
    assert len(bot) > 5 and len(human) > 5
    assert np.median(bot) < np.median(human)
    assert np.median(bot) > 150.0  # still a flick with a Fitts-like duration, no snap


def _crosshair_on_target_share(rec: MatchRecording, players: set[str], *, inside: bool) -> float:
    """Share of the shots of ``players`` (or of everyone else) fired on a target.

    A cheater's shot counts only in a tick its cheat was on (the engine
    switches cheats by the tick's time: on the last tick of the match,
    the end of the on-interval, it plays as its human self).
    """
    labels = {label.player: label for label in rec.labels}
    on = total = 0
    pos: dict[str, dict]
    events = rec.events
    i = 0
    while i < len(events):  # one tick at a time: match events, then the tick's positions
        j = i
        while j < len(events) and events[j]["type"] != "pos":
            j += 1
        k = j
        pos = {}  # this tick's positions only (a target killed by the shot has none)
        tick_ts = events[j]["ts"] if j < len(events) else None
        while k < len(events) and events[k]["type"] == "pos" and events[k]["ts"] == tick_ts:
            pos[events[k]["player"]] = events[k]
            k += 1
        for e in events[i:j]:
            if e.get("player") in labels and tick_ts is not None and not labels[e["player"]].is_on(tick_ts):
                continue
            if e["type"] == "shot" and (e["player"] in players) == inside and e["target"] in pos:
                t = pos[e["target"]]
                total += 1
                on += hit_test((e["x"], e["y"], e["z"]), e["yaw"], e["pitch"],
                               (t["x"], t["y"], t["z"])) is not None
        i = max(k, i + 1)
    return on / max(total, 1)


def test_blatant_triggerbot_only_fires_with_the_crosshair_on_a_target():
    rec = _aim_match("triggerbot", "blatant")
    bad = {label.player for label in rec.labels}
    assert _crosshair_on_target_share(rec, bad, inside=True) == 1.0
    assert _crosshair_on_target_share(rec, bad, inside=False) < 0.9


def test_subtle_triggerbot_clicks_a_fixed_delay_after_the_crosshair_met_a_target():
    rec = _aim_match("triggerbot", "subtle")
    for label in rec.labels:
        delay = label.params["delay_ms"]
        assert delay in (40.0, 60.0, 80.0)
        # It sees the target on a tick and clicks exactly ``delay`` later.
        phases = [(e["ts"] - rec.start_ts_ms) % 50 for e in rec.events
                  if e["type"] == "shot" and e["player"] == label.player]
        if len(phases) >= 5:
            assert phases.count(int(delay) % 50) / len(phases) > 0.6
