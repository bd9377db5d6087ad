"""The relay, unchanged, on both engines: real relay processes, real WebSocket clients.

The same two scenarios as the relay's own end-to-end suite (tests/relay), run
against the embedded broker and against nats-server: in-order delivery of a
match's positions and events, and a client that resumes on *another* relay
from the position it last saw, with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from gamebus.engines import connect
from gamebus.engines.base import Bus
from gamebus.errors import TopicExists
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from tests.nats.support import wait_for_jetstream
from tests.relay.support import Client, RelayProcess, kill, pos, token

pytestmark = pytest.mark.timeout(90)


async def _ensure_default_topics(url: str) -> None:
    if url.startswith("nats://"):
        await wait_for_jetstream([url])
    bus = await connect(url)
    try:
        for topic in (POSITIONS_TOPIC, EVENTS_TOPIC):
            with contextlib.suppress(TopicExists):
                await bus.create_topic(topic, partitions=8)
    finally:
        await bus.close()


@pytest.fixture(scope="module")
def relays(
    engine_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    asyncio.run(_ensure_default_topics(engine_url))
    logs = tmp_path_factory.mktemp("relay-logs")
    a = RelayProcess(engine_url, logs)
    b = RelayProcess(engine_url, logs)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def relay_bus(engine_url: str) -> AsyncIterator[Bus]:
    b = await connect(engine_url)
    yield b
    await b.close()


def now_ms() -> int:
    return int(time.time() * 1000)


async def kills(bus: Bus, match: str, start: int, n: int) -> None:
    p = await bus.partition_for(EVENTS_TOPIC, match)
    await bus.produce(
        EVENTS_TOPIC, p, [kill(match, j, now_ms()) for j in range(start, start + n)], acks="memory"
    )


async def test_a_relay_delivers_a_matchs_positions_and_events_in_order(
    relays: tuple[RelayProcess, RelayProcess], relay_bus: Bus
) -> None:
    relay, _ = relays
    match = "eng-order"
    client = await Client.open(relay.url, token(matches=[match]))
    reply = await client.subscribe(match)
    assert reply["op"] == "subscribed" and reply["gap"] is False
    pp = await relay_bus.partition_for(POSITIONS_TOPIC, match)
    for tick in range(10):
        await relay_bus.produce(
            POSITIONS_TOPIC, pp, [pos(match, f"p{i}", tick, i, now_ms()) for i in range(3)]
        )
        await kills(relay_bus, match, tick, 1)
    got = await client.events(40, timeout=10)
    assert [e["seq"] for e in got if e["type"] == "kill"] == list(range(10))
    positions = [(e["player"], e["x"]) for e in got if e["type"] == "pos"]
    assert positions == [(f"p{i}", t) for t in range(10) for i in range(3)]
    await client.close()


async def test_resume_on_another_relay_has_no_gap_and_no_duplicate(
    relays: tuple[RelayProcess, RelayProcess],
    relay_bus: Bus,
    engine_url: str,
) -> None:
    relay_a, relay_b = relays
    match, total = "eng-resume", 150
    # Another match on the same topic interleaves its records: on JetStream
    # that puts gaps between this match's offsets.
    other = "eng-resume-other"

    async def produce() -> None:
        for i in range(0, total, 3):
            await kills(relay_bus, match, i, 3)
            await kills(relay_bus, other, i, 3)
            await asyncio.sleep(0.005)

    first = await Client.open(relay_a.url, token())
    await first.subscribe(match)
    producer = asyncio.create_task(produce())
    try:
        seen: list[int] = []
        resume = await first.read_seqs(seen, 30)
        await first.close()
        await asyncio.sleep(0.2)  # miss some
        second = await Client.open(relay_b.url, token())
        reply = await second.subscribe(match, resume=resume)
        assert reply["gap"] is False, reply.get("gaps")
        await second.read_seqs(seen, total, topic=EVENTS_TOPIC, timeout=10)
        await producer
    finally:
        producer.cancel()
    assert seen == list(range(total))
    await second.close()
