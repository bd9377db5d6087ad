"""The SDK (gamebus.Producer / gamebus.Consumer) on nats:// URLs, unchanged."""

from __future__ import annotations

import asyncio

import pytest

import gamebus
from gamebus.events import decode_event
from tests.nats.support import NatsServer

pytestmark = pytest.mark.nats


async def test_producer_and_group_consumer_work_on_jetstream(
    nats_server: NatsServer, topic: str
) -> None:
    url = nats_server.url
    # Created up front: with an unknown topic the SDK currently lets an awaited
    # send() overtake earlier send_nowait() records (reported; not engine-specific).
    bus = await gamebus.connect(url)
    await bus.create_topic(topic, partitions=4)
    await bus.close()
    async with gamebus.Producer(url, linger_ms=2, default_partitions=4) as producer:
        metas = []
        for i in range(20):
            producer.send_nowait(topic, {"type": "pos", "match": f"m{i % 3}", "ts": i,
                                         "player": "p1", "x": 1.0, "y": 2.0, "z": 0.0,
                                         "yaw": 0.0, "pitch": 0.0}, key=f"m{i % 3}")  # fmt: skip
        for i in range(5):
            metas.append(
                await producer.send(
                    topic,
                    {
                        "type": "kill",
                        "match": "m1",
                        "ts": 100 + i,
                        "player": "p1",
                        "target": "p2",
                        "weapon": "rifle",
                        "headshot": False,
                    },
                    key="m1",
                    acks="durable",
                )
            )
        await producer.flush()
    offsets = [m.base_offset for m in metas]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5

    seen: list[tuple[str, int]] = []
    async with gamebus.Consumer(url, [topic], group="sdk", start="earliest") as consumer:

        async def read() -> None:
            async for message in consumer:
                event = decode_event(message.value)
                seen.append((event["match"], event["ts"]))
                if len(seen) == 25:
                    return

        await asyncio.wait_for(read(), 20)
        await consumer.commit()
    assert len(seen) == 25
    for match in ("m0", "m1", "m2"):
        ts = [t for m, t in seen if m == match]
        assert ts == sorted(ts)  # per-match order
    # The durable sends' offsets are where the consumer found them.
    bus = await gamebus.connect(url)
    try:
        p = await bus.partition_for(topic, "m1")
        stored = {b.base_offset + i: r for b in await bus.fetch(topic, p, 1) for i, r in
                  enumerate(b.records)}  # fmt: skip
        assert all(decode_event(stored[o])["type"] == "kill" for o in offsets)
        assert await bus.committed("sdk", topic, p) is not None
    finally:
        await bus.close()


async def test_two_group_consumers_split_a_topic_and_read_it_all(
    nats_server: NatsServer, topic: str
) -> None:
    url = nats_server.url
    bus = await gamebus.connect(url)
    await bus.create_topic(topic, partitions=4)
    for p in range(4):
        await bus.produce(topic, p, [f"{p}:{i}".encode() for i in range(5)], acks="durable")
    await bus.close()
    seen: list[bytes] = []
    a = gamebus.Consumer(url, [topic], group="split", start="earliest", member="a",
                         session_timeout_ms=2_000)  # fmt: skip
    b = gamebus.Consumer(url, [topic], group="split", start="earliest", member="b",
                         session_timeout_ms=2_000)  # fmt: skip
    await a.start()
    await b.start()
    try:

        async def drain(consumer: gamebus.Consumer) -> None:
            async for message in consumer:
                seen.append(message.value)

        tasks = [asyncio.ensure_future(drain(c)) for c in (a, b)]

        async def all_seen() -> None:
            while len(set(seen)) < 20:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(all_seen(), 20)
        for t in tasks:
            t.cancel()
        assert len(a.assignment) == 2 and len(b.assignment) == 2
        assert not set(a.assignment) & set(b.assignment)
    finally:
        await a.close()
        await b.close()
    assert sorted(set(seen)) == sorted(f"{p}:{i}".encode() for p in range(4) for i in range(5))
