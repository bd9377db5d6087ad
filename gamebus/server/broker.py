"""The broker: wires storage, connections, fan-out, groups and the flusher.

:class:`Broker` owns every piece of broker state and the asyncio servers;
:mod:`gamebus.server.handlers` holds the request logic and
:mod:`gamebus.server.subscriptions`, :mod:`~gamebus.server.flusher` and
:mod:`~gamebus.server.groups` the parts with their own rules. ``run_broker``
is what ``gamebus broker`` calls: serve until SIGTERM/SIGINT, then stop
accepting, flush and fsync everything, and close the segments cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from aiohttp import web

from gamebus.errors import ConfigError, InvalidRequest, LimitExceeded, UnknownPartition
from gamebus.events import DEFAULT_TOPICS
from gamebus.partitioning import partition_for_key
from gamebus.server.admin import build_admin_app
from gamebus.server.auth import Authorizer, check_bind
from gamebus.server.config import BrokerConfig
from gamebus.server.connection import Connection
from gamebus.server.flusher import Flusher
from gamebus.server.groups import Group, GroupCoordinator
from gamebus.server.handlers import Dispatcher
from gamebus.server.metrics import BrokerMetrics
from gamebus.server.offsets import OffsetStore
from gamebus.server.partitions import PartitionState
from gamebus.server.store import Store
from gamebus.server.subscriptions import SubscriptionHub

__all__ = ["Broker", "run_broker"]

log = logging.getLogger("gamebus.broker")


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.metrics = BrokerMetrics()
        self.auth = Authorizer(config)
        self.store = Store.open(config.data_dir, fsync=config.fsync,
                                memory_window_bytes=config.memory_window_bytes)
        self.offsets = OffsetStore(config.data_dir)
        self.hub = SubscriptionHub()
        self.flusher = Flusher(
            self.metrics,
            linger_ms=config.flush_interval_ms,
            flush_bytes=config.flush_bytes,
            idle_interval_ms=config.flush_idle_ms,
            max_unflushed_bytes=config.limits.max_unflushed_bytes,
        )
        self.groups = GroupCoordinator(self.partitions_of)
        self.dispatch = Dispatcher(self)
        self.connections: dict[int, Connection] = {}
        self._next_conn = 1
        self._server: asyncio.Server | None = None
        self._admin: web.AppRunner | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.max_fetch_bytes = min(config.limits.max_frame_bytes // 2, 4 << 20)
        self._in_counters: dict[str, tuple[Any, Any]] = {}
        self._out_counters: dict[str, tuple[Any, Any]] = {}
        self.started = time.monotonic()
        for spec in DEFAULT_TOPICS:
            if spec.name not in self.store.topics():
                self.store.create_topic(
                    spec.name, partitions=spec.partitions, config={"retention_ms": spec.retention_ms}
                )
        self.metrics.add_live_gauges(self._gauges())

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        check_bind(self.config)
        loop = asyncio.get_running_loop()
        limits = self.config.limits
        self.flusher.start()
        self.spawn(self._expire_members())
        self.spawn(self._retention())
        self._server = await loop.create_server(
            lambda: Connection(
                conn_id=self._new_conn_id(),
                max_frame_bytes=limits.max_frame_bytes,
                max_pending_write_bytes=limits.max_pending_write_bytes,
                dispatch=self.dispatch,
                on_open=self._on_open,
                on_close=self._on_close,
                on_writable=self._on_writable,
                count_out=self.count_out,
            ),
            self.config.host,
            self.config.port,
            reuse_address=True,
            backlog=512,
        )
        runner = web.AppRunner(build_admin_app(self), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.config.admin_host, self.config.admin_port).start()
        self._admin = runner
        log.info(
            "broker listening on %s:%d (admin %s:%d), data in %s, %s",
            self.config.host, self.config.port, self.config.admin_host, self.config.admin_port,
            self.config.data_dir, "auth on" if self.config.auth_enabled else "open mode (loopback only)",
        )  # fmt: skip

    async def stop(self) -> None:
        """Graceful: stop accepting, drop clients, flush + fsync, close segments."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.pause_reading()  # no new requests; answers still go out
        await self.flusher.stop()  # last flush + fsync: durable acks are released
        for conn in list(self.connections.values()):
            conn.close_after_flush()
        await asyncio.sleep(0.05)  # let the transports hand their last bytes to the kernel
        for task in list(self._tasks):
            task.cancel()
        if self._admin is not None:
            await self._admin.cleanup()
        self.store.close()
        self.offsets.close()
        log.info("broker stopped cleanly")

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def clock_ms(self) -> float:
        return time.monotonic() * 1000

    # -- connections ----------------------------------------------------------

    def _new_conn_id(self) -> int:
        cid = self._next_conn
        self._next_conn += 1
        return cid

    def _on_open(self, conn: Connection) -> bool:
        limit = self.config.limits.max_connections
        if len(self.connections) >= limit:
            conn.fail(LimitExceeded("connections", len(self.connections) + 1, limit))
            return False
        self.connections[conn.id] = conn
        return True

    def _on_close(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        for sid, sub in conn.subscriptions.items():
            sub.pstate.subscribers.pop((conn.id, sid), None)
        conn.subscriptions.clear()
        for group in self.groups.drop_owner(conn.id):
            self.notify_group(group)

    def _on_writable(self, conn: Connection) -> None:
        for sub in conn.subscriptions.values():
            if sub.credit > 0 and sub.next_offset < sub.pstate.log_end:
                self.hub.schedule(sub)

    # -- topics and partitions -----------------------------------------------

    def partitions_of(self, topic: str) -> int:
        return len(self.store.topic(topic))

    def partition(self, topic: str, index: int) -> PartitionState:
        parts = self.store.topic(topic)
        if not 0 <= index < len(parts):
            raise UnknownPartition(topic, index)
        return parts[index]

    def partition_for_produce(self, topic: str, body: dict[str, Any]) -> PartitionState:
        parts = self.store.get(topic)
        if parts is None:
            if not self.config.auto_create:
                parts = self.store.topic(topic)  # raises UnknownTopic
            else:
                self.create_topic(topic, partitions=self.config.default_partitions, config={})
                parts = self.store.topic(topic)
        partition = body.get("partition")
        if partition is None:
            key = body.get("key")
            if not isinstance(key, str) or not key:
                raise InvalidRequest("partition", "give a partition number or a key")
            partition = partition_for_key(key, len(parts))
        if type(partition) is not int or not 0 <= partition < len(parts):
            raise UnknownPartition(topic, partition if type(partition) is int else -1)
        return parts[partition]

    def create_topic(self, topic: str, *, partitions: int, config: dict[str, Any]) -> None:
        if topic.startswith("__") or "/" in topic or topic in (".", ".."):
            raise InvalidRequest("topic", "names must not start with '__' or contain '/'")
        self.store.create_topic(topic, partitions=partitions, config=config)
        for group in self.groups.topic_changed(topic):
            self.notify_group(group)

    def partition_infos(self, topic: str | None = None) -> list[dict[str, Any]]:
        names = [topic] if topic is not None else self.store.topics()
        return [p.info() for name in names for p in self.store.topic(name)]

    # -- groups ------------------------------------------------------------------

    def group_view(self, group: Group, member: str) -> dict[str, Any]:
        return {
            "group": group.name,
            "member": member,
            "generation": group.generation,
            "assignment": [list(tp) for tp in group.assignment.get(member, [])],
            "members": len(group.members),
        }

    def notify_group(self, group: Group, *, skip: str | None = None) -> None:
        """Tell every member of ``group`` its new share now, not at its next heartbeat."""
        from gamebus.protocol import encode_frame

        for member in group.members.values():
            if member.member == skip:
                continue
            conn = self.connections.get(member.owner)
            if conn is not None:
                conn.send(encode_frame("group", 0, self.group_view(group, member.member)))

    async def _expire_members(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            for group in self.groups.expire(now_ms=self.clock_ms()):
                self.notify_group(group)

    async def _retention(self) -> None:
        """Delete whole old segments past each topic's retention, every few seconds."""
        while True:
            await asyncio.sleep(self.config.retention_check_ms / 1000)
            now = int(time.time() * 1000)
            for pstate in self.store.all_partitions():
                try:
                    pstate.log.apply_retention(now)
                except Exception:  # never let housekeeping kill the broker
                    log.exception("retention of %s/%d failed", pstate.topic, pstate.index)

    # -- metrics -------------------------------------------------------------------

    def count_in(self, topic: str, events: int, nbytes: int) -> None:
        pair = self._in_counters.get(topic)
        if pair is None:
            pair = self._in_counters[topic] = (
                self.metrics.events_in.labels(topic),
                self.metrics.bytes_in.labels(topic),
            )
        pair[0].inc(events)
        pair[1].inc(nbytes)

    def count_out(self, topic: str, events: int, nbytes: int) -> None:
        pair = self._out_counters.get(topic)
        if pair is None:
            pair = self._out_counters[topic] = (
                self.metrics.events_out.labels(topic),
                self.metrics.bytes_out.labels(topic),
            )
        pair[0].inc(events)
        pair[1].inc(nbytes)

    def _gauges(self) -> dict[str, tuple[str, list[str], Any]]:
        def pending() -> Iterable[tuple[list[str], float]]:
            return [([], float(sum(p.log.pending_bytes for p in self.store.all_partitions())))]

        def subscribers() -> Iterable[tuple[list[str], float]]:
            for p in self.store.all_partitions():
                for sub in p.subscribers.values():
                    yield [p.topic, str(p.index), str(sub.conn.id), str(sub.sid)], float(sub.credit)

        def lag() -> Iterable[tuple[list[str], float]]:
            for p in self.store.all_partitions():
                for sub in p.subscribers.values():
                    yield [p.topic, str(p.index), str(sub.conn.id), str(sub.sid)], float(sub.lag)

        def window() -> Iterable[tuple[list[str], float]]:
            # Per topic: the bounded part of the broker's memory, so that RSS
            # growth while windows fill can be told from a leak.
            for topic in self.store.topics():
                yield [topic], float(sum(p.log.memory_bytes for p in self.store.topic(topic)))

        labels = ["topic", "partition", "connection", "sub"]
        return {
            "gamebus_connections": ("Open client connections", [], lambda: [([], len(self.connections))]),
            "gamebus_memory_window_bytes": ("Bytes held in the partitions' memory windows", ["topic"], window),
            "gamebus_pending_write_behind_bytes": ("Bytes appended, not yet written to segments", [], pending),
            "gamebus_subscriber_credit_bytes": ("Credit left per subscription", labels, subscribers),
            "gamebus_subscriber_lag_records": ("Records behind the log end per subscription", labels, lag),
        }


async def run_broker(config: BrokerConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    if config.fsync not in ("always", "interval", "never"):
        raise ConfigError(f"bad fsync policy {config.fsync!r}")
    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await broker.start()
        await stop.wait()
    finally:
        await broker.stop()
