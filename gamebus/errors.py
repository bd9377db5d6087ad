"""One exception tree for all of gamebus.

Every error a caller can see derives from :class:`GamebusError`. Errors that
cross the wire carry a numbered ``code`` (shared by broker and SDK, see
:func:`for_code`) and a ``retriable`` flag that tells the SDK whether trying
again can succeed. Errors carry the facts that caused them as attributes::

    GamebusError
    ├── ConfigError                  bad configuration or command-line value
    ├── InvalidEvent (ValueError)    an event failed validation; names the field
    ├── LogError                     storage engine
    │   ├── CorruptBatch             bad magic, length or CRC32C
    │   ├── OffsetOutOfRange         read below log start or past log end
    │   └── EpochMismatch            consumer position from an older epoch
    ├── ProtocolError                malformed wire frame; the connection closes
    │   └── FrameTooLarge            frame over the configured limit
    ├── RequestError                 a well-formed request the broker refused
    │   ├── UnknownTopic
    │   ├── UnknownPartition
    │   ├── TopicExists
    │   ├── InvalidRequest           a request field is missing or ill-typed
    │   ├── LimitExceeded            a configured limit was hit
    │   ├── OutOfOrderSequence       idempotent producer sequence gap
    │   ├── AuthenticationFailed
    │   ├── NotAuthorized
    │   ├── UnknownMember            consumer group member unknown or expired
    │   └── RebalanceInProgress      (retriable)
    └── ConnectionError_             transport trouble (all retriable)
        ├── ConnectionLost
        ├── RequestTimedOut
        └── EngineUnavailable        e.g. a NATS cluster without quorum

Raise the most specific class; catch :class:`GamebusError` to catch them all.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationFailed",
    "ConfigError",
    "ConnectionError_",
    "ConnectionLost",
    "CorruptBatch",
    "EngineUnavailable",
    "EpochMismatch",
    "FileRejected",
    "FrameTooLarge",
    "GamebusError",
    "InvalidEvent",
    "InvalidRequest",
    "LimitExceeded",
    "LogError",
    "NotAuthorized",
    "OffsetOutOfRange",
    "OutOfOrderSequence",
    "ProtocolError",
    "RebalanceInProgress",
    "RequestError",
    "RequestTimedOut",
    "TopicExists",
    "UnknownMember",
    "UnknownPartition",
    "UnknownTopic",
    "error_from_wire",
    "for_code",
]


class GamebusError(Exception):
    """Root of every gamebus error."""

    code: ClassVar[int] = 1
    retriable: ClassVar[bool] = False

    def to_wire(self) -> dict[str, Any]:
        """The error as a msgpack-able map: ``{"code", "message", "data"}``."""
        return {"code": self.code, "message": str(self), "data": self.wire_data()}

    def wire_data(self) -> dict[str, Any]:
        """Facts worth sending to the peer; subclasses add theirs."""
        return {}


class ConfigError(GamebusError):
    code = 2


class FileRejected(GamebusError):
    """A file gamebus will not read (a model, an ensemble, an evaluation's rows): which one, and why."""

    code = 4
    #: Prefix naming what the file was meant to be, e.g. ``"model "``.
    kind: ClassVar[str] = ""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{self.kind}{path}: {reason}")
        self.path, self.reason = path, reason


class InvalidEvent(GamebusError, ValueError):
    """An event is missing a field or has one of the wrong type."""

    code = 3

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event field {field!r}: {reason}")
        self.field, self.reason = field, reason

    def wire_data(self) -> dict[str, Any]:
        return {"field": self.field, "reason": self.reason}


# -- storage ---------------------------------------------------------------


class LogError(GamebusError):
    code = 10


class CorruptBatch(LogError):
    """A stored or received batch failed its length, magic or CRC check."""

    code = 11

    def __init__(self, reason: str, *, position: int | None = None) -> None:
        where = f" at byte {position}" if position is not None else ""
        super().__init__(f"corrupt record batch{where}: {reason}")
        self.reason, self.position = reason, position

    def wire_data(self) -> dict[str, Any]:
        return {"reason": self.reason, "position": self.position}


class OffsetOutOfRange(LogError):
    code = 12

    def __init__(self, offset: int, log_start: int, log_end: int) -> None:
        super().__init__(f"offset {offset} outside [{log_start}, {log_end})")
        self.offset, self.log_start, self.log_end = offset, log_start, log_end

    def wire_data(self) -> dict[str, Any]:
        return {"offset": self.offset, "log_start": self.log_start, "log_end": self.log_end}


class EpochMismatch(LogError):
    """The consumer's position belongs to an older epoch: the tail may differ."""

    code = 13

    def __init__(self, given: int, current: int, *, resume_offset: int) -> None:
        super().__init__(
            f"position epoch {given} is not the current epoch {current}; "
            f"resume from offset {resume_offset}"
        )
        self.given, self.current, self.resume_offset = given, current, resume_offset

    def wire_data(self) -> dict[str, Any]:
        return {"given": self.given, "current": self.current, "resume_offset": self.resume_offset}


# -- wire ------------------------------------------------------------------


class ProtocolError(GamebusError):
    """The peer sent bytes that are not a valid frame; the connection ends."""

    code = 20


class FrameTooLarge(ProtocolError):
    code = 21

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {max_size}")
        self.size, self.max_size = size, max_size

    def wire_data(self) -> dict[str, Any]:
        return {"size": self.size, "max_size": self.max_size}


# -- requests --------------------------------------------------------------


class RequestError(GamebusError):
    code = 30


class UnknownTopic(RequestError):
    code = 31

    def __init__(self, topic: str) -> None:
        super().__init__(f"unknown topic {topic!r}")
        self.topic = topic

    def wire_data(self) -> dict[str, Any]:
        return {"topic": self.topic}


class UnknownPartition(RequestError):
    code = 32

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__(f"topic {topic!r} has no partition {partition}")
        self.topic, self.partition = topic, partition

    def wire_data(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition}


class TopicExists(RequestError):
    code = 33

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} already exists")
        self.topic = topic

    def wire_data(self) -> dict[str, Any]:
        return {"topic": self.topic}


