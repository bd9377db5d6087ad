"""Two relays on different nodes of a 3-node JetStream cluster serve the same match.

Relay A talks to node 1 only, relay B to node 2 only, and the producer to node
3 only. Topics are R=3, match events are produced with ``acks="durable"``. A
WebSocket client on each relay subscribes to the same match: both must see
exactly the same match events (same seq and ts, in order, no gap, no
duplicate) and the same positions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gamebus
from gamebus.engines.base import Bus
from gamebus.errors import ConfigError, GamebusError, TopicExists
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from tests.nats.support import NatsCluster, nats_server_available, wait_for_jetstream
from tests.relay.support import Client, RelayProcess, kill, pos, token

pytestmark = [pytest.mark.nats, pytest.mark.timeout(90)]

MATCH = "cluster-match"
OTHER = "cluster-other"  # another match interleaved on game.events
N_EVENTS = 120
N_TICKS = 40
PLAYERS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    if not nats_server_available():
        pytest.skip("nats-server is not installed")
    c = NatsCluster(tmp_path_factory.mktemp("relay-cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()  # by PID, each node


async def _create_replicated(bus: Bus, topic: str, partitions: int) -> None:
    """Create an R=3 topic, retrying while the cluster elects / places peers."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await bus.create_topic(topic, partitions=partitions, replicas=3)
            return
        except TopicExists:
            return
        except GamebusError as e:
            if not (e.retriable or isinstance(e, ConfigError)) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


def now_ms() -> int:
    return int(time.time() * 1000)


async def _collect(
    client: Client, n_events: int, n_pos: int, timeout: float
) -> dict[str, list[Any]]:
    """Every frame's events until ``n_events`` kills and ``n_pos`` positions have arrived."""
    kills: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(kills) < n_events or len(positions) < n_pos:
            msg = await client.recv(timeout)
            if msg["op"] != "events":
                continue
            for e in msg["events"]:
                assert e.get("match") in (None, MATCH), e
                (kills if e["type"] == "kill" else positions).append(e)
    # Anything extra (a duplicate) that is already queued shows up here.
    try:
        while True:
            msg = await client.recv(0.5)
            if msg["op"] == "events":
                for e in msg["events"]:
                    (kills if e["type"] == "kill" else positions).append(e)
    except TimeoutError:
        pass
    return {"kills": kills, "positions": positions}


async def test_relays_on_different_nodes_serve_the_same_match(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    n1, n2, n3 = cluster.nodes
    await wait_for_jetstream(cluster.urls, timeout_s=30)
    bus = await gamebus.connect(n3.url, produce_timeout_ms=30_000)
    relays: list[RelayProcess] = []
    clients: list[Client] = []
    try:
        await _create_replicated(bus, POSITIONS_TOPIC, 4)
        await _create_replicated(bus, EVENTS_TOPIC, 4)

        relay_a = RelayProcess(n1.url, tmp_path)
        relays.append(relay_a)
        relay_a.start()
        relay_b = RelayProcess(n2.url, tmp_path)
        relays.append(relay_b)
        relay_b.start()

        for relay in (relay_a, relay_b):
            client = await Client.open(relay.url, token(matches=[MATCH]))
            clients.append(client)
            reply = await client.subscribe(MATCH)
            assert reply["op"] == "subscribed" and reply["gap"] is False, reply

        ep = await bus.partition_for(EVENTS_TOPIC, MATCH)
        op = await bus.partition_for(EVENTS_TOPIC, OTHER)
        pp = await bus.partition_for(POSITIONS_TOPIC, MATCH)
        per_tick = N_EVENTS // N_TICKS
        produced_kills: list[tuple[int, int]] = []
        for tick in range(N_TICKS):
            await bus.produce(
                POSITIONS_TOPIC,
                pp,
                [pos(MATCH, f"p{i}", float(tick), float(i), now_ms()) for i in range(PLAYERS)],
            )
            batch = []
            for seq in range(tick * per_tick, (tick + 1) * per_tick):
                ts = now_ms()
                produced_kills.append((seq, ts))
                batch.append(kill(MATCH, seq, ts))
            results = await asyncio.gather(
                bus.produce(EVENTS_TOPIC, ep, batch, acks="durable"),
                bus.produce(EVENTS_TOPIC, op, [kill(OTHER, tick, now_ms())], acks="durable"),
            )
            assert all(r is not None for r in results)

        got = await asyncio.gather(
            *(_collect(c, N_EVENTS, N_TICKS * PLAYERS, timeout=20) for c in clients)
        )
        a, b = got
        a_kills = [(e["seq"], e["ts"]) for e in a["kills"]]
        b_kills = [(e["seq"], e["ts"]) for e in b["kills"]]
        # Exactly what was produced: in order, no gap, no duplicate, on both relays.
        assert a_kills == produced_kills
        assert b_kills == produced_kills
        a_pos = [(e["player"], e["x"], e["ts"]) for e in a["positions"]]
        b_pos = [(e["player"], e["x"], e["ts"]) for e in b["positions"]]
        assert a_pos == b_pos
        assert [(p, x) for p, x, _ in a_pos] == [
            (f"p{i}", float(t)) for t in range(N_TICKS) for i in range(PLAYERS)
        ]
    finally:
        for client in clients:
            await client.close()
        for relay in relays:
            relay.stop()  # by PID
        await bus.close()
