"""Consumer groups on one nats-server: sharing, leaving, dying, committing."""

from __future__ import annotations

import asyncio

import pytest

from gamebus.engines.jetstream import JetStreamBus, JetStreamMembership, connect_jetstream
from gamebus.errors import ConfigError, UnknownTopic
from tests.nats.support import NatsServer

pytestmark = pytest.mark.nats


async def wait_until_owned(
    members: list[JetStreamMembership], expected: dict[str, list[tuple[str, int]]]
) -> None:
    """Wait (bounded) until every member's assignment is what ``expected`` says."""

    async def settled() -> None:
        while {m.member: sorted(m.assignment) for m in members} != expected:
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(settled(), 10)
    except TimeoutError:
        got = {m.member: sorted(m.assignment) for m in members}
        raise AssertionError(f"assignments {got} never became {expected}") from None


async def test_two_members_split_the_partitions_and_one_leaving_hands_them_over(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=4)
    a = await bus.join_group("g", [topic], member="a", session_timeout_ms=2_000)
    assert sorted(a.assignment) == [(topic, p) for p in range(4)]
    gen1 = a.generation
    b = await bus.join_group("g", [topic], member="b", session_timeout_ms=2_000)
    assert isinstance(a, JetStreamMembership) and isinstance(b, JetStreamMembership)
    await wait_until_owned([a, b], {"a": [(topic, 0), (topic, 1)], "b": [(topic, 2), (topic, 3)]})
    assert a.generation == b.generation > gen1
    await b.leave()
    await wait_until_owned([a], {"a": [(topic, p) for p in range(4)]})
    await a.leave()


async def test_wait_for_change_returns_on_rebalance(bus: JetStreamBus, topic: str) -> None:
    await bus.create_topic(topic, partitions=2)
    a = await bus.join_group("g2", [topic], member="a", session_timeout_ms=2_000)
    waiter = asyncio.ensure_future(a.wait_for_change())
    await asyncio.sleep(0.1)
    assert not waiter.done()
    b = await bus.join_group("g2", [topic], member="b", session_timeout_ms=2_000)
    await asyncio.wait_for(waiter, 10)
    assert a.assignment == [(topic, 0)]
    await b.leave()
    await a.leave()


async def test_a_member_that_dies_loses_its_partitions_after_the_session_timeout(
    nats_server: NatsServer, bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=2)
    survivor = await bus.join_group("g3", [topic], member="a", session_timeout_ms=1_500)
    other_bus = await connect_jetstream(nats_server.url)
    doomed = await other_bus.join_group("g3", [topic], member="b", session_timeout_ms=1_500)
    assert isinstance(doomed, JetStreamMembership)
    await wait_until_owned([survivor, doomed], {"a": [(topic, 0)], "b": [(topic, 1)]})
    await doomed.halt()  # no leave: heartbeats just stop, like a crash
    await other_bus.nc.close()
    loop = asyncio.get_running_loop()
    died = loop.time()
    await wait_until_owned([survivor], {"a": [(topic, 0), (topic, 1)]})
    assert loop.time() - died >= 1.0  # not before the session timeout
    await survivor.leave()
    await other_bus.close()


async def test_joining_with_an_unknown_topic_or_bad_group_name_fails_early(
    bus: JetStreamBus, topic: str
) -> None:
    with pytest.raises(UnknownTopic):
        await bus.join_group("g4", [topic])
    await bus.create_topic(topic, partitions=1)
    with pytest.raises(ConfigError):
        await bus.join_group("bad.group", [topic])
