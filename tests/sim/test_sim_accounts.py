"""Accounts across matches: the same person and the same cheat in every lobby it joins."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamebus.cli import main
from gamebus.errors import ConfigError
from gamebus.events import validate_event
from gamebus.sim import MatchSimulator, simulate_match
from gamebus.sim.accounts import (
    FORM_DAY_WEIGHT,
    FORM_PING_SD,
    FORM_SD,
    Account,
    League,
    match_form,
    sample_accounts,
    season_rosters,
)
from gamebus.sim.io import read_labels
from gamebus.sim.match import play_together


def test_accounts_are_deterministic_named_and_a_share_of_them_cheat():
    a = sample_accounts(seed=3, n=50, cheaters=0.2)
    b = sample_accounts(seed=3, n=50, cheaters=0.2)
    assert a == b
    assert a != sample_accounts(seed=4, n=50, cheaters=0.2)
    assert len({x.name for x in a}) == 50
    assert all(x.name.startswith("a") for x in a)
    cheats = [x for x in a if x.cheat is not None]
    assert len(cheats) == 10
    assert not any(x.closet for x in a if x.cheat is None)  # closet describes a cheater


def test_accounts_check_their_arguments():
    with pytest.raises(ConfigError, match="cheaters"):
        sample_accounts(seed=1, n=10, cheaters=1.5)
    with pytest.raises(ConfigError, match="unknown cheat kind"):
        sample_accounts(seed=1, n=10, cheaters=0.2, cheat_kinds=["wallhack"])
    with pytest.raises(ConfigError, match="intensity"):
        sample_accounts(seed=1, n=10, cheaters=0.2, intensity="loud")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(lobbies=st.integers(1, 6), players=st.integers(2, 12), rounds=st.integers(1, 5),
       seed=st.integers(0, 2**32 - 1))
def test_every_account_plays_once_per_round_in_a_full_lobby(lobbies, players, rounds, seed):
    pool = sample_accounts(seed=seed, n=lobbies * players, cheaters=0.25)
    rosters = season_rosters(seed=seed, accounts=pool, players=players, rounds=rounds)
    assert len(rosters) == lobbies * rounds
    assert all(len(r) == players and len({x.name for x in r}) == players for r in rosters)
    for k in range(rounds):
        this_round = [x.name for r in rosters[k * lobbies:(k + 1) * lobbies] for x in r]
        assert sorted(this_round) == sorted(x.name for x in pool)
    assert set(Counter(x.name for r in rosters for x in r).values()) == {rounds}


def test_lobbies_must_be_full():
    pool = sample_accounts(seed=1, n=30, cheaters=0.2)
    with pytest.raises(ConfigError, match="multiple"):
        season_rosters(seed=1, accounts=pool, players=20, rounds=2)


def test_an_account_brings_its_self_and_its_cheat_to_every_match():
    pool = sample_accounts(seed=11, n=16, cheaters=0.25, closet_share=0.5)
    rosters = season_rosters(seed=12, accounts=pool, players=8, rounds=2)
    matches = [simulate_match(seed=100 + k, match_id=f"s{k}", roster=r, duration_s=8)
               for k, r in enumerate(rosters)]
    by_name = {x.name: x for x in pool}
    seen: Counter[str] = Counter()
    for rec, roster in zip(matches, rosters, strict=True):
        assert {p.player for p in rec.players} == {x.name for x in roster}
        assert Counter(p.team for p in rec.players) == {"red": 4, "blue": 4}
        for p in rec.players:
            own = by_name[p.player].profile
            assert (p.skill, p.rt_sigma_ms, p.knife_run, p.primary) == (
                own.skill, own.rt_sigma_ms, own.knife_run, own.primary)
            # Form on the day moves the aim a little (match_form), never far.
            assert abs(math.log(p.track_sd_deg / own.track_sd_deg)) < 5 * FORM_SD["track_sd_deg"]
            seen[p.player] += 1
        cheaters = {x.name: x for x in roster if x.cheat is not None}
        assert {lab.player for lab in rec.labels} == set(cheaters)
        for lab in rec.labels:
            acc = cheaters[lab.player]
            assert acc.cheat is not None
            assert (lab.kind, lab.intensity, lab.params, lab.closet) == (
                acc.cheat.kind, acc.cheat.intensity, acc.cheat.params, acc.closet)
        names = {p.player for p in rec.players}
        for ev in rec.events:
            validate_event(ev)
            if "player" in ev:
                assert ev["player"] in names
    assert set(seen.values()) == {2}
    # The account's profile is not changed by playing (teams are per match).
    assert pool == sample_accounts(seed=11, n=16, cheaters=0.25, closet_share=0.5)


def test_a_closet_account_toggles_anew_each_match():
    pool = [x for x in sample_accounts(seed=2, n=40, cheaters=1.0, closet_share=1.0)][:8]
    rosters = [pool, list(reversed(pool))]
    a, b = (simulate_match(seed=s, match_id=f"c{s}", roster=r, duration_s=30)
            for s, r in zip((1, 2), rosters, strict=True))
    on_a = {lab.player: lab.on_intervals for lab in a.labels}
    on_b = {lab.player: lab.on_intervals for lab in b.labels}
    assert on_a.keys() == on_b.keys() == {x.name for x in pool}
    assert on_a != on_b


def test_an_account_cannot_play_twice_in_one_lobby():
    pool = sample_accounts(seed=1, n=4, cheaters=0.0)
    with pytest.raises(ConfigError, match="twice"):
        simulate_match(seed=1, match_id="x", roster=[pool[0], pool[0], pool[1]], duration_s=2)


def test_a_league_deals_any_round_alike_without_playing_the_rounds_before():
    pool = sample_accounts(seed=6, n=30, cheaters=0.2)
    league = League(6, tuple(pool), 10)
    assert league.lobbies == 3
    far = [league.roster(i) for i in range(3000, 3003)]  # round 1000
    assert far == [League(6, tuple(pool), 10).roster(i) for i in range(3000, 3003)]
    assert sorted(x.name for r in far for x in r) == sorted(x.name for x in pool)
    assert far != [league.roster(i) for i in range(3003, 3006)]
    with pytest.raises(ConfigError, match="unique"):
        League(6, (pool[0], pool[0]), 2)


# Accounts that turn: clean first, cheating later.

def _traits(pool: list[Account]) -> list[tuple[object, ...]]:
    return [(a.profile, a.cheat, a.closet) for a in pool]


def test_no_turn_share_leaves_every_account_as_it_was():
    before = sample_accounts(seed=3, n=60, cheaters=0.3, closet_share=0.5)
    assert sample_accounts(seed=3, n=60, cheaters=0.3, closet_share=0.5,
                           turn_share=0.0, clean_rounds=(1, 9)) == before
    assert all(a.cheat_from == 0 for a in before)


def test_turning_accounts_keep_their_self_and_cheat_and_only_start_later():
    before = sample_accounts(seed=3, n=60, cheaters=0.3, closet_share=0.5)
    turned = sample_accounts(seed=3, n=60, cheaters=0.3, closet_share=0.5,
                             turn_share=0.5, clean_rounds=(2, 4))
    assert _traits(turned) == _traits(before)
    late = [a for a in turned if a.cheat_from]
    assert len(late) == round(0.5 * 18)
    assert all(a.cheat is not None and 2 <= a.cheat_from <= 4 for a in late)
    assert turned == sample_accounts(seed=3, n=60, cheaters=0.3, closet_share=0.5,
                                     turn_share=0.5, clean_rounds=(2, 4))
    everyone = sample_accounts(seed=3, n=60, cheaters=0.3, turn_share=1.0, clean_rounds=(3, 3))
    assert {a.cheat_from for a in everyone if a.cheat is not None} == {3}
    assert {a.cheat_from for a in everyone if a.cheat is None} == {0}


def test_turning_is_checked():
    for share in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="turn_share"):
            sample_accounts(seed=1, n=10, cheaters=0.2, turn_share=share)
    for rounds in ((0, 2), (4, 2), (-1, 3)):
        with pytest.raises(ConfigError, match="clean_rounds"):
            sample_accounts(seed=1, n=10, cheaters=0.2, turn_share=0.5, clean_rounds=rounds)
    account = sample_accounts(seed=1, n=2, cheaters=0.5)[0]
    with pytest.raises(ConfigError, match="cheat_from"):
        replace(account, cheat_from=-1)


def test_an_account_that_turns_at_round_3_is_labelled_from_its_fourth_match_on():
    pool = sample_accounts(seed=21, n=8, cheaters=0.25, turn_share=1.0, clean_rounds=(3, 3))
    cheaters = {a.name for a in pool if a.cheat is not None}
    assert len(cheaters) == 2 and all(a.cheat_from == 3 for a in pool if a.name in cheaters)
    rosters = season_rosters(seed=22, accounts=pool, players=4, rounds=5)
    sims = [MatchSimulator(seed=300 + k, match_id=f"t{k}", roster=r, duration_s=10)
            for k, r in enumerate(rosters)]
    for k, sim in enumerate(sims):
        labelled = {c["player"] for c in sim.side_record()["cheaters"]}
        in_lobby = cheaters & {p["player"] for p in sim.side_record()["players"]}
        assert labelled == (in_lobby if k // 2 >= 3 else set()), k
    # The rounds either side of the turn play through.
    for rec in play_together(sims[4:8]):
        assert all(validate_event(ev) == ev for ev in rec.events)
        assert len(rec.labels) == (len(cheaters & {p.player for p in rec.players})
                                   if rec.match in ("t6", "t7") else 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lobbies=st.integers(1, 4), players=st.integers(2, 8),
       rounds=st.integers(1, 7), share=st.floats(0.0, 1.0),
       lo=st.integers(1, 4), width=st.integers(0, 3))
def test_rounds_before_an_accounts_turn_never_carry_its_cheat(
        seed, lobbies, players, rounds, share, lo, width):
    pool = sample_accounts(seed=seed, n=lobbies * players, cheaters=0.5, turn_share=share,
                           clean_rounds=(lo, lo + width))
    own = {a.name: a for a in pool}
    league = League(seed, tuple(pool), players)
    for index in range(rounds * lobbies):
        rnd = index // lobbies
        for a in league.roster(index):
            mine = own[a.name]
            assert a.cheat_from == mine.cheat_from
            if rnd < mine.cheat_from:
                assert (a.cheat, a.closet, a.profile) == (None, False, mine.profile)
            else:
                assert a == mine


def test_sim_turn_share_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    labels = tmp_path / "labels.jsonl"
    # One round: every cheater turned plays it clean (clean_rounds default 2..4).
    assert main(["sim", "--matches", "2", "--players", "4", "--accounts", "8", "--cheaters", "4",
                 "--turn-share", "1", "--seed", "5", "--duration", "1",
                 "--out", str(tmp_path / "ev.msgpack"), "--labels", str(labels)]) == 0
    records = read_labels(labels)
    assert len(records) == 2 and all(r["cheaters"] == [] for r in records)
    assert main(["sim", "--matches", "1", "--turn-share", "0.5",
                 "--out", str(tmp_path / "x.msgpack")]) == 1
    assert "--accounts" in capsys.readouterr().err


# Form on the day.

def _profile():
    return sample_accounts(seed=4, n=1, cheaters=0.0)[0].profile


def test_match_form_is_drawn_from_its_generator_and_keeps_who_the_player_is():
    p = _profile()
    a = match_form(np.random.default_rng(5), p)
    assert a == match_form(np.random.default_rng(5), p)
    assert a != match_form(np.random.default_rng(6), p)
    assert a != p and p == _profile()  # a new profile; the account's is untouched
    kept = ("player", "team", "skill", "rt_sigma_ms", "knife_run", "jump_rate_hz", "primary")
    assert all(getattr(a, k) == getattr(p, k) for k in kept)
    assert all(getattr(a, k) != getattr(p, k) for k in (*FORM_SD, "head_pref", "ping_ms"))


def test_match_form_spreads_as_documented_and_a_bad_day_is_bad_at_everything():
    p = _profile()
    rng = np.random.default_rng(11)
    days = [match_form(rng, p) for _ in range(4000)]
    logs = {k: np.log([getattr(d, k) / getattr(p, k) for d in days]) for k in FORM_SD}
    for k, sd in FORM_SD.items():
        assert abs(float(np.mean(logs[k]))) < 0.1 * sd, k
        # Day factor and own factor together: sd * sqrt(0.6**2 + 0.8**2) = sd.
        assert abs(float(np.std(logs[k])) / sd - 1.0) < 0.2, k
    together = float(np.corrcoef(logs["rt_mu_ms"], logs["track_sd_deg"])[0, 1])
    assert abs(together - FORM_DAY_WEIGHT**2) < 0.1
    head = np.array([d.head_pref - p.head_pref for d in days])
    assert float(np.corrcoef(head, logs["scatter"])[0, 1]) < -0.25  # a bad day aims lower
    ping = np.log([d.ping_ms / p.ping_ms for d in days])
    assert abs(float(np.std(ping)) / FORM_PING_SD - 1.0) < 0.2
    assert abs(float(np.corrcoef(ping, logs["rt_mu_ms"])[0, 1])) < 0.1  # ping is not form
    assert all(0.02 <= d.head_pref <= 0.95 and 8.0 <= d.ping_ms <= 220.0 for d in days)


def test_a_roster_plays_its_form_on_the_day_or_its_exact_self():
    pool = sample_accounts(seed=13, n=6, cheaters=0.34, closet_share=1.0)
    own = {a.name: a.profile for a in pool}

    def sim(seed: int, **kw: bool) -> MatchSimulator:
        return MatchSimulator(seed=seed, match_id=f"f{seed}", roster=pool, duration_s=10, **kw)

    exact, formed, again, other = sim(40, form=False), sim(40), sim(40), sim(41)
    assert all(p == replace(own[p.player], team=p.team) for p in exact.profiles)
    assert all(p != replace(own[p.player], team=p.team) for p in formed.profiles)
    assert formed.side_record() == again.side_record()
    assert [p.rt_mu_ms for p in formed.profiles] != [p.rt_mu_ms for p in other.profiles]
    # Form has a generator of its own: map, teams and cheats' intervals stay the same.
    assert formed.map_name == exact.map_name
    assert [p.team for p in formed.profiles] == [p.team for p in exact.profiles]
    assert formed.side_record()["cheaters"] == exact.side_record()["cheaters"]
    # What the match plays is what it records.
    assert formed.setup.profiles is formed.profiles
    rec = play_together([formed])[0]
    assert rec.players == formed.profiles
