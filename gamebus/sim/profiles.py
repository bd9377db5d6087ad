"""Who the simulated players are: skill tiers, ping, playing style.

Skill is a tier (casual to pro) plus a per-player jitter on every parameter,
so the population is a continuum rather than four clusters: a strong honest
player must look fast and accurate without looking like a cheat, which is
the whole difficulty the anti-cheat model faces. Profiles are ground truth
and go to the labels side file, never onto the bus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

__all__ = [
    "SKILL_TIERS",
    "TEAMS",
    "TIER_WEIGHTS",
    "PlayerProfile",
    "SkillTier",
    "sample_profiles",
]


@dataclass(frozen=True, slots=True)
class SkillTier:
    """The mean human parameters of one tier (see docs/simulator.md).

    Reaction times are ex-Gaussian ``mu + N(0, sigma) + Exp(tau)`` (ms);
    flick durations follow Fitts' law ``a + b * log2(D / W + 1)`` (ms).
    """

    name: str
    rt_mu_ms: float
    rt_sigma_ms: float
    rt_tau_ms: float
    fitts_a_ms: float
    fitts_b_ms: float
    overshoot: float  # mean relative overshoot of a flick
    scatter: float  # endpoint scatter, as a fraction of the flick amplitude
    track_sd_deg: float  # tracking error while following a target
    head_pref: float  # probability of aiming at the head rather than the chest
    fire_tol: float  # fires when the error is below fire_tol target radii
    decide_ms: float  # delay between settling on target and the first shot
    track_delay_ms: float  # visuomotor delay of tracking: how late the hand sees the target move


SKILL_TIERS: Final[dict[str, SkillTier]] = {
    t.name: t
    for t in (
        SkillTier("casual", 215, 30, 70, 60, 85, 0.12, 0.10, 1.6, 0.15, 1.9, 95, 180),
        SkillTier("average", 195, 25, 60, 50, 72, 0.10, 0.08, 1.2, 0.30, 1.5, 75, 160),
        SkillTier("good", 182, 22, 50, 42, 62, 0.07, 0.06, 0.85, 0.50, 1.2, 60, 145),
        SkillTier("pro", 172, 20, 42, 35, 52, 0.05, 0.05, 0.6, 0.70, 1.0, 48, 130),
    )
}
#: Share of each tier in the population (most players are not good).
TIER_WEIGHTS: Final[dict[str, float]] = {"casual": 0.30, "average": 0.40, "good": 0.22, "pro": 0.08}

#: The two teams of a match.
TEAMS: Final = ("red", "blue")


@dataclass(slots=True)
class PlayerProfile:
    """One player's own parameters for a match (the tier, jittered)."""

    player: str
    team: str
    skill: str
    ping_ms: float
    rt_mu_ms: float
    rt_sigma_ms: float
    rt_tau_ms: float
    fitts_a_ms: float
    fitts_b_ms: float
    overshoot: float
    scatter: float
    track_sd_deg: float
    head_pref: float
    fire_tol: float
    decide_ms: float
    track_delay_ms: float
    knife_run: float  # how often this player runs with the knife out (faster)
    jump_rate_hz: float
    primary: str  # weapon

    def public(self) -> dict[str, Any]:
        """The profile as a plain dict for the labels side file."""
        return asdict(self)


def _jitter(rng: np.random.Generator, value: float, rel: float = 0.1) -> float:
    return float(value * np.exp(rng.normal(0.0, rel)))


def sample_profiles(rng: np.random.Generator, n: int) -> list[PlayerProfile]:
    """``n`` players split into two teams, tiers drawn by :data:`TIER_WEIGHTS`."""
    names = list(TIER_WEIGHTS)
    weights = np.array([TIER_WEIGHTS[k] for k in names])
    tiers = rng.choice(len(names), size=n, p=weights / weights.sum())
    weapons = rng.choice(4, size=n, p=[0.6, 0.2, 0.1, 0.1])
    profiles = []
    for i in range(n):
        t = SKILL_TIERS[names[int(tiers[i])]]
        profiles.append(
            PlayerProfile(
                player=f"p{i:02d}",
                team=TEAMS[i % 2],
                skill=t.name,
                # Lognormal ping: median 40 ms, a tail of players far away.
                ping_ms=float(np.clip(40.0 * np.exp(rng.normal(0.0, 0.55)), 8.0, 220.0)),
                rt_mu_ms=_jitter(rng, t.rt_mu_ms, 0.06),
                rt_sigma_ms=_jitter(rng, t.rt_sigma_ms),
                rt_tau_ms=_jitter(rng, t.rt_tau_ms, 0.15),
                fitts_a_ms=_jitter(rng, t.fitts_a_ms),
                fitts_b_ms=_jitter(rng, t.fitts_b_ms),
                overshoot=_jitter(rng, t.overshoot, 0.2),
                scatter=_jitter(rng, t.scatter, 0.15),
                track_sd_deg=_jitter(rng, t.track_sd_deg, 0.15),
                head_pref=float(np.clip(t.head_pref + rng.normal(0.0, 0.08), 0.02, 0.95)),
                fire_tol=_jitter(rng, t.fire_tol),
                decide_ms=_jitter(rng, t.decide_ms, 0.15),
                track_delay_ms=_jitter(rng, t.track_delay_ms, 0.10),
                knife_run=float(rng.beta(1.5, 4.0)),
                jump_rate_hz=float(rng.uniform(0.03, 0.35)),
                primary=("rifle", "smg", "pistol", "sniper")[int(weapons[i])],
            )
        )
    order = rng.permutation(n)  # tiers and teams independent of the id order
    for p, j in zip(profiles, order, strict=True):
        p.player = f"p{int(j):02d}"
    profiles.sort(key=lambda p: p.player)
    return profiles
