"""Push subscriptions with credit-based flow control.

A subscriber holds ``credit``: how many more batch bytes the client has
room for. The broker pushes a new batch to a subscriber only when the
subscriber is caught up (its next offset is the batch's base offset), has
credit left and its connection's send buffer is under the high-water mark;
otherwise the subscriber falls *behind* and is served later by
:meth:`SubscriptionHub.pump`, which reads from the partition (memory window,
then segments) when credit comes back. So a slow client costs the broker at
most its credit plus one batch of buffered bytes, and it never delays the
fan-out to anyone else: nothing here awaits a client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from gamebus.errors import GamebusError
from gamebus.log.batch import read_header
from gamebus.protocol import encode_frame, encode_push

if TYPE_CHECKING:
    from gamebus.server.partitions import PartitionState

__all__ = ["PushTarget", "Subscriber", "SubscriptionHub"]

#: Bytes one pump step reads before yielding to the event loop (fairness).
_PUMP_STEP_BYTES = 1 << 20


class PushTarget(Protocol):
    """What a subscriber needs from its connection."""

    id: int

    @property
    def writable(self) -> bool: ...

    def send(self, data: bytes) -> None: ...

    def count_out(self, topic: str, events: int, nbytes: int) -> None: ...


class Subscriber:
    __slots__ = ("conn", "credit", "next_offset", "pstate", "scheduled", "sid")

    def __init__(
        self, conn: PushTarget, sid: int, pstate: PartitionState, next_offset: int, credit: int
    ) -> None:
        self.conn, self.sid, self.pstate = conn, sid, pstate
        self.next_offset, self.credit = next_offset, credit
        self.scheduled = False

    @property
    def lag(self) -> int:
        return max(self.pstate.log_end - self.next_offset, 0)


class SubscriptionHub:
    """Fan-out of appended batches to the subscribers of every partition."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def on_append(self, pstate: PartitionState, base_offset: int, batch: bytes, next_offset: int) -> None:
        """Push a freshly appended batch to every caught-up subscriber that has room."""
        epoch = pstate.epoch
        size = len(batch)
        for sub in pstate.subscribers.values():
            if sub.next_offset == base_offset and sub.credit > 0 and sub.conn.writable:
                sub.conn.send(encode_push(sub.sid, epoch, [batch]))
                sub.conn.count_out(pstate.topic, next_offset - base_offset, size)
                sub.credit -= size
                sub.next_offset = next_offset
            elif sub.credit > 0 and sub.conn.writable:
                self.schedule(sub)

    def schedule(self, sub: Subscriber) -> None:
        if not sub.scheduled:
            sub.scheduled = True
            self.loop.call_soon(self.pump, sub)

    def pump(self, sub: Subscriber) -> None:
        """Send a behind subscriber what its credit allows, a bounded step at a time."""
        sub.scheduled = False
        pstate = sub.pstate
        if pstate.subscribers.get((sub.conn.id, sub.sid)) is not sub:
            return  # unsubscribed meanwhile
        sent = 0
        while sub.credit > 0 and sub.conn.writable and sub.next_offset < pstate.log_end:
            try:
                batches = pstate.read(sub.next_offset, max_bytes=min(sub.credit, _PUMP_STEP_BYTES))
            except GamebusError as exc:  # history gone (retention) or a disk problem
                self.fail(sub, exc)
                return
            if not batches:
                return
            nbytes = sum(len(b) for b in batches)
            sub.conn.send(encode_push(sub.sid, pstate.epoch, batches))
            end = read_header(batches[-1]).next_offset
            sub.conn.count_out(pstate.topic, end - sub.next_offset, nbytes)
            sub.credit -= nbytes
            sub.next_offset = end
            sent += nbytes
            if sent >= _PUMP_STEP_BYTES:
                self.schedule(sub)  # let other work run; continue next turn
                return

    def fail(self, sub: Subscriber, exc: GamebusError) -> None:
        sub.pstate.subscribers.pop((sub.conn.id, sub.sid), None)
        sub.conn.send(encode_frame("suberr", sub.sid, exc.to_wire()))

    def add_credit(self, sub: Subscriber, nbytes: int, *, max_credit: int) -> None:
        sub.credit = min(sub.credit + nbytes, max_credit)
        if sub.credit > 0 and sub.next_offset < sub.pstate.log_end:
            self.schedule(sub)
