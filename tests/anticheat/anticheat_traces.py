"""Hand-made event streams with known answers for the feature and rule tests."""

from __future__ import annotations

from typing import Any

__all__ = ["pos", "run", "shot", "spawn", "walk"]

MATCH = "m1"


def pos(ts: int, player: str, x: float, y: float, z: float = 0.0, yaw: float = 0.0,
        pitch: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"type": "pos", "match": MATCH, "ts": ts, "player": player, "x": x, "y": y, "z": z,
            "yaw": yaw, "pitch": pitch, **extra}


def spawn(ts: int, player: str, x: float, y: float, team: str = "a") -> dict[str, Any]:
    return {"type": "spawn", "match": MATCH, "ts": ts, "player": player, "x": x, "y": y,
            "z": 0.0, "team": team}


def shot(ts: int, player: str, yaw: float, pitch: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"type": "shot", "match": MATCH, "ts": ts, "player": player, "weapon": "pistol",
            "yaw": yaw, "pitch": pitch, **extra}


def walk(player: str, *, speed_mps: float, seconds: float, t0: int = 0, x0: float = 10.0,
         y0: float = 10.0, hz: int = 20) -> list[dict[str, Any]]:
    """A straight run along +x at a constant speed, one ``pos`` per tick."""
    step_ms = 1000 // hz
    return [pos(t0 + i * step_ms, player, x0 + speed_mps * i * step_ms / 1000.0, y0)
            for i in range(int(seconds * hz) + 1)]


def run(target: Any, events: list[dict[str, Any]]) -> list[Any]:
    """Feed ``events`` to ``target.update`` and collect what it returns."""
    out: list[Any] = []
    for i, event in enumerate(events):
        result = target.update(event, i) if _takes_ref(target) else target.update(event)
        if result:
            out.extend(result)
    return out


def _takes_ref(target: Any) -> bool:
    return type(target).__name__ == "MatchRules"
