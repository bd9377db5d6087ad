"""End to end: a real broker process, real relay processes, real WebSocket clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from gamebus.engines import connect
from gamebus.engines.base import Bus
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from tests.relay.support import Client, RelayProcess, kill, pos, token
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("relay-e2e") / "data") as b:
        yield b


@pytest.fixture(scope="module")
def relays(broker: BrokerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    logs = tmp_path_factory.mktemp("relay-logs")
    a = RelayProcess(broker.url, logs)
    b = RelayProcess(broker.url, logs, "--spectator-delay-ms", "300")
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def bus(broker: BrokerProcess) -> AsyncIterator[Bus]:
    b = await connect(broker.url)
    yield b
    await b.close()


def now_ms() -> int:
    return int(time.time() * 1000)


async def kills(bus: Bus, match: str, start: int, n: int, *, per_batch: int = 5) -> None:
    p = await bus.partition_for(EVENTS_TOPIC, match)
    for i in range(start, start + n, per_batch):
        await bus.produce(EVENTS_TOPIC, p, [kill(match, j, now_ms()) for j in range(i, min(i + per_batch, start + n))], acks="memory")


async def test_subscribe_and_receive_positions_and_events_in_order(relays: tuple[RelayProcess, RelayProcess], bus: Bus) -> None:
    relay, _ = relays
    client = await Client.open(relay.url, token(matches=["e2e-order"]))
    reply = await client.subscribe("e2e-order")
    assert reply["op"] == "subscribed" and reply["gap"] is False
    pp = await bus.partition_for(POSITIONS_TOPIC, "e2e-order")
    for tick in range(10):
        await bus.produce(POSITIONS_TOPIC, pp, [pos("e2e-order", f"p{i}", tick, i, now_ms()) for i in range(3)], acks="memory")
        await kills(bus, "e2e-order", tick, 1)
    got = await client.events(40)
    kills_seen = [e["seq"] for e in got if e["type"] == "kill"]
    positions = [(e["player"], e["x"]) for e in got if e["type"] == "pos"]
    assert kills_seen == list(range(10))
    assert positions == [(f"p{i}", t) for t in range(10) for i in range(3)]
    await client.close()


async def test_resume_on_another_relay_has_no_gap_and_no_duplicate(relays: tuple[RelayProcess, RelayProcess], bus: Bus) -> None:
    relay_a, relay_b = relays
    match = "e2e-resume"
    total = 300
    stop = asyncio.Event()

    async def produce() -> None:  # a steady stream throughout, disconnect included
        for i in range(0, total, 3):
            await kills(bus, match, i, 3, per_batch=3)
            await asyncio.sleep(0.005)
        stop.set()

    first = await Client.open(relay_a.url, token())
    await first.subscribe(match)
    producer = asyncio.create_task(produce())
    seen: list[int] = []
    resume = await first.read_seqs(seen, 60)
    await first.close()
    await asyncio.sleep(0.2)  # miss some
    second = await Client.open(relay_b.url, token())
    reply = await second.subscribe(match, resume=resume)
    assert reply["gap"] is False and reply["replayed"] > 0
    await second.read_seqs(seen, total, topic=EVENTS_TOPIC)
    await producer
    assert seen == list(range(total))
    await second.close()


async def test_token_failures_close_with_distinct_codes(relays: tuple[RelayProcess, RelayProcess]) -> None:
    from relay.tokens import issue_token

    relay, _ = relays
    cases = [
        (None, None, 4001),
        (issue_token(key="not-the-relay-secret-0123456789abcdef", sub="x", role="player"), None, 4001),
        (token(exp=int(time.time()) - 1), None, 4002),
        (token(matches=["mine"]), "theirs", 4003),
    ]
    for tok, match, code in cases:
        client = await Client.open(relay.url, tok)
        if match:
            await client.send({"op": "sub", "match": match})
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == code


async def test_area_of_interest_and_both_subprotocols(relays: tuple[RelayProcess, RelayProcess], bus: Bus) -> None:
    relay, _ = relays
    match = "e2e-area"
    everything_mp = await Client.open(relay.url, token(), fmt="msgpack")
    everything_js = await Client.open(relay.url, token(), fmt="json")
    near = await Client.open(relay.url, token(), fmt="json")
    for c in (everything_mp, everything_js):
        await c.subscribe(match)
    await near.subscribe(match, area={"x": 0, "y": 0, "r": 5})
    pp = await bus.partition_for(POSITIONS_TOPIC, match)
    await bus.produce(POSITIONS_TOPIC, pp, [pos(match, "in", 1, 1, now_ms()), pos(match, "out", 9, 9, now_ms())], acks="memory")
    await kills(bus, match, 0, 1)
    a, b = await everything_mp.events(3), await everything_js.events(3)
    assert a == b and [e.get("player") for e in a] == ["in", "out", "p0"]
    assert [e.get("player") for e in await near.events(2)] == ["in", "p0"]
    for c in (everything_mp, everything_js, near):
        await c.close()


async def test_spectators_lag_by_the_configured_delay(relays: tuple[RelayProcess, RelayProcess], bus: Bus) -> None:
    _, relay = relays  # started with --spectator-delay-ms 300
    match = "e2e-delay"
    player = await Client.open(relay.url, token("player"))
    spectator = await Client.open(relay.url, token("spectator"))
    await player.subscribe(match)
    assert (await spectator.subscribe(match))["delay_ms"] == 300
    t0 = time.monotonic()
    await kills(bus, match, 0, 1)
    await player.events(1)
    t_player = time.monotonic() - t0
    await spectator.events(1)
    t_spectator = time.monotonic() - t0
    assert t_player < 0.25 and 0.29 <= t_spectator < 1.5
    await player.close()
    await spectator.close()
