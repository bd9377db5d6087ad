"""A slow subscriber stalls only itself, and the broker's memory stays bounded."""

from __future__ import annotations

import asyncio
import socket
import time

import psutil

import gamebus
from gamebus.protocol import PROTOCOL_VERSION, encode_frame
from tests.support.broker import BrokerProcess

_EVENT_BYTES = 2000
_EVENTS_PER_PHASE = 25_000  # ~50 MB through one partition per phase


async def test_slow_subscribers_do_not_slow_others_or_grow_broker_memory(broker: BrokerProcess) -> None:
    bus = await gamebus.connect(broker.url)
    await bus.create_topic("flow.t", partitions=1)
    proc = psutil.Process(broker.pid)

    # A subscriber that never reads its socket, with 64 KiB of credit...
    stuck = socket.create_connection(("127.0.0.1", broker.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    stuck.sendall(
        encode_frame("hello", 0, {"version": PROTOCOL_VERSION})
        + encode_frame("subscribe", 1, {"sub": 1, "topic": "flow.t", "partition": 0,
                                         "start": "earliest", "credit": 65536})
    )  # fmt: skip
    # ...one that reads but never returns credit...
    slow = await bus.subscribe("flow.t", 0, "earliest", credit_bytes=65536)
    # ...and a fast one.
    fast = await bus.subscribe("flow.t", 0, "earliest", credit_bytes=4 << 20)
    got = 0

    async def read_fast(until: int) -> None:
        nonlocal got
        async for batch in fast:
            got += len(batch.records)
            if got >= until:
                return

    payload = b"\xc4" + b"x" * (_EVENT_BYTES - 1)
    producer_bus = await gamebus.connect(broker.url)
    rss: list[int] = [proc.memory_info().rss]
    async with gamebus.Producer(producer_bus, linger_ms=1, acks="memory") as producer:
        for phase in (1, 2, 3):
            reader = asyncio.ensure_future(read_fast(phase * _EVENTS_PER_PHASE))
            t0 = time.perf_counter()
            for i in range(_EVENTS_PER_PHASE):
                if i % 500 == 0:
                    await producer.send("flow.t", payload, partition=0)  # waits for room
                else:
                    producer.send_nowait("flow.t", payload, partition=0)
            await producer.flush()
            await asyncio.wait_for(reader, 30)
            elapsed = time.perf_counter() - t0
            assert elapsed < 15, f"the fast subscriber took {elapsed:.1f}s in phase {phase}"
            rss.append(proc.memory_info().rss)

    assert got == 3 * _EVENTS_PER_PHASE
    # The slow subscription received at most its credit plus one batch.
    assert slow._queued_bytes <= 65536 + 70_000  # type: ignore[attr-defined]
    info = (await bus.metadata("flow.t"))[0].extra
    # Producers are paused once the write-behind backlog passes its cap
    # (16 MiB), so the batch that crosses it is already in, with any frames
    # the same socket read had brought along (at most 256 KiB a read).
    assert info["pending_bytes"] <= (16 << 20) + (256 << 10)
    # Memory is bounded by the window (8 MiB), the write-behind cap (16 MiB),
    # the credits and the allocator's high-water mark, not by the traffic
    # (150 MB) nor by the stuck subscribers: it levels off.
    mb = [round(r / 1e6) for r in rss]
    assert rss[3] - rss[0] < 100 * 1024 * 1024, mb
    assert rss[3] - rss[2] < 16 * 1024 * 1024, mb
    stuck.close()
    await producer_bus.close()
    await bus.close()
