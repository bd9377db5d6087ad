"""Read simulated events the way an observer on the bus would (test helper)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from gamebus.sim.world import (
    CHEST_HEIGHT_M,
    EYE_HEIGHT_M,
    aim_angles,
    angle_between,
    get_map,
    line_of_sight_many,
)

Event = dict[str, Any]


def lives(events: list[Event]) -> dict[str, list[list[Event]]]:
    """Each player's ``pos`` events, cut into lives at every spawn."""
    out: dict[str, list[list[Event]]] = defaultdict(list)
    current: dict[str, list[Event]] = {}
    for e in events:
        if e["type"] == "spawn":
            current[e["player"]] = []
            out[e["player"]].append(current[e["player"]])
        elif e["type"] == "pos":
            current[e["player"]].append(e)
    return out


def step_speeds(life: list[Event]) -> np.ndarray:
    """Horizontal speed between consecutive positions of one life (m/s)."""
    if len(life) < 2:
        return np.zeros(0)
    xy = np.array([(e["x"], e["y"]) for e in life])
    ts = np.array([e["ts"] for e in life], dtype=float)
    d = np.hypot(*(np.diff(xy, axis=0).T))
    return d / (np.diff(ts) / 1000.0)


def within(label: Any, ts: int) -> bool:
    return any(a <= ts < b for a, b in label.on_intervals)


@dataclass
class Reaction:
    player: str
    target: str
    onset_ts: int
    delay_ms: int  # target became visible -> first shot at it
    offset_deg: float  # angle from the view to the target at the onset
    ping: int


_REACTIONS: dict[tuple[int, int, int], list[Reaction]] = {}


def reactions(events: list[Event], *, window_ms: int = 1500, unseen_ms: int = 1000) -> list[Reaction]:
    """:func:`_reactions`, remembered per events list (session fixtures are reused)."""
    key = (id(events), window_ms, unseen_ms)
    if key not in _REACTIONS:
        _REACTIONS[key] = _reactions(events, window_ms=window_ms, unseen_ms=unseen_ms)
    return _REACTIONS[key]


def _reactions(events: list[Event], *, window_ms: int, unseen_ms: int) -> list[Reaction]:
    """Visible onsets (the game's eye-to-chest test) and the first shot at that target.

    An onset counts when the pair was out of sight for ``unseen_ms`` before
    it (a target that only blinked behind a pillar is still being tracked).
    """
    team = {e["player"]: e["team"] for e in events if e["type"] == "join"}
    game_map = get_map(next(e["map"] for e in events if e["type"] == "round_start"))
    by_ts: dict[int, dict[str, Event]] = defaultdict(dict)
    shots: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in events:
        if e["type"] == "pos":
            by_ts[e["ts"]][e["player"]] = e
        elif e["type"] == "shot" and "target" in e:
            shots[(e["player"], e["target"])].append(e["ts"])
    seen_before: set[tuple[str, str]] = set()
    last_seen: dict[tuple[str, str], int] = {}
    out: list[Reaction] = []
    for ts in sorted(by_ts):
        pos = by_ts[ts]
        pairs = [(a, b) for a in pos for b in pos if team[a] != team[b]]
        if not pairs:
            seen_before = set()
            continue
        a = np.array([(pos[p]["x"], pos[p]["y"], pos[p]["z"] + EYE_HEIGHT_M) for p, _ in pairs])
        b = np.array([(pos[q]["x"], pos[q]["y"], pos[q]["z"] + CHEST_HEIGHT_M) for _, q in pairs])
        vis = line_of_sight_many(game_map, a, b)
        now = {pair for pair, v in zip(pairs, vis, strict=True) if v}
        for p, q in now - seen_before:
            if ts - last_seen.get((p, q), -10**15) <= unseen_ms:
                continue
            later = [t for t in shots.get((p, q), []) if ts <= t <= ts + window_ms]
            if not later:
                continue
            ev = pos[p]
            yaw, pitch = aim_angles((ev["x"], ev["y"], ev["z"] + EYE_HEIGHT_M),
                                    (pos[q]["x"], pos[q]["y"], pos[q]["z"] + CHEST_HEIGHT_M))
            off = angle_between(ev["yaw"], ev["pitch"], yaw, pitch)
            out.append(Reaction(p, q, ts, later[0] - ts, off, ev["ping"]))
        for pair in now:
            last_seen[pair] = ts
        seen_before = now
    return out


def angular_steps(life: list[Event]) -> np.ndarray:
    """Angle turned between consecutive positions of one life (degrees)."""
    return np.array([
        angle_between(a["yaw"], a["pitch"], b["yaw"], b["pitch"])
        for a, b in itertools.pairwise(life)
    ])


def horizontal_speed(e: Event) -> float:
    return math.hypot(e["vx"], e["vy"])
