"""The relay's client protocol: parse what clients send, encode what they get.

Pure code, no I/O. The edge (:mod:`relay.server`) feeds every WebSocket
message to :func:`parse_client_message`; anything a client can send that is
not a well-formed request raises :class:`ClientMessageError`, which the edge
turns into an ``error`` frame and keeps serving. A peer's bytes never raise
anything else out of this module (a hypothesis test pins that).

Two wire formats carry the same messages: ``gamebus.v1.msgpack`` (binary
frames, the default) and ``gamebus.v1.json`` (text frames). Server frames are
encoded once and the same bytes go to every client that wants them, so the
encoders here take the fan-out's data, not a client.

Events frames in msgpack splice the stored record bytes verbatim into the
frame (each record already is a msgpack map), so fan-out costs one
``bytes.join`` per frame instead of re-encoding every event.

See ``docs/relay-protocol.md`` for the full schema with examples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgpack

__all__ = [
    "CLOSE_FORBIDDEN",
    "CLOSE_RATE_LIMIT",
    "CLOSE_TOKEN_EXPIRED",
    "CLOSE_TOKEN_INVALID",
    "CLOSE_TOO_MANY_SUBSCRIPTIONS",
    "CLOSE_TOO_SLOW",
    "JSON",
    "MSGPACK",
    "SUBPROTOCOLS",
    "Area",
    "ClientMessage",
    "ClientMessageError",
    "Follow",
    "Format",
    "Ping",
    "Resume",
    "SetInterest",
    "Subscribe",
    "SubscribeAlerts",
    "Unsubscribe",
    "encode_events",
    "encode_message",
    "parse_client_message",
    "wire_frame",
]

Format = Literal["msgpack", "json"]
MSGPACK: Final[Format] = "msgpack"
JSON: Final[Format] = "json"

#: Subprotocol name -> wire format; the first is the default.
SUBPROTOCOLS: Final[dict[str, Format]] = {"gamebus.v1.msgpack": MSGPACK, "gamebus.v1.json": JSON}

CLOSE_TOKEN_INVALID: Final = 4001
CLOSE_TOKEN_EXPIRED: Final = 4002
CLOSE_FORBIDDEN: Final = 4003
CLOSE_RATE_LIMIT: Final = 4008
CLOSE_TOO_SLOW: Final = 4009
CLOSE_TOO_MANY_SUBSCRIPTIONS: Final = 4010

_MAX_ID_CHARS: Final = 128
_MAX_COORD: Final = 1e9
_MAX_REQUEST_ID: Final = 2**53
_POSITION_MODES: Final = ("latest", "all")


class ClientMessageError(ValueError):
    """A client message the relay cannot act on.

    ``code`` is the stable string clients switch on (``bad_message``,
    ``bad_op``, ``bad_field``); ``field`` names the offending field; ``id``
    echoes the request id when it could be read, so the client can match
    the error to its request.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None, id: int | None = None) -> None:
        super().__init__(message)
        self.code, self.field, self.id = code, field, id


@dataclass(frozen=True, slots=True)
class Area:
    """A circle in the map plane; positions inside it (inclusive) pass."""

    x: float
    y: float
    r: float


@dataclass(frozen=True, slots=True)
class Follow:
    """Follow one player: their positions, plus others within ``r`` of them."""

    player: str
    r: float | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a client left off: per topic, the next offset and its epoch."""

    offsets: tuple[tuple[str, int], ...]
    epochs: tuple[tuple[str, int], ...]
    positions: Literal["latest", "all"] = "latest"

    def offset(self, topic: str) -> int | None:
        return dict(self.offsets).get(topic)

    def epoch(self, topic: str) -> int | None:
        return dict(self.epochs).get(topic)


@dataclass(frozen=True, slots=True)
class Subscribe:
    id: int | None
    match: str
    resume: Resume | None = None
    area: Area | None = None
    follow: Follow | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    id: int | None
    match: str


@dataclass(frozen=True, slots=True)
class SetInterest:
    """Change a subscription's filter; ``None`` for both means everything."""

    id: int | None
    match: str
    area: Area | None = None
    follow: Follow | None = None


@dataclass(frozen=True, slots=True)
class SubscribeAlerts:
    id: int | None


@dataclass(frozen=True, slots=True)
class Ping:
    id: int | None


ClientMessage = Subscribe | Unsubscribe | SetInterest | SubscribeAlerts | Ping


# -- parsing ---------------------------------------------------------------


def parse_client_message(data: bytes | str, fmt: Format) -> ClientMessage:
    """Decode and validate one client message, or raise :class:`ClientMessageError`."""
    raw = _decode(data, fmt)
    if not isinstance(raw, dict):
        raise ClientMessageError("bad_message", f"expected a map, got {type(raw).__name__}")
    request_id = _request_id(raw)
    try:
        return _build(raw, request_id)
    except ClientMessageError as exc:
        exc.id = request_id
        raise


