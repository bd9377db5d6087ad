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
closet cheater's on-intervals, the account's form on the day
(:func:`match_form`) and the play itself.

Most real cheaters play clean for a while before they buy a cheat: an
account with ``cheat_from = k`` (``sample_accounts(turn_share=...)``) plays
its first ``k`` rounds clean, with no cheat and no label, and cheats from
round ``k`` on (:meth:`Account.in_round`, which :class:`League` applies).

Example::

    from gamebus.sim.accounts import sample_accounts, season_rosters
    from gamebus.sim import MatchSimulator

    pool = sample_accounts(seed=5, n=40, cheaters=0.2)
    rosters = season_rosters(seed=5, accounts=pool, players=20, rounds=3)
    sims = [MatchSimulator(seed=5_000 + k, match_id=f"s{k}", roster=r)
            for k, r in enumerate(rosters)]          # 6 matches, 3 per account
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.cheats import CLOSET_SHARE, CheatProfile, Intensity, cheat_choice, sample_cheat
from gamebus.sim.profiles import PlayerProfile, sample_profiles

__all__ = [
    "FORM_DAY_WEIGHT",
    "FORM_HEAD_PREF_SD",
    "FORM_PING_SD",
    "FORM_SD",
    "Account",
    "League",
    "match_form",
    "sample_accounts",
    "season_rosters",
]

#: Day-to-day spread of an account's aim parameters (sd of the log of the
#: per-match multiplier; see :func:`match_form`).
FORM_SD: Final[dict[str, float]] = {
    "rt_mu_ms": 0.04,
    "rt_tau_ms": 0.10,
    "fitts_a_ms": 0.06,
    "fitts_b_ms": 0.08,
    "overshoot": 0.12,
    "scatter": 0.10,
    "track_sd_deg": 0.12,
    "decide_ms": 0.10,
    "fire_tol": 0.06,
    "track_delay_ms": 0.06,
}
#: Weight of the shared "day" factor in each parameter's form; the
#: parameter's own factor has weight ``sqrt(1 - FORM_DAY_WEIGHT**2)`` (0.8),
#: so the total spread of each parameter is its :data:`FORM_SD`.
FORM_DAY_WEIGHT: Final = 0.6
#: Day-to-day spread of ``head_pref`` (additive, then clipped to 0.02..0.95).
FORM_HEAD_PREF_SD: Final = 0.03
#: Match-to-match spread of ping (sd of the log of its multiplier; independent of form).
FORM_PING_SD: Final = 0.15


@dataclass(frozen=True, slots=True)
class Account:
    """One player across matches. ``profile.player`` is the account name;
    ``profile.team`` is reassigned in every match."""

    profile: PlayerProfile
    cheat: CheatProfile | None = None
    closet: bool = False
    #: The account's own match number (its :class:`League` round, 0-based)
    #: from which its cheat is on; it plays the matches before clean.
    cheat_from: int = 0

    def __post_init__(self) -> None:
        if self.cheat_from < 0:
            raise ConfigError(f"cheat_from must be >= 0, got {self.cheat_from}")

    @property
    def name(self) -> str:
        return self.profile.player

    def in_round(self, rnd: int) -> Account:
        """The account as it plays its match of round ``rnd``: before
        :attr:`cheat_from` without its cheat (and so without a label);
        ``cheat_from`` is kept, so the turn stays visible."""
        if self.cheat is None or rnd >= self.cheat_from:
            return self
        return replace(self, cheat=None, closet=False)


def match_form(rng: np.random.Generator, profile: PlayerProfile) -> PlayerProfile:
    """``profile`` as the player plays one match: their form on the day.

    A person is not the same player every evening. Without this, an
    account's aim parameters would be identical in every match and its
    features would vary only by sampling noise, so "this account is better
    than its own earlier self" would look easier to detect than it is on
    real players: a per-account baseline has to beat day-to-day variation,
    not just sampling noise.

    One shared day factor ``g ~ N(0, 1)`` and an independent ``e ~ N(0, 1)``
    per parameter multiply each parameter of :data:`FORM_SD` by
    ``exp(sd * (0.6 * g + 0.8 * e))`` (:data:`FORM_DAY_WEIGHT`), so the
    parameters move together (a bad day, ``g > 0``, is slower to react and
    aim, tracks and scatters more, fires sloppier) and each also on its own;
    each multiplier's log has sd ``FORM_SD[name]``. ``head_pref`` moves by
    ``-FORM_HEAD_PREF_SD * (0.6 * g + 0.8 * e)`` (a bad day aims lower),
    clipped to 0.02..0.95. Ping varies independently of form, by
    ``exp(N(0, FORM_PING_SD))``, clipped to 8..220 ms. Everything else
    (name, team, skill tier, ``rt_sigma_ms``, knife running, jumping,
    weapon) is unchanged. Draws, in order: ``g``, one ``e`` per
    :data:`FORM_SD` entry, the ``head_pref`` ``e``, the ping factor.
    """
    own = math.sqrt(1.0 - FORM_DAY_WEIGHT**2)
    g = float(rng.normal())
    e = rng.normal(size=len(FORM_SD) + 1)
    shift = FORM_DAY_WEIGHT * g + own * e
    changes: dict[str, Any] = {
        name: float(getattr(profile, name) * math.exp(sd * float(shift[k])))
        for k, (name, sd) in enumerate(FORM_SD.items())
    }
    changes["head_pref"] = float(
        np.clip(profile.head_pref - FORM_HEAD_PREF_SD * float(shift[-1]), 0.02, 0.95))
    changes["ping_ms"] = float(
        np.clip(profile.ping_ms * math.exp(rng.normal(0.0, FORM_PING_SD)), 8.0, 220.0))
    return replace(profile, **changes)


