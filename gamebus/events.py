"""The event schema shared by the SDK, the relay and the anti-cheat consumer.

An event is a msgpack map with at least ``type``, ``match`` (the match id,
also the partition key) and ``ts`` (milliseconds since the epoch, set by the
game server). The broker never looks inside: it stores the encoded bytes.
The SDK validates before it sends (:func:`validate_event`), and consumers
that decode (:func:`decode_event`) get an :class:`~gamebus.errors.InvalidEvent`
naming the field, which they count and skip.

Example::

    >>> ev = position(match="m1", player="p7", x=1.0, y=2.0, z=0.0, yaw=90.0, pitch=0.0, ts=1)
    >>> decode_event(encode_event(ev)) == ev
    True

Types other than the ones below are accepted when their name contains a dot
(``"mygame.chest_opened"``): games extend the schema in their own namespace,
and only the common fields are checked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, Final

import msgpack

from gamebus.engines.base import Acks
from gamebus.errors import InvalidEvent

__all__ = [
    "ALERTS_TOPIC",
    "DEFAULT_ACKS",
    "DEFAULT_TOPICS",
    "EVENTS_TOPIC",
    "HISTORY_TOPIC",
    "MATCH_EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "POSITIONS_TOPIC",
    "SCORES_TOPIC",
    "TopicSpec",
    "decode_event",
    "encode_event",
    "match_event",
    "now_ms",
    "position",
    "topic_for",
    "validate_event",
]

POSITIONS_TOPIC: Final = "game.positions"
EVENTS_TOPIC: Final = "game.events"
SCORES_TOPIC: Final = "anticheat.scores"
ALERTS_TOPIC: Final = "anticheat.alerts"
#: Each account's judged clean matches, keyed by player (the anti-cheat's
#: per-account baseline reads a player against them).
HISTORY_TOPIC: Final = "anticheat.history"

#: An encoded event larger than this is refused by the SDK and skipped by decoders.
MAX_EVENT_BYTES: Final = 64 * 1024
_MAX_ID_CHARS: Final = 128

_NUM = "num"
_INT = "int"
_STR = "str"
_BOOL = "bool"
_ANY = "any"

#: type -> (required fields, optional fields), each field -> kind.
_SCHEMA: Final[dict[str, tuple[dict[str, str], dict[str, str]]]] = {
    "pos": (
        {"player": _STR, "x": _NUM, "y": _NUM, "z": _NUM, "yaw": _NUM, "pitch": _NUM},
        {"vx": _NUM, "vy": _NUM, "vz": _NUM, "ping": _INT, "seq": _INT, "weapon": _STR},
    ),
    "join": ({"player": _STR}, {"team": _STR, "ping": _INT, "name": _STR}),
    "leave": ({"player": _STR}, {"reason": _STR}),
    "spawn": (
        {"player": _STR, "x": _NUM, "y": _NUM, "z": _NUM},
        {"yaw": _NUM, "pitch": _NUM, "team": _STR},
    ),
    "shot": (
        {"player": _STR, "weapon": _STR, "yaw": _NUM, "pitch": _NUM},
        {"target": _STR, "visible": _BOOL, "x": _NUM, "y": _NUM, "z": _NUM},
    ),
    "hit": (
        {"player": _STR, "target": _STR, "weapon": _STR, "damage": _NUM, "headshot": _BOOL},
        {"distance": _NUM},
    ),
    "kill": (
        {"player": _STR, "target": _STR, "weapon": _STR, "headshot": _BOOL},
        {"distance": _NUM},
    ),
    "round_start": ({"round": _INT}, {"map": _STR}),
    "round_end": ({"round": _INT}, {"winner": _STR}),
    "match_end": ({}, {"winner": _STR, "map": _STR}),
    "anticheat.score": (
        {"player": _STR, "score": _NUM},
        {"model_version": _STR, "window": _ANY, "features": _ANY, "rules": _ANY},
    ),
    "anticheat.history": ({"player": _STR, "features": _ANY}, {"model_version": _STR}),
    "anticheat.alert": (
        {"player": _STR, "score": _NUM, "kind": _STR},
        {
            "model_version": _STR,
            "threshold": _NUM,
            "fpr": _NUM,
            "features": _ANY,
            "rules": _ANY,
            "ping": _NUM,
            "evidence": _ANY,
            "reason": _STR,
        },
    ),
}

#: Match events: never dropped, never reordered within a match.
MATCH_EVENT_TYPES: Final = frozenset(
    {"join", "leave", "spawn", "shot", "hit", "kill", "round_start", "round_end", "match_end"}
)


class TopicSpec:
    """A default topic: its partition count and the ack level its events use."""

    __slots__ = ("acks", "name", "partitions", "retention_ms")

    def __init__(self, name: str, *, partitions: int, acks: Acks, retention_ms: int | None) -> None:
        self.name, self.partitions, self.acks, self.retention_ms = name, partitions, acks, retention_ms

    def __repr__(self) -> str:
        return f"TopicSpec({self.name!r}, partitions={self.partitions}, acks={self.acks!r})"


#: The topics a fresh broker creates; keyed by match id, except the accounts'
#: history, keyed by player.
DEFAULT_TOPICS: Final = (
    TopicSpec(POSITIONS_TOPIC, partitions=8, acks="memory", retention_ms=10 * 60_000),
    TopicSpec(EVENTS_TOPIC, partitions=8, acks="durable", retention_ms=7 * 24 * 3_600_000),
    TopicSpec(SCORES_TOPIC, partitions=4, acks="memory", retention_ms=24 * 3_600_000),
    TopicSpec(ALERTS_TOPIC, partitions=4, acks="durable", retention_ms=30 * 24 * 3_600_000),
    TopicSpec(HISTORY_TOPIC, partitions=4, acks="durable", retention_ms=90 * 24 * 3_600_000),
)


#: Each default topic's ack level by name: what the SDK and the anti-cheat produce with.
DEFAULT_ACKS: Final[dict[str, Acks]] = {s.name: s.acks for s in DEFAULT_TOPICS}


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch, the unit of every ``ts``."""
    return time.time_ns() // 1_000_000


