"""One client's WebSocket, as the fan-out sees it: offer a frame, never wait.

:meth:`ClientConnection.offer` is synchronous. While the client keeps up it
writes the frame straight into the socket (as ``websockets.broadcast`` does,
without awaiting a drain); once the client's write buffer passes the
high-water mark, frames go to its :class:`~relay.backpressure.SendQueue`
and a drainer task of its own writes them as the socket drains. The loop
that fans a frame out to a thousand clients therefore never awaits one of
them, and a slow client costs the others nothing but a queue append.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from relay.backpressure import Frame, PositionsFlush, QueueConfig, SendQueue, TooSlow
from relay.limits import TokenBucket
from relay.metrics import RelayMetrics
from relay.protocol import CLOSE_TOO_SLOW, JSON, Format, encode_events, encode_message, wire_frame
from relay.tokens import Claims

__all__ = ["ClientConnection", "slow_close_reason"]

log = logging.getLogger("relay.connection")

_MAX_REASON_BYTES = 123


def slow_close_reason(match: str | None, sent: Mapping[tuple[str, str], Frame | PositionsFlush]) -> str:
    """The 4009 close reason: one match's resume position as compact JSON.

    A close reason holds at most 123 bytes, so it names one match (the one
    that overflowed); every events frame the client read carries the same
    facts for all its matches.
    """
    if match is None:
        return "too slow"
    offsets = {t: f.next_offset for (m, t), f in sent.items() if m == match}
    epochs = {t: f.epoch for (m, t), f in sent.items() if m == match}
    body: dict[str, Any] = {"match": match, "offsets": offsets}
    if len(set(epochs.values())) <= 1:
        body["epoch"] = next(iter(epochs.values()), 0)
    else:
        body["epochs"] = epochs
    text = json.dumps(body, separators=(",", ":"))
    return text if len(text.encode()) <= _MAX_REASON_BYTES else "too slow"


class ClientConnection:
    """The relay's side of one client: identity, send path, subscriptions."""

    def __init__(
        self,
        client_id: int,
        ws: ServerConnection,
        *,
        fmt: Format,
        claims: Claims,
        queue: QueueConfig,
        bucket: TokenBucket,
        metrics: RelayMetrics,
        close_timeout_s: float,
        on_slow: Callable[[ClientConnection], None],
        schedule_flush: Callable[[ClientConnection], None],
    ) -> None:
        self.id, self.ws, self.fmt, self.claims = client_id, ws, fmt, claims
        self.text = fmt == JSON
        self.queue = SendQueue(queue)
        self.bucket = bucket
        self.metrics = metrics
        self.close_timeout_s = close_timeout_s
        self.on_slow = on_slow
        self._schedule_flush = schedule_flush
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: match -> the channel's subscriber record (owned by the server).
        self.matches: set[str] = set()
        self.alerts = False
        #: (match, topic) -> the last frame written (its epoch and next offset).
        self.sent: dict[tuple[str, str], Frame | PositionsFlush] = {}
        self.closing = False
        self._conflated_seen = 0
        self._drainer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._transport = ws.transport
        self._buffered: Callable[[], int] = self._transport.get_write_buffer_size

    # -- sending -------------------------------------------------------------

    def offer(self, frame: Frame, wire: bytes | None = None) -> None:
        """Hand ``frame`` over without waiting: write it soon or queue it.

        ``wire`` is the frame already framed for the socket (see
        :func:`~relay.protocol.wire_frame`), shared by every client of it.
        Admitted frames are written by :meth:`flush` at the end of the
        current loop iteration, together: when the relay is behind, several
        frames for one client cost one system call instead of several, and
        when it is not, the frame leaves a few microseconds later.
        """
        if self.closing:
            return
        try:
            if self.queue.admit(frame, self._buffered() + self._pending_bytes):
                if wire is None:
                    wire = wire_frame(frame.data, text=self.text)
                if not self._pending:
                    self._schedule_flush(self)
                self._pending.append(wire)
                self._pending_bytes += len(wire)
                if frame.key is not None:
                    self.sent[frame.key] = frame
            else:
                if self.queue.conflated != self._conflated_seen:
                    self.metrics.conflated.inc(self.queue.conflated - self._conflated_seen)
                    self._conflated_seen = self.queue.conflated
                if self._drainer is None:
                    self._drainer = asyncio.create_task(self._drain(), name=f"drain client {self.id}")
        except TooSlow:
            self.close_slow(frame.match)

    def flush(self) -> None:
        """Write what this loop iteration gathered for the client, in one call."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_bytes = 0
        if self.ws.protocol.state is not State.OPEN:
            return
        try:
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        except Exception as exc:  # a dying socket: the reader loop will see the close
            log.debug("client %d: write failed: %s", self.id, exc)

    def send_message(self, message: dict[str, Any]) -> None:
        """Send a control message (reply, error, snapshot) in order with the data."""
        self.offer(Frame(encode_message(message, self.fmt)))

    def send_bytes(self, data: bytes) -> None:
        """Send an already encoded control message (shared between clients)."""
        self.offer(Frame(data))

    def _track(self, frame: Frame | PositionsFlush) -> None:
        if frame.match is not None and frame.topic is not None:
            self.sent[(frame.match, frame.topic)] = frame

    def _encode_flush(self, flush: PositionsFlush) -> bytes:
        records = sorted(flush.latest.values(), key=lambda r: r.offset)
        position = {"epoch": flush.epoch, "offsets": {flush.topic: flush.next_offset}}
        return encode_events(
            match=flush.match,
            topic=flush.topic,
            position=position,
            records=[r.raw for r in records],
            events=[r.event for r in records],
            fmt=self.fmt,
        )

    async def _drain(self) -> None:
        try:
            while not self.closing:
                self.flush()  # what was admitted before the queue started goes first
                item = self.queue.pop()
                if item is None:
                    break
                data = item.data if isinstance(item, Frame) else self._encode_flush(item)
                # Tracked first: send() writes at once and only then awaits the
                # drain, where a close may cancel it with the frame already out.
                self._track(item)
                await self.ws.send(data, text=self.text)
        except ConnectionClosed:
            pass
        finally:
            self._drainer = None

    # -- closing -------------------------------------------------------------

    def close_slow(self, match: str | None) -> None:
        """Close with 4009 and the resume position; stop offering at once."""
        if self.closing:
            return
        reason = slow_close_reason(match, self.sent)
        self.metrics.slow_closes.inc()
        self.on_slow(self)
        self.close(CLOSE_TOO_SLOW, reason)

    def close(self, code: int, reason: str) -> None:
        """Start closing in the background; the reader loop ends on its own."""
        if self.closing:
            return
        self.flush()  # admitted frames precede the close frame
        self.closing = True
        self.metrics.closes.labels(str(code)).inc()
        if self._drainer is not None:
            self._drainer.cancel()
        self._closer = asyncio.create_task(self._close(code, reason), name=f"close client {self.id}")

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self.close_timeout_s + 1):
                await self.ws.close(code, reason)
        except (TimeoutError, ConnectionClosed, OSError):
            self.ws.transport.abort()

    def take_message_token(self) -> bool:
        return self.bucket.take(now=time.monotonic())
