"""Produce/consume through a real broker: every ack level, order, helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import gamebus
from gamebus.engines.base import Bus, Position
from gamebus.errors import InvalidEvent, LimitExceeded, UnknownTopic
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC, decode_event, match_event, position
from tests.support.broker import BrokerProcess


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(Path(tmp_path_factory.mktemp("rt")) / "data") as proc:
        yield proc


@pytest.fixture
async def bus(shared_broker: BrokerProcess) -> AsyncIterator[Bus]:
    b = await gamebus.connect(shared_broker.url)
    yield b
    await b.close()


async def _collect(consumer: gamebus.Consumer, n: int, timeout: float = 10.0) -> list[gamebus.Message]:
    out: list[gamebus.Message] = []

    async def run() -> None:
        async for message in consumer:
            out.append(message)
            if len(out) >= n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


@pytest.mark.parametrize("acks", ["none", "memory", "durable"])
async def test_events_round_trip_at_every_ack_level(bus: Bus, acks: str) -> None:
    topic = f"rt.{acks}"
    await bus.create_topic(topic, partitions=2)
    events = [match_event("kill", match=f"m{i % 3}", player="a", target="b", weapon="w",
                          headshot=False, ts=1000 + i) for i in range(50)]  # fmt: skip
    async with gamebus.Consumer(bus, [topic], start="earliest") as consumer:
        async with gamebus.Producer(bus, linger_ms=1, acks=acks) as producer:  # type: ignore[arg-type]
            results = [await producer.send(topic, ev) for ev in events[:5]]
            for ev in events[5:]:
                producer.send_nowait(topic, ev)
        got = await _collect(consumer, 50)
    assert sorted((m.event()["ts"]) for m in got) == [ev["ts"] for ev in events]
    if acks == "none":
        assert results == [None] * 5
    else:
        assert all(isinstance(r, gamebus.ProduceResult) and not r.duplicate for r in results)
        first = got[0]
        assert first.epoch == results[0].epoch  # type: ignore[union-attr]
    info = {i.partition: i for i in await bus.metadata(topic)}
    assert sum(i.log_end for i in info.values()) == 50
    if acks == "durable":
        assert all(i.durable_end == i.log_end for i in info.values())


async def test_an_awaited_send_to_a_new_topic_waits_for_earlier_fire_and_forget_records(
    bus: Bus,
) -> None:
    topic = "rt.fresh.order"  # not created yet: the producer resolves it on first use
    events = [match_event("shot", match="m1", player="p", weapon="w", yaw=0.0, pitch=0.0, ts=i)
              for i in range(20)]  # fmt: skip
    async with gamebus.Producer(bus, linger_ms=1) as producer:
        for ev in events[:-1]:
            producer.send_nowait(topic, ev)
        await producer.send(topic, events[-1], acks="durable")
    async with gamebus.Consumer(bus, [topic], start="earliest") as consumer:
        got = await _collect(consumer, 20)
    assert [m.event()["ts"] for m in got] == list(range(20))


async def test_per_key_order_holds_under_concurrent_senders(bus: Bus) -> None:
    topic = "rt.order"
    await bus.create_topic(topic, partitions=4)
    async with gamebus.Producer(bus, linger_ms=2, batch_bytes=2048) as producer:

        async def sender(key: str) -> None:
            for i in range(200):
                ev = match_event("shot", match=key, player="p", weapon="w", yaw=0.0, pitch=0.0, ts=i)
                if i % 10 == 0:
                    await producer.send(topic, ev, acks="durable")
                else:
                    producer.send_nowait(topic, ev)
                if i % 50 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(*(sender(f"match-{k}") for k in range(8)))
    async with gamebus.Consumer(bus, [topic], start="earliest") as consumer:
        got = await _collect(consumer, 1600)
    per_key: dict[str, list[int]] = {}
    offsets: dict[int, list[int]] = {}
    for m in got:
        ev = m.event()
        per_key.setdefault(ev["match"], []).append(ev["ts"])
        offsets.setdefault(m.partition, []).append(m.offset)
    assert all(ts == list(range(200)) for ts in per_key.values()) and len(per_key) == 8
    assert all(o == list(range(len(o))) for o in offsets.values())


async def test_typed_helpers_validate_and_route_to_default_topics(bus: Bus) -> None:
    async with gamebus.Consumer(bus, [EVENTS_TOPIC, POSITIONS_TOPIC], start="latest") as consumer:
        async with gamebus.Producer(bus) as producer:
            with pytest.raises(InvalidEvent) as info:
                producer.position(match="m1", player="p", x="far", y=0.0, z=0.0, yaw=0.0, pitch=0.0)  # type: ignore[arg-type]
            assert info.value.field == "x"
            with pytest.raises(InvalidEvent):
                await producer.match_event("kill", match="m1", player="p")  # no target
            producer.position(match="m1", player="p", x=1.0, y=2.0, z=3.0, yaw=4.0, pitch=5.0)
            result = await producer.match_event(
                "kill", match="m1", player="p", target="q", weapon="rifle", headshot=True
            )
        assert result is not None and result.topic == EVENTS_TOPIC
        got = await _collect(consumer, 2)
    kinds = {(m.topic, m.event()["type"]) for m in got}
    assert kinds == {(POSITIONS_TOPIC, "pos"), (EVENTS_TOPIC, "kill")}


async def test_send_nowait_replaces_old_positions_but_refuses_to_drop_match_events(bus: Bus) -> None:
    async with gamebus.Producer(bus, linger_ms=10_000, batch_bytes=1 << 20,
                                max_buffer_bytes=1 << 20) as producer:  # fmt: skip
        pos = position(match="m9", player="p", x=0.0, y=0.0, z=0.0, yaw=0.0, pitch=0.0, pad="x" * 900)
        for _ in range(2000):
            producer.send_nowait(POSITIONS_TOPIC, pos)
        assert producer.dropped_positions > 0
        assert producer.buffered_bytes <= 1 << 20
        kill = match_event("kill", match="m9", player="p", target="q", weapon="w", headshot=False,
                           pad="y" * 60_000)  # fmt: skip
        with pytest.raises(LimitExceeded):
            for _ in range(100):
                producer.send_nowait(EVENTS_TOPIC, kill)


async def test_fetch_reads_history_and_subscriptions_resume_from_a_position(bus: Bus) -> None:
    topic = "rt.fetch"
    await bus.create_topic(topic, partitions=1)
    records = [decode_event_bytes(i) for i in range(30)]
    for i in range(0, 30, 10):
        await bus.produce(topic, 0, records[i : i + 10], acks="memory")
    batches = await bus.fetch(topic, 0, 10)
    assert [b.base_offset for b in batches] == [10, 20]
    sub = await bus.subscribe(topic, 0, Position(batches[0].epoch, 15))
    first = await asyncio.wait_for(sub.__aiter__().__anext__(), 5)
    assert first.base_offset == 15 and first.records == records[15:20]
    await sub.close()
    with pytest.raises(UnknownTopic):
        await bus.fetch("rt.nope", 0, 0)


def decode_event_bytes(i: int) -> bytes:
    ev = match_event("join", match="m", player=f"p{i}", ts=i)
    data = gamebus.events.encode_event(ev)
    assert decode_event(data) == ev
    return data


async def test_history_older_than_the_memory_window_is_read_from_segments(bus: Bus) -> None:
    topic = "rt.segments"
    await bus.create_topic(topic, partitions=1, memory_window_bytes=16_384, segment_bytes=65_536)
    records = [bytes([0xC4, 200]) + bytes([i % 256]) * 200 for i in range(2000)]
    for i in range(0, 2000, 50):
        await bus.produce(topic, 0, records[i : i + 50], acks="durable")
    sub = await bus.subscribe(topic, 0, "earliest", credit_bytes=32_768)
    got: list[bytes] = []
    async for batch in sub:
        assert batch.base_offset == len(got)
        got.extend(batch.records)
        if len(got) >= 2000:
            break
    await sub.close()
    assert got == records
    (info,) = await bus.metadata(topic)
    assert info.extra["memory_bytes"] < 100_000 and info.extra["size_bytes"] > 400_000


async def test_metrics_report_memory_window_bytes_per_topic(bus: Bus, shared_broker: BrokerProcess) -> None:
    import urllib.request

    await bus.create_topic("rt.window", partitions=2)
    await bus.produce("rt.window", 0, [b"x" * 100] * 10, acks="memory")
    with urllib.request.urlopen(shared_broker.admin_url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    line = next(x for x in text.splitlines() if x.startswith('gamebus_memory_window_bytes{topic="rt.window"}'))
    assert float(line.rsplit(" ", 1)[1]) >= 1000


def test_producer_ids_do_not_follow_the_seeded_random_module() -> None:
    import random

    from gamebus.client import _new_producer_id

    random.seed(7)
    first = _new_producer_id()
    random.seed(7)
    assert _new_producer_id() != first
