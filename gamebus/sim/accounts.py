"""Accounts that play many matches: the same person, the same cheat, match after match.

A single match holds little evidence about a careful cheater: a subtle
humanised aimbot on an average player looks like a good player for two
minutes. Anti-cheat desks judge *accounts*, whose evidence accumulates over
every match they play. A :class:`Account` is one player's persistent self
(skill tier and its jittered parameters, ping, weapon, playing style) and
its cheat, if any (kind, intensity, parameters, and whether it is a closet
cheater who toggles the cheat on for part of each match).

:class:`League` deals a pool of accounts into matches round by round:
every account plays once per round, in a fresh lobby each time, so after
``rounds`` rounds each has played ``rounds`` matches (:func:`season_rosters`
lists them). A match built from a roster (``MatchSimulator(roster=...)``)
draws only what changes per match from its seed: the map, the teams, a
closet cheater's on-intervals and the play itself.

Example::

    from gamebus.sim.accounts import sample_accounts, season_rosters
    from gamebus.sim import MatchSimulator

    pool = sample_accounts(seed=5, n=40, cheaters=0.2)
    rosters = season_rosters(seed=5, accounts=pool, players=20, rounds=3)
    sims = [MatchSimulator(seed=5_000 + k, match_id=f"s{k}", roster=r)
            for k, r in enumerate(rosters)]          # 6 matches, 3 per account
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.cheats import CLOSET_SHARE, CheatProfile, Intensity, cheat_choice, sample_cheat
from gamebus.sim.profiles import PlayerProfile, sample_profiles

__all__ = ["Account", "League", "sample_accounts", "season_rosters"]


@dataclass(frozen=True, slots=True)
class Account:
    """One player across matches. ``profile.player`` is the account name;
    ``profile.team`` is reassigned in every match."""

    profile: PlayerProfile
    cheat: CheatProfile | None = None
    closet: bool = False

    @property
    def name(self) -> str:
        return self.profile.player


def sample_accounts(
    *,
    seed: int,
    n: int,
    cheaters: float,
    cheat_kinds: Sequence[str] | None = None,
    intensity: Intensity | None = None,
    closet_share: float = CLOSET_SHARE,
) -> list[Account]:
    """``n`` accounts named ``a0000``...; a share ``cheaters`` of them cheat.

    Skill tiers, parameters and cheats are drawn as for a single match
    (:func:`~gamebus.sim.profiles.sample_profiles`,
    :func:`~gamebus.sim.cheats.sample_cheat`), once per account.
    """
    if n < 1:
        raise ConfigError(f"accounts must be at least 1, got {n}")
    if not 0.0 <= cheaters <= 1.0:
        raise ConfigError(f"cheaters must be a share within 0..1, got {cheaters}")
    kinds = cheat_choice(cheat_kinds, intensity)
    rng = np.random.default_rng(seed)
    profiles = sample_profiles(rng, n)
    width = max(4, len(str(n - 1)))
    chosen = set(rng.choice(n, size=round(cheaters * n), replace=False).tolist())
    accounts = []
    for i, prof in enumerate(profiles):
        prof.player = f"a{i:0{width}d}"
        cheat, closet = None, False
        if i in chosen:
            kind = str(rng.choice(kinds))
            inten: Intensity = intensity or ("blatant" if rng.random() < 0.5 else "subtle")
            cheat = sample_cheat(rng, kind, inten)
            closet = bool(rng.random() < closet_share)
        accounts.append(Account(profile=prof, cheat=cheat, closet=closet))
    return accounts


@dataclass(frozen=True, slots=True)
class League:
    """``accounts`` dealt into lobbies of ``players``, round after round, forever.

    Lobby ``index`` is the same for a seed however many came before it:
    round ``index // lobbies`` shuffles the whole pool with its own
    generator, so an endless publisher (``gamebus sim --accounts N --loop``)
    and a finite season agree. Every account plays once per round.
    """

    seed: int
    accounts: tuple[Account, ...]
    players: int

    def __post_init__(self) -> None:
        if self.players < 2:
            raise ConfigError("a match needs at least 2 players")
        if not self.accounts or len(self.accounts) % self.players:
            raise ConfigError(
                f"{len(self.accounts)} accounts do not fill lobbies of {self.players}: "
                "use a multiple of the players per match")
        if len({a.name for a in self.accounts}) != len(self.accounts):
            raise ConfigError("account names must be unique")

    @property
    def lobbies(self) -> int:
        """Matches per round."""
        return len(self.accounts) // self.players

    def roster(self, index: int) -> list[Account]:
        """The accounts of match ``index`` (0-based, rounds of :attr:`lobbies` matches)."""
        if index < 0:
            raise ConfigError(f"match index must be >= 0, got {index}")
        rnd, lobby = divmod(index, self.lobbies)
        order = np.random.default_rng([self.seed, rnd]).permutation(len(self.accounts))
        lo = lobby * self.players
        return [self.accounts[int(i)] for i in order[lo:lo + self.players]]


def season_rosters(
    *, seed: int, accounts: Sequence[Account], players: int, rounds: int
) -> list[list[Account]]:
    """The first ``rounds`` rounds of a :class:`League`: each account plays ``rounds`` matches."""
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    league = League(seed, tuple(accounts), players)
    return [league.roster(i) for i in range(rounds * league.lobbies)]
