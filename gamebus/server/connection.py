"""One client connection: bytes in through the codec, frames out in bulk.

An :class:`asyncio.Protocol` rather than streams: ``data_received`` decodes
every complete frame and dispatches it synchronously, and everything the
handlers send during one event-loop turn leaves in a single
``transport.write``. That is what keeps the per-request cost of a pipelining
producer low.

Flow control both ways: when the kernel send buffer backs up
(``pause_writing``) or the queued output passes ``max_pending_write_bytes``,
the connection stops reading this client's requests and stops pushing to
its subscriptions, so a client that does not read cannot make the broker
buffer without bound. A malformed frame gets one ``err`` frame (id 0) and
the connection closes; nobody else notices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from gamebus.errors import GamebusError, ProtocolError
from gamebus.protocol import Frame, FrameReader, encode_error

if TYPE_CHECKING:
    from gamebus.server.auth import Principal
    from gamebus.server.subscriptions import Subscriber

__all__ = ["Connection"]

log = logging.getLogger("gamebus.connection")


class Connection(asyncio.Protocol):
    def __init__(
        self,
        *,
        conn_id: int,
        max_frame_bytes: int,
        max_pending_write_bytes: int,
        dispatch: Callable[[Connection, Frame], None],
        on_open: Callable[[Connection], bool],
        on_close: Callable[[Connection], None],
        on_writable: Callable[[Connection], None],
        count_out: Callable[[str, int, int], None],
    ) -> None:
        self.id = conn_id
        self.reader = FrameReader(max_frame_bytes=max_frame_bytes)
        self.max_pending_write_bytes = max_pending_write_bytes
        self._dispatch = dispatch
        self._on_open = on_open
        self._on_close = on_close
        self._on_writable = on_writable
        self._count_out = count_out
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.principal: Principal | None = None
        self.subscriptions: dict[int, Subscriber] = {}
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._paused_writing = False
        self._reading_paused = False
        self._held = False
        self.closing = False
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.peer = transport.get_extra_info("peername")
        self.transport.set_write_buffer_limits(high=self.max_pending_write_bytes // 2)
        if not self._on_open(self):
            self.close_after_flush()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.reader.feed(data)
            for frame in self.reader.frames():
                self._dispatch(self, frame)
                if self.closing:
                    return
        except ProtocolError as exc:
            self.fail(exc)

    def pause_writing(self) -> None:
        self._paused_writing = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._update_reading()
        self._on_writable(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._out.clear()
        self._on_close(self)

    # -- sending -------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Room to push more subscription data right now."""
        return not self._paused_writing and self._out_bytes < self.max_pending_write_bytes

    def send(self, data: bytes) -> None:
        if self.closing:
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out or self.transport is None:
            return
        self._out = []
        self._out_bytes = 0
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def count_out(self, topic: str, events: int, nbytes: int) -> None:
        self._count_out(topic, events, nbytes)

    def pause_reading(self) -> bool:
        """Stop reading requests (write-behind backpressure); False if already paused."""
        if self._held or self.closing:
            return False
        self._held = True
        self._update_reading()
        return True

    def resume_reading(self) -> None:
        self._held = False
        self._update_reading()

    def _update_reading(self) -> None:
        if self.transport is None or self.closing:
            return
        should_pause = self._paused_writing or self._held
        if should_pause and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self.transport.resume_reading()
            self._reading_paused = False

    # -- ending ----------------------------------------------------------------

    def fail(self, exc: GamebusError) -> None:
        """Tell the client why, then close: for errors the connection cannot survive."""
        log.info("closing connection %s from %s: %s", self.id, self.peer, exc)
        self.send(encode_error(0, exc))
        self.close_after_flush()

    def close_after_flush(self) -> None:
        if self.closing:
            return
        self._flush()
        self.closing = True
        if self.transport is not None:
            self.transport.close()  # sends what is buffered, then closes
