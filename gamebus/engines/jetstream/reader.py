"""One ephemeral push consumer reading one partition subject, with flow control.

Both live subscriptions and history fetches read through a
:class:`PartitionReader`: it creates an ephemeral, memory-backed, R=1
consumer that starts at a stream sequence, filters the partition's subject,
never waits for acks (``AckNone``: the reader tracks its own position), and
pushes to a private inbox with flow control and idle heartbeats.

Flow control is how ``credit_bytes`` is honoured: the server pauses once it
has sent a window of bytes and resumes only when the client answers the
flow-control request that closes the window. The reader answers it when the
application has *taken* the records before it, so a slow reader stops the
server instead of growing memory here.

Anything that could mean lost messages (a consumer-sequence gap, a missed
heartbeat, a consumer deleted under us by a failover) raises
:class:`ReaderBroken`; the owner recreates the consumer from the last
sequence it handed out plus one, so nothing is skipped or repeated.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext, api

from gamebus.engines.jetstream.naming import AckInfo, parse_ack_reply

__all__ = ["PartitionReader", "ReaderBroken"]


class ReaderBroken(Exception):
    """The consumer can no longer be trusted to deliver every message in order."""


class PartitionReader:
    """Deliveries of ``subject`` in ``stream`` from ``start_seq`` on, as (AckInfo, data)."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        stream: str,
        subject: str,
        start_seq: int,
        *,
        heartbeat_s: float = 1.0,
        request_timeout_s: float = 5.0,
    ) -> None:
        self._nc, self._js = nc, js
        self.stream, self.subject = stream, subject
        self.start_seq = max(1, start_seq)
        self.heartbeat_s = heartbeat_s
        self.request_timeout_s = request_timeout_s
        self.last_consumer_seq = 0
        self.consumer: str | None = None
        self.num_pending = 0
        self._queue: collections.deque[Msg] = collections.deque()
        self._arrived = asyncio.Event()
        self._sub: NatsSubscription | None = None
        self._interrupted = False

    async def open(self) -> None:
        """Subscribe the inbox first, then create the consumer that pushes to it."""
        inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(inbox, cb=self._on_msg)
        config = api.ConsumerConfig(
            deliver_subject=inbox,
            filter_subject=self.subject,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.start_seq,
            ack_policy=api.AckPolicy.NONE,
            flow_control=True,
            idle_heartbeat=self.heartbeat_s,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=max(5.0, 5 * self.heartbeat_s),
        )
        try:
            info = await self._js._jsm.add_consumer(
                self.stream, config, timeout=self.request_timeout_s
            )
        except BaseException:
            await self.close()
            raise
        self.consumer = info.name
        self.num_pending = info.num_pending or 0

    async def _on_msg(self, msg: Msg) -> None:
        self._queue.append(msg)
        self._arrived.set()

    async def take(self, max_records: int, max_bytes: int) -> list[tuple[AckInfo, bytes]]:
        """Wait for deliveries and return up to ``max_records``/``max_bytes`` of them.

        Raises :class:`ReaderBroken` after three heartbeat intervals of silence
        or on any sign of a lost delivery.
        """
        out: list[tuple[AckInfo, bytes]] = []
        size = 0
        while not out:
            if self._interrupted:
                raise ReaderBroken("closed")
            if not self._queue:
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout=3 * self.heartbeat_s)
                except TimeoutError:
                    raise ReaderBroken(f"no heartbeat from consumer {self.consumer}") from None
            while self._queue and len(out) < max_records and (not out or size < max_bytes):
                msg = self._queue.popleft()
                status = msg.headers.get("Status") if msg.headers else None
                if status is not None:
                    await self._control(msg, status)
                    continue
                info = parse_ack_reply(msg.reply)
                if info is None:
                    continue
                if info.consumer_seq != self.last_consumer_seq + 1:
                    raise ReaderBroken(
                        f"delivery gap: consumer seq {info.consumer_seq} after "
                        f"{self.last_consumer_seq}"
                    )
                self.last_consumer_seq = info.consumer_seq
                out.append((info, msg.data))
                size += len(msg.data)
        return out

    def interrupt(self) -> None:
        """Wake a pending :meth:`take` so that it raises :class:`ReaderBroken`."""
        self._interrupted = True
        self._arrived.set()

    async def _control(self, msg: Msg, status: str) -> None:
        headers = msg.headers or {}
        if status != "100":
            # 409 "Consumer Deleted" and friends: the consumer is gone.
            raise ReaderBroken(f"consumer {self.consumer}: status {status} {headers}")
        if msg.reply:  # flow-control request: answering it opens the next window
            await self._nc.publish(msg.reply, b"")
            return
        stalled = headers.get("Nats-Consumer-Stalled")
        if stalled:
            await self._nc.publish(stalled, b"")
        last = headers.get("Nats-Last-Consumer")
        if last is not None and int(last) > self.last_consumer_seq:
            raise ReaderBroken(
                f"heartbeat says consumer seq {last}, but only {self.last_consumer_seq} arrived"
            )

    async def close(self) -> None:
        """Unsubscribe and delete the consumer (best effort: it expires by itself)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self.consumer is not None and not self._nc.is_closed:
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError):
                await self._js._jsm.delete_consumer(self.stream, self.consumer)
            self.consumer = None
