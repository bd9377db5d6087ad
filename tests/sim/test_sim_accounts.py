"""Accounts across matches: the same person and the same cheat in every lobby it joins."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamebus.errors import ConfigError
from gamebus.events import validate_event
from gamebus.sim import simulate_match
from gamebus.sim.accounts import sample_accounts, season_rosters


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
            assert (p.skill, p.rt_mu_ms, p.track_sd_deg, p.primary) == (
                own.skill, own.rt_mu_ms, own.track_sd_deg, own.primary)
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
    from gamebus.sim.accounts import League

    pool = sample_accounts(seed=6, n=30, cheaters=0.2)
    league = League(6, tuple(pool), 10)
    assert league.lobbies == 3
    far = [league.roster(i) for i in range(3000, 3003)]  # round 1000
    assert far == [League(6, tuple(pool), 10).roster(i) for i in range(3000, 3003)]
    assert sorted(x.name for r in far for x in r) == sorted(x.name for x in pool)
    assert far != [league.roster(i) for i in range(3003, 3006)]
    with pytest.raises(ConfigError, match="unique"):
        League(6, (pool[0], pool[0]), 2)
