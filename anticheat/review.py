"""The analyst's review queue: flagged players ranked, with their evidence.

Pure: alerts in, rows out. The CLI (``gamebus anticheat review``) and the
demo's review page (``/review.json``) both rank with it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["review_queue"]


def review_queue(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alerts grouped per (match, player), ranked: rule hits first, then score."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for a in alerts:
        key = (str(a.get("match")), str(a.get("player")))
        g = groups.setdefault(key, {"match": key[0], "player": key[1], "score": 0.0, "kinds": [],
                                    "alerts": 0, "reason": "", "evidence": {}, "ping": None,
                                    "features": []})
        g["alerts"] += 1
        kind = str(a.get("kind", "?"))
        if kind not in g["kinds"]:
            g["kinds"].append(kind)
        score = float(a.get("score", 0.0))
        if score >= g["score"]:
            g["score"], g["reason"] = score, str(a.get("reason", ""))
            g["evidence"], g["features"] = a.get("evidence") or {}, a.get("features") or []
            g["ping"] = a.get("ping")

    def rank(g: dict[str, Any]) -> tuple[int, float]:
        return (int(any(k.startswith("rule:") for k in g["kinds"])), g["score"])

    return sorted(groups.values(), key=rank, reverse=True)
