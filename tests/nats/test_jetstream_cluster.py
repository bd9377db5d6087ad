"""A 3-node JetStream cluster on loopback: failover, groups, and losing quorum.

The tests in this module share one cluster and run in file order: the
failover test kills and restarts a node, the quorum test kills two and
restarts them at the end.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from gamebus.engines.base import Batch, Subscription
from gamebus.engines.jetstream import JetStreamBus, JetStreamMembership, connect_jetstream
from gamebus.errors import ConfigError, EngineUnavailable, GamebusError
from tests.nats.support import NatsCluster, NatsServer, nats_server_available, wait_for_jetstream

pytestmark = pytest.mark.nats

MATCHES = [f"m{i}" for i in range(8)]
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    if not nats_server_available():
        pytest.skip("nats-server is not installed")
    c = NatsCluster(tmp_path_factory.mktemp("cluster"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


async def eventually(action: Callable[[], Awaitable[T]], *, timeout_s: float = 30.0) -> T:
    """``action()``, retried while the cluster (re)forms: elections, peers not yet placed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await action()
        except GamebusError as e:
            placement = isinstance(e, ConfigError)  # "insufficient resources" while peers join
            if not (e.retriable or placement) or loop.time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def create_replicated(bus: JetStreamBus, topic: str, partitions: int) -> None:
    """Create an R=3 topic, retrying while the cluster elects its meta leader."""
    await eventually(lambda: bus.create_topic(topic, partitions=partitions, replicas=3))


def node_named(cluster: NatsCluster, name: str | None) -> NatsServer:
    return next(n for n in cluster.nodes if n.name == name)


async def read_all(bus: JetStreamBus, topic: str, partitions: int) -> list[Batch]:
    """Every stored record of ``topic`` through fetch, partition by partition."""
    end = (await bus.metadata(topic))[0].log_end
    out: list[Batch] = []
    for p in range(partitions):
        offset = 1
        while offset < end:
            batches = await bus.fetch(topic, p, offset, max_bytes=1 << 20)
            if not batches:
                break
            out.extend(batches)
            offset = batches[-1].next_offset
    return out


async def follow(sub: Subscription, into: list[Batch], stop: asyncio.Event) -> None:
    async for batch in sub:
        into.append(batch)
        if stop.is_set():
            return


def per_match(batches: list[Batch]) -> dict[str, list[int]]:
    """``{match: [event number, ...]}`` in offset order, from ``b"m3:17"`` records."""
    out: dict[str, list[int]] = collections.defaultdict(list)
    for batch in sorted(batches, key=lambda b: (b.partition, b.base_offset)):
        for record in batch.records:
            match, n = record.decode().split(":")
            out[match].append(int(n))
    return dict(out)


async def test_durable_events_survive_killing_the_stream_leader(cluster: NatsCluster) -> None:
    await wait_for_jetstream(cluster.urls, timeout_s=30)
    # A produce keeps retrying through the election for as long as the test
    # waits for it (45 s below): one CI run saw a 38.8 s election.
    bus = await connect_jetstream(cluster.url, produce_timeout_ms=60_000, ack_timeout_ms=1_000)
    topic, partitions = "game.failover", 4
    await create_replicated(bus, topic, partitions)
    stream = "GAMEBUS_game_failover"
    leader = node_named(cluster, (await bus.js.stream_info(stream)).cluster.leader)  # type: ignore[union-attr]
    others = [n for n in cluster.nodes if n is not leader]
    # Two "relays", each connected to one surviving node only, follow every partition live.
    relays = [await connect_jetstream(n.url, heartbeat_ms=500) for n in others]
    seen: list[list[Batch]] = [[], []]
    stop = asyncio.Event()
    followers = []
    for relay, into in zip(relays, seen, strict=True):
        for p in range(partitions):
            sub = await relay.subscribe(topic, p, "earliest")
            followers.append((sub, asyncio.create_task(follow(sub, into, stop))))

    acked: dict[str, list[int]] = {m: [] for m in MATCHES}
    failed: dict[str, list[int]] = {m: [] for m in MATCHES}
    produced = 0
    loop = asyncio.get_running_loop()
    ack_times: list[float] = []

    async def produce_match(match: str, n: int) -> None:
        p = await bus.partition_for(topic, match)
        try:
            await bus.produce(topic, p, [f"{match}:{n}".encode()], acks="durable")
            acked[match].append(n)
            ack_times.append(loop.time())
        except EngineUnavailable:
            failed[match].append(n)

    async def producer(until: asyncio.Event) -> None:
        nonlocal produced
        n = 0
        while not until.is_set():
            await asyncio.gather(*(produce_match(m, n) for m in MATCHES))
            produced += len(MATCHES)
            n += 1

    done = asyncio.Event()
    task = asyncio.create_task(producer(done))
    await asyncio.sleep(1.5)
    before_kill = produced
    leader.kill()  # SIGKILL the stream leader mid-stream
    killed_at = loop.time()

    def acked_since_kill() -> int:
        return sum(t > killed_at + 0.5 for t in ack_times)

    # Produces must resume while the old leader is still down. How long the
    # election takes depends on the machine (5 s idle, 17 s seen on a busy CI
    # runner), so wait for the acks rather than a fixed time, up to a bound.
    while acked_since_kill() < 4 * len(MATCHES) and loop.time() < killed_at + 45.0:
        await asyncio.sleep(0.25)
    during_outage = produced - before_kill
    leader.start()  # same ports, same store: it rejoins and catches up
    await asyncio.sleep(2.0)
    done.set()
    await asyncio.wait_for(task, 60)

    total = sum(len(v) for v in acked.values())
    resumed = min((t for t in ack_times if t > killed_at + 0.5), default=None)
    print(f"failover: first ack after the kill at +{(resumed or 0) - killed_at:.1f} s")
    assert before_kill > 0 and acked_since_kill() > 0, (before_kill, during_outage)
    assert all(not v for v in failed.values()), f"produces gave up: {failed}"
    # Every acknowledged event is stored exactly once, in per-match order.
    stored = per_match(await eventually(lambda: read_all(bus, topic, partitions)))
    assert stored == acked
    # ... and both relays, on different nodes, delivered exactly that, live, through the failover.
    end = (await eventually(lambda: bus.metadata(topic)))[0].log_end

    async def caught_up() -> None:
        while any(sum(len(b.records) for b in into) < total for into in seen):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(caught_up(), 30)
    stop.set()
    for sub, t in followers:
        await sub.close()
        t.cancel()
    for into in seen:
        assert per_match(into) == acked
        assert all(b.next_offset <= end for b in into)
    print(f"failover: {total} durable events acked, {during_outage} during the outage")
    for relay in relays:
        await relay.close()
    await bus.close()


