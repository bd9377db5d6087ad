"""Consumer groups: range assignment, rebalance when a member dies, durable commits."""

from __future__ import annotations

import asyncio

import gamebus
from gamebus.engines.embedded import EmbeddedBus
from gamebus.events import encode_event, match_event
from tests.support.broker import BrokerProcess


async def _until(predicate: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _die(bus: EmbeddedBus) -> None:
    """Vanish like a crashed process: no leave, no reconnect."""
    bus._closed = True
    for m in bus._members:
        if m._task is not None:
            m._task.cancel()
    conn = bus._conn
    assert conn is not None and conn.transport is not None
    conn.transport.abort()


async def test_group_rebalances_when_a_member_dies_and_resumes_from_commits(broker: BrokerProcess) -> None:
    admin = await gamebus.connect(broker.url)
    await admin.create_topic("grp.t", partitions=4)
    bus_a = await gamebus.connect(broker.url)
    bus_b = await gamebus.connect(broker.url)
    a = await gamebus.Consumer(bus_a, ["grp.t"], group="g1", start="earliest",
                               session_timeout_ms=1000, auto_commit_interval_ms=100).start()  # fmt: skip
    b = await gamebus.Consumer(bus_b, ["grp.t"], group="g1", start="earliest",
                               session_timeout_ms=1000, auto_commit_interval_ms=100).start()  # fmt: skip
    await _until(lambda: len(a.assignment) == 2 and len(b.assignment) == 2)
    assert sorted(a.assignment + b.assignment) == [("grp.t", p) for p in range(4)]

    seen: dict[str, set[int]] = {"a": set(), "b": set()}

    async def drain(name: str, consumer: gamebus.Consumer) -> None:
        async for m in consumer:
            seen[name].add(gamebus.events.decode_event(m.value)["ts"])

    tasks = [asyncio.ensure_future(drain("a", a)), asyncio.ensure_future(drain("b", b))]
    for p in range(4):
        records = [encode_event(match_event("join", match="m", player="p", ts=p * 100 + i))
                   for i in range(10)]  # fmt: skip
        await admin.produce("grp.t", p, records, acks="durable")
    await _until(lambda: len(seen["a"] | seen["b"]) == 40)
    await asyncio.sleep(0.3)  # let b auto-commit what it read

    assert isinstance(bus_b, EmbeddedBus)
    _die(bus_b)
    tasks[1].cancel()
    await _until(lambda: len(a.assignment) == 4)

    for p in range(4):
        records = [encode_event(match_event("join", match="m", player="p", ts=1000 + p * 100 + i))
                   for i in range(10)]  # fmt: skip
        await admin.produce("grp.t", p, records, acks="durable")
    await _until(lambda: len({t for t in seen["a"] if t >= 1000}) == 40)
    # a took over b's partitions from b's committed positions: nothing before them again.
    assert not {t for t in seen["a"] if t < 1000} & seen["b"]
    tasks[0].cancel()
    await a.close()
    committed = [await admin.committed("g1", "grp.t", p) for p in range(4)]
    assert all(c is not None and c.offset == 20 for c in committed)
    await bus_a.close()
    await admin.close()


async def test_a_member_that_stops_heartbeating_is_expired(broker: BrokerProcess) -> None:
    bus = await gamebus.connect(broker.url)
    await bus.create_topic("grp.hb", partitions=2)
    alive = await bus.join_group("g2", ["grp.hb"], session_timeout_ms=5000)
    quiet = await bus.join_group("g2", ["grp.hb"], session_timeout_ms=300)
    assert quiet._task is not None  # type: ignore[attr-defined]
    quiet._task.cancel()  # type: ignore[attr-defined]
    await _until(lambda: len(alive.assignment) == 1)
    await asyncio.wait_for(alive.wait_for_change(), 5)
    await _until(lambda: len(alive.assignment) == 2)
    await alive.leave()
    await bus.close()
