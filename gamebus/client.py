"""The gamebus SDK: :class:`Producer` and :class:`Consumer` over any :class:`Bus`.

Publish from a game server::

    import gamebus

    async with gamebus.Producer("gamebus://127.0.0.1:7400") as producer:
        producer.position(match="m1", player="p1", x=1.0, y=2.0, z=0.0, yaw=90.0, pitch=0.0)
        await producer.match_event("kill", match="m1", player="p1", target="p2",
                                   weapon="rifle", headshot=True)

Read::

    async with gamebus.Consumer("gamebus://127.0.0.1:7400", topics=["game.events"],
                                group="stats", start="earliest") as consumer:
        async for message in consumer:
            event = message.event()

Both take a URL (they open and own a bus) or an already connected
:class:`~gamebus.engines.base.Bus` (shared; they do not close it).

**Batching.** The producer groups records per partition and sends a batch
when it reaches ``batch_bytes`` or when ``linger_ms`` has passed since its
first record. A batch is one msgpack array of already encoded events: the
broker stores it whole, so the cost per event is an append to a list.

**Ordering and retries.** Batches of a partition leave in order, at most
:data:`MAX_IN_FLIGHT_PER_PARTITION` at a time, each numbered with the
producer id and a per-partition sequence. After a reconnect the bus re-sends
them in order and the broker drops the ones it already has, so a retry
neither duplicates nor reorders. Records of one key (match) always go to
one partition, so per-key order holds.

**The buffer policy** (``max_buffer_bytes`` counts records buffered and in
flight). :meth:`Producer.send` waits for room: backpressure for code that
can await. :meth:`Producer.send_nowait` never blocks the game loop; when the
buffer is full a *position* (type ``pos``, or anything sent to
``game.positions``) replaces the oldest unsent position of its partition,
or is dropped if none is waiting, and ``producer.dropped_positions`` counts
it; positions are worth nothing once a newer one exists. Anything else is
never dropped: ``send_nowait`` raises :class:`~gamebus.errors.LimitExceeded`
and the caller decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from crc32c import crc32c

from gamebus.engines import connect as _connect_engine
from gamebus.engines.base import Acks, Batch, Bus, GroupMembership, Position, ProduceResult, Start
from gamebus.errors import (
    ConfigError,
    EpochMismatch,
    GamebusError,
    InvalidEvent,
    LimitExceeded,
    OffsetOutOfRange,
    TopicExists,
    UnknownTopic,
)
from gamebus.events import (
    DEFAULT_ACKS,
    EVENTS_TOPIC,
    MATCH_EVENT_TYPES,
    POSITIONS_TOPIC,
    decode_event,
    encode_event,
    validate_event,
)
from gamebus.events import match_event as _build_match_event
from gamebus.events import position as _build_position

__all__ = [
    "MAX_IN_FLIGHT_PER_PARTITION",
    "Consumer",
    "Message",
    "Producer",
    "connect",
]

log = logging.getLogger("gamebus.client")

#: Batches of one partition awaiting an answer. The broker remembers the last
#: five sequences per producer for deduplication, so more in flight could
#: make a retry look like a gap.
MAX_IN_FLIGHT_PER_PARTITION: Final = 5
_MAX_RECORDS_PER_BATCH: Final = 20_000
#: Under the broker's default 1 MiB batch limit, with room for msgpack framing.
_MAX_BATCH_BYTES: Final = 1_000_000


async def connect(url: str, token: str | None = None, **options: Any) -> Bus:
    """Open a :class:`Bus` for ``url`` (``gamebus://`` or ``nats://``)."""
    if token is not None:
        options["token"] = token
    return await _connect_engine(url, **options)


def _new_producer_id() -> int:
    # From the OS, not the ``random`` module: games and simulators seed that
    # (the same seed in every game-server process), and two producers with
    # one id would have each other's batches refused as out of sequence.
    return secrets.randbits(62)


class _Acc:
    """Records accumulating for the next batch of one partition."""

    __slots__ = ("acks", "cap", "fast", "first_ts", "max_ts", "nbytes", "records", "timer", "waiters")

    def __init__(self, acks: Acks, cap: int, fast: bool) -> None:
        self.acks: Acks = acks
        #: Buffer bytes reserved for this batch; appends within it need no
        #: global bookkeeping (the send_nowait fast path).
        self.cap = cap
        #: Takes fast-path appends (the lane's default ack level).
        self.fast = fast
        self.records: list[bytes] = []
        self.nbytes = 0
        self.waiters: list[tuple[int, asyncio.Future[ProduceResult]]] | None = None
        self.first_ts = 0
        self.max_ts = 0
        self.timer: asyncio.Handle | None = None


class _Lane:
    """One (topic, partition): its sequence, its batches queued and in flight."""

    __slots__ = (
        "acc", "default_acks", "inflight", "limit", "partition", "producer_id", "queue", "seq",
        "topic",
    )  # fmt: skip

    def __init__(self, topic: str, partition: int, producer_id: int) -> None:
        self.topic, self.partition = topic, partition
        self.default_acks: Acks = "memory"
        #: Seal the open batch at this size: ``batch_bytes`` normally, up to
        #: the broker's batch limit while the lane has no free in-flight slot
        #: (batches grow instead of queueing: adaptive batching under load).
        self.limit = 0
        self.producer_id = producer_id
        self.seq = 0
        self.inflight = 0
        self.acc: _Acc | None = None
        self.queue: deque[_Acc] = deque()


class Producer:
    """Batched, ordered, idempotent publishing; see the module docstring.

    ``acks`` is one level for every topic, a ``{topic: level}`` map, or None
    for the defaults (``durable`` for ``game.events`` and ``anticheat.alerts``,
    ``memory`` otherwise). ``validate`` checks every event against
    :mod:`gamebus.events` before it is buffered (bytes are sent as given).
    """

    def __init__(
        self,
        bus: Bus | str,
        *,
        token: str | None = None,
        linger_ms: float = 5.0,
        batch_bytes: int = 64 * 1024,
        max_buffer_bytes: int = 32 * 1024 * 1024,
        acks: Acks | Mapping[str, Acks] | None = None,
        idempotent: bool = True,
        validate: bool = True,
        default_partitions: int = 8,
        **bus_options: Any,
    ) -> None:
        if linger_ms < 0 or batch_bytes < 1 or max_buffer_bytes < batch_bytes:
            raise ConfigError("need linger_ms >= 0 and 1 <= batch_bytes <= max_buffer_bytes")
        self._bus: Bus | None = bus if not isinstance(bus, str) else None
        self._url = bus if isinstance(bus, str) else bus.url
        self._owns_bus = isinstance(bus, str)
        self._token = token
        self._bus_options = bus_options
        self.linger_s = linger_ms / 1000
        self.batch_bytes = min(batch_bytes, _MAX_BATCH_BYTES)
        #: How big an open batch may grow while its partition has no free
        #: in-flight slot (adaptive batching under load).
        self.busy_batch_bytes = min(4 * self.batch_bytes, _MAX_BATCH_BYTES)
        self.max_buffer_bytes = max_buffer_bytes
        self._acks_default: Acks | None = acks if isinstance(acks, str) else None  # type: ignore[assignment]
        self._acks_map: dict[str, Acks] = dict(DEFAULT_ACKS)
        if isinstance(acks, Mapping):
            self._acks_map.update(acks)
        self.idempotent = idempotent
        self.validate = validate
        self.default_partitions = default_partitions
        self._producer_id = _new_producer_id() if idempotent else -1
        self._counts: dict[str, int] = {}
        self._lanes: dict[tuple[str, int], _Lane] = {}
        #: (topic, key) -> lane, for the send_nowait fast path.
        self._route: dict[tuple[str, str | None], _Lane] = {}
        self._unresolved: dict[str, list[tuple[bytes, str | None, int | None, Acks, int | None]]] = {}
        # topic -> the task resolving it while send_nowait() records wait in _unresolved
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Future[Any]] = set()
        self._buffered = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._produce_nowait = None
        self._closed = False
        #: Positions dropped by :meth:`send_nowait` when the buffer was full.
        self.dropped_positions = 0
        #: Fire-and-forget batches that failed; :meth:`flush` raises the last one.
        self.failed_batches = 0
        self._last_error: GamebusError | None = None

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> Producer:
        """Connect (when given a URL) and load the partition counts of existing topics."""
        self._loop = asyncio.get_running_loop()
        if self._bus is None:
            self._bus = await connect(self._url, self._token, **self._bus_options)
        self._produce_nowait = getattr(self._bus, "produce_nowait", None)
        for info in await self._bus.metadata():
            self._counts[info.topic] = max(self._counts.get(info.topic, 0), info.partition + 1)
        return self

    async def __aenter__(self) -> Producer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise ConfigError("the producer is not started: use 'async with' or await start()")
        return self._bus

    async def flush(self) -> None:
        """Send everything buffered and wait for every answer.

        Raises the last error of a fire-and-forget batch since the previous
        flush, if any (those have no caller to tell otherwise).
        """
        while self._resolving:
            await asyncio.gather(*list(self._resolving.values()), return_exceptions=True)
        for lane in list(self._lanes.values()):
            self._seal(lane)
        while self._inflight or any(lane.queue for lane in self._lanes.values()):
            self._idle.clear()
            await self._idle.wait()
        err, self._last_error = self._last_error, None
        if err is not None:
            raise err

    async def close(self) -> None:
        """Flush, then close the bus if this producer opened it."""
        if self._closed:
            return
        try:
            if self._bus is not None:
                await self.flush()
        finally:
            self._closed = True
            if self._owns_bus and self._bus is not None:
                await self._bus.close()

    # -- typed helpers -------------------------------------------------------

    def position(
        self,
        *,
        match: str,
        player: str,
        x: float,
        y: float,
        z: float,
        yaw: float,
        pitch: float,
        ts: int | None = None,
        **extra: Any,
    ) -> None:
        """Publish a ``pos`` event to ``game.positions``, fire-and-forget.

        Validated here (:class:`~gamebus.errors.InvalidEvent` names a bad
        field); never blocks; see the buffer policy in the module docstring.
        """
        event = _build_position(
            match=match, player=player, x=x, y=y, z=z, yaw=yaw, pitch=pitch, ts=ts, **extra
        )
        self.send_nowait(POSITIONS_TOPIC, event, key=match)

    async def match_event(
        self, event_type: str, *, match: str, ts: int | None = None, acks: Acks | None = None,
        **fields: Any,
    ) -> ProduceResult | None:  # fmt: skip
        """Publish a match event (``kill``, ``hit``, ...) to ``game.events`` and await its ack.

        ``acks`` defaults to the topic's level (``durable``).
        """
        if event_type not in MATCH_EVENT_TYPES:
            raise InvalidEvent("type", f"{event_type!r} is not a match event type")
        event = _build_match_event(event_type, match=match, ts=ts, **fields)
        return await self.send(EVENTS_TOPIC, event, key=match, acks=acks)

    # -- sending ---------------------------------------------------------------

    def _acks_for(self, topic: str) -> Acks:
        if self._acks_default is not None:
            return self._acks_default
        return self._acks_map.get(topic, "memory")

    def _encode(self, event: Mapping[str, Any] | bytes) -> tuple[bytes, int | None, str | None]:
        if type(event) is bytes:
            return event, None, None
        if not isinstance(event, Mapping):
            raise InvalidEvent("event", f"expected a map or bytes, got {type(event).__name__}")
        if self.validate:
            validate_event(event)
        data = encode_event(event, validate=False)
        ts = event.get("ts")
        match = event.get("match")
        return data, ts if type(ts) is int else None, match if type(match) is str else None

    async def send(
        self,
        topic: str,
        event: Mapping[str, Any] | bytes,
        *,
        key: str | None = None,
        partition: int | None = None,
        acks: Acks | None = None,
    ) -> ProduceResult | None:
        """Publish one event and wait for its acknowledgement (None for ``acks="none"``).

        The key defaults to the event's ``match``. Waits while the buffer is
        full instead of failing.
        """
        data, ts, match = self._encode(event)
        level = acks or self._acks_for(topic)
        deferred = self._resolving.get(topic)
        if deferred is not None:
            # Records that send_nowait() held for this topic go first: per-key order.
            await asyncio.shield(deferred)
        if topic not in self._counts:
            await self._resolve(topic)
        future: asyncio.Future[ProduceResult] | None = None
        if level != "none":
            future = asyncio.get_running_loop().create_future()
        while not self._add(topic, data, key or match, partition, level, ts, future):
            self._room.clear()
            await self._room.wait()
        if future is None:
            return None
        return await future

    def send_nowait(
        self,
        topic: str,
        event: Mapping[str, Any] | bytes,
        *,
        key: str | None = None,
        partition: int | None = None,
        acks: Acks | None = None,
    ) -> None:
        """Publish one event without waiting; never blocks (see the buffer policy).

        The fast path: pre-encoded ``bytes`` with a key already seen and the
        topic's default ack level cost a dict lookup and a list append.
        """
        if type(event) is bytes and acks is None and partition is None:
            lane = self._route.get((topic, key))
            if lane is not None:
                acc = lane.acc
                if acc is not None and acc.fast:
                    n = len(event)
                    if acc.nbytes + n <= acc.cap:
                        acc.records.append(event)
                        acc.nbytes += n
                        return
        data, ts, match = self._encode(event)
        level = acks or self._acks_for(topic)
        key = key or match
        if topic not in self._counts:
            self._defer(topic, data, key, partition, level, ts)
            return
        if self._add(topic, data, key, partition, level, ts, None):
            return
        if topic != POSITIONS_TOPIC and not (isinstance(event, Mapping) and event.get("type") == "pos"):
            raise LimitExceeded(
                "producer buffer bytes", self._buffered + len(data), self.max_buffer_bytes
            )
        if not self._replace_oldest_position(topic, key, partition, data):
            self.dropped_positions += 1

    def _replace_oldest_position(
        self, topic: str, key: str | None, partition: int | None, data: bytes
    ) -> bool:
        if partition is None:
            partition = int(crc32c(key.encode())) % self._counts[topic] if key else 0
        lane = self._lanes.get((topic, partition))
        acc = lane.acc if lane is not None else None
        if acc is None or not acc.records or acc.waiters:
            return False
        dropped = acc.records.pop(0)
        acc.records.append(data)
        acc.nbytes += len(data) - len(dropped)
        self.dropped_positions += 1
        return True

    def _defer(
        self, topic: str, data: bytes, key: str | None, partition: int | None, acks: Acks, ts: int | None
    ) -> None:
        """Hold records of a topic whose partition count is not known yet, in order."""
        waiting = self._unresolved.get(topic)
        self._buffered += len(data)
        if waiting is not None:
            waiting.append((data, key, partition, acks, ts))
            return
        self._unresolved[topic] = [(data, key, partition, acks, ts)]

        async def resolve() -> None:
            try:
                await self._resolve(topic)
            except GamebusError as exc:
                self.failed_batches += 1
                self._last_error = exc
                log.error("cannot publish to %r: %s", topic, exc)
            items = self._unresolved.pop(topic, [])
            for d, k, p, a, t in items:
                self._buffered -= len(d)
                if topic in self._counts:
                    self._add(topic, d, k, p, a, t, None, force=True)
            self._room.set()

        task = asyncio.ensure_future(resolve())
        self._resolving[topic] = task
        task.add_done_callback(lambda _t: self._resolving.pop(topic, None))

    async def _resolve(self, topic: str) -> None:
        bus = self.bus
        try:
            self._counts[topic] = await bus.partitions(topic)
        except UnknownTopic:
            with contextlib.suppress(TopicExists):
                await bus.create_topic(topic, partitions=self.default_partitions)
            self._counts[topic] = await bus.partitions(topic)

    def _lane(self, topic: str, key: str | None, partition: int | None) -> _Lane:
        route_key = None
        if partition is None:
            route_key = (topic, key)
            partition = int(crc32c(key.encode())) % self._counts[topic] if key else 0
        lane = self._lanes.get((topic, partition))
        if lane is None:
            lane = self._lanes[(topic, partition)] = _Lane(topic, partition, self._producer_id)
            lane.default_acks = self._acks_for(topic)
            lane.limit = self.batch_bytes
        if route_key is not None and route_key not in self._route:
            if len(self._route) >= 65_536:
                self._route.clear()  # bounded: many short-lived match ids
            self._route[route_key] = lane
        return lane

    def _add(
        self,
        topic: str,
        data: bytes,
        key: str | None,
        partition: int | None,
        acks: Acks,
        ts: int | None,
        future: asyncio.Future[ProduceResult] | None,
        *,
        force: bool = False,
    ) -> bool:
        """Append to the partition's open batch; False when the buffer has no room."""
        lane = self._lane(topic, key, partition)
        acc = lane.acc
        n = len(data)
        if acc is not None and (acc.acks != acks or acc.nbytes + n > acc.cap):
            self._seal(lane)  # a new ack level starts a new batch; order is kept
            acc = None
        if acc is None:
            room = self.max_buffer_bytes - self._buffered
            if room < n and not force:
                return False
            cap = max(min(lane.limit, room), n)
            self._buffered += cap  # reserve; the unused part is returned on seal
            acc = lane.acc = _Acc(acks, cap, acks == lane.default_acks)
            if ts is not None:
                acc.first_ts = acc.max_ts = ts
            loop = self._loop or asyncio.get_running_loop()
            acc.timer = loop.call_later(self.linger_s, self._linger_expired, lane)
        elif ts is not None and ts > acc.max_ts:
            acc.max_ts = ts
        if future is not None:
            if acc.waiters is None:
                acc.waiters = []
            acc.waiters.append((len(acc.records), future))
        acc.records.append(data)
        acc.nbytes += n
        if acc.nbytes >= acc.cap or len(acc.records) >= _MAX_RECORDS_PER_BATCH:
            self._seal(lane)
        return True

    def _linger_expired(self, lane: _Lane) -> None:
        acc = lane.acc
        if acc is None:
            return
        acc.timer = None
        if lane.inflight < MAX_IN_FLIGHT_PER_PARTITION:
            self._seal(lane)
        # else: every slot is busy; the batch keeps growing and leaves as
        # soon as a slot frees (see _pump), instead of queueing tiny batches.

    def _seal(self, lane: _Lane) -> None:
        acc = lane.acc
        if acc is None:
            return
        lane.acc = None
        if acc.timer is not None:
            acc.timer.cancel()
        self._buffered -= acc.cap - acc.nbytes  # keep only what is really held
        if acc.records:
            lane.queue.append(acc)
            self._pump(lane)
        else:
            self._release(0)

    def _pump(self, lane: _Lane) -> None:
        while lane.queue and lane.inflight < MAX_IN_FLIGHT_PER_PARTITION:
            self._send_batch(lane, lane.queue.popleft())
        acc = lane.acc
        if lane.inflight < MAX_IN_FLIGHT_PER_PARTITION:
            lane.limit = self.batch_bytes
            if acc is not None and (acc.timer is None or acc.nbytes >= self.batch_bytes):
                self._seal(lane)  # it lingered or grew while the lane was busy
        else:
            lane.limit = self.busy_batch_bytes
            if acc is not None and acc.cap < lane.limit and len(acc.records) < 10_000:
                # No free slot: let the open batch grow rather than queue another.
                extra = min(lane.limit - acc.cap, self.max_buffer_bytes - self._buffered)
                if extra > 0:
                    acc.cap += extra
                    self._buffered += extra

    def _send_batch(self, lane: _Lane, acc: _Acc) -> None:
        seq = -1
        if lane.producer_id >= 0:
            seq = lane.seq
            lane.seq = seq + 1 if seq < 2**31 - 2 else 0
        bus = self.bus
        fut: asyncio.Future[Any] | None
        if self._produce_nowait is not None:
            fut = self._produce_nowait(
                lane.topic, lane.partition, acc.records, acks=acc.acks,
                producer_id=lane.producer_id, sequence=seq,
                first_ts=acc.first_ts or None, max_ts=acc.max_ts or None,
            )  # fmt: skip
        else:
            fut = asyncio.ensure_future(
                bus.produce(
                    lane.topic, lane.partition, acc.records, acks=acc.acks,
                    producer_id=lane.producer_id, sequence=seq,
                )
            )
        if fut is None:  # acks="none": gone, nothing to wait for
            self._release(acc.nbytes)
            return
        lane.inflight += 1
        self._inflight.add(fut)
        fut.add_done_callback(lambda f: self._done(lane, acc, f))

    def _done(self, lane: _Lane, acc: _Acc, fut: asyncio.Future[Any]) -> None:
        self._inflight.discard(fut)
        lane.inflight -= 1
        self._release(acc.nbytes)
        error: BaseException | None = None
        error = GamebusError("produce cancelled") if fut.cancelled() else fut.exception()
        if error is not None:
            if lane.producer_id >= 0:
                # The broker never recorded this sequence: start a fresh
                # producer id for the lane so later batches are not a "gap".
                lane.producer_id, lane.seq = _new_producer_id(), 0
            if acc.waiters:
                for _, w in acc.waiters:
                    if not w.done():
                        w.set_exception(error)
            else:
                self.failed_batches += 1
                if isinstance(error, GamebusError):
                    self._last_error = error
                log.warning("batch to %s/%d failed: %s", lane.topic, lane.partition, error)
        elif acc.waiters:
            raw = fut.result()
            if not isinstance(raw, ProduceResult):
                raw = ProduceResult(lane.topic, lane.partition, int(raw["epoch"]),
                                    int(raw["base_offset"]), bool(raw.get("duplicate")))  # fmt: skip
            for idx, w in acc.waiters:
                if not w.done():
                    w.set_result(ProduceResult(lane.topic, lane.partition, raw.epoch,
                                               raw.offset_of(idx), raw.duplicate))  # fmt: skip
        self._pump(lane)
        if not self._inflight:
            self._idle.set()

    def _release(self, nbytes: int) -> None:
        self._buffered -= nbytes
        if self._buffered <= self.max_buffer_bytes // 2 or not self._buffered:
            self._room.set()

    @property
    def buffered_bytes(self) -> int:
        """Bytes of records buffered or awaiting an answer."""
        return self._buffered


