"""The broker wire protocol, sans-I/O: bytes in, frames out.

A connection carries *frames* both ways. A frame is a 4-byte big-endian
length followed by that many bytes of msgpack: an array ``[op, id, body]``
where ``op`` is a short string, ``id`` an unsigned integer and ``body`` a
map with string keys. Nothing here touches a socket or a clock, so the codec
is tested with bytes literals and hypothesis, and the broker and the SDK
share it unchanged.

Requests (client -> broker) carry a correlation ``id`` chosen by the client;
the broker answers each with ``["ok", id, body]`` or ``["err", id, error]``
(``error`` is :meth:`gamebus.errors.GamebusError.to_wire`, rebuilt on the
client by :func:`gamebus.errors.error_from_wire`). Ids let requests
pipeline: a client may have thousands in flight and answers may come in any
order. ``id`` 0 means "no answer wanted" (produce with ``acks="none"``,
credit); the broker still sends an ``err`` with id 0 if it refuses one.

The first frame of a connection must be ``hello`` with the protocol
``version`` (and a ``token`` when the broker requires auth); anything else
first is a protocol error and the connection closes.

Request ops and their body fields::

    hello        version, token?, client?
    produce      topic, partition | key, acks, producer_id, sequence,
                 records (bin: gamebus.log.batch.encode_records), count, first_ts, max_ts
    subscribe    topic, partition, start ("earliest" | "latest" | [epoch, offset]), credit
    credit       sub, bytes                             (id 0: no answer)
    unsubscribe  sub
    fetch        topic, partition, offset, max_bytes
    commit       group, offsets ([[topic, partition, epoch, offset], ...])
    committed    group, topic, partition
    join         group, topics, member?, session_timeout_ms
    heartbeat    group, member
    sync         group, member                            (current assignment)
    leave        group, member
    metadata     topic?
    create_topic topic, partitions, config?
    ping

Broker -> client, unsolicited::

    ["push", sub, {"epoch": e, "batches": [stored batch bytes, ...]}]
    ["suberr", sub, error]          the subscription ended with an error
    ["group", 0, {"group", "member", "generation", "assignment"}]

Pushed batches are the stored record batches byte for byte, header included,
so the SDK verifies each CRC32C end to end.

Example::

    >>> reader = FrameReader(max_frame_bytes=1024)
    >>> reader.feed(encode_frame("ping", 7, {}))
    >>> list(reader.frames())
    [Frame(op='ping', id=7, body={})]
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from gamebus.engines.base import Position, Start
from gamebus.errors import FrameTooLarge, GamebusError, InvalidRequest, ProtocolError

__all__ = [
    "ACKS",
    "DEFAULT_MAX_FRAME_BYTES",
    "HEADER",
    "PROTOCOL_VERSION",
    "REPLY_OPS",
    "REQUEST_OPS",
    "Frame",
    "FrameReader",
    "decode_start",
    "encode_error",
    "encode_frame",
    "encode_ok",
    "encode_push",
    "encode_start",
    "opt_int",
    "opt_str",
    "req_bytes",
    "req_int",
    "req_list",
    "req_str",
]

PROTOCOL_VERSION: Final = 1
#: The default limit on one frame's body; the broker's is configurable.
DEFAULT_MAX_FRAME_BYTES: Final = 8 * 1024 * 1024
HEADER: Final = struct.Struct(">I")

REQUEST_OPS: Final = frozenset(
    {
        "hello",
        "produce",
        "subscribe",
        "credit",
        "unsubscribe",
        "fetch",
        "commit",
        "committed",
        "join",
        "heartbeat",
        "sync",
        "leave",
        "metadata",
        "create_topic",
        "ping",
    }
)
REPLY_OPS: Final = frozenset({"ok", "err", "push", "suberr", "group"})
ACKS: Final = ("none", "memory", "durable")

_pack = msgpack.Packer(use_bin_type=True).pack
_header_pack = HEADER.pack


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: an op, a correlation (or subscription) id, a body."""

    op: str
    id: int
    body: dict[str, Any]


def encode_frame(op: str, id: int, body: dict[str, Any]) -> bytes:
    """The bytes of one frame, length prefix included."""
    data = _pack([op, id, body])
    return _header_pack(len(data)) + data


def encode_ok(id: int, body: dict[str, Any] | None = None) -> bytes:
    return encode_frame("ok", id, body or {})


def encode_error(id: int, error: GamebusError) -> bytes:
    return encode_frame("err", id, error.to_wire())


def encode_push(sub: int, epoch: int, batches: list[bytes]) -> bytes:
    """A push frame: stored batches byte for byte, for subscription ``sub``."""
    return encode_frame("push", sub, {"epoch": epoch, "batches": batches})