def topic_for(event_type: str) -> str:
    """The default topic an event of ``event_type`` is published to."""
    if event_type == "pos":
        return POSITIONS_TOPIC
    if event_type == "anticheat.score":
        return SCORES_TOPIC
    if event_type == "anticheat.alert":
        return ALERTS_TOPIC
    if event_type == "anticheat.history":
        return HISTORY_TOPIC
    return EVENTS_TOPIC


def _check(field: str, value: Any, kind: str) -> None:
    if kind == _NUM:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidEvent(field, f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise InvalidEvent(field, f"expected a finite number, got {value!r}")
    elif kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidEvent(field, f"expected an integer, got {type(value).__name__}")
    elif kind == _STR:
        if not isinstance(value, str):
            raise InvalidEvent(field, f"expected a string, got {type(value).__name__}")
        if not value or len(value) > _MAX_ID_CHARS:
            raise InvalidEvent(field, f"expected 1 to {_MAX_ID_CHARS} characters")
    elif kind == _BOOL and not isinstance(value, bool):
        raise InvalidEvent(field, f"expected true or false, got {type(value).__name__}")


def validate_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``event`` against the schema and return it as a plain dict.

    Raises :class:`InvalidEvent` naming the first bad field. Unknown extra
    fields are kept (games add their own), known ones must have their type.
    """
    if not isinstance(event, Mapping):
        raise InvalidEvent("event", f"expected a map, got {type(event).__name__}")
    etype = event.get("type")
    if not isinstance(etype, str) or not etype:
        raise InvalidEvent("type", "missing or not a string")
    if "match" not in event:
        raise InvalidEvent("match", "missing")
    _check("match", event["match"], _STR)
    if "ts" not in event:
        raise InvalidEvent("ts", "missing")
    ts = event["ts"]
    _check("ts", ts, _INT)
    if ts < 0:
        raise InvalidEvent("ts", "must not be negative")
    spec = _SCHEMA.get(etype)
    if spec is None:
        if "." not in etype:
            raise InvalidEvent("type", f"unknown event type {etype!r}")
        return dict(event)
    required, optional = spec
    for field, kind in required.items():
        if field not in event:
            raise InvalidEvent(field, f"missing for a {etype!r} event")
        _check(field, event[field], kind)
    for field, kind in optional.items():
        value = event.get(field)
        if value is not None:
            _check(field, value, kind)
    return dict(event)


def encode_event(event: Mapping[str, Any], *, validate: bool = True) -> bytes:
    """Encode one event as msgpack, validating it first unless told not to."""
    if validate:
        validate_event(event)
    data: bytes = msgpack.packb(event, use_bin_type=True)
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidEvent("event", f"encoded size {len(data)} exceeds {MAX_EVENT_BYTES} bytes")
    return data


def decode_event(data: bytes, *, validate: bool = True) -> dict[str, Any]:
    """Decode one event; malformed bytes or fields raise :class:`InvalidEvent`."""
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidEvent("event", f"size {len(data)} exceeds {MAX_EVENT_BYTES} bytes")
    try:
        event = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise InvalidEvent("event", f"not msgpack: {exc}") from None
    if not isinstance(event, dict):
        raise InvalidEvent("event", f"expected a map, got {type(event).__name__}")
    return validate_event(event) if validate else event


def position(
    *,
    match: str,
    player: str,
    x: float,
    y: float,
    z: float,
    yaw: float,
    pitch: float,
    ts: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a ``pos`` event (not validated: see :func:`validate_event`)."""
    event: dict[str, Any] = {
        "type": "pos",
        "match": match,
        "ts": now_ms() if ts is None else ts,
        "player": player,
        "x": x,
        "y": y,
        "z": z,
        "yaw": yaw,
        "pitch": pitch,
    }
    event.update(extra)
    return event


def match_event(event_type: str, *, match: str, ts: int | None = None, **fields: Any) -> dict[str, Any]:
    """Build a match event such as ``kill`` (not validated)."""
    event: dict[str, Any] = {"type": event_type, "match": match, "ts": now_ms() if ts is None else ts}
    event.update(fields)
    return event
