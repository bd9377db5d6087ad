"""The relay edge in-process against an in-memory bus: real WebSocket clients.

These pin the behaviour that needs precise control of the bus (gaps, epoch
changes, a history read overtaken by live batches); the end-to-end suite
(test_relay_e2e.py) repeats the essentials against a real broker process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed

from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from relay.config import RelayConfig
from relay.server import Relay
from tests.relay.fakebus import FakeBus
from tests.relay.support import SECRET, Client, kill, pos, token

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


async def _relay(bus: FakeBus, **overrides: object) -> Relay:
    config = RelayConfig(bus_url="fake://", port=0, http_port=0, jwt_key=SECRET, **overrides)  # type: ignore[arg-type]
    return await Relay(config, bus=bus).start()  # type: ignore[arg-type]


@pytest.fixture
async def relay(bus: FakeBus) -> AsyncIterator[Relay]:
    r = await _relay(bus)
    yield r
    await r.close()


def url(relay: Relay) -> str:
    return f"ws://127.0.0.1:{relay.port}"


async def produce_kills(bus: FakeBus, match: str, start: int, n: int, *, per_batch: int = 5) -> None:
    p = await bus.partition_for(EVENTS_TOPIC, match)
    ts = int(time.time() * 1000)
    for i in range(start, start + n, per_batch):
        await bus.produce(EVENTS_TOPIC, p, [kill(match, j, ts) for j in range(i, min(i + per_batch, start + n))])


async def test_subscriber_receives_match_events_in_order(relay: Relay, bus: FakeBus) -> None:
    client = await Client.open(url(relay), token())
    reply = await client.subscribe("m1")
    assert reply["op"] == "subscribed" and reply["gap"] is False and reply["replayed"] == 0
    await produce_kills(bus, "m1", 0, 40)
    await produce_kills(bus, "m2", 0, 10)  # another match, maybe the same partition
    events = await client.events(40, topic=EVENTS_TOPIC)
    assert [e["seq"] for e in events] == list(range(40))
    assert all(e["match"] == "m1" for e in events)
    await client.close()


async def test_one_bus_subscription_is_shared_and_released(relay: Relay, bus: FakeBus) -> None:
    clients = [await Client.open(url(relay), token()) for _ in range(5)]
    for c in clients:
        await c.subscribe("m1")
    assert len(relay.feeds) == 2  # positions + events partitions of m1, once
    await produce_kills(bus, "m1", 0, 5)
    for c in clients:
        assert len(await c.events(5, topic=EVENTS_TOPIC)) == 5
    # five clients, one encoded frame per bus batch
    assert relay.metrics.frames_encoded._value.get() == 1
    for c in clients:
        await c.close()
    for _ in range(50):
        if not relay.feeds:
            break
        await asyncio.sleep(0.02)
    assert relay.feeds == {} and relay.channels == {}


async def test_resume_replays_missed_events_with_no_gap_and_no_duplicate(relay: Relay, bus: FakeBus) -> None:
    client = await Client.open(url(relay), token())
    await client.subscribe("m1")
    await produce_kills(bus, "m1", 0, 20)
    position: dict[str, int] = {}
    epochs: dict[str, int] = {}
    got: list[int] = []
    while len(got) < 20:
        msg = await client.recv()
        if msg["op"] == "events":
            got += [e["seq"] for e in msg["events"]]
            position.update(msg["position"]["offsets"])
            epochs.update({t: msg["position"]["epoch"] for t in msg["position"]["offsets"]})
    await client.close()
    await produce_kills(bus, "m1", 20, 30)  # missed while away

    async def keep_producing() -> None:  # live batches race the history read
        for i in range(50, 100, 5):
            await produce_kills(bus, "m1", i, 5)
            await asyncio.sleep(0.003)

    again = await Client.open(url(relay), token())
    producer = asyncio.create_task(keep_producing())
    reply = await again.subscribe("m1", resume={"offsets": position, "epochs": epochs})
    assert reply["op"] == "subscribed" and reply["gap"] is False
    assert reply["replayed"] >= 30
    await producer
    rest = await again.events(80, topic=EVENTS_TOPIC)
    assert [e["seq"] for e in rest] == list(range(20, 100))
    await again.close()


async def test_resume_from_a_gone_epoch_reports_the_gap_and_sends_a_snapshot(relay: Relay, bus: FakeBus) -> None:
    p = await bus.partition_for(POSITIONS_TOPIC, "m1")
    await bus.produce(POSITIONS_TOPIC, p, [pos("m1", "p1", 1.0, 2.0, 1)])
    watcher = await Client.open(url(relay), token())
    await watcher.subscribe("m1")
    await bus.produce(POSITIONS_TOPIC, p, [pos("m1", "p2", 5.0, 5.0, 2)])
    await watcher.events(1)
    client = await Client.open(url(relay), token())
    reply = await client.subscribe("m1", resume={"epoch": 99, "offsets": {EVENTS_TOPIC: 0, POSITIONS_TOPIC: 0}})
    assert reply["gap"] is True and reply["gaps"] == {EVENTS_TOPIC: "epoch", POSITIONS_TOPIC: "epoch"}
    snap = await client.until(lambda m: m["op"] == "snapshot")
    assert set(snap["players"]) == {"p2"} and snap["reason"] == "epoch"
    await client.close()
    await watcher.close()


async def test_resume_behind_the_log_start_reports_history_gone(relay: Relay, bus: FakeBus) -> None:
    await produce_kills(bus, "m1", 0, 10)
    part = bus._part(EVENTS_TOPIC, await bus.partition_for(EVENTS_TOPIC, "m1"))
    part.log_start = 5
    client = await Client.open(url(relay), token())
    reply = await client.subscribe("m1", resume={"epoch": 1, "offsets": {EVENTS_TOPIC: 2}})
    assert reply["gap"] is True and reply["gaps"] == {EVENTS_TOPIC: "history"}
    await client.close()


@pytest.mark.parametrize(
    ("tok", "code"),
    [
        (None, 4001),
        ("not.a.jwt", 4001),
        ("forged", 4001),
    ],
)
async def test_bad_tokens_are_closed_with_4001(relay: Relay, tok: str | None, code: int) -> None:
    client = await Client.open(url(relay), tok)
    with pytest.raises(ConnectionClosed) as info:
        await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == code


async def test_forged_expired_and_forbidden_tokens_get_distinct_codes(relay: Relay) -> None:
    from relay.tokens import issue_token

    forged = issue_token(key="another-key-entirely-0123456789abcdef", sub="x", role="player")
    expired = token(exp=int(time.time()) - 5)
    cases = [(forged, None, 4001), (expired, None, 4002), (token(matches=["m1"]), "m2", 4003)]
    for tok, match, code in cases:
        client = await Client.open(url(relay), tok)
        if match is not None:
            await client.send({"op": "sub", "match": match})
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == code, (tok, code)
    player = await Client.open(url(relay), token())
    await player.send({"op": "sub_alerts"})
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await player.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4003


async def test_area_of_interest_sends_only_positions_inside_but_every_match_event(relay: Relay, bus: FakeBus) -> None:
    near = await Client.open(url(relay), token())
    await near.subscribe("m1", area={"x": 0, "y": 0, "r": 10})
    follow = await Client.open(url(relay), token())
    await follow.subscribe("m1", follow="p3")
    p = await bus.partition_for(POSITIONS_TOPIC, "m1")
    await bus.produce(
        POSITIONS_TOPIC, p,
        [pos("m1", "p1", 1, 1, 1), pos("m1", "p2", 50, 50, 1), pos("m1", "p3", 9.9, 0, 1), pos("m1", "p4", -3, 4, 1)],
    )
    await produce_kills(bus, "m1", 0, 1)
    got_near = await near.events(4)
    assert [(e["type"], e.get("player")) for e in got_near] == [("pos", "p1"), ("pos", "p3"), ("pos", "p4"), ("kill", "p0")]
    got_follow = await follow.events(2)
    assert [(e["type"], e.get("player")) for e in got_follow] == [("pos", "p3"), ("kill", "p0")]
    # change the area on the fly
    await near.send({"op": "area", "match": "m1", "area": {"x": 50, "y": 50, "r": 1}, "follow": None})
    await asyncio.sleep(0.05)
    await bus.produce(POSITIONS_TOPIC, p, [pos("m1", "p1", 1, 1, 2), pos("m1", "p2", 50, 50, 2)])
    assert [e["player"] for e in await near.events(1)] == ["p2"]
    await near.close()
    await follow.close()


async def test_json_and_msgpack_subprotocols_carry_the_same_events(relay: Relay, bus: FakeBus) -> None:
    mp = await Client.open(url(relay), token(), fmt="msgpack")
    js = await Client.open(url(relay), token(), fmt="json")
    assert mp.ws.subprotocol == "gamebus.v1.msgpack" and js.ws.subprotocol == "gamebus.v1.json"
    await mp.subscribe("m1")
    await js.subscribe("m1")
    p = await bus.partition_for(POSITIONS_TOPIC, "m1")
    await bus.produce(POSITIONS_TOPIC, p, [pos("m1", "p1", 1.5, -2.25, 7, vx=0.5)])
    await produce_kills(bus, "m1", 0, 3)
    a = await mp.events(4)
    b = await js.events(4)
    assert a == b and len(a) == 4
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


async def test_message_rate_limit_closes_with_4008(bus: FakeBus) -> None:
    relay = await _relay(bus, message_rate_per_s=1.0, message_burst=3)
    try:
        client = await Client.open(url(relay), token())
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(10):
                await client.send({"op": "ping"})
            while True:
                await client.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4008
    finally:
        await relay.close()


async def test_spectators_are_held_behind_live_and_players_are_not(bus: FakeBus) -> None:
    relay = await _relay(bus, spectator_delay_ms=300)
    try:
        player = await Client.open(url(relay), token("player"))
        spectator = await Client.open(url(relay), token("spectator"))
        await player.subscribe("m1")
        reply = await spectator.subscribe("m1")
        assert reply["delay_ms"] == 300
        sent = time.monotonic()
        await produce_kills(bus, "m1", 0, 5)
        assert len(await player.events(5, topic=EVENTS_TOPIC)) == 5
        player_s = time.monotonic() - sent
        events = await spectator.events(5, topic=EVENTS_TOPIC)
        spectator_s = time.monotonic() - sent
        assert [e["seq"] for e in events] == list(range(5))
        assert player_s < 0.2 and 0.29 <= spectator_s < 1.0
    finally:
        await relay.close()


async def test_healthz_and_metrics_answer(relay: Relay, bus: FakeBus) -> None:
    client = await Client.open(url(relay), token())
    await client.subscribe("m1")
    await produce_kills(bus, "m1", 0, 5)
    await client.events(5, topic=EVENTS_TOPIC)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{relay.http_port}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["clients"] == 1
        async with http.get(f"http://127.0.0.1:{relay.http_port}/metrics") as resp:
            text = await resp.text()
    assert "gamebus_relay_clients 1.0" in text
    assert "gamebus_relay_frames_out_total 1.0" in text
    assert "gamebus_relay_publish_to_send_seconds_count 1.0" in text
    await client.close()


async def test_analysts_get_alerts_for_the_matches_in_their_token(relay: Relay, bus: FakeBus) -> None:
    from gamebus.events import ALERTS_TOPIC, encode_event, match_event

    everything = await Client.open(url(relay), token("analyst"))
    only_m2 = await Client.open(url(relay), token("analyst", matches=["m2"]), fmt="json")
    for c in (everything, only_m2):
        rid = await c.send({"op": "sub_alerts"})
        reply = await c.until(lambda m, rid=rid: m.get("id") == rid)
        assert reply["op"] == "subscribed" and reply["alerts"] is True
    for match in ("m1", "m2"):
        alert = match_event("anticheat.alert", match=match, ts=1, player="p9", score=0.97, kind="aimbot")
        await bus.produce(ALERTS_TOPIC, await bus.partition_for(ALERTS_TOPIC, match), [encode_event(alert)])
    got = [await everything.until(lambda m: m["op"] == "alert") for _ in range(2)]
    assert sorted(m["alert"]["match"] for m in got) == ["m1", "m2"]
    only = await only_m2.until(lambda m: m["op"] == "alert")
    assert only["alert"]["match"] == "m2" and only["alert"]["kind"] == "aimbot"
    await everything.close()
    await only_m2.close()


async def test_resubscribing_keeps_the_bus_feeds_alive(relay: Relay, bus: FakeBus) -> None:
    client = await Client.open(url(relay), token())
    await client.subscribe("m1")
    await client.subscribe("m1")  # replaces the subscription: the feeds must survive
    await asyncio.sleep(0.05)
    await produce_kills(bus, "m1", 0, 5)
    assert [e["seq"] for e in await client.events(5, topic=EVENTS_TOPIC)] == list(range(5))
    await client.close()


async def test_a_bus_failure_during_replay_is_an_error_and_leaves_nothing_parked(relay: Relay, bus: FakeBus) -> None:
    from gamebus.errors import ConnectionLost

    await produce_kills(bus, "m1", 0, 10)

    async def broken_fetch(*_: object, **__: object) -> list[object]:
        raise ConnectionLost("bus gone")

    bus.fetch = broken_fetch  # type: ignore[method-assign,assignment]
    client = await Client.open(url(relay), token())
    reply = await client.subscribe("m1", resume={"epoch": 1, "offsets": {EVENTS_TOPIC: 2}})
    assert reply["op"] == "error" and reply["code"] == "unavailable"
    channel = relay.channels.get("m1")
    assert channel is None or not channel.parked
    await client.send({"op": "ping", "id": 99})
    assert (await client.until(lambda m: m.get("id") == 99))["op"] == "pong"
    await client.close()


async def test_a_live_epoch_change_is_announced_with_a_snapshot(relay: Relay, bus: FakeBus) -> None:
    client = await Client.open(url(relay), token())
    await client.subscribe("m1")
    await produce_kills(bus, "m1", 0, 5)
    first = await client.until(lambda m: m["op"] == "events")
    assert first["position"]["epoch"] == 1
    bus._part(EVENTS_TOPIC, await bus.partition_for(EVENTS_TOPIC, "m1")).epoch = 2  # an unclean restart
    await produce_kills(bus, "m1", 5, 5)
    snap = await client.until(lambda m: m["op"] == "snapshot")
    assert snap["reason"] == "epoch"
    after = await client.until(lambda m: m["op"] == "events")
    assert after["position"]["epoch"] == 2 and [e["seq"] for e in after["events"]] == list(range(5, 10))
    await client.close()


async def test_connections_per_address_are_limited_and_idle_ones_closed(bus: FakeBus) -> None:
    relay = await _relay(bus, max_connections_per_peer=2, idle_timeout_s=0.3)
    try:
        keep = [await Client.open(url(relay), token()) for _ in range(2)]
        for c in keep:
            await c.subscribe("m1")  # subscribed: not idle
        extra = await Client.open(url(relay), token())
        with pytest.raises(ConnectionClosed) as info:
            await extra.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4008
        await keep[1].send({"op": "unsub", "match": "m1"})
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await keep[1].recv(timeout=3)
        assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "idle")
        await keep[0].send({"op": "ping", "id": 5})
        assert (await keep[0].until(lambda m: m.get("id") == 5))["op"] == "pong"
        await keep[0].close()
    finally:
        await relay.close()
