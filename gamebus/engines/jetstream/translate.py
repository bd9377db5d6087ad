"""nats-py exceptions -> gamebus errors, and which of them are worth a retry.

nats-py has no common error root and reports "no stream leader right now"
as several different things (a request timeout, *no responders*, a 503 API
error, a reconnecting connection). During a leader election all of them are
transient, so the producer retries them until its deadline and only then
raises :class:`~gamebus.errors.EngineUnavailable`.
"""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors

from gamebus.errors import ConnectionLost, EngineUnavailable, GamebusError, RequestError

__all__ = ["is_retriable", "to_gamebus"]

_RETRIABLE: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
)

# JetStream API error codes that mean "not now" rather than "never":
# 10008 cluster not available, 10009 no leader / not current,
# 10023 JetStream not enabled (yet), 10039 temporarily unavailable.
_RETRIABLE_API_CODES = {10008, 10009, 10023, 10039}


def is_retriable(exc: BaseException) -> bool:
    if isinstance(exc, GamebusError):
        return exc.retriable
    if isinstance(exc, _RETRIABLE):
        return True
    if isinstance(exc, nats.js.errors.APIError):
        return exc.code in (408, 503) or exc.err_code in _RETRIABLE_API_CODES
    return False


def to_gamebus(exc: BaseException, context: str) -> GamebusError:
    """The gamebus error a caller should see for ``exc``, naming ``context``."""
    if isinstance(exc, GamebusError):
        return exc
    if isinstance(exc, nats.errors.ConnectionClosedError | nats.errors.NoServersError):
        return ConnectionLost(f"{context}: NATS connection closed ({exc!r})")
    if is_retriable(exc):
        return EngineUnavailable(f"{context}: JetStream unavailable ({exc!r})")
    return RequestError(f"{context}: {exc!r}")
