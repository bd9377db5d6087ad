"""Interest management: which positions a subscription wants. Pure.

A subscription may ask for an area (a circle ``x, y, r`` on the map plane)
or to follow a player (that player's positions, plus everyone within ``r``
of them when ``r`` is given). Only ``pos`` events are filtered: match events
always pass, because missing a kill is a bug while missing a far-away
footstep is the point.

:class:`Interest` is frozen and hashable so the fan-out can group clients by
it and filter and encode once per distinct interest, not once per client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relay.protocol import Area, Follow
from relay.records import Record

__all__ = ["EVERYTHING", "Interest", "filter_records", "passes"]


@dataclass(frozen=True, slots=True)
class Interest:
    area: Area | None = None
    follow: Follow | None = None

    @property
    def everything(self) -> bool:
        return self.area is None and self.follow is None


EVERYTHING = Interest()


def _inside(event: Mapping[str, Any], x: float, y: float, r: float) -> bool:
    ex, ey = event.get("x"), event.get("y")
    if not isinstance(ex, (int, float)) or not isinstance(ey, (int, float)):
        return False
    dx, dy = ex - x, ey - y
    return dx * dx + dy * dy <= r * r


def passes(interest: Interest, event: Mapping[str, Any], latest: Mapping[str, Record]) -> bool:
    """Whether ``event`` goes to a subscriber with ``interest``.

    ``latest`` maps player -> their latest position record in the match; a
    follow-with-radius filter centres on the followed player's entry there.
    """
    if interest.everything or event.get("type") != "pos":
        return True
    area, follow = interest.area, interest.follow
    if area is not None and _inside(event, area.x, area.y, area.r):
        return True
    if follow is not None:
        if event.get("player") == follow.player:
            return True
        if follow.r is not None:
            centre = latest.get(follow.player)
            if centre is not None:
                cx, cy = centre.event.get("x"), centre.event.get("y")
                if isinstance(cx, (int, float)) and isinstance(cy, (int, float)):
                    return _inside(event, cx, cy, follow.r)
    return False


def filter_records(
    interest: Interest, records: Sequence[Record], latest: Mapping[str, Record]
) -> Sequence[Record]:
    """The records a subscriber with ``interest`` receives, in order."""
    if interest.everything:
        return records
    return [rec for rec in records if passes(interest, rec.event, latest)]
