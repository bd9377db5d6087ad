"""The Bus interface on NATS JetStream (see docs/scale-out.md for the mapping).

Produce path: one JetStream message per record on the partition's subject,
``Nats-Msg-Id`` = producer id : partition : sequence, published with
``publish_async`` so a batch is pipelined, then awaited. Records that got no
pub ack (timeout, no responders while a stream leader is being elected) are
re-sent with the *same* ids until ``produce_timeout_ms``; JetStream drops the
ones it already stored and acks them with their original sequence, so a
retry never duplicates. Past the deadline the produce raises
:class:`~gamebus.errors.EngineUnavailable` (retriable): never a silent loss.

Acknowledged produces to one partition are serialised through a per-partition
lock, so a later batch is never in flight while an earlier one is being
retried: that keeps a match's events in order through a failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext, api

from gamebus.engines.base import (
    Acks,
    Batch,
    GroupMembership,
    PartitionInfo,
    Position,
    ProduceResult,
    Start,
    Subscription,
)
from gamebus.engines.jetstream import naming
from gamebus.engines.jetstream.reader import PartitionReader, ReaderBroken
from gamebus.engines.jetstream.translate import is_retriable, to_gamebus
from gamebus.errors import (
    ConfigError,
    EngineUnavailable,
    InvalidRequest,
    OffsetOutOfRange,
    TopicExists,
    UnknownPartition,
    UnknownTopic,
)
from gamebus.partitioning import partition_for_key

__all__ = ["JetStreamBus", "JetStreamOptions", "TopicState", "connect_jetstream", "parse_url"]

log = logging.getLogger(__name__)

_STREAM_NOT_FOUND = 10059
_STREAM_NAME_IN_USE = 10058


@dataclass(frozen=True, slots=True)
class JetStreamOptions:
    """Engine knobs; every one is a keyword of :func:`connect_jetstream`."""

    produce_timeout_ms: int = 15_000  # a leader election takes seconds; then give up loudly
    ack_timeout_ms: int = 2_000  # one publish attempt
    request_timeout_ms: int = 5_000  # JetStream API calls
    connect_timeout_ms: int = 2_000
    heartbeat_ms: int = 1_000  # consumer idle heartbeat; silence x3 = recreate
    reconnect_wait_ms: int = 250
    group_replicas: int | None = None  # None: 3 if the cluster allows it, else 1
    token: str | None = None


@dataclass(frozen=True, slots=True)
class TopicState:
    """What a client caches about a topic: its stream, partition count and epoch."""

    topic: str
    stream: str
    partitions: int
    epoch: int


def parse_url(url: str) -> list[str]:
    """``nats://h1:p1,h2:p2`` (or ``nats://h1:p1,nats://h2:p2``) -> server URLs."""
    if not url.startswith("nats://"):
        raise ConfigError(f"not a nats:// URL: {url!r}")
    servers = []
    for part in url[len("nats://") :].split(","):
        part = part.strip().removeprefix("nats://")
        if not part:
            continue
        servers.append(f"nats://{part}")
    if not servers:
        raise ConfigError(f"no servers in {url!r}")
    return servers


def _bounds(info: api.StreamInfo) -> tuple[int, int]:
    """``(log_start, log_end)``: first offset still stored, next offset to be written."""
    state = info.state
    if not state.messages:
        return state.last_seq + 1, state.last_seq + 1
    return state.first_seq, state.last_seq + 1


def _storage_name(storage: object) -> str:
    """nats-py hands back either a StorageType or the raw string."""
    return str(getattr(storage, "value", storage) or "file")