# -- consuming ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One record as a consumer sees it; ``value`` is the encoded event."""

    topic: str
    partition: int
    offset: int
    epoch: int
    value: bytes
    ts: int = 0

    def event(self) -> dict[str, Any]:
        """The decoded event; :class:`~gamebus.errors.InvalidEvent` on a malformed one."""
        return decode_event(self.value)

    @property
    def position(self) -> Position:
        """Where to resume after this message."""
        return Position(self.epoch, self.offset + 1)


StartSpec = Start | Mapping[tuple[str, int], Position]


class Consumer:
    """Read topics as batches or messages, alone or in a consumer group.

    ``start`` is ``"earliest"``, ``"latest"`` or ``{(topic, partition): Position}``
    (partitions missing from the map start at ``"latest"``). In a ``group``,
    each partition starts at the group's committed position when there is
    one, otherwise at ``start``; partitions move between members on
    rebalance (committing first when ``auto_commit``). ``partitions`` pins
    explicit ``(topic, partition)`` pairs instead of all of each topic's.

    An epoch change (the broker lost an unflushed tail and some offsets
    were reused) is raised from the iterator as
    :class:`~gamebus.errors.EpochMismatch` with ``topic`` and ``partition``
    attributes; the consumer has already resubscribed at the error's
    ``resume_offset``, so iterating again continues from there. Likewise
    :class:`~gamebus.errors.OffsetOutOfRange` (retention deleted the history
    a start position needs) is raised once and reading resumes at the oldest
    record left. Other errors (e.g. ``NotAuthorized``) end that partition's
    subscription.

    With ``auto_commit`` the positions of what was handed out are committed
    every ``auto_commit_interval_ms`` and on close (at-least-once).
    """

    def __init__(
        self,
        bus: Bus | str,
        topics: list[str],
        *,
        token: str | None = None,
        group: str | None = None,
        start: StartSpec = "latest",
        partitions: list[tuple[str, int]] | None = None,
        auto_commit: bool = True,
        auto_commit_interval_ms: int = 1000,
        credit_bytes: int = 1 << 20,
        session_timeout_ms: int = 10_000,
        member: str | None = None,
        **bus_options: Any,
    ) -> None:
        if not topics and not partitions:
            raise ConfigError("a consumer needs topics or partitions")
        self._bus: Bus | None = bus if not isinstance(bus, str) else None
        self._url = bus if isinstance(bus, str) else bus.url
        self._owns_bus = isinstance(bus, str)
        self._token = token
        self._bus_options = bus_options
        self.topics = list(topics)
        self.group = group
        self.start_spec = start
        self.fixed_partitions = partitions
        self.auto_commit = auto_commit and group is not None
        self.auto_commit_s = auto_commit_interval_ms / 1000
        self.credit_bytes = credit_bytes
        self.session_timeout_ms = session_timeout_ms
        self._member_id = member
        self.membership: GroupMembership | None = None
        self._subs: dict[tuple[str, int], Any] = {}
        self._pumps: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[Batch | BaseException] = asyncio.Queue(maxsize=64)
        self.positions: dict[tuple[str, int], Position] = {}
        self._committed: dict[tuple[str, int], Position] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise ConfigError("the consumer is not started: use 'async with' or await start()")
        return self._bus

    @property
    def assignment(self) -> list[tuple[str, int]]:
        return sorted(self._subs)

    async def start(self) -> Consumer:
        if self._bus is None:
            self._bus = await connect(self._url, self._token, **self._bus_options)
        if self.group is not None:
            self.membership = await self.bus.join_group(
                self.group, self.topics, member=self._member_id,
                session_timeout_ms=self.session_timeout_ms,
            )  # fmt: skip
            await self._assign(self.membership.assignment)
            self._tasks.append(asyncio.ensure_future(self._follow_rebalances()))
            if self.auto_commit:
                self._tasks.append(asyncio.ensure_future(self._auto_commit()))
        else:
            wanted = list(self.fixed_partitions or [])
            if not wanted:
                for topic in self.topics:
                    wanted.extend((topic, p) for p in range(await self.bus.partitions(topic)))
            await self._assign(wanted)
        return self

    async def __aenter__(self) -> Consumer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start_position(self, tp: tuple[str, int]) -> Start:
        if self.group is not None:
            pos = await self.bus.committed(self.group, tp[0], tp[1])
            if pos is not None:
                return pos
        spec = self.start_spec
        if isinstance(spec, Mapping):
            return spec.get(tp, "latest")
        return spec

    async def _assign(self, wanted: list[tuple[str, int]]) -> None:
        for tp in [tp for tp in self._subs if tp not in wanted]:
            await self._unsubscribe(tp)
        for tp in wanted:
            if tp not in self._subs:
                start = self.positions.get(tp) or await self._start_position(tp)
                await self._subscribe(tp, start)

    async def _subscribe(self, tp: tuple[str, int], start: Start) -> None:
        sub = await self.bus.subscribe(tp[0], tp[1], start, credit_bytes=self.credit_bytes)
        self._subs[tp] = sub
        self._pumps[tp] = asyncio.ensure_future(self._pump(tp, sub))

    async def _unsubscribe(self, tp: tuple[str, int]) -> None:
        sub = self._subs.pop(tp, None)
        task = self._pumps.pop(tp, None)
        if task is not None:
            task.cancel()
        if sub is not None:
            await sub.close()

    async def _pump(self, tp: tuple[str, int], sub: Any) -> None:
        try:
            async for batch in sub:
                await self._queue.put(batch)
        except EpochMismatch as exc:
            exc.topic, exc.partition = tp  # type: ignore[attr-defined]
            self._subs.pop(tp, None)
            self._pumps.pop(tp, None)
            # Resync at once so that iterating again continues.
            with contextlib.suppress(GamebusError):
                await self._subscribe(tp, Position(exc.current, exc.resume_offset))
            await self._queue.put(exc)
        except OffsetOutOfRange as exc:
            # The history this position needs is gone (retention): say so,
            # and carry on from the oldest record still there.
            exc.topic, exc.partition = tp  # type: ignore[attr-defined]
            self._subs.pop(tp, None)
            self._pumps.pop(tp, None)
            with contextlib.suppress(GamebusError):
                await self._subscribe(tp, "earliest")
            await self._queue.put(exc)
        except GamebusError as exc:
            exc.topic, exc.partition = tp  # type: ignore[attr-defined]
            self._subs.pop(tp, None)
            self._pumps.pop(tp, None)
            await self._queue.put(exc)

    async def _follow_rebalances(self) -> None:
        membership = self.membership
        assert membership is not None
        while not self._closed:
            await membership.wait_for_change()
            new = list(membership.assignment)
            revoked = {tp: p for tp, p in self.positions.items() if tp not in new}
            if self.auto_commit and revoked and self.group is not None:
                with contextlib.suppress(GamebusError):
                    await self.bus.commit(self.group, revoked)
            for tp in revoked:
                self.positions.pop(tp, None)
            try:
                await self._assign(new)
            except GamebusError as exc:
                log.warning("rebalance of %s failed: %s", self.group, exc)

    async def _auto_commit(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.auto_commit_s)
            with contextlib.suppress(GamebusError):
                await self.commit()

    async def batches(self) -> AsyncIterator[Batch]:
        """Batches as they arrive, from every assigned partition."""
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            tp = (item.topic, item.partition)
            if tp not in self._subs:
                continue  # revoked while queued
            self.positions[tp] = item.position
            yield item

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        async for batch in self.batches():
            tp = (batch.topic, batch.partition)
            epoch, base = batch.epoch, batch.base_offset
            for i, value in enumerate(batch.records):
                # Commit only what was handed out, even mid-batch.
                self.positions[tp] = Position(epoch, base + i + 1)
                yield Message(batch.topic, batch.partition, base + i, epoch, value, batch.max_ts)

    async def commit(self, offsets: Mapping[tuple[str, int], Position] | None = None) -> None:
        """Commit ``offsets`` (default: the positions of everything handed out)."""
        if self.group is None:
            raise ConfigError("commit() needs a consumer group")
        todo = dict(offsets) if offsets is not None else {
            tp: p for tp, p in self.positions.items() if self._committed.get(tp) != p
        }  # fmt: skip
        if not todo:
            return
        await self.bus.commit(self.group, todo)
        self._committed.update(todo)

    async def close(self) -> None:
        if self._closed:
            return
        if self.auto_commit and self._bus is not None:
            with contextlib.suppress(GamebusError):
                await self.commit()
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for tp in list(self._subs):
            with contextlib.suppress(GamebusError):
                await self._unsubscribe(tp)
        if self.membership is not None:
            with contextlib.suppress(GamebusError):
                await self.membership.leave()
        if self._owns_bus and self._bus is not None:
            await self._bus.close()