def encode_start(start: Start) -> str | list[int]:
    """A subscription start as it travels: a word or ``[epoch, offset]``."""
    if isinstance(start, Position):
        return [start.epoch, start.offset]
    if start in ("earliest", "latest"):
        return start
    raise InvalidRequest("start", f"expected 'earliest', 'latest' or a Position, got {start!r}")


def decode_start(value: Any) -> Start:
    if value in ("earliest", "latest"):
        return value  # type: ignore[no-any-return]
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(type(v) is int and v >= 0 for v in value)
    ):
        return Position(value[0], value[1])
    raise InvalidRequest("start", "expected 'earliest', 'latest' or [epoch, offset]")


class FrameReader:
    """Incremental frame parser: :meth:`feed` bytes, iterate :meth:`frames`.

    Any split of a valid byte stream yields the same frames. A length prefix
    over ``max_frame_bytes`` raises :class:`FrameTooLarge` as soon as the four
    prefix bytes arrive, before anything is buffered for it, and a body that
    is not a well-formed ``[op, id, body]`` raises :class:`ProtocolError`;
    either way the connection is beyond repair and the reader stays failed.
    The buffer never holds more than one incomplete frame plus the last
    chunk fed, so a peer cannot grow it without bound.
    """

    __slots__ = ("_buf", "_error", "_pos", "max_frame_bytes")

    def __init__(self, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 16:
            raise ValueError("max_frame_bytes must be at least 16")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._pos:
            # Compact lazily: drop consumed bytes once before appending.
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def frames(self) -> Iterator[Frame]:
        """Yield every complete frame buffered so far."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        limit = self.max_frame_bytes
        while True:
            pos = self._pos
            end = len(buf)
            if end - pos < 4:
                return
            (size,) = HEADER.unpack_from(buf, pos)
            if size > limit:
                self._fail(FrameTooLarge(size, limit))
            if end - pos - 4 < size:
                return
            self._pos = pos + 4 + size
            # Decode straight from the buffer: no copy of the body (a produce
            # frame is mostly one big bin, which msgpack copies out once).
            view = memoryview(buf)
            body = view[pos + 4 : pos + 4 + size]
            try:
                frame = _decode_body(body)
            except ProtocolError as exc:
                body.release()
                view.release()
                self._fail(exc)
            body.release()
            view.release()
            yield frame

    def _fail(self, exc: ProtocolError) -> Any:
        self._error = exc
        self._buf.clear()
        self._pos = 0
        raise exc


def _decode_body(body: bytes | memoryview) -> Frame:
    if not body:
        raise ProtocolError("empty frame")
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"frame is not msgpack: {type(exc).__name__}") from None
    if type(value) is not list or len(value) != 3:
        raise ProtocolError("frame must be an array [op, id, body]")
    op, id_, fields = value
    if type(op) is not str or not op:
        raise ProtocolError("frame op must be a non-empty string")
    if type(id_) is not int or id_ < 0:
        raise ProtocolError("frame id must be a non-negative integer")
    if type(fields) is not dict:
        raise ProtocolError("frame body must be a map")
    return Frame(op, id_, fields)


# -- typed field access: a missing or ill-typed field is InvalidRequest ----


def req_str(body: dict[str, Any], name: str, *, max_len: int = 256) -> str:
    value = body.get(name)
    if type(value) is not str or not value or len(value) > max_len:
        raise InvalidRequest(name, f"expected a string of 1 to {max_len} characters")
    return value


def opt_str(body: dict[str, Any], name: str, *, max_len: int = 256) -> str | None:
    if body.get(name) is None:
        return None
    return req_str(body, name, max_len=max_len)


def req_int(body: dict[str, Any], name: str, *, min_value: int = 0) -> int:
    value = body.get(name)
    if type(value) is not int or value < min_value:
        raise InvalidRequest(name, f"expected an integer >= {min_value}")
    return value


def opt_int(body: dict[str, Any], name: str, default: int, *, min_value: int = 0) -> int:
    if body.get(name) is None:
        return default
    return req_int(body, name, min_value=min_value)


def req_bytes(body: dict[str, Any], name: str) -> bytes:
    value = body.get(name)
    if type(value) is not bytes:
        raise InvalidRequest(name, "expected bytes")
    return value


def req_list(body: dict[str, Any], name: str, *, max_items: int = 10_000) -> list[Any]:
    value = body.get(name)
    if type(value) is not list or len(value) > max_items:
        raise InvalidRequest(name, f"expected a list of at most {max_items} items")
    return value
