"""The embedded engine: a :class:`~gamebus.engines.base.Bus` over the broker protocol.

``await connect_embedded("gamebus://127.0.0.1:7400", token=...)`` opens one
TCP connection that every producer, subscription and group membership of
the bus shares. Requests pipeline (correlation ids, no waiting for one
answer before sending the next), and frames written in one event-loop turn
leave in one ``write`` call, so a producer pays per batch, not per event.

Reconnects are automatic, with exponential backoff (``reconnect_min_ms`` to
``reconnect_max_ms``). Across a reconnect:

- idempotent produces (``producer_id >= 0``) and reads are re-sent in their
  original order, so their callers only see a delay; the broker drops the
  duplicates by producer id and sequence. Other requests in flight fail
  with :class:`~gamebus.errors.ConnectionLost` (retriable);
- subscriptions resubscribe from the next position they had not yet
  received; if the partition's epoch changed meanwhile (the broker lost an
  unflushed tail), the subscription's iterator raises
  :class:`~gamebus.errors.EpochMismatch`;
- group members rejoin under the same member id.

A request not answered within ``request_timeout_ms`` (connected or not)
fails with :class:`~gamebus.errors.RequestTimedOut`.

Example::

    bus = await connect_embedded("gamebus://127.0.0.1:7400")
    await bus.produce("game.events", 0, [encode_event(ev)], acks="durable")
    sub = await bus.subscribe("game.events", 0, "earliest")
    async for batch in sub:
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from gamebus.engines.base import (
    Acks,
    Batch,
    PartitionInfo,
    Position,
    ProduceResult,
    Start,
)
from gamebus.errors import (
    ConfigError,
    ConnectionLost,
    CorruptBatch,
    GamebusError,
    ProtocolError,
    RequestTimedOut,
    UnknownMember,
    error_from_wire,
)
from gamebus.events import now_ms
from gamebus.log.batch import RecordBatch, decode_records, encode_records
from gamebus.partitioning import partition_for_key
from gamebus.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Frame,
    FrameReader,
    encode_frame,
    encode_start,
)

__all__ = [
    "EmbeddedBus",
    "EmbeddedMembership",
    "EmbeddedSubscription",
    "connect_embedded",
    "decode_pushed_batch",
]

log = logging.getLogger("gamebus.embedded")

# Requests that are safe to send twice: reads, and produces made idempotent
# by a producer id (the broker drops the duplicate and acks the original).
_REPLAYABLE_OPS = frozenset({"fetch", "metadata", "committed", "commit", "ping"})


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    frame: bytes
    replayable: bool
    deadline: float
    sent: bool = False


def decode_pushed_batch(
    topic: str, partition: int, epoch: int, data: bytes
) -> tuple[Batch, int]:
    """A stored batch (header + payload) as a :class:`Batch`; CRC checked.

    Returns the batch and its size in bytes (what it cost in credit).
    Raises :class:`CorruptBatch` if the bytes are damaged.
    """
    rb = RecordBatch.decode(data)
    records = decode_records(rb.payload)
    if len(records) != rb.count:
        raise CorruptBatch(f"header says {rb.count} records, payload has {len(records)}")
    return (
        Batch(topic, partition, epoch, rb.base_offset, records, rb.first_ts, rb.max_ts),
        len(data),
    )


class _Connection(asyncio.Protocol):
    """One TCP connection: frames in, frames out, nothing else."""

    def __init__(self, bus: EmbeddedBus, max_frame_bytes: int) -> None:
        self.bus = bus
        self.reader = FrameReader(max_frame_bytes=max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()
        # Created up front: the broker may answer (or refuse) before
        # create_connection() returns to the caller.
        self.hello: asyncio.Future[dict[str, Any]] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing() and out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def data_received(self, data: bytes) -> None:
        try:
            self.reader.feed(data)
            for frame in self.reader.frames():
                self.bus._on_frame(self, frame)
        except ProtocolError as exc:
            log.warning("broker sent a malformed frame (%s); reconnecting", exc)
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.bus._on_connection_lost(self)


class EmbeddedSubscription:
    """Batches of one partition, pushed by the broker under credit-based flow control.

    The broker sends at most ``credit_bytes`` ahead of what this iterator
    has handed out; credit is returned as batches are consumed, so a slow
    reader stalls only itself and neither side buffers more than that.
    """

    def __init__(
        self, bus: EmbeddedBus, sid: int, topic: str, partition: int, start: Start, credit_bytes: int
    ) -> None:
        self.bus, self.sid, self.topic, self.partition = bus, sid, topic, partition
        self.start: Start = start
        self.credit_bytes = credit_bytes
        self.position: Position | None = start if isinstance(start, Position) else None
        self._queue: deque[tuple[Batch, int] | BaseException] = deque()
        self._queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._to_return = 0
        self.closed = False
        self.established = False

    # -- fed by the connection -------------------------------------------

    def _push(self, epoch: int, batches: list[bytes]) -> None:
        for data in batches:
            try:
                batch, size = decode_pushed_batch(self.topic, self.partition, epoch, data)
            except CorruptBatch as exc:
                self._fail(exc)
                return
            pos = self.position
            if pos is not None and batch.base_offset < pos.offset:
                # Reads return whole batches: drop what was already handed out
                # (a resume inside a batch, or a repeat after a reconnect).
                if batch.next_offset <= pos.offset:
                    self._to_return += size
                    continue
                skip = pos.offset - batch.base_offset
                batch = Batch(
                    batch.topic, batch.partition, batch.epoch, pos.offset,
                    batch.records[skip:], batch.first_ts, batch.max_ts,
                )  # fmt: skip
            self.position = batch.position
            self._queue.append((batch, size))
            self._queued_bytes += size
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self._queue.append(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _resubscribe_body(self) -> dict[str, Any]:
        start = self.position if self.position is not None else self.start
        credit = max(self.credit_bytes - self._queued_bytes, 1)
        self._to_return = 0
        return {
            "sub": self.sid,
            "topic": self.topic,
            "partition": self.partition,
            "start": encode_start(start),
            "credit": credit,
        }

    # -- read by the application ------------------------------------------

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self

    async def __anext__(self) -> Batch:
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue.popleft()
        if isinstance(item, BaseException):
            self.closed = True
            self.bus._subs.pop(self.sid, None)
            raise item
        batch, size = item
        self._queued_bytes -= size
        self._to_return += size
        if self._to_return >= self.credit_bytes // 4:
            self.bus._send_nowait("credit", {"sub": self.sid, "bytes": self._to_return})
            self._to_return = 0
        return batch

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wake()
        if self.bus._subs.pop(self.sid, None) is not None and self.bus.connected:
            with contextlib.suppress(GamebusError):
                await self.bus._request("unsubscribe", {"sub": self.sid})


class EmbeddedMembership:
    """This process's share of a consumer group; heartbeats in the background."""

    def __init__(
        self, bus: EmbeddedBus, group: str, topics: list[str], session_timeout_ms: int
    ) -> None:
        self.bus, self.group, self.topics = bus, group, topics
        self.session_timeout_ms = session_timeout_ms
        self.member = ""
        self.generation = -1
        self.assignment: list[tuple[str, int]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.left = False

    def _apply(self, body: dict[str, Any]) -> None:
        generation = int(body["generation"])
        assignment = sorted((str(t), int(p)) for t, p in body["assignment"])
        if generation == self.generation and assignment == self.assignment:
            return  # (a restarted broker counts generations from 1 again: compare both)
        self.member = str(body["member"])
        self.generation = generation
        self.assignment = assignment
        self._changed.set()

    async def _join(self) -> None:
        body = await self.bus._request(
            "join",
            {
                "group": self.group,
                "topics": self.topics,
                "member": self.member or None,
                "session_timeout_ms": self.session_timeout_ms,
            },
        )
        self._apply(body)

    async def _heartbeat_loop(self) -> None:
        interval = max(self.session_timeout_ms / 3000, 0.05)
        while not self.left:
            await asyncio.sleep(interval)
            try:
                body = await self.bus._request(
                    "heartbeat", {"group": self.group, "member": self.member}
                )
                self._apply(body)
            except UnknownMember:
                with contextlib.suppress(GamebusError):
                    await self._join()
            except GamebusError as exc:
                log.debug("heartbeat for %s failed: %s", self.group, exc)

    async def wait_for_change(self) -> None:
        """Return when the assignment changes (a rebalance happened)."""
        await self._changed.wait()
        self._changed.clear()

    async def leave(self) -> None:
        if self.left:
            return
        self.left = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.bus._members.discard(self)
        if self.bus.connected:
            with contextlib.suppress(GamebusError):
                await self.bus._request("leave", {"group": self.group, "member": self.member})


class EmbeddedBus:
    """A :class:`~gamebus.engines.base.Bus` on one broker connection."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        request_timeout_ms: int = 30_000,
        connect_timeout_ms: int = 5_000,
        reconnect_min_ms: int = 50,
        reconnect_max_ms: int = 2_000,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        client_name: str = "gamebus-python",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "gamebus" or not parts.hostname:
            raise ConfigError(f"not a gamebus URL: {url!r} (expected gamebus://host:port)")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 7400
        self.token = token
        self.request_timeout_s = request_timeout_ms / 1000
        self.connect_timeout_s = connect_timeout_ms / 1000
        self.reconnect_min_s = reconnect_min_ms / 1000
        self.reconnect_max_s = reconnect_max_ms / 1000
        self.max_frame_bytes = max_frame_bytes
        self.client_name = client_name
        self.server_info: dict[str, Any] = {}
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 1
        self._subs: dict[int, EmbeddedSubscription] = {}
        self._next_sid = 1
        self._members: set[EmbeddedMembership] = set()
        self._partitions: dict[str, int] = {}
        self._closed = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.reconnects = 0
        self._tasks: set[asyncio.Future[None]] = set()

    # -- connection management --------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def _open(self) -> None:
        """Connect and say hello; raises on failure (no retry here)."""
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(self, self.max_frame_bytes), self.host, self.port
            ),
            self.connect_timeout_s,
        )
        body: dict[str, Any] = {"version": PROTOCOL_VERSION, "client": self.client_name}
        if self.token is not None:
            body["token"] = self.token
        conn.send(encode_frame("hello", 0, body))
        try:
            self.server_info = await asyncio.wait_for(conn.hello, self.connect_timeout_s)
        except BaseException:
            conn.abort()
            raise
        self._conn = conn
        self._after_connect(conn)

    def _after_connect(self, conn: _Connection) -> None:
        self._connected.set()
        # Re-send, in their original order, what the broker may not have seen.
        for pid, pending in list(self._pending.items()):
            if pending.future.done():
                self._pending.pop(pid, None)
                continue
            conn.send(pending.frame)
            pending.sent = True
        for sub in list(self._subs.values()):
            if sub.established and not sub.closed:
                self._resubscribe(sub)
        for member in list(self._members):
            if member.member and not member.left:
                task = asyncio.ensure_future(self._rejoin(member))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _rejoin(self, member: EmbeddedMembership) -> None:
        with contextlib.suppress(GamebusError):
            await member._join()

    def _resubscribe(self, sub: EmbeddedSubscription) -> None:
        fut = self._start_request("subscribe", sub._resubscribe_body(), replayable=False)

        def done(f: asyncio.Future[dict[str, Any]]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None and not isinstance(exc, ConnectionLost):
                sub._fail(exc)
            elif exc is None and sub.position is None:
                body = f.result()
                sub.position = Position(int(body["epoch"]), int(body["offset"]))

        fut.add_done_callback(done)

    def _on_connection_lost(self, conn: _Connection) -> None:
        if not conn.hello.done():
            conn.hello.set_exception(ConnectionLost("connection closed during hello"))
            conn.hello.exception()  # retrieved: nobody may be waiting any more
        if conn is not self._conn:
            return
        self._conn = None
        self._connected.clear()
        for pid, pending in list(self._pending.items()):
            if pending.sent and not pending.replayable and not pending.future.done():
                pending.future.set_exception(ConnectionLost(f"connection to {self.url} lost"))
                self._pending.pop(pid, None)
            else:
                pending.sent = False
        if not self._closed and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.ensure_future(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = self.reconnect_min_s
        while not self._closed and self._conn is None:
            try:
                await self._open()
                self.reconnects += 1
                log.info("reconnected to %s", self.url)
                return
            except GamebusError as exc:
                if not exc.retriable:
                    log.error("broker refused the connection: %s", exc)
                    self._fail_all(exc)
                    return
            except (TimeoutError, OSError):
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)

    def _fail_all(self, exc: GamebusError) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)
        self._pending.clear()
        for sub in self._subs.values():
            sub._fail(exc)

    async def _sweep(self) -> None:
        """Fail requests past their deadline; one task instead of a timer each."""
        while not self._closed:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for pid, pending in list(self._pending.items()):
                if pending.deadline < now and not pending.future.done():
                    pending.future.set_exception(
                        RequestTimedOut(f"no answer from {self.url} in {self.request_timeout_s}s")
                    )
                    self._pending.pop(pid, None)

    # -- frames in ---------------------------------------------------------

    def _on_frame(self, conn: _Connection, frame: Frame) -> None:
        op = frame.op
        if op == "ok" or op == "err":
            if not conn.hello.done() and frame.id == 0:
                if op == "ok":
                    conn.hello.set_result(frame.body)
                else:
                    conn.hello.set_exception(error_from_wire(frame.body))
                return
            pending = self._pending.pop(frame.id, None)
            if pending is None:
                if op == "err":
                    log.warning("broker error: %s", frame.body.get("message"))
                return
            if pending.future.done():
                return
            if op == "ok":
                pending.future.set_result(frame.body)
            else:
                pending.future.set_exception(error_from_wire(frame.body))
        elif op == "push":
            sub = self._subs.get(frame.id)
            if sub is not None:
                sub._push(int(frame.body["epoch"]), frame.body["batches"])
        elif op == "suberr":
            sub = self._subs.get(frame.id)
            if sub is not None:
                sub._fail(error_from_wire(frame.body))
        elif op == "group":
            for member in self._members:
                if member.group == frame.body.get("group") and member.member == frame.body.get(
                    "member"
                ):
                    member._apply(frame.body)

    # -- frames out --------------------------------------------------------

    def _start_request(
        self, op: str, body: dict[str, Any], *, replayable: bool
    ) -> asyncio.Future[dict[str, Any]]:
        if self._closed:
            raise ConnectionLost("bus is closed")
        rid = self._next_id
        self._next_id += 1
        frame = encode_frame(op, rid, body)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, frame, replayable, time.monotonic() + self.request_timeout_s)
        self._pending[rid] = pending
        conn = self._conn
        if conn is not None and self._connected.is_set():
            conn.send(frame)
            pending.sent = True
        return future

    async def _request(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._start_request(op, body, replayable=op in _REPLAYABLE_OPS)

    def _send_nowait(self, op: str, body: dict[str, Any]) -> None:
        """A frame with id 0: no answer expected, dropped when disconnected."""
        conn = self._conn
        if conn is not None and self._connected.is_set():
            conn.send(encode_frame(op, 0, body))

    # -- the Bus interface ---------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        for member in list(self._members):
            await member.leave()
        self._closed = True
        for task in (self._reconnect_task, self._sweeper):
            if task is not None:
                task.cancel()
        self._fail_all(ConnectionLost("bus closed"))
        for sub in list(self._subs.values()):
            sub.closed = True
            sub._wake()
        self._subs.clear()
        conn = self._conn
        self._conn = None
        self._connected.clear()
        if conn is not None and conn.transport is not None:
            conn._flush()
            conn.transport.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.closed), 1.0)

    async def partitions(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            await self.metadata(topic)
            count = self._partitions[topic]
        return count

    async def partition_for(self, topic: str, key: str) -> int:
        return partition_for_key(key, await self.partitions(topic))

    async def metadata(self, topic: str | None = None) -> list[PartitionInfo]:
        body = await self._request("metadata", {"topic": topic} if topic else {})
        infos = [
            PartitionInfo(
                topic=p["topic"],
                partition=p["partition"],
                epoch=p["epoch"],
                log_start=p["log_start"],
                log_end=p["log_end"],
                durable_end=p["durable_end"],
                extra=p.get("extra") or {},
            )
            for p in body["partitions"]
        ]
        counts: dict[str, int] = {}
        for info in infos:
            counts[info.topic] = max(counts.get(info.topic, 0), info.partition + 1)
        self._partitions.update(counts)
        return infos

    async def topics(self) -> list[str]:
        """Names of all topics (an extension of the Bus interface)."""
        return sorted({info.topic for info in await self.metadata()})

    async def create_topic(self, topic: str, *, partitions: int, **config: Any) -> None:
        await self._request(
            "create_topic", {"topic": topic, "partitions": partitions, "config": config}
        )
        self._partitions[topic] = partitions

    def produce_nowait(
        self,
        topic: str,
        partition: int,
        records: list[bytes],
        *,
        acks: Acks = "memory",
        producer_id: int = -1,
        sequence: int = -1,
        first_ts: int | None = None,
        max_ts: int | None = None,
    ) -> asyncio.Future[dict[str, Any]] | None:
        """Send a produce frame now; the future resolves with the broker's answer.

        The synchronous core of :meth:`produce`: frames go out in call order,
        which is what keeps a partition's batches in order without a task
        each. Returns None for ``acks="none"``.
        """
        ts = now_ms() if first_ts is None else first_ts
        body = {
            "topic": topic,
            "partition": partition,
            "acks": acks,
            "producer_id": producer_id,
            "sequence": sequence,
            "records": encode_records(records),
            "count": len(records),
            "first_ts": ts,
            "max_ts": ts if max_ts is None else max_ts,
        }
        if acks == "none":
            self._send_nowait("produce", body)
            return None
        return self._start_request("produce", body, replayable=producer_id >= 0)

    async def produce(
        self,
        topic: str,
        partition: int,
        records: list[bytes],
        *,
        acks: Acks = "memory",
        producer_id: int = -1,
        sequence: int = -1,
    ) -> ProduceResult | None:
        future = self.produce_nowait(
            topic, partition, records, acks=acks, producer_id=producer_id, sequence=sequence
        )
        if future is None:
            return None
        return result_from_wire(topic, partition, await future)

    async def subscribe(
        self, topic: str, partition: int, start: Start = "latest", *, credit_bytes: int = 1 << 20
    ) -> EmbeddedSubscription:
        sid = self._next_sid
        self._next_sid += 1
        sub = EmbeddedSubscription(self, sid, topic, partition, start, credit_bytes)
        self._subs[sid] = sub
        try:
            body = await self._start_request("subscribe", sub._resubscribe_body(), replayable=False)
        except BaseException:
            self._subs.pop(sid, None)
            raise
        sub.established = True
        if sub.position is None:
            sub.position = Position(int(body["epoch"]), int(body["offset"]))
        return sub

    async def fetch(
        self, topic: str, partition: int, offset: int, *, max_bytes: int = 1 << 20
    ) -> list[Batch]:
        body = await self._request(
            "fetch",
            {"topic": topic, "partition": partition, "offset": offset, "max_bytes": max_bytes},
        )
        epoch = int(body["epoch"])
        return [decode_pushed_batch(topic, partition, epoch, b)[0] for b in body["batches"]]

    async def join_group(
        self,
        group: str,
        topics: list[str],
        *,
        member: str | None = None,
        session_timeout_ms: int = 10_000,
    ) -> EmbeddedMembership:
        membership = EmbeddedMembership(self, group, list(topics), session_timeout_ms)
        membership.member = member or ""
        await membership._join()
        membership._changed.clear()
        self._members.add(membership)
        membership._task = asyncio.ensure_future(membership._heartbeat_loop())
        return membership

    async def commit(self, group: str, offsets: dict[tuple[str, int], Position]) -> None:
        if not offsets:
            return
        await self._request(
            "commit",
            {
                "group": group,
                "offsets": [[t, p, pos.epoch, pos.offset] for (t, p), pos in offsets.items()],
            },
        )

    async def committed(self, group: str, topic: str, partition: int) -> Position | None:
        body = await self._request(
            "committed", {"group": group, "topic": topic, "partition": partition}
        )
        pos = body.get("position")
        return None if pos is None else Position(int(pos[0]), int(pos[1]))

    async def ping(self) -> float:
        """Round-trip time to the broker in seconds."""
        t0 = time.perf_counter()
        await self._request("ping", {})
        return time.perf_counter() - t0


def result_from_wire(topic: str, partition: int, body: dict[str, Any]) -> ProduceResult:
    return ProduceResult(
        topic=topic,
        partition=partition,
        epoch=int(body["epoch"]),
        base_offset=int(body["base_offset"]),
        duplicate=bool(body.get("duplicate", False)),
    )


async def connect_embedded(url: str, token: str | None = None, **options: Any) -> EmbeddedBus:
    """Connect to a broker at ``gamebus://host:port``; see :class:`EmbeddedBus` for options.

    The first connection attempt is not retried: a wrong address or token
    fails here, clearly. Later drops reconnect on their own.
    """
    bus = EmbeddedBus(url, token=token, **options)
    try:
        await bus._open()
    except (TimeoutError, OSError) as exc:
        raise ConnectionLost(f"cannot connect to {url}: {exc}") from None
    bus._sweeper = asyncio.ensure_future(bus._sweep())
    return bus