async def test_a_group_survives_a_members_death_on_the_cluster(cluster: NatsCluster) -> None:
    await wait_for_jetstream(cluster.urls, timeout_s=30)
    a_bus = await connect_jetstream(cluster.nodes[0].url)
    b_bus = await connect_jetstream(cluster.nodes[1].url)
    topic = "game.grouped"
    await create_replicated(a_bus, topic, 4)
    a = await a_bus.join_group("workers", [topic], member="a", session_timeout_ms=2_000)
    b = await b_bus.join_group("workers", [topic], member="b", session_timeout_ms=2_000)
    assert isinstance(a, JetStreamMembership) and isinstance(b, JetStreamMembership)

    async def until(pred: object) -> None:
        while not pred():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await asyncio.wait_for(until(lambda: len(a.assignment) == 2 and len(b.assignment) == 2), 15)
    await a_bus.commit("workers", {(topic, 0): _pos(a_bus, topic, 1)})
    await b.halt()
    await b_bus.nc.close()
    await asyncio.wait_for(until(lambda: len(a.assignment) == 4), 15)
    assert await a_bus.committed("workers", topic, 0) == _pos(a_bus, topic, 1)
    await a.leave()
    await a_bus.close()
    await b_bus.close()


def _pos(bus: JetStreamBus, topic: str, offset: int) -> object:
    from gamebus.engines.base import Position

    return Position(bus._topics[topic].epoch, offset)


async def test_without_quorum_produce_fails_with_a_retriable_error(cluster: NatsCluster) -> None:
    await wait_for_jetstream(cluster.urls, timeout_s=30)
    bus = await connect_jetstream(cluster.url, produce_timeout_ms=3_000, ack_timeout_ms=1_000)
    topic = "game.quorum"
    await create_replicated(bus, topic, 1)
    assert await bus.produce(topic, 0, [b"before"], acks="durable") is not None
    survivor, *doomed = cluster.nodes
    for node in doomed:
        node.kill()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(EngineUnavailable) as err:
        await bus.produce(topic, 0, [b"lost?"], acks="durable")
    elapsed = loop.time() - started
    assert err.value.retriable
    assert 2.9 <= elapsed <= 5.0, elapsed  # the 3 s deadline, not a hang
    for node in doomed:
        node.start()
    await wait_for_jetstream(cluster.urls, timeout_s=30)
    # Quorum is back: the same produce goes through (and "lost?" is stored at most once).
    bus2 = await connect_jetstream(survivor.url, produce_timeout_ms=20_000)
    assert await bus2.produce(topic, 0, [b"after"], acks="durable") is not None
    stored = await eventually(lambda: read_all(bus2, topic, 1))
    records = [r for b in stored for r in b.records]
    assert records[0] == b"before" and records[-1] == b"after" and len(records) <= 3
    await bus2.close()
    await bus.close()
