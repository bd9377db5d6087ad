"""The SDK (gamebus.Producer / gamebus.Consumer) unchanged on both engines."""

from __future__ import annotations

import asyncio

import gamebus
from gamebus.events import decode_event


async def test_match_events_arrive_in_order_through_the_sdk(engine_url: str, topic: str) -> None:
    bus = await gamebus.connect(engine_url)
    try:
        await bus.create_topic(topic, partitions=4)
    finally:
        await bus.close()
    sent: dict[str, list[int]] = {"m1": [], "m2": [], "m3": []}
    async with gamebus.Producer(engine_url, linger_ms=2) as producer:
        for i in range(60):
            match = f"m{i % 3 + 1}"
            event = {"type": "round_start", "match": match, "ts": i, "round": i}
            if i % 10 == 0:
                meta = await producer.send(topic, event, acks="durable")
                assert meta is not None and meta.topic == topic
            else:
                producer.send_nowait(topic, event)
            sent[match].append(i)
        await producer.flush()
    got: dict[str, list[int]] = {"m1": [], "m2": [], "m3": []}
    async with gamebus.Consumer(engine_url, [topic], start="earliest") as consumer:

        async def read() -> None:
            n = 0
            async for message in consumer:
                event = decode_event(message.value)
                got[event["match"]].append(event["round"])
                n += 1
                if n == 60:
                    return

        await asyncio.wait_for(read(), 20)
    assert got == sent