def _decode(data: bytes | str, fmt: Format) -> Any:
    try:
        if fmt == JSON:
            return json.loads(data, parse_constant=_reject_constant)
        if isinstance(data, str):
            raise ClientMessageError("bad_message", "msgpack subprotocol expects binary frames")
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except ClientMessageError:
        raise
    except RecursionError:
        raise ClientMessageError("bad_message", "message nests too deeply") from None
    except Exception as exc:  # msgpack and json raise several unrelated types
        raise ClientMessageError("bad_message", f"not valid {fmt}: {type(exc).__name__}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _request_id(raw: dict[Any, Any]) -> int | None:
    value = raw.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_REQUEST_ID:
        raise ClientMessageError("bad_field", "id must be a non-negative integer", field="id")
    return value


def _build(raw: dict[Any, Any], request_id: int | None) -> ClientMessage:
    op = raw.get("op")
    if op == "sub":
        return Subscribe(
            request_id,
            _match(raw),
            resume=_resume(raw.get("resume")),
            area=_area(raw.get("area")),
            follow=_follow(raw.get("follow")),
        )
    if op == "unsub":
        return Unsubscribe(request_id, _match(raw))
    if op == "area":
        return SetInterest(request_id, _match(raw), area=_area(raw.get("area")), follow=_follow(raw.get("follow")))
    if op == "sub_alerts":
        return SubscribeAlerts(request_id)
    if op == "ping":
        return Ping(request_id)
    if not isinstance(op, str):
        raise ClientMessageError("bad_op", "missing or non-string op", field="op")
    raise ClientMessageError("bad_op", f"unknown op {op[:32]!r}", field="op")


def _identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID_CHARS:
        raise ClientMessageError("bad_field", f"{field} must be a string of 1 to {_MAX_ID_CHARS} characters", field=field)
    return value


def _match(raw: dict[Any, Any]) -> str:
    return _identifier(raw.get("match"), "match")


def _number(value: Any, field: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ClientMessageError("bad_field", f"{field} must be a number", field=field)
    number = float(value)
    if not math.isfinite(number) or abs(number) > _MAX_COORD:
        raise ClientMessageError("bad_field", f"{field} must be finite and within ±{_MAX_COORD:g}", field=field)
    if positive and number <= 0:
        raise ClientMessageError("bad_field", f"{field} must be positive", field=field)
    return number


def _area(value: Any) -> Area | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientMessageError("bad_field", "area must be a map {x, y, r} or null", field="area")
    return Area(
        _number(value.get("x"), "area.x"),
        _number(value.get("y"), "area.y"),
        _number(value.get("r"), "area.r", positive=True),
    )


def _follow(value: Any) -> Follow | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Follow(_identifier(value, "follow"))
    if isinstance(value, dict):
        radius = value.get("r")
        return Follow(
            _identifier(value.get("player"), "follow.player"),
            None if radius is None else _number(radius, "follow.r", positive=True),
        )
    raise ClientMessageError("bad_field", "follow must be a player id, {player, r} or null", field="follow")


def _offset(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ClientMessageError("bad_field", f"{field} must be a non-negative integer", field=field)
    return value


def _topic_ints(value: Any, field: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict) or len(value) > 8:
        raise ClientMessageError("bad_field", f"{field} must be a map of at most 8 topics", field=field)
    return tuple(sorted((_identifier(t, field), _offset(o, f"{field}.{t}")) for t, o in value.items()))


def _resume(value: Any) -> Resume | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientMessageError("bad_field", "resume must be a map {epoch, offsets}", field="resume")
    offsets = _topic_ints(value.get("offsets"), "resume.offsets")
    epochs = dict(_topic_ints(value["epochs"], "resume.epochs")) if value.get("epochs") is not None else {}
    common = value.get("epoch")
    if common is not None:
        common_epoch = _offset(common, "resume.epoch")
        for topic, _ in offsets:
            epochs.setdefault(topic, common_epoch)
    missing = [topic for topic, _ in offsets if topic not in epochs]
    if missing:
        raise ClientMessageError("bad_field", f"resume has no epoch for {missing[0]!r}", field="resume.epoch")
    mode = value.get("positions", "latest")
    if mode not in _POSITION_MODES:
        raise ClientMessageError("bad_field", "resume.positions must be 'latest' or 'all'", field="resume.positions")
    return Resume(offsets, tuple(sorted(epochs.items())), mode)


# -- encoding --------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_message(message: Mapping[str, Any], fmt: Format) -> bytes:
    """Encode one server message (``subscribed``, ``error``, ``pong`` ...).

    JSON comes back as UTF-8 bytes; the edge sends it in a text frame.
    """
    if fmt == JSON:
        return json.dumps(message, separators=(",", ":"), default=_json_default).encode()
    data: bytes = msgpack.packb(message, use_bin_type=True)
    return data


def encode_events(
    *,
    match: str,
    topic: str,
    position: Mapping[str, Any],
    records: Sequence[bytes],
    events: Iterable[Mapping[str, Any]],
    fmt: Format,
    op: str = "events",
) -> bytes:
    """Encode an ``events`` frame once for every client of one filter.

    ``records`` are the stored msgpack bytes of ``events`` (same order);
    msgpack frames splice them in untouched, JSON frames encode ``events``.
    """
    if fmt == JSON:
        body = {"op": op, "match": match, "topic": topic, "position": position, "events": list(events)}
        return json.dumps(body, separators=(",", ":"), default=_json_default).encode()
    packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    head = b"".join(
        (
            packer.pack_map_header(5),
            packer.pack("op"),
            packer.pack(op),
            packer.pack("match"),
            packer.pack(match),
            packer.pack("topic"),
            packer.pack(topic),
            packer.pack("position"),
            packer.pack(position),
            packer.pack("events"),
            packer.pack_array_header(len(records)),
        )
    )
    return head + b"".join(records)


def wire_frame(data: bytes, *, text: bool) -> bytes:
    """``data`` as one unmasked, unfragmented WebSocket frame (server to client).

    Server frames carry no mask and the relay uses no compression, so the
    bytes on the wire are the same for every client of a frame: the fan-out
    frames them once and writes the same bytes to each socket, instead of
    letting the WebSocket library frame them again per client.
    """
    first = 0x81 if text else 0x82  # FIN + text/binary
    size = len(data)
    if size < 126:
        return bytes((first, size)) + data
    if size < 65_536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + data
    return bytes((first, 127)) + size.to_bytes(8, "big") + data
