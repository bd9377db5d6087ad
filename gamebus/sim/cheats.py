"""Cheat kinds, their blatant and subtle settings, and the ground-truth labels.

A cheater is an ordinary simulated player (with a skill tier, a ping and a
human self) plus one :class:`CheatProfile` that is switched on during its
``on_intervals``. Full-time cheaters have one interval covering the match;
closet cheaters toggle on for part of it. Intervals are absolute ``ts``
milliseconds, the clock of the events.

The labels (:class:`CheaterLabel`) are the training truth for the anti-cheat
and are returned beside the events, never inside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from gamebus.errors import ConfigError

__all__ = [
    "CHEAT_KINDS",
    "INTENSITIES",
    "CheatProfile",
    "CheaterLabel",
    "Intensity",
    "cheat_choice",
    "is_on",
    "sample_cheat",
    "sample_on_intervals",
    "subtle_boost",
]

Intensity = Literal["blatant", "subtle"]

#: Every cheat kind the simulator knows.
CHEAT_KINDS: Final = (
    "speedhack",
    "teleport",
    "fly",
    "snap_aimbot",
    "humanised_aimbot",
    "triggerbot",
)
INTENSITIES: Final = ("blatant", "subtle")
#: Share of cheaters who are closet cheaters (toggle on for part of the match).
CLOSET_SHARE: Final = 0.3
#: The band a subtle speedhack's speed-up stays in (x what the player's input gives).
SUBTLE_BOOST: Final = (1.05, 1.15)
#: How fast a subtle speedhack's speed-up returns to its mean, 1/s (it wanders over seconds).
SUBTLE_BOOST_THETA: Final = 0.6


@dataclass(frozen=True, slots=True)
class CheatProfile:
    """One cheat's parameters; ``params`` holds the kind-specific numbers.

    - speedhack: ``factor`` (x1.3-2.0 blatant, fixed; subtle: the mean of a
      speed-up that wanders inside x1.05-1.15 with sd ``wander_sd``, see
      :func:`subtle_boost`). The subtle hack multiplies what the player's own
      input gives (weapon cap, human velocity noise and all), keeps the
      reported speed at most ``MAX_SPEED_MPS`` (a knife run looks like a knife
      run) and the acceleration under ``MAX_ACCEL_MPS2``, as tuned hacks do.
    - teleport: ``rate_hz``, ``min_m``, ``max_m`` (15-40 m blatant, 2.5-4.5 m subtle).
    - fly: blatant hovers at ``altitude_m`` (3-8 m) with no gravity; subtle is
      low gravity (``gravity_scale`` 0.35-0.6) with more jumps.
    - snap_aimbot: reaction ``rt_min_ms``-``rt_max_ms`` (< 30 ms) before
      ping, one-tick snap; ``fov_deg``, ``head_share``, ``track_sd_deg``.
    - humanised_aimbot: ``rt_shift_ms`` (30-60 ms faster than the human
      self), Fitts ``b_scale``, ``overshoot_scale``, ``scatter_scale``,
      ``track_scale``, ``head_bonus``, ``fov_deg`` (reduced field of view).
    - triggerbot: ``delay_ms`` (0 blatant: the tick the crosshair meets the
      target; subtle: a fixed short delay).
    """

    kind: str
    intensity: Intensity
    params: dict[str, float]


def is_on(on_intervals: Iterable[Sequence[float]], ts_ms: float) -> bool:
    """Whether ``ts_ms`` falls in one of the ``[start, end)`` intervals a cheat was on.

    The label side file carries the intervals as plain lists, so readers of
    the file and :class:`CheaterLabel` share this one test.

    >>> is_on([[1000, 2000]], 1999), is_on([[1000, 2000]], 2000)
    (True, False)
    """
    return any(a <= ts_ms < b for a, b in on_intervals)


@dataclass(slots=True)
class CheaterLabel:
    """Ground truth for one cheating player of one match (side file only)."""

    match: str
    player: str
    kind: str
    intensity: Intensity
    on_intervals: list[tuple[int, int]]  # [start_ts, end_ts) in event ms
    closet: bool
    params: dict[str, float] = field(default_factory=dict)

    def is_on(self, ts_ms: float) -> bool:
        return is_on(self.on_intervals, ts_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "player": self.player,
            "kind": self.kind,
            "intensity": self.intensity,
            "on_intervals": [[a, b] for a, b in self.on_intervals],
            "closet": self.closet,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheaterLabel:
        return cls(
            match=d["match"],
            player=d["player"],
            kind=d["kind"],
            intensity=d["intensity"],
            on_intervals=[(int(a), int(b)) for a, b in d["on_intervals"]],
            closet=bool(d["closet"]),
            params={k: float(v) for k, v in d.get("params", {}).items()},
        )


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def cheat_choice(cheat_kinds: Sequence[str] | None, intensity: str | None) -> tuple[str, ...]:
    """The kinds to draw from (default: all), after checking them and ``intensity``."""
    kinds = tuple(cheat_kinds) if cheat_kinds else CHEAT_KINDS
    for k in kinds:
        if k not in CHEAT_KINDS:
            raise ConfigError(f"unknown cheat kind {k!r}; known: {', '.join(CHEAT_KINDS)}")
    if intensity is not None and intensity not in INTENSITIES:
        raise ConfigError(f"intensity must be one of {INTENSITIES}, got {intensity!r}")
    return kinds


def sample_cheat(rng: np.random.Generator, kind: str, intensity: Intensity) -> CheatProfile:
    """Draw the parameters of one ``kind`` of cheat at ``intensity``."""
    blatant = intensity == "blatant"
    p: dict[str, float]
    if kind == "speedhack":
        p = ({"factor": _u(rng, 1.3, 2.0)} if blatant
             else {"factor": _u(rng, 1.07, 1.13), "wander_sd": _u(rng, 0.015, 0.035)})
    elif kind == "teleport":
        p = (
            {"rate_hz": _u(rng, 0.12, 0.3), "min_m": 15.0, "max_m": 40.0}
            if blatant
            else {"rate_hz": _u(rng, 0.15, 0.35), "min_m": 2.5, "max_m": 4.5}
        )
    elif kind == "fly":
        p = (
            {"altitude_m": _u(rng, 3.0, 8.0)}
            if blatant
            else {"gravity_scale": _u(rng, 0.35, 0.6), "jump_boost": _u(rng, 1.5, 3.0)}
        )
    elif kind == "snap_aimbot":
        p = (
            {"rt_min_ms": 0.0, "rt_max_ms": 15.0, "fov_deg": 180.0, "head_share": 1.0,
             "track_sd_deg": 0.02}
            if blatant
            else {"rt_min_ms": 10.0, "rt_max_ms": 30.0, "fov_deg": _u(rng, 25.0, 45.0),
                  "head_share": _u(rng, 0.5, 0.8), "track_sd_deg": _u(rng, 0.1, 0.25)}
        )
    elif kind == "humanised_aimbot":
        p = (
            {"rt_shift_ms": _u(rng, 50.0, 60.0), "b_scale": _u(rng, 0.55, 0.7),
             "overshoot_scale": 0.3, "scatter_scale": 0.35, "track_scale": 0.35,
             "head_bonus": 0.35, "fov_deg": _u(rng, 40.0, 60.0)}
            if blatant
            else {"rt_shift_ms": _u(rng, 30.0, 45.0), "b_scale": _u(rng, 0.8, 0.9),
                  "overshoot_scale": _u(rng, 0.5, 0.7), "scatter_scale": _u(rng, 0.5, 0.7),
                  "track_scale": _u(rng, 0.4, 0.6), "head_bonus": _u(rng, 0.1, 0.2),
                  "fov_deg": _u(rng, 12.0, 25.0)}
        )
    elif kind == "triggerbot":
        p = {"delay_ms": 0.0} if blatant else {"delay_ms": float(rng.choice([40.0, 60.0, 80.0]))}
    else:
        raise ConfigError(f"unknown cheat kind {kind!r}; known: {', '.join(CHEAT_KINDS)}")
    return CheatProfile(kind=kind, intensity=intensity, params=p)


def sample_on_intervals(
    rng: np.random.Generator, *, start_ms: int, end_ms: int, closet: bool
) -> list[tuple[int, int]]:
    """When the cheat is on: all match long, or 1-3 stretches covering 20-55% of it."""
    if not closet:
        return [(start_ms, end_ms)]
    total = end_ms - start_ms
    pieces = int(rng.integers(1, 4))
    share = _u(rng, 0.2, 0.55)
    length = max(int(total * share / pieces), 1000)
    slots = np.sort(rng.choice(pieces * 3, size=pieces, replace=False))
    slot_len = total / (pieces * 3)
    out: list[tuple[int, int]] = []
    for s in slots:
        a = start_ms + int(s * slot_len + rng.uniform(0, max(slot_len - length / 3, 0)))
        b = min(a + length, end_ms)
        if out and a < out[-1][1]:
            a = out[-1][1]
        if b - a >= 500:
            out.append((a, b))
    return out or [(start_ms, min(start_ms + length, end_ms))]


def subtle_boost(rng: np.random.Generator, current: float, params: dict[str, float], dt_s: float) -> float:
    """The next tick's speed-up of a subtle speedhack.

    Not a constant: an Ornstein-Uhlenbeck process around ``params["factor"]``
    with stationary sd ``params["wander_sd"]``, reflected into
    :data:`SUBTLE_BOOST`, so the cheat's speed spreads like a human's pace
    instead of sitting at one ratio. ``current`` outside the band (the hack
    was just switched on) starts at the mean.
    """
    lo, hi = SUBTLE_BOOST
    mean = params["factor"]
    if not lo <= current <= hi:
        current = mean
    theta = SUBTLE_BOOST_THETA
    sigma = params["wander_sd"] * math.sqrt(2.0 * theta)
    nxt = current + theta * (mean - current) * dt_s + sigma * math.sqrt(dt_s) * float(rng.standard_normal())
    if nxt > hi:
        nxt = 2.0 * hi - nxt
    if nxt < lo:
        nxt = 2.0 * lo - nxt
    return min(max(nxt, lo), hi)
