"""The relay edge against a real broker process: real relay, real WebSocket clients.

The relay runs in this process (a real :class:`relay.server.Relay` on real
loopback sockets) so tests can read its metrics and channel state; its bus
is a real ``gamebus://`` connection to a broker subprocess, and events are
published with the SDK (``bus.produce``). Tests that do not disturb the
broker share one per module and keep apart by match id; tests that crash
the broker (epoch changes, a bus failure mid-replay) get their own.

How the bus conditions are made for real:

- a new epoch: ``kill -9`` the broker and start it again on the same data
  directory (an unclean shutdown always starts a new epoch, see
  ``gamebus/log/README.md``);
- history gone: a topic created with tiny ``segment_bytes`` /
  ``retention_bytes`` and a broker that checks retention every 100 ms (its
  config file), with the relay's ``match_topics`` pointed at it;
- a bus failure during a replay: ``kill -9`` while the relay is reading the
  history, with a short ``request_timeout_ms`` on the relay's bus.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed

import gamebus
from gamebus.engines.base import Bus
from gamebus.events import ALERTS_TOPIC, EVENTS_TOPIC, POSITIONS_TOPIC, encode_event, match_event
from relay.channels import Channel
from relay.config import RelayConfig
from relay.server import Relay
from tests.relay.support import SECRET, Client, kill, pos, token
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(60)

#: Broker settings for this module: retention checked often enough to observe.
BROKER_CONFIG = {"broker": {"retention_check_ms": 100}}


def broker_in(directory: Path, **broker_settings: Any) -> BrokerProcess:
    config = directory / "broker.json"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"broker": {**BROKER_CONFIG["broker"], **broker_settings}}))
    return BrokerProcess(directory / "data", extra_args=("--config", str(config)))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with broker_in(tmp_path_factory.mktemp("relay-edge")) as b:
        yield b


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker for one test, which may kill and restart it."""
    b = broker_in(tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.stop()


def uid(name: str) -> str:
    """A match id no other test (or earlier run on the module broker) uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def connect(broker: BrokerProcess, **options: Any) -> Bus:
    # Reconnect quickly after a broker restart: the default backoff grows to 2 s.
    options.setdefault("reconnect_max_ms", 200)
    return await gamebus.connect(broker.url, **options)


async def start_relay(broker: BrokerProcess, *, bus_options: dict[str, Any] | None = None, **overrides: Any) -> Relay:
    bus = await connect(broker, **(bus_options or {}))
    config = RelayConfig(bus_url=broker.url, port=0, http_port=0, jwt_key=SECRET, **overrides)
    return await Relay(config, bus=bus).start()


async def stop_relay(relay: Relay) -> None:
    await relay.close()
    assert relay.bus is not None
    await relay.bus.close()  # handed in, so ours to close


@pytest.fixture
async def relay(broker: BrokerProcess) -> AsyncIterator[Relay]:
    r = await start_relay(broker)
    yield r
    await stop_relay(r)


@pytest.fixture
async def bus(broker: BrokerProcess) -> AsyncIterator[Bus]:
    """The game server's side: a separate SDK connection that publishes."""
    b = await connect(broker)
    yield b
    await b.close()


def url(relay: Relay) -> str:
    return f"ws://127.0.0.1:{relay.port}"


def now_ms() -> int:
    return int(time.time() * 1000)


async def produce_kills(
    bus: Bus, match: str, start: int, n: int, *, per_batch: int = 5, topic: str = EVENTS_TOPIC, acks: Any = "memory"
) -> None:
    p = await bus.partition_for(topic, match)
    for i in range(start, start + n, per_batch):
        records = [kill(match, j, now_ms()) for j in range(i, min(i + per_batch, start + n))]
        await bus.produce(topic, p, records, acks=acks)


async def produce_positions(bus: Bus, match: str, records: list[bytes], *, acks: Any = "memory") -> None:
    await bus.produce(POSITIONS_TOPIC, await bus.partition_for(POSITIONS_TOPIC, match), records, acks=acks)


async def eventually(check: Callable[[], bool], *, timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout_s} s")
        await asyncio.sleep(0.01)


async def epochs_of(bus: Bus, match: str) -> dict[str, int]:
    out = {}
    for topic in (POSITIONS_TOPIC, EVENTS_TOPIC):
        p = await bus.partition_for(topic, match)
        out[topic] = next(i.epoch for i in await bus.metadata(topic) if i.partition == p)
    return out


def answer_to(request_id: int) -> Callable[[dict[str, Any]], bool]:
    return lambda message: message.get("id") == request_id


async def closed_with(client: Client, timeout: float = 5.0) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await client.recv(timeout=timeout)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


# -- data path ----------------------------------------------------------------


async def test_subscriber_receives_match_events_in_order(relay: Relay, bus: Bus) -> None:
    m1, m2 = uid("order"), uid("order-other")
    client = await Client.open(url(relay), token())
    reply = await client.subscribe(m1)
    assert reply["op"] == "subscribed" and reply["gap"] is False and reply["replayed"] == 0
    await produce_kills(bus, m1, 0, 40)
    await produce_kills(bus, m2, 0, 10)  # another match, maybe the same partition
    events = await client.events(40, topic=EVENTS_TOPIC)
    assert [e["seq"] for e in events] == list(range(40))
    assert all(e["match"] == m1 for e in events)
    await client.close()


async def test_one_bus_subscription_is_shared_and_released(relay: Relay, bus: Bus) -> None:
    match = uid("shared")
    partitions = {t: await bus.partition_for(t, match) for t in (POSITIONS_TOPIC, EVENTS_TOPIC)}

    async def broker_subscribers() -> dict[str, int]:  # as the broker itself counts them
        return {
            t: next(int(i.extra["subscribers"]) for i in await bus.metadata(t) if i.partition == p)
            for t, p in partitions.items()
        }

    before = await broker_subscribers()
    clients = [await Client.open(url(relay), token()) for _ in range(5)]
    for c in clients:
        await c.subscribe(match)
    assert set(relay.feeds) == set(partitions.items())  # positions + events partitions of the match, once
    assert relay.metrics.bus_subscriptions._value.get() == 2
    assert await broker_subscribers() == {t: n + 1 for t, n in before.items()}
    await produce_kills(bus, match, 0, 5)
    for c in clients:
        assert [e["seq"] for e in await c.events(5, topic=EVENTS_TOPIC)] == list(range(5))
    # five clients, one encoded frame per bus batch
    assert relay.metrics.frames_encoded._value.get() == 1
    assert relay.metrics.frames_out._value.get() == 5
    for c in clients:
        await c.close()
    await eventually(lambda: not relay.feeds and not relay.channels, what="feeds released")
    assert relay.feeds == {} and relay.channels == {}
    assert relay.metrics.bus_subscriptions._value.get() == 0
    deadline = time.monotonic() + 5
    while await broker_subscribers() != before and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert await broker_subscribers() == before


async def test_resume_replays_missed_events_with_no_gap_and_no_duplicate(relay: Relay, bus: Bus) -> None:
    match = uid("resume")
    client = await Client.open(url(relay), token())
    await client.subscribe(match)
    await produce_kills(bus, match, 0, 20)
    position: dict[str, int] = {}
    epochs: dict[str, int] = {}
    got: list[int] = []
    while len(got) < 20:
        msg = await client.recv()
        if msg["op"] == "events":
            got += [e["seq"] for e in msg["events"]]
            position.update(msg["position"]["offsets"])
            epochs.update({t: msg["position"]["epoch"] for t in msg["position"]["offsets"]})
    assert got == list(range(20))
    await client.close()
    await produce_kills(bus, match, 20, 30)  # missed while away

    async def keep_producing() -> None:  # live batches race the history read
        for i in range(50, 100, 5):
            await produce_kills(bus, match, i, 5)
            await asyncio.sleep(0.003)

    again = await Client.open(url(relay), token())
    producer = asyncio.create_task(keep_producing())
    reply = await again.subscribe(match, resume={"offsets": position, "epochs": epochs})
    assert reply["op"] == "subscribed" and reply["gap"] is False and reply["gaps"] == {}
    assert reply["replayed"] >= 30
    await producer
    rest = await again.events(80, topic=EVENTS_TOPIC)
    assert [e["seq"] for e in rest] == list(range(20, 100))
    await again.close()


async def test_resume_behind_the_log_start_reports_history_gone(broker: BrokerProcess, bus: Bus) -> None:
    # The default topics keep days of history; a topic of our own with tiny
    # segments and a byte bound loses its head for real within ~100 ms.
    prefix = uid("retained")
    positions, events = f"{prefix}.positions", f"{prefix}.events"
    await bus.create_topic(positions, partitions=1)
    await bus.create_topic(events, partitions=1, segment_bytes=512, retention_bytes=1024)
    match = uid("history")
    # Relay A watches the match before retention runs (its feed still believes
    # the log starts at 0: the gap shows when the history read is refused);
    # relay B starts after (the resume plan sees the new log start at once).
    relay_a = await start_relay(broker, match_topics=(positions, events))
    relay_b: Relay | None = None
    try:
        watcher = await Client.open(url(relay_a), token())
        await watcher.subscribe(match)
        for i in range(20):  # one record per batch: many small segments
            await produce_kills(bus, match, i, 1, topic=events, acks="durable")
        assert [e["seq"] for e in await watcher.events(20, topic=events)] == list(range(20))

        async def log_start() -> int:
            return (await bus.metadata(events))[0].log_start

        deadline = time.monotonic() + 10
        while await log_start() <= 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        start = await log_start()
        assert start > 2, "retention deleted nothing"
        with pytest.raises(gamebus.errors.OffsetOutOfRange):
            await bus.fetch(events, 0, 2)  # the broker agrees: offset 2 is gone
        epoch = (await bus.metadata(events))[0].epoch
        relay_b = await start_relay(broker, match_topics=(positions, events))
        for relay in (relay_a, relay_b):
            client = await Client.open(url(relay), token())
            reply = await client.subscribe(match, resume={"epoch": epoch, "offsets": {events: 2}})
            assert reply["op"] == "subscribed" and reply["gap"] is True and reply["gaps"] == {events: "history"}
            assert reply["replayed"] == 0 and reply["position"]["offsets"][events] == 20
            snap = await client.until(lambda m: m["op"] == "snapshot")
            assert snap["reason"] == "history"
            # ... and what is still retained replays exactly, from the log start.
            again = await Client.open(url(relay), token())
            reply = await again.subscribe(match, resume={"epoch": epoch, "offsets": {events: start}})
            assert reply["gap"] is False and reply["replayed"] == 20 - start
            assert [e["seq"] for e in await again.events(20 - start, topic=events)] == list(range(start, 20))
            await client.close()
            await again.close()
        await watcher.close()
    finally:
        await stop_relay(relay_a)
        if relay_b is not None:
            await stop_relay(relay_b)


# -- bus failures: each test has its own broker to kill ------------------------


async def test_resume_from_a_gone_epoch_reports_the_gap_and_sends_a_snapshot(own_broker: BrokerProcess) -> None:
    match = uid("gone-epoch")
    bus = await connect(own_broker)
    relay = await start_relay(own_broker)
    try:
        await produce_positions(bus, match, [pos(match, "p1", 1.0, 2.0, 1)], acks="durable")  # before the relay watched
        await produce_kills(bus, match, 0, 1, acks="durable")
        watcher = await Client.open(url(relay), token())
        saved = (await watcher.subscribe(match))["position"]  # where a client left off, epoch included
        before = await epochs_of(bus, match)
        assert saved["epochs"] == before

        own_broker.kill()  # unclean: the next start begins a new epoch on every partition
        own_broker.start()
        after = await epochs_of(bus, match)
        assert all(after[t] > before[t] for t in before), (before, after)
        await produce_positions(bus, match, [pos(match, "p2", 5.0, 5.0, 2)])
        await produce_kills(bus, match, 1, 1)
        await watcher.events(2)  # the relay's feeds are in the new epoch now

        client = await Client.open(url(relay), token())
        reply = await client.subscribe(match, resume=saved)
        assert reply["op"] == "subscribed" and reply["gap"] is True
        assert reply["gaps"] == {EVENTS_TOPIC: "epoch", POSITIONS_TOPIC: "epoch"}
        assert reply["replayed"] == 0 and reply["position"]["epochs"] == after
        snap = await client.until(lambda m: m["op"] == "snapshot")
        assert set(snap["players"]) == {"p2"} and snap["reason"] == "epoch"
        await client.close()
        await watcher.close()
    finally:
        await stop_relay(relay)
        await bus.close()


async def test_a_live_epoch_change_is_announced_with_a_snapshot(own_broker: BrokerProcess) -> None:
    match = uid("live-epoch")
    bus = await connect(own_broker)
    relay = await start_relay(own_broker)
    try:
        client = await Client.open(url(relay), token())
        await client.subscribe(match)
        await produce_positions(bus, match, [pos(match, "p1", 1.0, 1.0, 1)], acks="durable")
        await produce_kills(bus, match, 0, 5, acks="durable")  # on disk: the restart loses nothing
        first = await client.until(lambda m: m["op"] == "events" and m["topic"] == EVENTS_TOPIC)
        before = (await epochs_of(bus, match))[EVENTS_TOPIC]
        assert first["position"]["epoch"] == before
        own_broker.kill()  # an unclean restart
        own_broker.start()
        # A read is re-sent across the reconnect (a plain produce would fail with ConnectionLost).
        assert (await epochs_of(bus, match))[EVENTS_TOPIC] > before
        await produce_kills(bus, match, 5, 5)
        snap = await client.until(lambda m: m["op"] == "snapshot")
        assert snap["reason"] == "epoch" and set(snap["players"]) == {"p1"}
        after = await client.until(lambda m: m["op"] == "events" and m["topic"] == EVENTS_TOPIC)
        assert after["position"]["epoch"] == (await epochs_of(bus, match))[EVENTS_TOPIC] > before
        assert [e["seq"] for e in after["events"]] == list(range(5, 10))
        await client.close()
    finally:
        await stop_relay(relay)
        await bus.close()


async def test_a_live_epoch_change_that_lost_the_tail_is_announced_with_a_snapshot(tmp_path: Path) -> None:
    match = uid("lost-tail")
    # Write-behind every 60 s: memory-acked records stay unwritten until the kill.
    broker = broker_in(tmp_path / "broker", flush_idle_ms=60_000).start()
    bus = await connect(broker)
    relay = await start_relay(broker)
    try:
        client = await Client.open(url(relay), token())
        await client.subscribe(match)
        await produce_positions(bus, match, [pos(match, "p1", 1.0, 1.0, 1)])
        await produce_kills(bus, match, 0, 5)  # acks=memory: acked, not yet written
        assert [e["seq"] for e in await client.events(5, topic=EVENTS_TOPIC)] == list(range(5))
        before = await epochs_of(bus, match)
        broker.kill()
        broker.start()
        infos = {i.partition: i for i in await bus.metadata(EVENTS_TOPIC)}
        lost = infos[await bus.partition_for(EVENTS_TOPIC, match)]
        assert lost.epoch > before[EVENTS_TOPIC] and lost.log_end < 5  # the tail is really gone
        await produce_kills(bus, match, 5, 5)
        msg = await client.until(lambda m: m["op"] in ("snapshot", "events"))
        assert msg["op"] == "snapshot" and msg["reason"] == "epoch", msg
        after = await client.until(lambda m: m["op"] == "events" and m["topic"] == EVENTS_TOPIC)
        assert after["position"]["epoch"] == lost.epoch
        assert [e["seq"] for e in after["events"]] == list(range(5, 10))
        await client.close()
    finally:
        await stop_relay(relay)
        await bus.close()
        broker.stop()


async def test_a_bus_failure_during_replay_is_an_error_and_leaves_nothing_parked(own_broker: BrokerProcess) -> None:
    match = uid("replay-fails")
    bus = await connect(own_broker)
    # A short request timeout: the relay's bus re-sends reads after a reconnect,
    # so with the broker gone a history read fails when the timeout passes.
    relay = await start_relay(own_broker, bus_options={"request_timeout_ms": 1000})
    try:
        # Enough history (~3 MB) that reading it back takes several fetches.
        p = await bus.partition_for(EVENTS_TOPIC, match)
        first = None
        for i in range(0, 20_000, 500):
            result = await bus.produce(EVENTS_TOPIC, p, [kill(match, j, now_ms()) for j in range(i, i + 500)])
            first = result.base_offset if first is None and result is not None else first
        assert first is not None
        epochs = await epochs_of(bus, match)
        resume = {"epochs": epochs, "offsets": {EVENTS_TOPIC: first}}
        watcher = await Client.open(url(relay), token())
        await watcher.subscribe(match)  # the channel and its feeds exist, live after the history
        channel: Channel = relay.channels[match]

        client = await Client.open(url(relay), token())
        rid = await client.send({"op": "sub", "match": match, "resume": resume})
        async with asyncio.timeout(5):
            while not channel.parked:  # no sleep: catch the relay at its first history read
                await asyncio.sleep(0)
        own_broker.kill()
        killed = time.monotonic()
        reply = await client.until(lambda m: m.get("id") == rid, timeout=10)
        assert reply["op"] == "error" and reply["code"] == "unavailable", reply
        assert reply["message"].startswith(("RequestTimedOut", "ConnectionLost")), reply
        assert time.monotonic() - killed < 5  # the request timeout, not a hang
        assert relay.channels.get(match) is channel and not channel.parked
        assert channel.subscriber(1) is not None and len(channel) == 1  # the watcher stays, live
        await client.send({"op": "ping", "id": 99})
        assert (await client.until(lambda m: m.get("id") == 99))["op"] == "pong"
        await client.close()
        await watcher.close()
    finally:
        await stop_relay(relay)
        await bus.close()


# -- clients ------------------------------------------------------------------


@pytest.mark.parametrize("tok", [None, "not.a.jwt", "forged"])
async def test_bad_tokens_are_closed_with_4001(relay: Relay, tok: str | None) -> None:
    client = await Client.open(url(relay), tok)
    with pytest.raises(ConnectionClosed) as info:
        await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_forged_expired_and_forbidden_tokens_get_distinct_codes(relay: Relay) -> None:
    from relay.tokens import issue_token

    forged = issue_token(key="another-key-entirely-0123456789abcdef", sub="x", role="player")
    expired = token(exp=int(time.time()) - 5)
    mine, theirs = uid("mine"), uid("theirs")
    cases = [(forged, None, 4001), (expired, None, 4002), (token(matches=[mine]), theirs, 4003)]
    for tok, match, code in cases:
        client = await Client.open(url(relay), tok)
        if match is not None:
            await client.send({"op": "sub", "match": match})
        assert (await closed_with(client))[0] == code, (tok, code)
    player = await Client.open(url(relay), token())
    await player.send({"op": "sub_alerts"})
    assert (await closed_with(player))[0] == 4003


async def test_area_of_interest_sends_only_positions_inside_but_every_match_event(relay: Relay, bus: Bus) -> None:
    match = uid("area")
    near = await Client.open(url(relay), token())
    await near.subscribe(match, area={"x": 0, "y": 0, "r": 10})
    follow = await Client.open(url(relay), token())
    await follow.subscribe(match, follow="p3")
    await produce_positions(
        bus, match,
        [pos(match, "p1", 1, 1, 1), pos(match, "p2", 50, 50, 1), pos(match, "p3", 9.9, 0, 1), pos(match, "p4", -3, 4, 1)],
    )  # fmt: skip
    await produce_kills(bus, match, 0, 1)
    got_near = await near.events(4)
    assert [(e["type"], e.get("player")) for e in got_near] == [("pos", "p1"), ("pos", "p3"), ("pos", "p4"), ("kill", "p0")]
    got_follow = await follow.events(2)
    assert [(e["type"], e.get("player")) for e in got_follow] == [("pos", "p3"), ("kill", "p0")]
    # change the area on the fly, acknowledged
    await near.send({"op": "area", "id": 7, "match": match, "area": {"x": 50, "y": 50, "r": 1}, "follow": None})
    assert await near.until(lambda m: m.get("id") == 7) == {"op": "area", "id": 7, "match": match}
    await produce_positions(bus, match, [pos(match, "p1", 1, 1, 2), pos(match, "p2", 50, 50, 2)])
    assert [e["player"] for e in await near.events(1)] == ["p2"]
    await near.close()
    await follow.close()


async def test_json_and_msgpack_subprotocols_carry_the_same_events(relay: Relay, bus: Bus) -> None:
    match = uid("formats")
    mp = await Client.open(url(relay), token(), fmt="msgpack")
    js = await Client.open(url(relay), token(), fmt="json")
    assert mp.ws.subprotocol == "gamebus.v1.msgpack" and js.ws.subprotocol == "gamebus.v1.json"
    await mp.subscribe(match)
    await js.subscribe(match)
    await produce_positions(bus, match, [pos(match, "p1", 1.5, -2.25, 7, vx=0.5)])
    await produce_kills(bus, match, 0, 3)
    a = await mp.events(4)
    b = await js.events(4)
    assert a == b and len(a) == 4
    assert a[0]["x"] == 1.5 and a[0]["y"] == -2.25 and a[0]["vx"] == 0.5
    await mp.close()
    await js.close()


async def test_malformed_client_messages_get_error_frames_and_the_connection_lives(relay: Relay) -> None:
    client = await Client.open(url(relay), token())
    await client.ws.send(b"\xc1garbage")
    err = await client.recv()
    assert err["op"] == "error" and err["code"] == "bad_message"
    await client.ws.send("text on a binary subprotocol")
    assert (await client.recv())["code"] == "bad_message"
    await client.send({"op": "sub", "id": 9, "match": 12})
    err = await client.recv()
    assert err == {"op": "error", "id": 9, "code": "bad_field", "message": err["message"]} and "match" in err["message"]
    await client.send({"op": "launch", "id": 10})
    assert (await client.recv())["code"] == "bad_op"
    await client.send({"op": "ping", "id": 11})
    pong = await client.recv()
    assert pong["op"] == "pong" and pong["id"] == 11
    await client.close()


async def test_oversized_client_frames_close_with_1009(relay: Relay) -> None:
    client = await Client.open(url(relay), token())
    await client.ws.send(b"\x00" * (relay.config.max_message_bytes + 1))
    with pytest.raises(ConnectionClosed) as info:
        await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_message_rate_limit_closes_with_4008(broker: BrokerProcess) -> None:
    relay = await start_relay(broker, message_rate_per_s=1.0, message_burst=3)
    try:
        client = await Client.open(url(relay), token())
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(10):
                await client.send({"op": "ping"})
            while True:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4008
    finally:
        await stop_relay(relay)


async def test_spectators_are_held_behind_live_and_players_are_not(broker: BrokerProcess, bus: Bus) -> None:
    match = uid("delay")
    relay = await start_relay(broker, spectator_delay_ms=300)
    try:
        player = await Client.open(url(relay), token("player"))
        spectator = await Client.open(url(relay), token("spectator"))
        assert (await player.subscribe(match))["delay_ms"] == 0
        reply = await spectator.subscribe(match)
        assert reply["delay_ms"] == 300
        sent = time.monotonic()
        await produce_kills(bus, match, 0, 5)
        assert len(await player.events(5, topic=EVENTS_TOPIC)) == 5
        player_s = time.monotonic() - sent
        events = await spectator.events(5, topic=EVENTS_TOPIC)
        spectator_s = time.monotonic() - sent
        assert [e["seq"] for e in events] == list(range(5))
        assert player_s < 0.2 and 0.29 <= spectator_s < 1.0
    finally:
        await stop_relay(relay)


async def test_healthz_and_metrics_answer(relay: Relay, bus: Bus) -> None:
    match = uid("metrics")
    client = await Client.open(url(relay), token())
    await client.subscribe(match)
    await produce_kills(bus, match, 0, 5)
    await client.events(5, topic=EVENTS_TOPIC)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{relay.http_port}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok", "clients": 1, "matches": 1, "feeds": 2}
        async with http.get(f"http://127.0.0.1:{relay.http_port}/metrics") as resp:
            text = await resp.text()
    assert "gamebus_relay_clients 1.0" in text
    assert "gamebus_relay_frames_out_total 1.0" in text
    assert "gamebus_relay_publish_to_send_seconds_count 1.0" in text
    await client.close()


async def test_analysts_get_alerts_for_the_matches_in_their_token(relay: Relay, bus: Bus) -> None:
    m1, m2 = uid("alerts-1"), uid("alerts-2")
    everything = await Client.open(url(relay), token("analyst"))
    only_m2 = await Client.open(url(relay), token("analyst", matches=[m2]), fmt="json")
    for c in (everything, only_m2):
        rid = await c.send({"op": "sub_alerts"})
        reply = await c.until(answer_to(rid))
        assert reply["op"] == "subscribed" and reply["alerts"] is True
    for match in (m1, m2):
        alert = match_event("anticheat.alert", match=match, ts=1, player="p9", score=0.97, kind="aimbot")
        await bus.produce(ALERTS_TOPIC, await bus.partition_for(ALERTS_TOPIC, match), [encode_event(alert)], acks="durable")
    got = [await everything.until(lambda m: m["op"] == "alert") for _ in range(2)]
    assert sorted(m["alert"]["match"] for m in got) == sorted([m1, m2])
    only = await only_m2.until(lambda m: m["op"] == "alert")
    assert only["alert"]["match"] == m2 and only["alert"]["kind"] == "aimbot"
    with pytest.raises(TimeoutError):  # and never m1's
        await only_m2.until(lambda m: m["op"] == "alert", timeout=0.3)
    await everything.close()
    await only_m2.close()


async def test_resubscribing_keeps_the_bus_feeds_alive(relay: Relay, bus: Bus) -> None:
    match = uid("resub")
    client = await Client.open(url(relay), token())
    await client.subscribe(match)
    await client.subscribe(match)  # replaces the subscription: the feeds must survive
    await asyncio.sleep(0.05)
    assert set(relay.feeds) == {(t, await bus.partition_for(t, match)) for t in (POSITIONS_TOPIC, EVENTS_TOPIC)}
    await produce_kills(bus, match, 0, 5)
    assert [e["seq"] for e in await client.events(5, topic=EVENTS_TOPIC)] == list(range(5))
    await client.close()


async def test_connections_per_address_are_limited_and_idle_ones_closed(broker: BrokerProcess) -> None:
    match = uid("limits")
    relay = await start_relay(broker, max_connections_per_peer=2, idle_timeout_s=0.3)
    try:
        keep = [await Client.open(url(relay), token()) for _ in range(2)]
        for c in keep:
            await c.subscribe(match)  # subscribed: not idle
        extra = await Client.open(url(relay), token())
        with pytest.raises(ConnectionClosed) as info:
            await extra.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4008
        await keep[1].send({"op": "unsub", "match": match})
        assert await closed_with(keep[1], timeout=3) == (1000, "idle")
        await keep[0].send({"op": "ping", "id": 5})
        assert (await keep[0].until(lambda m: m.get("id") == 5))["op"] == "pong"
        await keep[0].close()
    finally:
        await stop_relay(relay)