class InvalidRequest(RequestError):
    """A request field is missing, ill-typed or out of range."""

    code = 34

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid request field {field!r}: {reason}")
        self.field, self.reason = field, reason

    def wire_data(self) -> dict[str, Any]:
        return {"field": self.field, "reason": self.reason}


class LimitExceeded(RequestError):
    code = 35

    def __init__(self, what: str, value: int, limit: int) -> None:
        super().__init__(f"{what} {value} exceeds the limit of {limit}")
        self.what, self.value, self.limit = what, value, limit

    def wire_data(self) -> dict[str, Any]:
        return {"what": self.what, "value": self.value, "limit": self.limit}


class OutOfOrderSequence(RequestError):
    code = 36

    def __init__(self, producer_id: int, expected: int, got: int) -> None:
        super().__init__(f"producer {producer_id}: expected sequence {expected}, got {got}")
        self.producer_id, self.expected, self.got = producer_id, expected, got

    def wire_data(self) -> dict[str, Any]:
        return {"producer_id": self.producer_id, "expected": self.expected, "got": self.got}


class AuthenticationFailed(RequestError):
    code = 37


class NotAuthorized(RequestError):
    code = 38

    def __init__(self, action: str, resource: str) -> None:
        super().__init__(f"not authorized to {action} {resource!r}")
        self.action, self.resource = action, resource

    def wire_data(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource}


class UnknownMember(RequestError):
    code = 39


class RebalanceInProgress(RequestError):
    code = 40
    retriable = True


# -- transport -------------------------------------------------------------


class ConnectionError_(GamebusError):  # trailing underscore: the builtin keeps its name
    code = 50
    retriable = True


class ConnectionLost(ConnectionError_):
    code = 51


class RequestTimedOut(ConnectionError_):
    code = 52


class EngineUnavailable(ConnectionError_):
    code = 53


def _all_subclasses(cls: type[GamebusError]) -> list[type[GamebusError]]:
    out: list[type[GamebusError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


_BY_CODE: dict[int, type[GamebusError]] = {GamebusError.code: GamebusError}
for _cls in _all_subclasses(GamebusError):
    if _cls.code in _BY_CODE:
        raise RuntimeError(f"duplicate error code {_cls.code}: {_cls.__name__}")
    _BY_CODE[_cls.code] = _cls


def for_code(code: int) -> type[GamebusError]:
    """The error class for a wire ``code``; unknown codes map to the root."""
    return _BY_CODE.get(code, GamebusError)


def error_from_wire(payload: dict[str, Any]) -> GamebusError:
    """Rebuild an error sent by :meth:`GamebusError.to_wire` on the other side.

    The class comes from the code; the message is kept verbatim and the data
    fields become attributes, so ``except UnknownTopic as e: e.topic`` works
    on both ends of the connection.
    """
    cls = for_code(int(payload.get("code", 1)))
    err = cls.__new__(cls)
    Exception.__init__(err, str(payload.get("message", cls.__name__)))
    data = payload.get("data") or {}
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.isidentifier():
                setattr(err, key, value)
    return err