class JetStreamBus:
    """A :class:`~gamebus.engines.base.Bus` over one NATS connection."""

    def __init__(self, url: str, nc: NATS, options: JetStreamOptions) -> None:
        self.url = url
        self.options = options
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=options.request_timeout_ms / 1000)
        self._topics: dict[str, TopicState] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._anon_producer = f"a{uuid.uuid4().hex[:16]}"
        self._anon_sequences: dict[tuple[str, int], int] = {}
        self._closeables: set[Any] = set()
        self.reordered = 0  # batches whose acks came back out of order after a retry
        self.groups_ready = False  # GAMEBUS_GROUPS exists (checked once per connection)

    # -- topics -----------------------------------------------------------

    async def _stream_info(self, topic: str, *, subjects: bool = False) -> api.StreamInfo:
        """Fresh STREAM.INFO for ``topic``; refreshes the cached partitions and epoch."""
        stream = naming.stream_name(topic)
        try:
            info = await self.js.stream_info(stream, subjects_filter=">" if subjects else None)
        except nats.js.errors.NotFoundError as e:
            self._topics.pop(topic, None)
            raise UnknownTopic(topic) from e
        except Exception as e:
            raise to_gamebus(e, f"stream info {stream}") from e
        parsed = naming.parse_description(info.config.description)
        if parsed is None or parsed[0] != topic:
            raise UnknownTopic(topic)
        self._topics[topic] = TopicState(
            topic, stream, parsed[1], naming.epoch_from_created(info.created)
        )
        return info

    async def topic_state(self, topic: str) -> TopicState:
        state = self._topics.get(topic)
        if state is None:
            await self._stream_info(topic)
            state = self._topics[topic]
        return state

    async def partitions(self, topic: str) -> int:
        return (await self.topic_state(topic)).partitions

    async def partition_for(self, topic: str, key: str) -> int:
        return partition_for_key(key, await self.partitions(topic))

    async def _check_partition(self, topic: str, partition: int) -> TopicState:
        state = await self.topic_state(topic)
        if not 0 <= partition < state.partitions:
            raise UnknownPartition(topic, partition)
        return state

    async def _check_partition_patiently(self, topic: str, partition: int) -> TopicState:
        """Like :meth:`_check_partition`, but rides out an election like a publish does.

        A client that has not seen the topic yet needs one STREAM.INFO, which
        times out while the stream has no leader; a produce should wait for
        the leader (up to its deadline), not fail faster than its own publish.
        """
        if topic in self._topics:
            return await self._check_partition(topic, partition)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.produce_timeout_ms / 1000
        while True:
            try:
                return await self._check_partition(topic, partition)
            except EngineUnavailable:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.2)

    async def create_topic(
        self,
        topic: str,
        *,
        partitions: int,
        replicas: int | None = None,
        storage: str | None = None,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
        duplicate_window_ms: int | None = None,
        **config: Any,
    ) -> None:
        """Create the stream for ``topic``.

        ``replicas`` is the JetStream replication factor R (1, 3 or 5; R=3 is
        what survives losing a node), ``storage`` is ``"file"`` (default) or
        ``"memory"``. ``retention_ms``/``retention_bytes`` become the stream's
        ``max_age``/``max_bytes`` (oldest messages go first);
        ``duplicate_window_ms`` (default 2 minutes) bounds how long a retried
        produce is recognised as a duplicate.
        """
        unknown = {k: v for k, v in config.items() if v is not None}
        if unknown:
            raise ConfigError(
                f"options not supported on JetStream: {sorted(unknown)}; use replicas, storage, "
                "retention_ms, retention_bytes, duplicate_window_ms"
            )
        if partitions < 1 or partitions > 1024:
            raise InvalidRequest("partitions", f"{partitions} is not in 1..1024")
        storage = storage or "file"
        if storage not in ("file", "memory"):
            raise InvalidRequest("storage", f"{storage!r} is neither 'file' nor 'memory'")
        replicas = replicas or 1
        stream = naming.stream_name(topic)
        cfg = api.StreamConfig(
            name=stream,
            description=naming.describe_topic(topic, partitions),
            subjects=[naming.partition_subject(topic, p) for p in range(partitions)],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            storage=api.StorageType.FILE if storage == "file" else api.StorageType.MEMORY,
            num_replicas=replicas,
            duplicate_window=(duplicate_window_ms or 120_000) / 1000,
            max_age=retention_ms / 1000 if retention_ms else None,
            max_bytes=retention_bytes if retention_bytes else None,
        )
        try:
            await self.js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            pass
        except Exception as e:
            raise to_gamebus(e, f"create topic {topic}") from e
        else:
            raise TopicExists(topic)
        try:
            info = await self.js.add_stream(cfg)
        except nats.js.errors.APIError as e:
            if e.err_code == _STREAM_NAME_IN_USE:
                raise TopicExists(topic) from e
            if is_retriable(e):
                raise to_gamebus(e, f"create topic {topic}") from e
            raise ConfigError(f"JetStream refused topic {topic!r}: {e.description}") from e
        except Exception as e:
            raise to_gamebus(e, f"create topic {topic}") from e
        self._topics[topic] = TopicState(
            topic, stream, partitions, naming.epoch_from_created(info.created)
        )

    async def delete_topic(self, topic: str) -> None:
        """Delete the stream (and so every record) of ``topic``. JetStream only."""
        stream = naming.stream_name(topic)
        self._topics.pop(topic, None)
        try:
            await self.js.delete_stream(stream)
        except nats.js.errors.NotFoundError as e:
            raise UnknownTopic(topic) from e
        except Exception as e:
            raise to_gamebus(e, f"delete topic {topic}") from e

    async def _gamebus_topics(self) -> list[str]:
        topics = []
        try:
            infos = await self.js.streams_info()
        except Exception as e:
            raise to_gamebus(e, "list streams") from e
        for info in infos:
            parsed = naming.parse_description(info.config.description)
            if parsed is not None and info.config.name == naming.stream_name(parsed[0]):
                topics.append(parsed[0])
        return sorted(topics)

    async def metadata(self, topic: str | None = None) -> list[PartitionInfo]:
        """One :class:`PartitionInfo` per partition.

        Offsets are stream sequences shared by all partitions of the topic, so
        ``log_start``/``log_end`` are the stream's bounds: any offset in
        between is a valid place to start reading any partition. ``durable_end``
        equals ``log_end``: JetStream acks only what its replicas hold.
        ``extra`` has the stream name, replicas, storage, the stream leader and
        the partition's own message count.
        """
        topics = [topic] if topic is not None else await self._gamebus_topics()
        out: list[PartitionInfo] = []
        for name in topics:
            info = await self._stream_info(name, subjects=True)
            state = self._topics[name]
            start, end = _bounds(info)
            counts = info.state.subjects or {}
            leader = info.cluster.leader if info.cluster is not None else None
            for p in range(state.partitions):
                subject = naming.partition_subject(name, p)
                out.append(
                    PartitionInfo(
                        topic=name,
                        partition=p,
                        epoch=state.epoch,
                        log_start=start,
                        log_end=end,
                        durable_end=end,
                        extra={
                            "stream": state.stream,
                            "subject": subject,
                            "messages": counts.get(subject, 0),
                            "replicas": info.config.num_replicas,
                            "storage": _storage_name(info.config.storage),
                            "leader": leader,
                        },
                    )
                )
        return out

    # -- produce ----------------------------------------------------------

    def _ids(
        self, topic: str, partition: int, count: int, producer_id: int, sequence: int
    ) -> list[str]:
        if producer_id < 0 or sequence < 0:
            key = (topic, partition)
            sequence = self._anon_sequences.get(key, 0)
            self._anon_sequences[key] = sequence + 1
            pid: int | str = self._anon_producer
        else:
            pid = producer_id
        return [naming.msg_id(pid, partition, sequence, i) for i in range(count)]

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
        """Append ``records`` to one partition; see the module docstring for the retry rules.

        ``acks="durable"`` and ``acks="memory"`` both wait for JetStream's pub
        ack: the stream leader has stored the message and, for R>1, a quorum of
        replicas holds it. JetStream has no cheaper acknowledged level, and a
        "memory" produce that returns an offset must be readable at it.
        ``acks="none"`` is a core NATS publish: no ack, no retry, may be lost.
        """
        state = await self._check_partition_patiently(topic, partition)
        if acks not in ("none", "memory", "durable"):
            raise InvalidRequest("acks", f"{acks!r} is not none, memory or durable")
        if not records:
            raise InvalidRequest("records", "a produce needs at least one record")
        subject = naming.partition_subject(topic, partition)
        ids = self._ids(topic, partition, len(records), producer_id, sequence)
        lock = self._locks.setdefault((topic, partition), asyncio.Lock())
        if acks == "none":
            # Behind the lock too, so a fire-and-forget batch never overtakes an
            # acknowledged one still being retried; the lock is held only to send.
            async with lock:
                try:
                    for record, mid in zip(records, ids, strict=True):
                        await self.nc.publish(subject, record, headers={"Nats-Msg-Id": mid})
                except Exception as e:
                    raise to_gamebus(e, f"publish to {subject}") from e
            return None
        async with lock:
            seqs, duplicates = await self._publish_acked(state, subject, records, ids)
        return ProduceResult(
            topic=topic,
            partition=partition,
            epoch=state.epoch,
            base_offset=seqs[0],
            duplicate=all(duplicates),
            # Consecutive unless another partition's records landed in between.
            offsets=() if seqs[-1] - seqs[0] == len(seqs) - 1 else tuple(seqs),
        )

    async def _publish_acked(
        self, state: TopicState, subject: str, records: Sequence[bytes], ids: Sequence[str]
    ) -> tuple[list[int], list[bool]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.produce_timeout_ms / 1000
        seqs: list[int | None] = [None] * len(records)
        duplicates = [False] * len(records)
        backoff = 0.05
        last_error: BaseException | None = None
        attempts = 0
        while True:
            todo = [i for i, s in enumerate(seqs) if s is None]
            if not todo:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._raise_unavailable(state, subject, len(todo), len(records), last_error)
            attempts += 1
            futures: list[tuple[int, asyncio.Future[api.PubAck]]] = []
            try:
                for i in todo:
                    fut = await self.js.publish_async(
                        subject, records[i], headers={"Nats-Msg-Id": ids[i]}
                    )
                    futures.append((i, fut))
            except Exception as e:
                if not is_retriable(e):
                    for _, fut in futures:
                        fut.cancel()
                    raise to_gamebus(e, f"publish to {subject}") from e
                last_error = e
            if futures:
                await asyncio.wait(
                    [f for _, f in futures],
                    timeout=min(remaining, self.options.ack_timeout_ms / 1000),
                )
            for i, fut in futures:
                if not fut.done():
                    fut.cancel()
                    last_error = TimeoutError(f"no pub ack within {self.options.ack_timeout_ms} ms")
                    continue
                if fut.cancelled():
                    continue
                exc = fut.exception()
                if exc is None:
                    ack = fut.result()
                    seqs[i] = ack.seq
                    duplicates[i] = bool(ack.duplicate)
                elif is_retriable(exc):
                    last_error = exc
                else:
                    raise to_gamebus(exc, f"publish to {subject}") from exc
            if any(s is None for s in seqs):
                await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
                backoff = min(backoff * 2, 0.5)
        done = [s for s in seqs if s is not None]
        if attempts > 1 and any(b <= a for a, b in itertools.pairwise(done)):
            # A record lost in flight while a later one landed: JetStream cannot
            # undo the store, so say it loudly (docs/scale-out.md, "Ordering").
            self.reordered += 1
            log.warning("records to %s were stored out of order after a retry: %s", subject, done)
        return done, duplicates

    async def _raise_unavailable(
        self,
        state: TopicState,
        subject: str,
        missing: int,
        total: int,
        last_error: BaseException | None,
    ) -> None:
        # A deleted stream also answers "no responders": tell the two apart.
        # Bounded too: without quorum the STREAM.INFO would hang for its own timeout.
        with contextlib.suppress(EngineUnavailable, asyncio.TimeoutError):
            await asyncio.wait_for(self._stream_info(state.topic), timeout=0.5)
        raise EngineUnavailable(
            f"{missing} of {total} records to {subject} not acknowledged within "
            f"{self.options.produce_timeout_ms} ms (no JetStream quorum or stream leader?): "
            f"{last_error!r}"
        )

    # -- consume ----------------------------------------------------------

    async def subscribe(
        self, topic: str, partition: int, start: Start = "latest", *, credit_bytes: int = 1 << 20
    ) -> Subscription:
        from gamebus.engines.jetstream.subscription import JetStreamSubscription

        await self._check_partition(topic, partition)
        sub = JetStreamSubscription(self, topic, partition, start, credit_bytes=credit_bytes)
        self._closeables.add(sub)
        return sub

    async def fetch(
        self, topic: str, partition: int, offset: int, *, max_bytes: int = 1 << 20
    ) -> list[Batch]:
        """History of one partition from ``offset``, up to ``max_bytes`` (at least one record)."""
        from gamebus.engines.jetstream.subscription import to_batches

        await self._check_partition(topic, partition)
        info = await self._stream_info(topic)
        state = self._topics[topic]
        start, end = _bounds(info)
        if offset < start or offset > end:
            raise OffsetOutOfRange(offset, start, end)
        if offset == end:
            return []
        reader = self.reader(state.stream, naming.partition_subject(topic, partition), offset)
        taken: list[tuple[naming.AckInfo, bytes]] = []
        try:
            await reader.open()
            size = 0
            pending = reader.num_pending
            while pending > 0 and size < max_bytes:
                got = await reader.take(max_records=pending, max_bytes=max_bytes - size)
                taken.extend(got)
                size += sum(len(d) for _, d in got)
                pending = got[-1][0].pending
        except ReaderBroken as e:
            if not taken:
                raise EngineUnavailable(f"fetch {topic}/{partition}: {e}") from e
        except Exception as e:
            raise to_gamebus(e, f"fetch {topic}/{partition}") from e
        finally:
            await reader.close()
        return to_batches(topic, partition, state.epoch, taken)

    def reader(self, stream: str, subject: str, start_seq: int) -> PartitionReader:
        return PartitionReader(
            self.nc,
            self.js,
            stream,
            subject,
            start_seq,
            heartbeat_s=self.options.heartbeat_ms / 1000,
            request_timeout_s=self.options.request_timeout_ms / 1000,
        )

    # -- groups -----------------------------------------------------------

    async def join_group(
        self,
        group: str,
        topics: list[str],
        *,
        member: str | None = None,
        session_timeout_ms: int = 10_000,
    ) -> GroupMembership:
        from gamebus.engines.jetstream.groups import join

        membership = await join(
            self, group, topics, member=member, session_timeout_ms=session_timeout_ms
        )
        self._closeables.add(membership)
        return membership

    async def commit(self, group: str, offsets: dict[tuple[str, int], Position]) -> None:
        from gamebus.engines.jetstream.groups import commit

        await commit(self, group, offsets)

    async def committed(self, group: str, topic: str, partition: int) -> Position | None:
        from gamebus.engines.jetstream.groups import committed

        return await committed(self, group, topic, partition)

    # -- lifecycle --------------------------------------------------------

    def forget(self, closeable: Any) -> None:
        self._closeables.discard(closeable)

    async def close(self) -> None:
        for item in list(self._closeables):
            with contextlib.suppress(Exception):
                if hasattr(item, "leave"):
                    await item.stop()
                else:
                    await item.close()
        self._closeables.clear()
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def __aenter__(self) -> JetStreamBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _quiet(exc: Exception) -> None:
    """nats-py prints every reconnect error by default; a failover is expected here."""
    log.debug("nats: %r", exc)


async def connect_jetstream(url: str, **opts: Any) -> JetStreamBus:
    """Connect to the NATS servers in ``url`` (``nats://h1:p1,h2:p2``).

    Keyword options are the fields of :class:`JetStreamOptions`; ``token`` is
    the NATS auth token. The client reconnects forever across the listed
    servers (and any the cluster advertises); each operation has its own
    deadline instead.
    """
    names = {f.name for f in fields(JetStreamOptions)}
    unknown = {k for k, v in opts.items() if k not in names and v is not None}
    if unknown:
        raise ConfigError(f"unknown JetStream options {sorted(unknown)}; known: {sorted(names)}")
    options = JetStreamOptions(**{k: v for k, v in opts.items() if k in names})
    servers = parse_url(url)
    started = time.monotonic()
    try:
        # Reconnects are unbounded once connected; the first connect is not.
        nc = await asyncio.wait_for(
            nats.connect(
                servers=servers,
                name="gamebus",
                token=options.token,
                connect_timeout=options.connect_timeout_ms / 1000,
                reconnect_time_wait=options.reconnect_wait_ms / 1000,
                max_reconnect_attempts=-1,
                error_cb=_quiet,
            ),
            timeout=max(5.0, 2 * len(servers) * options.connect_timeout_ms / 1000),
        )
    except Exception as e:
        raise EngineUnavailable(
            f"cannot reach NATS at {url} after {time.monotonic() - started:.1f} s: {e!r}"
        ) from e
    return JetStreamBus(url, nc, options)