def sample_accounts(
    *,
    seed: int,
    n: int,
    cheaters: float,
    cheat_kinds: Sequence[str] | None = None,
    intensity: Intensity | None = None,
    closet_share: float = CLOSET_SHARE,
    turn_share: float = 0.0,
    clean_rounds: tuple[int, int] = (2, 4),
) -> list[Account]:
    """``n`` accounts named ``a0000``...; a share ``cheaters`` of them cheat.

    Skill tiers, parameters and cheats are drawn as for a single match
    (:func:`~gamebus.sim.profiles.sample_profiles`,
    :func:`~gamebus.sim.cheats.sample_cheat`), once per account.

    A share ``turn_share`` of the cheating accounts (rounded) turn: they play
    clean first and cheat from a round drawn evenly from ``clean_rounds``
    (``lo..hi`` inclusive, ``lo >= 1``) on (:attr:`Account.cheat_from`); the
    others cheat from their first match. The turns are drawn from a generator
    of their own, so every account's profile, cheat and closet flag are the
    same whatever ``turn_share`` and ``clean_rounds``.
    """
    if n < 1:
        raise ConfigError(f"accounts must be at least 1, got {n}")
    if not 0.0 <= cheaters <= 1.0:
        raise ConfigError(f"cheaters must be a share within 0..1, got {cheaters}")
    if not 0.0 <= turn_share <= 1.0:
        raise ConfigError(f"turn_share must be a share within 0..1, got {turn_share}")
    if len(clean_rounds) != 2 or not 1 <= clean_rounds[0] <= clean_rounds[1]:
        raise ConfigError(
            f"clean_rounds must be (lo, hi) with 1 <= lo <= hi, got {clean_rounds!r}")
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
    return _turn(accounts, np.random.default_rng([seed, 1]), turn_share, clean_rounds)


def _turn(accounts: list[Account], rng: np.random.Generator, share: float,
          clean_rounds: tuple[int, int]) -> list[Account]:
    """A share ``share`` of the cheating ``accounts``, each with its own ``cheat_from``."""
    cheating = [i for i, a in enumerate(accounts) if a.cheat is not None]
    count = round(share * len(cheating))
    if not count:
        return accounts
    turned = sorted(int(i) for i in rng.choice(cheating, size=count, replace=False))
    lo, hi = clean_rounds
    starts = rng.integers(lo, hi, size=count, endpoint=True)
    out = list(accounts)
    for i, start in zip(turned, starts, strict=True):
        out[i] = replace(out[i], cheat_from=int(start))
    return out


@dataclass(frozen=True, slots=True)
class League:
    """``accounts`` dealt into lobbies of ``players``, round after round, forever.

    Lobby ``index`` is the same for a seed however many came before it:
    round ``index // lobbies`` shuffles the whole pool with its own
    generator, so an endless publisher (``gamebus sim --accounts N --loop``)
    and a finite season agree. Every account plays once per round, as
    :meth:`Account.in_round` has it (clean before its ``cheat_from``).
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
        """The accounts of match ``index`` (0-based, rounds of :attr:`lobbies` matches),
        each as it plays that round (:meth:`Account.in_round`)."""
        if index < 0:
            raise ConfigError(f"match index must be >= 0, got {index}")
        rnd, lobby = divmod(index, self.lobbies)
        order = np.random.default_rng([self.seed, rnd]).permutation(len(self.accounts))
        lo = lobby * self.players
        return [self.accounts[int(i)].in_round(rnd) for i in order[lo:lo + self.players]]


def season_rosters(
    *, seed: int, accounts: Sequence[Account], players: int, rounds: int
) -> list[list[Account]]:
    """The first ``rounds`` rounds of a :class:`League`: each account plays ``rounds`` matches."""
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    league = League(seed, tuple(accounts), players)
    return [league.roster(i) for i in range(rounds * league.lobbies)]
