"""One client stops reading: it is conflated, then closed with 4009, and nobody else notices."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from gamebus.engines import connect
from gamebus.engines.base import Bus
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
from tests.relay.support import Client, RelayProcess, kill, pos, token
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(90)

MATCH = "slow-test"
PLAYERS = 20
KILLS_PER_TICK = 4
TICK_S = 0.05  # 20 Hz
CLIENTS = 100


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("relay-slow") / "data") as b:
        yield b


@pytest.fixture(scope="module")
def relay(broker: BrokerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    r = RelayProcess(broker.url, tmp_path_factory.mktemp("relay-slow-logs"),
                     "--high-water-bytes", "16384", "--max-queued-events", "100", "--socket-send-buffer-bytes", "16384")  # fmt: skip
    r.start()
    yield r
    r.stop()


@pytest.fixture
async def bus(broker: BrokerProcess) -> AsyncIterator[Bus]:
    b = await connect(broker.url)
    yield b
    await b.close()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


class Receiver:
    """A client that reads everything, recording kill seqs and publish-to-receive latency."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.kills: list[int] = []
        self.latencies: list[tuple[float, float]] = []  # (receive time, latency ms)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                msg = await self.client.recv(timeout=30)
                if msg["op"] != "events":
                    continue
                now = time.time() * 1000
                events = msg["events"]
                self.latencies.append((now, now - events[0]["ts"]))  # one sample per frame
                if msg["topic"] == EVENTS_TOPIC:
                    self.kills += [e["seq"] for e in events]
        except (ConnectionClosed, asyncio.CancelledError):
            pass


async def _metrics(relay: RelayProcess) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{relay.http_port}/metrics") as resp:
        return await resp.text()


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values, default=0.0)


async def test_a_stalled_client_is_conflated_then_closed_while_100_others_keep_up(relay: RelayProcess, bus: Bus) -> None:
    receivers = []
    for _ in range(CLIENTS):
        c = await Client.open(relay.url, token())
        await c.subscribe(MATCH)
        receivers.append(Receiver(c))

    # The stalled client: a tiny receive buffer and no reading at all.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", relay.port))
    sock.setblocking(False)
    stalled = await ws_connect(f"{relay.url}/?token={token()}", sock=sock, max_queue=1,
                               subprotocols=["gamebus.v1.msgpack"])  # type: ignore[list-item]

    pp = await bus.partition_for(POSITIONS_TOPIC, MATCH)
    pe = await bus.partition_for(EVENTS_TOPIC, MATCH)
    seq = 0
    phase_marks: dict[str, float] = {}

    async def tick() -> None:
        nonlocal seq
        ts = int(time.time() * 1000)
        await bus.produce(POSITIONS_TOPIC, pp, [pos(MATCH, f"p{i}", seq % 100, i, ts) for i in range(PLAYERS)], acks="memory")
        await bus.produce(EVENTS_TOPIC, pe, [kill(MATCH, seq + j, ts) for j in range(KILLS_PER_TICK)], acks="memory")
        seq += KILLS_PER_TICK

    async def run_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            await tick()
            await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - started)))

    # Phase 1: everybody keeps up (the stalled client is not subscribed yet).
    phase_marks["baseline"] = time.time() * 1000
    await run_for(2.0)
    # Phase 2: the stalled client subscribes and never reads.
    phase_marks["stalled"] = time.time() * 1000
    from msgpack import packb

    await stalled.send(packb({"op": "sub", "id": 1, "match": MATCH}))
    closed_at = None
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        await run_for(0.5)
        text = await _metrics(relay)
        if _metric(text, "gamebus_relay_slow_client_closes_total") >= 1:
            closed_at = time.monotonic()
            break
    assert closed_at is not None, "the stalled client was never closed"
    conflated = _metric(text, "gamebus_relay_conflated_positions_total")
    await run_for(0.5)
    produced = seq

    # The stalled client now reads what reached it: frames, then 4009 with its position.
    stalled_kills: list[int] = []
    with pytest.raises(ConnectionClosed) as info:
        async with asyncio.timeout(10):
            while True:
                from msgpack import unpackb

                msg = unpackb(await stalled.recv())
                if msg.get("op") == "events" and msg["topic"] == EVENTS_TOPIC:
                    stalled_kills += [e["seq"] for e in msg["events"]]
    assert info.value.rcvd is not None and info.value.rcvd.code == 4009
    resume_from = json.loads(info.value.rcvd.reason)
    assert resume_from["match"] == MATCH

    # Everyone else got every match event, in order, and latency did not move.
    await asyncio.sleep(0.3)
    for r in receivers:
        assert r.kills == list(range(produced)), "a fast client lost or reordered match events"
    before = [lat for r in receivers for t, lat in r.latencies if t < phase_marks["stalled"]]
    during = [lat for r in receivers for t, lat in r.latencies if t >= phase_marks["stalled"]]
    p50_before, p50_during = _p50(before), _p50(during)
    p99_before, p99_during = _p99(before), _p99(during)
    print(f"\nfast clients latency p50/p99: {p50_before:.1f}/{p99_before:.1f} ms before, "
          f"{p50_during:.1f}/{p99_during:.1f} ms with the stalled client; conflated {conflated:.0f} positions; "
          f"stalled client got {len(stalled_kills)} kills")  # fmt: skip
    # A fan-out that waited on the stalled client would hold everyone for the
    # seconds it stalls (it is closed only after several seconds), so the
    # worst frame of the stall phase is the decisive check. The percentile
    # bounds leave room for the 100 receivers sharing this test process and a
    # busy 2-core machine, which move the tail by a few hundred ms (320 ms
    # against 48 ms before was seen once on a loaded CI runner), no more.
    assert p50_during <= 2 * p50_before + 10, (p50_before, p50_during)
    assert p99_during <= max(3 * p99_before, p99_before + 450), (p99_before, p99_during)
    assert max(during) < 1_000
    assert conflated > 0
    # What reached the stalled client is a gapless run of match events.
    assert stalled_kills and stalled_kills == list(range(stalled_kills[0], stalled_kills[0] + len(stalled_kills)))

    # Resuming from the close reason continues exactly after what the stalled client read.
    again = await Client.open(relay.url, token())
    epochs = {t: resume_from.get("epoch", 0) for t in resume_from["offsets"]}
    reply = await again.subscribe(MATCH, resume={"offsets": resume_from["offsets"], "epochs": epochs})
    assert reply["gap"] is False
    first = await again.events(1, topic=EVENTS_TOPIC)
    assert first[0]["seq"] == stalled_kills[-1] + 1
    await again.close()
    for r in receivers:
        r.task.cancel()
        await r.client.close()
