"""Restarts and crashes: idempotent retries, and nothing acked durable is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import gamebus
from gamebus.engines.embedded import EmbeddedBus
from gamebus.errors import EpochMismatch
from gamebus.events import encode_event, match_event
from tests.support.broker import BrokerProcess


def _kill(i: int, match: str = "m1") -> dict[str, object]:
    return match_event("kill", match=match, player="a", target="b", weapon="w", headshot=False, ts=i)


async def _read_all(bus: gamebus.engines.base.Bus, topic: str) -> list[int]:
    """Every event's ts in offset order, over all partitions."""
    out: list[int] = []
    for info in await bus.metadata(topic):
        offset = info.log_start
        while offset < info.log_end:
            batches = await bus.fetch(topic, info.partition, offset)
            for b in batches:
                out.extend(gamebus.events.decode_event(r)["ts"] for r in b.records[offset - b.base_offset :])
                offset = b.next_offset
    return out


async def test_a_retried_batch_is_recognised_after_a_broker_restart(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        bus = await gamebus.connect(broker.url)
        await bus.create_topic("dur.retry", partitions=1)
        records = [encode_event(_kill(i)) for i in range(3)]
        first = await bus.produce("dur.retry", 0, records, acks="durable", producer_id=77, sequence=0)
        broker.stop()
        broker.start()
        again = await bus.produce("dur.retry", 0, records, acks="durable", producer_id=77, sequence=0)
        nxt = await bus.produce("dur.retry", 0, records[:1], acks="durable", producer_id=77, sequence=1)
        assert first is not None and again is not None and nxt is not None
        assert (again.base_offset, again.duplicate) == (first.base_offset, True)
        assert (nxt.base_offset, nxt.duplicate) == (3, False)
        assert isinstance(bus, EmbeddedBus) and bus.reconnects == 1
        await bus.close()
    finally:
        broker.kill()


async def test_producer_stream_survives_a_restart_without_duplicates_or_reordering(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        async with gamebus.Producer(broker.url, linger_ms=1, batch_bytes=4096) as producer:
            await producer.bus.create_topic("dur.stream", partitions=1)
            await producer.bus.partitions("dur.stream")

            async def stream() -> None:
                for i in range(3000):
                    producer.send_nowait("dur.stream", _kill(i), acks="durable")
                    if i % 100 == 0:
                        await asyncio.sleep(0.005)

            task = asyncio.ensure_future(stream())
            await asyncio.sleep(0.05)
            await asyncio.to_thread(broker.stop)  # in-flight batches are replayed after it
            await asyncio.to_thread(broker.start)
            await task
            await producer.flush()
            assert await _read_all(producer.bus, "dur.stream") == list(range(3000))
    finally:
        broker.kill()


async def test_kill_9_during_durable_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    acked: list[int] = []
    try:
        bus = await gamebus.connect(broker.url, request_timeout_ms=20_000)
        await bus.create_topic("dur.crash", partitions=2)
        async with gamebus.Producer(bus, linger_ms=1) as producer:
            stop = asyncio.Event()

            async def writer(w: int) -> None:
                i = 0
                while not stop.is_set():
                    ts = w * 1_000_000 + i
                    await producer.send("dur.crash", _kill(ts, match=f"m{w}"), acks="durable")
                    acked.append(ts)
                    i += 1

            tasks = [asyncio.ensure_future(writer(w)) for w in range(8)]
            while len(acked) < 300:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(broker.kill)  # SIGKILL mid-stream
            killed_at = len(acked)
            await asyncio.to_thread(broker.start)
            while len(acked) < killed_at + 200:
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*tasks)
        stored = await _read_all(bus, "dur.crash")
        await bus.close()
    finally:
        broker.kill()
    assert len(stored) == len(set(stored)), "an event is stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost"
    epochs = {info.epoch for info in await _metadata_after(broker, tmp_path)}
    assert epochs and min(epochs) >= 1  # an unclean restart starts a new epoch


async def _metadata_after(broker: BrokerProcess, tmp_path: Path) -> list[gamebus.PartitionInfo]:
    broker.start()
    try:
        bus = await gamebus.connect(broker.url)
        try:
            return await bus.metadata("dur.crash")
        finally:
            await bus.close()
    finally:
        broker.stop()


async def test_subscriptions_resume_after_a_restart_and_surface_an_epoch_change(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text("[broker]\nflush_idle_ms = 600000\n")  # memory-acked data stays unflushed
    broker = BrokerProcess(tmp_path / "data", extra_args=["--config", str(config)]).start()
    try:
        bus = await gamebus.connect(broker.url)
        await bus.create_topic("dur.epoch", partitions=1)
        async with gamebus.Consumer(bus, ["dur.epoch"], start="earliest") as consumer:
            it = consumer.__aiter__()
            await bus.produce("dur.epoch", 0, [encode_event(_kill(i)) for i in range(5)], acks="durable")
            got = [await asyncio.wait_for(it.__anext__(), 10) for _ in range(5)]
            assert [m.offset for m in got] == [0, 1, 2, 3, 4]

            # A graceful restart: the subscription resumes, no gap, no repeat.
            await asyncio.to_thread(broker.restart)
            await bus.produce("dur.epoch", 0, [encode_event(_kill(5))], acks="durable")
            nxt = await asyncio.wait_for(it.__anext__(), 10)
            assert (nxt.offset, nxt.event()["ts"]) == (5, 5)

            # Memory-acked records the consumer saw, then a crash loses them.
            await bus.produce("dur.epoch", 0, [encode_event(_kill(i)) for i in range(6, 9)], acks="memory")
            seen = [await asyncio.wait_for(it.__anext__(), 10) for _ in range(3)]
            assert [m.offset for m in seen] == [6, 7, 8]
            old_epoch = seen[-1].epoch
            await asyncio.to_thread(broker.kill)
            await asyncio.to_thread(broker.start)
            with pytest.raises(EpochMismatch) as info:
                await asyncio.wait_for(it.__anext__(), 15)
            err = info.value
            assert (err.given, err.resume_offset) == (old_epoch, 6)  # type: ignore[attr-defined]
            assert err.current > old_epoch  # type: ignore[attr-defined]
            assert (err.topic, err.partition) == ("dur.epoch", 0)  # type: ignore[attr-defined]
            # Iterating again continues from the resync point.
            await bus.produce("dur.epoch", 0, [encode_event(_kill(100))], acks="durable")
            again = await asyncio.wait_for(consumer.__aiter__().__anext__(), 10)
            assert (again.offset, again.event()["ts"], again.epoch) == (6, 100, err.current)  # type: ignore[attr-defined]
        await bus.close()
    finally:
        broker.kill()
