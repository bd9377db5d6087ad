"""Request handlers: one method per op, validated fields in, frames out.

Handlers run synchronously inside ``data_received``; the few that must wait
(``durable`` produces, commits) register a callback or start a task, so a
slow request never blocks the requests behind it on the same connection.
Every :class:`~gamebus.errors.GamebusError` becomes an ``err`` frame for the
request's id; the connection lives on. Anything else is a bug: it is logged
and answered as a generic error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gamebus.engines.base import Position
from gamebus.errors import (
    GamebusError,
    InvalidRequest,
    LimitExceeded,
    ProtocolError,
    UnknownTopic,
)
from gamebus.log.batch import HEADER_BYTES, read_header
from gamebus.protocol import (
    ACKS,
    PROTOCOL_VERSION,
    Frame,
    decode_start,
    encode_error,
    encode_ok,
    opt_int,
    opt_str,
    req_bytes,
    req_int,
    req_list,
    req_str,
)
from gamebus.server.auth import Action, Principal
from gamebus.server.connection import Connection
from gamebus.server.subscriptions import Subscriber

if TYPE_CHECKING:
    from gamebus.server.broker import Broker

__all__ = ["Dispatcher"]

log = logging.getLogger("gamebus.handlers")

Handler = Callable[[Connection, Frame], None]


class Dispatcher:
    def __init__(self, broker: Broker) -> None:
        self.b = broker
        self.handlers: dict[str, Handler] = {
            "produce": self.produce,
            "subscribe": self.subscribe,
            "credit": self.credit,
            "unsubscribe": self.unsubscribe,
            "fetch": self.fetch,
            "commit": self.commit,
            "committed": self.committed,
            "join": self.join,
            "heartbeat": self.heartbeat,
            "sync": self.heartbeat,
            "leave": self.leave,
            "metadata": self.metadata,
            "create_topic": self.create_topic,
            "ping": self.ping,
        }

    def __call__(self, conn: Connection, frame: Frame) -> None:
        if conn.principal is None:
            self.hello(conn, frame)
            return
        handler = self.handlers.get(frame.op)
        try:
            if handler is None:
                raise InvalidRequest("op", f"unknown request {frame.op!r}")
            handler(conn, frame)
        except GamebusError as exc:
            self.b.metrics.errors.labels(str(exc.code)).inc()
            conn.send(encode_error(frame.id, exc))
        except Exception:
            log.exception("handler %s failed", frame.op)
            conn.send(encode_error(frame.id, GamebusError("internal broker error")))

    # -- session ---------------------------------------------------------------

    def hello(self, conn: Connection, frame: Frame) -> None:
        if frame.op != "hello":
            conn.fail(ProtocolError(f"expected hello first, got {frame.op!r}"))
            return
        version = frame.body.get("version")
        if version != PROTOCOL_VERSION:
            conn.fail(ProtocolError(f"unsupported protocol version {version!r}; broker speaks {PROTOCOL_VERSION}"))
            return
        token = frame.body.get("token")
        try:
            conn.principal = self.b.auth.authenticate(token if isinstance(token, str) else None)
        except GamebusError as exc:
            conn.send(encode_error(frame.id, exc))
            conn.close_after_flush()
            return
        limits = self.b.config.limits
        conn.send(
            encode_ok(
                frame.id,
                {
                    "version": PROTOCOL_VERSION,
                    "broker": "gamebus",
                    "principal": conn.principal.name,
                    "max_frame_bytes": limits.max_frame_bytes,
                    "max_records_per_batch": limits.max_records_per_batch,
                },
            )
        )

    def _allow(self, conn: Connection, action: Action, topic: str) -> None:
        principal: Principal | None = conn.principal
        assert principal is not None
        principal.require(action, topic)

    def ping(self, conn: Connection, frame: Frame) -> None:
        conn.send(encode_ok(frame.id))

    # -- producing -------------------------------------------------------------

    def produce(self, conn: Connection, frame: Frame) -> None:
        t0 = time.perf_counter()
        body = frame.body
        topic = req_str(body, "topic")
        self._allow(conn, "produce", topic)
        acks = body.get("acks", "memory")
        if acks not in ACKS:
            raise InvalidRequest("acks", "expected none, memory or durable")
        records = req_bytes(body, "records")
        count = req_int(body, "count", min_value=1)
        limit = self.b.config.limits.max_records_per_batch
        if count > limit:
            raise LimitExceeded("records per batch", count, limit)
        pstate = self.b.partition_for_produce(topic, body)
        producer_id = opt_int(body, "producer_id", -1, min_value=-1)
        sequence = opt_int(body, "sequence", -1, min_value=-1)
        first_ts = opt_int(body, "first_ts", 0)
        max_ts = opt_int(body, "max_ts", first_ts)
        result = pstate.append(
            records,
            count=count,
            first_ts=first_ts,
            max_ts=max_ts,
            producer_id=producer_id,
            sequence=sequence,
        )
        m = self.b.metrics
        if result.duplicate:
            m.duplicates.inc()
        else:
            self.b.count_in(topic, count, len(records))
            flusher = self.b.flusher
            flusher.mark(pstate, len(records) + HEADER_BYTES)
            self.b.hub.on_append(pstate, result.base_offset, result.batch, result.next_offset)
            if flusher.over_limit and conn.pause_reading():
                # Write-behind is behind: stop reading this producer until it catches up.
                flusher.block_until_flushed(conn.resume_reading)
        reply = {"base_offset": result.base_offset, "epoch": result.epoch, "duplicate": result.duplicate}
        if acks == "durable":
            rid = frame.id

            def released(error: GamebusError | None) -> None:
                if error is not None:
                    conn.send(encode_error(rid, error))
                else:
                    m.produce_latency.labels("durable").observe(time.perf_counter() - t0)
                    conn.send(encode_ok(rid, reply))

            self.b.flusher.wait_durable(pstate, result.next_offset, released)
        elif acks == "memory":
            conn.send(encode_ok(frame.id, reply))
            m.produce_latency.labels("memory").observe(time.perf_counter() - t0)

    # -- consuming -------------------------------------------------------------

    def subscribe(self, conn: Connection, frame: Frame) -> None:
        body = frame.body
        topic = req_str(body, "topic")
        self._allow(conn, "consume", topic)
        partition = req_int(body, "partition")
        sid = req_int(body, "sub", min_value=1)
        start = decode_start(body.get("start", "latest"))
        limits = self.b.config.limits
        credit = min(req_int(body, "credit", min_value=1), limits.max_credit_bytes)
        if sid in conn.subscriptions:
            raise InvalidRequest("sub", f"subscription {sid} already exists on this connection")
        if len(conn.subscriptions) >= limits.max_subscriptions_per_connection:
            raise LimitExceeded(
                "subscriptions per connection",
                len(conn.subscriptions) + 1,
                limits.max_subscriptions_per_connection,
            )
        pstate = self.b.partition(topic, partition)
        offset = pstate.resolve_start(start)
        sub = Subscriber(conn, sid, pstate, offset, credit)
        conn.subscriptions[sid] = sub
        pstate.subscribers[(conn.id, sid)] = sub
        conn.send(encode_ok(frame.id, {"epoch": pstate.epoch, "offset": offset}))
        if offset < pstate.log_end:
            self.b.hub.schedule(sub)

    def credit(self, conn: Connection, frame: Frame) -> None:
        sid = req_int(frame.body, "sub", min_value=1)
        nbytes = req_int(frame.body, "bytes", min_value=1)
        sub = conn.subscriptions.get(sid)
        if sub is not None:  # credit for a finished subscription is harmless
            self.b.hub.add_credit(sub, nbytes, max_credit=self.b.config.limits.max_credit_bytes)

    def unsubscribe(self, conn: Connection, frame: Frame) -> None:
        sid = req_int(frame.body, "sub", min_value=1)
        sub = conn.subscriptions.pop(sid, None)
        if sub is not None:
            sub.pstate.subscribers.pop((conn.id, sid), None)
        if frame.id:
            conn.send(encode_ok(frame.id))

    def fetch(self, conn: Connection, frame: Frame) -> None:
        body = frame.body
        topic = req_str(body, "topic")
        self._allow(conn, "consume", topic)
        pstate = self.b.partition(topic, req_int(body, "partition"))
        offset = req_int(body, "offset")
        max_bytes = min(opt_int(body, "max_bytes", 1 << 20, min_value=1), self.b.max_fetch_bytes)
        batches = pstate.read(offset, max_bytes=max_bytes)  # OffsetOutOfRange outside the log
        if batches:
            events = read_header(batches[-1]).next_offset - max(offset, read_header(batches[0]).base_offset)
            conn.count_out(topic, events, sum(len(b) for b in batches))
        conn.send(encode_ok(frame.id, {"epoch": pstate.epoch, "batches": batches}))

    # -- groups and offsets ----------------------------------------------------

    def _run(self, conn: Connection, frame: Frame, work: Any) -> None:
        """Answer ``frame`` when the coroutine ``work`` finishes."""

        async def runner() -> None:
            try:
                conn.send(encode_ok(frame.id, await work))
            except GamebusError as exc:
                conn.send(encode_error(frame.id, exc))
            except Exception:
                log.exception("request %s failed", frame.op)
                conn.send(encode_error(frame.id, GamebusError("internal broker error")))

        self.b.spawn(runner())

    def commit(self, conn: Connection, frame: Frame) -> None:
        body = frame.body
        group = req_str(body, "group")
        offsets: dict[tuple[str, int], Position] = {}
        for item in req_list(body, "offsets"):
            if (
                type(item) is not list
                or len(item) != 4
                or type(item[0]) is not str
                or not all(type(v) is int and v >= 0 for v in item[1:])
            ):
                raise InvalidRequest("offsets", "expected [[topic, partition, epoch, offset], ...]")
            self._allow(conn, "consume", item[0])
            offsets[(item[0], item[1])] = Position(item[2], item[3])

        async def work() -> dict[str, Any]:
            await asyncio.to_thread(self.b.offsets.commit, group, offsets)
            return {}

        self._run(conn, frame, work())

    def committed(self, conn: Connection, frame: Frame) -> None:
        body = frame.body
        group = req_str(body, "group")
        topic = req_str(body, "topic")
        self._allow(conn, "consume", topic)
        pos = self.b.offsets.get(group, topic, req_int(body, "partition"))
        conn.send(encode_ok(frame.id, {"position": None if pos is None else [pos.epoch, pos.offset]}))

    def join(self, conn: Connection, frame: Frame) -> None:
        body = frame.body
        group = req_str(body, "group")
        topics = [t for t in req_list(body, "topics", max_items=100) if isinstance(t, str)]
        for topic in topics:
            self._allow(conn, "consume", topic)
            self.b.partitions_of(topic)  # UnknownTopic now rather than an empty share
        timeout = opt_int(body, "session_timeout_ms", self.b.config.group_session_timeout_ms, min_value=100)
        g, member = self.b.groups.join(
            group,
            topics,
            member=opt_str(body, "member"),
            session_timeout_ms=timeout,
            now_ms=self.b.clock_ms(),
            owner=conn.id,
        )
        conn.send(encode_ok(frame.id, self.b.group_view(g, member)))
        self.b.notify_group(g, skip=member)

    def heartbeat(self, conn: Connection, frame: Frame) -> None:
        group = req_str(frame.body, "group")
        member = req_str(frame.body, "member")
        g = self.b.groups.heartbeat(group, member, now_ms=self.b.clock_ms())
        conn.send(encode_ok(frame.id, self.b.group_view(g, member)))

    def leave(self, conn: Connection, frame: Frame) -> None:
        g = self.b.groups.leave(req_str(frame.body, "group"), req_str(frame.body, "member"))
        conn.send(encode_ok(frame.id))
        if g is not None:
            self.b.notify_group(g)

    # -- admin -----------------------------------------------------------------

    def metadata(self, conn: Connection, frame: Frame) -> None:
        topic = opt_str(frame.body, "topic")
        principal = conn.principal
        assert principal is not None
        if topic is not None:
            if not (principal.allowed("consume", topic) or principal.allowed("produce", topic)):
                self._allow(conn, "consume", topic)
            if topic not in self.b.store.topics():
                raise UnknownTopic(topic)
        infos = self.b.partition_infos(topic)
        visible = [
            i for i in infos
            if principal.allowed("consume", i["topic"]) or principal.allowed("produce", i["topic"])
        ]  # fmt: skip
        conn.send(encode_ok(frame.id, {"partitions": visible}))

    def create_topic(self, conn: Connection, frame: Frame) -> None:
        body = frame.body
        topic = req_str(body, "topic", max_len=200)
        self._allow(conn, "admin", topic)
        partitions = req_int(body, "partitions", min_value=1)
        config = body.get("config") or {}
        if not isinstance(config, dict):
            raise InvalidRequest("config", "expected a map")
        self.b.create_topic(topic, partitions=partitions, config=config)
        conn.send(encode_ok(frame.id, {"topic": topic, "partitions": partitions}))

