"""Locust scenarios for gamebus: game servers publish, clients watch, analysts wait.

Users
-----
``GameServer`` (one per match, ``fixed_count``)
    Publishes a match through the SDK: ``--players`` positions every tick at
    ``--tick-hz`` (acks ``memory``) and the match's events (join, spawn,
    shot, hit, kill ...; acks ``durable``). Reports produce latency per tick
    and per match event, and how late each tick ran ("tick lag").
``Spectator`` / ``Player``
    WebSocket clients of a relay. A spectator watches one match, some with an
    area of interest; a player watches its own match with an area around
    itself that moves. Each reports publish-to-receive latency, and checks
    every events frame for gaps and duplicates.
``Analyst`` (``fixed_count`` 1)
    Subscribes to anti-cheat alerts and reports their latency.

Why the SDK runs on its own thread
----------------------------------
Locust runs on gevent; the SDK is asyncio. Driving an asyncio loop from a
greenlet would block the gevent hub for as long as the loop runs, and
``concurrent.futures`` waits across the two would use gevent-patched locks
from a native thread. So each locust process starts one *native* thread
(``gevent.monkey.get_original``) running an event loop (uvloop when
installed: it does its I/O in libuv, untouched by gevent's patching), and
every ``GameServer`` runs its publisher coroutine there. The coroutine never
talks to gevent: it appends samples to a ``collections.deque`` (thread-safe
for append/popleft), and the user's greenlet drains it and fires locust's
``request`` events, whose stats are not thread-safe. The "tick lag" stat is
the measurement that this works: it is the delay between when a tick was
due and when it ran. The GIL switch interval is lowered to 1 ms so the
publisher thread gets the GIL back quickly from the gevent thread.

The WebSocket clients use ``websockets.sync.client``: plain blocking sockets
and threads, which gevent's monkey-patching turns into greenlets, so a
thousand clients per process cost a thousand greenlets, not threads.

Gap and duplicate checks
------------------------
Every event a ``GameServer`` sends carries ``src`` (the publisher's id),
``seq`` (per publisher and kind, consecutive) and ``lt`` (send time in
microseconds, finer than ``ts``). A client checks, per match:

- relay positions: ``position.offsets[topic]`` of a frame must be above the
  previous frame's for that topic (equal or lower: duplicate). For match
  events, when the match owns its partition (the match ids are chosen so,
  for up to ``--partitions`` matches), the frame must start exactly where
  the previous one ended (else: gap).
- publisher sequence: match events must be consecutive per ``src`` (a jump
  is a gap; a repeat is a duplicate). Positions may be skipped on purpose
  (conflation of slow clients, area of interest), so for them only repeats
  count, as duplicates; skips are reported as the ``pos skipped`` stat.

Gaps and duplicates are fired as failed requests named ``gap ...`` and
``duplicate ...``, so they show in locust's failures and fail the run.

Latency per frame: one ``events`` frame is one bus batch, and its events
were published within a tick, so each frame is reported once, with the
latency of its oldest event (the conservative choice) and its event count
as the response length; ``loadtests/run.py`` sums those for events/s out.
Clocks: ``lt`` is the publisher's wall clock; across machines, run NTP/PTP
or read the latencies as relative.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import gevent
import jwt
import msgpack
from gevent import monkey
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

# The loadtests package ships with the source tree, not the installed wheel.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from gamebus.events import ALERTS_TOPIC, EVENTS_TOPIC, POSITIONS_TOPIC  # noqa: E402
from loadtests import shapes  # noqa: E402
from loadtests.bench.common import StreamChecker, match_ids, owned_partitions  # noqa: E402

__all__ = ["Analyst", "GameServer", "Player", "Spectator"]

sys.setswitchinterval(0.001)


# ---------------------------------------------------------------- options


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    """gamebus options; every one also reads an environment variable.

    Locust sends the master's parsed options to its workers, so a
    distributed run is configured on the master only.
    """
    g = parser  # locust's configargparse parser: env_var= works on every option
    g.add_argument("--bus-url", env_var="GAMEBUS_BUS_URL", default="gamebus://127.0.0.1:7400",
                   help="bus the game servers publish to")
    g.add_argument("--relay-url", env_var="GAMEBUS_RELAY_URL", default="ws://127.0.0.1:7410/",
                   help="relay WebSocket URL the clients connect to")
    g.add_argument("--relay-secret", env_var="GAMEBUS_RELAY_SECRET", default="",
                   help="HS256 key to sign client tokens with", is_secret=True)
    g.add_argument("--matches", type=int, env_var="GAMEBUS_LT_MATCHES", default=4,
                   help="matches, one GameServer each")
    g.add_argument("--players", type=int, env_var="GAMEBUS_LT_PLAYERS", default=20,
                   help="players per match")
    g.add_argument("--tick-hz", type=float, env_var="GAMEBUS_LT_TICK_HZ", default=20.0,
                   help="position updates per player per second")
    g.add_argument("--events-per-s", type=float, env_var="GAMEBUS_LT_EVENTS_PER_S",
                   default=4.0, help="match events (shots, hits, kills) per match per second")
    g.add_argument("--partitions", type=int, env_var="GAMEBUS_LT_PARTITIONS", default=8,
                   help="partitions of game.events (for the exact offset check)")
    g.add_argument("--relay-format", env_var="GAMEBUS_LT_RELAY_FORMAT", default="msgpack",
                   choices=["msgpack", "json"], help="relay subprotocol gamebus.v1.<format>")
    g.add_argument("--run-id", env_var="GAMEBUS_LT_RUN_ID", default="lt",
                   help="prefix of match ids; the same on master and workers")
    g.add_argument("--area-share", type=float, env_var="GAMEBUS_LT_AREA_SHARE", default=0.3,
                   help="share of spectators that subscribe with an area of interest")
    g.add_argument("--strict-offsets", env_var="GAMEBUS_LT_STRICT_OFFSETS",
                   action="store_true", default=False,
                   help="the bus carries only this test's matches: check offsets exactly")
    g.add_argument("--samples-dir", env_var="GAMEBUS_LT_SAMPLES_DIR", default="",
                   help="write raw latency samples per process here (loadtests/run.py reads them)")
    g.add_argument("--peak-users", type=int, env_var="GAMEBUS_LT_PEAK_USERS", default=50,
                   help="watching clients at the peak of a shape")
    g.add_argument("--shape-seconds", type=float, env_var="GAMEBUS_LT_SHAPE_SECONDS",
                   default=60.0, help="length of a shape")


class _Config:
    """The parsed options as typed attributes, set once per process at init."""

    bus_url = "gamebus://127.0.0.1:7400"
    relay_url = "ws://127.0.0.1:7410/"
    relay_secret = ""
    players = 20
    tick_hz = 20.0
    events_per_s = 4.0
    partitions = 8
    area_share = 0.3
    relay_format = "msgpack"
    strict_offsets = False
    matches: list[str] = []
    #: Matches whose partition no other match of this run shares.
    owned_partition: set[str] = set()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    _configure(environment)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    # On a worker, the master's options arrive with the first spawn message,
    # just before this event: configure again from them.
    _configure(environment)


def _configure(environment: Environment) -> None:
    opts = environment.parsed_options
    if opts is None:
        return
    c = _Config
    c.bus_url, c.relay_url, c.relay_secret = opts.bus_url, opts.relay_url, opts.relay_secret
    c.players, c.tick_hz, c.events_per_s = opts.players, opts.tick_hz, opts.events_per_s
    c.partitions, c.area_share, c.strict_offsets = opts.partitions, opts.area_share, bool(
        opts.strict_offsets)
    c.relay_format = getattr(opts, "relay_format", "msgpack") or "msgpack"
    c.matches = match_ids(opts.run_id, opts.matches, opts.partitions)
    c.owned_partition = owned_partitions(c.matches, opts.partitions)
    GameServer.fixed_count = opts.matches


class _Samples:
    """Raw samples per stat name, for percentiles finer than locust's.

    Locust rounds response times under 100 ms to whole milliseconds, which
    hides the difference between a 0.4 ms and a 0.9 ms median. Each process
    keeps a bounded reservoir per name (plus exact counts and lengths) and
    writes it as JSON at the end of the test when ``--samples-dir`` is set.
    """

    cap = 200_000
    data: dict[str, dict[str, Any]] = {}

    @classmethod
    def add(cls, name: str, ms: float, length: int, failed: bool) -> None:
        entry = cls.data.get(name)
        if entry is None:
            entry = cls.data[name] = {"n": 0, "failures": 0, "length": 0, "samples": []}
        entry["n"] += 1
        if failed:
            entry["failures"] += 1
            return
        entry["length"] += length
        samples: list[float] = entry["samples"]
        if len(samples) < cls.cap:
            samples.append(round(ms, 3))
        else:
            j = random.randrange(entry["n"])
            if j < cls.cap:
                samples[j] = round(ms, 3)

    @classmethod
    def write(cls, directory: str) -> None:
        if not directory:
            return
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"samples-{os.getpid()}.json").write_text(json.dumps(cls.data))


@events.request.add_listener
def _on_request(request_type: str, name: str, response_time: float, response_length: int,
                exception: Exception | None = None, **_: Any) -> None:
    _Samples.add(f"{request_type} {name}", float(response_time or 0.0),
                 int(response_length or 0), exception is not None)


@events.test_start.add_listener
def _reset_samples(**_: Any) -> None:
    _Samples.data = {}


@events.quitting.add_listener
@events.test_stop.add_listener
def _write_samples(environment: Environment, **_: Any) -> None:
    opts = environment.parsed_options
    _Samples.write(getattr(opts, "samples_dir", "") if opts else "")


# ---------------------------------------------------------------- the asyncio side


class _LoopThread:
    """One native thread per locust process with its own event loop."""

    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        start = monkey.get_original("_thread", "start_new_thread")
        start(self._run, ())
        while self.loop is None:
            gevent.sleep(0.01)

    @classmethod
    def get(cls) -> _LoopThread:
        if cls._instance is None:
            cls._instance = _LoopThread()
        return cls._instance

    def _run(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


def _wait(fut: Future[Any], timeout_s: float) -> Any:
    """Wait for a cross-thread future by polling, so only gevent blocks."""
    deadline = time.monotonic() + timeout_s
    while not fut.done():
        if time.monotonic() > deadline:
            fut.cancel()
            raise TimeoutError(f"no answer in {timeout_s} s")
        gevent.sleep(0.005)
    return fut.result()


# (request_type, name, response_time_ms, response_length, exception)
Sample = tuple[str, str, float, int, Exception | None]


class _MatchPublisher:
    """A game server for one match, run as a coroutine on the loop thread.

    Players walk randomly in a 200 x 200 arena so that areas of interest
    have something to filter; match events come at ``events_per_s``.
    """

    def __init__(self, match: str, *, players: int, tick_hz: float, events_per_s: float,
                 samples: collections.deque[Sample]) -> None:
        self.match, self.tick_hz, self.events_per_s = match, tick_hz, events_per_s
        self.src = uuid.uuid4().hex[:10]
        self.samples = samples
        self.players = [f"p{i}" for i in range(players)]
        self.xy = {p: [random.uniform(0, 200), random.uniform(0, 200)] for p in self.players}
        self.pos_seq = 0
        self.ev_seq = 0
        self.pending: set[asyncio.Task[None]] = set()

    def _stamp(self, event: dict[str, Any], kind: str) -> dict[str, Any]:
        if kind == "pos":
            self.pos_seq += 1
            event["seq"] = self.pos_seq
        else:
            self.ev_seq += 1
            event["seq"] = self.ev_seq
        event["src"] = self.src
        ns = time.time_ns()
        event["ts"] = ns // 1_000_000
        event["lt"] = ns // 1_000
        return event

    async def run(self, bus_url: str) -> None:
        import gamebus.client as sdk

        async with sdk.Producer(bus_url, linger_ms=0) as producer:
            for p in self.players:
                await self._event(producer, {"type": "join", "match": self.match, "player": p,
                                             "team": "red" if p[-1] in "02468" else "blue"})
            await self._event(producer, {"type": "round_start", "match": self.match, "round": 1})
            period = 1.0 / self.tick_hz
            next_tick = time.monotonic()
            event_credit = 0.0
            while True:
                now = time.monotonic()
                lag_ms = (now - next_tick) * 1000
                self.samples.append(("TICK", "tick lag", max(lag_ms, 0.0), 0, None))
                await self._tick(producer)
                event_credit += self.events_per_s * period
                while event_credit >= 1:
                    event_credit -= 1
                    self._spawn(self._event(producer, self._random_event()))
                next_tick += period
                if next_tick < time.monotonic() - 1.0:
                    next_tick = time.monotonic()  # fell a second behind: don't burst
                await asyncio.sleep(max(next_tick - time.monotonic(), 0))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.pending.add(t)
        t.add_done_callback(self.pending.discard)

    async def _tick(self, producer: Any) -> None:
        batch = []
        for p in self.players:
            xy = self.xy[p]
            xy[0] = min(max(xy[0] + random.uniform(-0.4, 0.4), 0.0), 200.0)
            xy[1] = min(max(xy[1] + random.uniform(-0.4, 0.4), 0.0), 200.0)
            batch.append(self._stamp({
                "type": "pos", "match": self.match, "player": p, "x": xy[0], "y": xy[1],
                "z": 0.0, "yaw": random.uniform(0, 360), "pitch": random.uniform(-10, 10),
            }, "pos"))
        t0 = time.perf_counter()
        try:
            await asyncio.gather(*(producer.send(POSITIONS_TOPIC, ev, key=self.match,
                                                 acks="memory") for ev in batch))
        except Exception as exc:
            self.samples.append(("PRODUCE", "game.positions tick (memory)",
                                 (time.perf_counter() - t0) * 1000, len(batch), exc))
        else:
            self.samples.append(("PRODUCE", "game.positions tick (memory)",
                                 (time.perf_counter() - t0) * 1000, len(batch), None))

    def _random_event(self) -> dict[str, Any]:
        a, b = random.sample(self.players, 2)
        kind = random.choices(["shot", "hit", "kill", "spawn"], weights=[6, 3, 1, 1])[0]
        ev: dict[str, Any] = {"type": kind, "match": self.match, "player": a}
        if kind == "shot":
            ev.update(weapon="rifle", yaw=random.uniform(0, 360), pitch=0.0, target=b,
                      visible=True)
        elif kind == "hit":
            ev.update(target=b, weapon="rifle", damage=25.0, headshot=random.random() < 0.2)
        elif kind == "kill":
            ev.update(target=b, weapon="rifle", headshot=random.random() < 0.3)
        else:
            x, y = self.xy[a]
            ev.update(x=x, y=y, z=0.0)
        return ev

    async def _event(self, producer: Any, event: dict[str, Any]) -> None:
        """Match events go one at a time and in order: sequence numbers must not cross."""
        stamped = self._stamp(event, "event")
        t0 = time.perf_counter()
        fut = producer.send(EVENTS_TOPIC, stamped, key=self.match, acks="durable")
        try:
            await fut
        except Exception as exc:
            self.samples.append(("PRODUCE", "game.events (durable)",
                                 (time.perf_counter() - t0) * 1000, 1, exc))
        else:
            self.samples.append(("PRODUCE", "game.events (durable)",
                                 (time.perf_counter() - t0) * 1000, 1, None))


def _fire(user: User, sample: Sample) -> None:
    rtype, name, ms, length, exc = sample
    user.environment.events.request.fire(request_type=rtype, name=name, response_time=ms,
                                         response_length=length, exception=exc, context={})


class GameServer(User):
    """One match's game server, publishing through the SDK on the loop thread."""

    fixed_count = 4
    wait_time = constant(0)
    _next = itertools.count()

    def on_start(self) -> None:
        c = _Config
        self.match = c.matches[self._match_index() % len(c.matches)] if c.matches else "lt-m0"
        self.samples: collections.deque[Sample] = collections.deque()
        self.publisher = _MatchPublisher(self.match, players=c.players, tick_hz=c.tick_hz,
                                         events_per_s=c.events_per_s, samples=self.samples)
        self.future = _LoopThread.get().submit(self.publisher.run(c.bus_url))

    def _match_index(self) -> int:
        """Spread game servers over the matches across workers too.

        Locust hands fixed-count users out round-robin; worker *w* of *n*
        takes matches w, w + n, w + 2n ... so each match gets one server.
        """
        local = next(self._next)
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            workers = int(getattr(self.environment.parsed_options, "expect_workers", 1) or 1)
            return max(runner.worker_index, 0) + max(workers, 1) * local
        return local

    @task
    def drain(self) -> None:
        """Move samples from the loop thread into locust's stats every 200 ms."""
        gevent.sleep(0.2)
        self._drain()
        if self.future.done():
            exc = self.future.exception() if not self.future.cancelled() else None
            _fire(self, ("PRODUCE", "publisher stopped", 0.0, 0,
                         exc if isinstance(exc, Exception) else RuntimeError("stopped")))
            self.future = _LoopThread.get().submit(self.publisher.run(_Config.bus_url))
            gevent.sleep(1.0)

    def _drain(self) -> None:
        while self.samples:
            _fire(self, self.samples.popleft())

    def on_stop(self) -> None:
        self.future.cancel()
        with contextlib.suppress(BaseException):
            _wait(self.future, 5.0)
        self._drain()


# ---------------------------------------------------------------- relay clients


class _Problem(Exception):
    """A gap or a duplicate, as the exception of a failed locust request."""


class _RelayUser(User):
    """A WebSocket client of the relay (abstract)."""

    abstract = True
    wait_time = constant(0)
    role = "spectator"

    def on_start(self) -> None:
        from websockets.sync.client import connect

        self.tracker = StreamChecker()
        self.has_area = False
        self.watching: str | None = None
        self.ws: Any = None
        self.next_id = itertools.count(1)
        claims = {"sub": f"{self.role}-{uuid.uuid4().hex[:8]}", "role": self.role,
                  "matches": "*", "exp": int(time.time()) + 24 * 3600}
        token = jwt.encode(claims, _Config.relay_secret, algorithm="HS256")
        sep = "&" if "?" in _Config.relay_url else "?"
        t0 = time.perf_counter()
        try:
            self.ws = connect(f"{_Config.relay_url}{sep}token={token}",
                              subprotocols=[f"gamebus.v1.{_Config.relay_format}"],  # type: ignore[list-item]
                              open_timeout=10, max_size=4 * 2**20, compression=None)
        except Exception as exc:
            _fire(self, ("WS", "connect", (time.perf_counter() - t0) * 1000, 0, exc))
            self.ws = None
            gevent.sleep(1)
            return
        _fire(self, ("WS", "connect", (time.perf_counter() - t0) * 1000, 0, None))
        self.subscribe()

    def subscribe(self) -> None:
        raise NotImplementedError

    def request(self, name: str, msg: dict[str, Any], expect: str) -> dict[str, Any] | None:
        """Send ``msg`` and wait for the answer with the same id, processing frames meanwhile."""
        rid = next(self.next_id)
        msg["id"] = rid
        t0 = time.perf_counter()
        self.send(msg)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame = self._recv(deadline - time.monotonic())
            if frame is None:
                continue
            if frame.get("id") == rid:
                exc = None if frame.get("op") == expect else _Problem(
                    f"{frame.get('code')}: {frame.get('message')}")
                _fire(self, ("WS", name, (time.perf_counter() - t0) * 1000, 0, exc))
                return frame if exc is None else None
            self.handle(frame)
        _fire(self, ("WS", name, (time.perf_counter() - t0) * 1000, 0,
                     TimeoutError(f"no {expect}")))
        return None

    def _recv(self, timeout_s: float) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            data = self.ws.recv(timeout=max(timeout_s, 0.0))
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            _fire(self, ("WS", "closed by relay", 0.0, 0,
                         _Problem(f"close {rcvd.code if rcvd else '?'} "
                                  f"{rcvd.reason if rcvd else ''}".strip())))
            self.ws = None
            return None
        frame = msgpack.unpackb(data, raw=False) if isinstance(data, bytes) else json.loads(data)
        return frame if isinstance(frame, dict) else None

    def send(self, msg: dict[str, Any]) -> None:
        if _Config.relay_format == "json":
            self.ws.send(json.dumps(msg))
        else:
            self.ws.send(msgpack.packb(msg, use_bin_type=True))

    @task
    def pump(self) -> None:
        """Read frames for up to a second, then let locust schedule the next call."""
        if self.ws is None:
            gevent.sleep(1)
            self.on_start()
            return
        deadline = time.monotonic() + 1.0
        self.tick()
        while self.ws is not None and time.monotonic() < deadline:
            frame = self._recv(deadline - time.monotonic())
            if frame is not None:
                self.handle(frame)

    def tick(self) -> None:
        """Once a second: the place for a client to change its interest."""

    def handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "events":
            self._events(frame)
        elif op == "alert":
            alert = frame.get("alert") or {}
            ts = alert.get("ts") if isinstance(alert, dict) else None
            lat = time.time() * 1000 - ts if isinstance(ts, (int, float)) else 0.0
            _fire(self, ("RECV", "alert", max(lat, 0.0), 1, None))
        elif op == "error":
            _fire(self, ("WS", f"error {frame.get('code')}", 0.0, 0,
                         _Problem(str(frame.get("message")))))

    def _events(self, frame: dict[str, Any]) -> None:
        evs = frame.get("events") or []
        if not evs:
            return
        match = str(frame.get("match"))
        topic = str(frame.get("topic") or (POSITIONS_TOPIC if evs[0].get("type") == "pos"
                                           else EVENTS_TOPIC))
        now_us = time.time_ns() // 1000
        oldest = min((ev.get("lt") or ev.get("ts", 0) * 1000) for ev in evs)
        name = "recv pos" if topic == POSITIONS_TOPIC else "recv event"
        _fire(self, ("RECV", name, max(now_us - oldest, 0) / 1000, len(evs), None))
        strict = _Config.strict_offsets and match in _Config.owned_partition
        for kind, detail in self.tracker.frame(match, topic, frame.get("position") or {}, evs,
                                               strict):
            if kind == "skipped":
                why = "area" if self.has_area else "no area: conflated"
                _fire(self, ("CHECK", f"pos skipped ({why})", 0.0, int(detail), None))
            else:
                _fire(self, ("CHECK", f"{kind} {topic}", 0.0, 0, _Problem(detail)))

    def on_stop(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()
            self.ws = None


class Spectator(_RelayUser):
    """Watches one match; ``--area-share`` of them through an area of interest."""

    weight = 3
    role = "spectator"

    def subscribe(self) -> None:
        self.watching = random.choice(_Config.matches or ["lt-m0"])
        msg: dict[str, Any] = {"op": "sub", "match": self.watching}
        if random.random() < _Config.area_share:
            self.has_area = True
            msg["area"] = {"x": random.uniform(50, 150), "y": random.uniform(50, 150), "r": 60.0}
        self.request("subscribe", msg, "subscribed")


class Player(_RelayUser):
    """A player: its match, with an area around itself that follows it."""

    weight = 1
    role = "player"

    def subscribe(self) -> None:
        self.watching = random.choice(_Config.matches or ["lt-m0"])
        self.x, self.y = random.uniform(0, 200), random.uniform(0, 200)
        self.has_area = True
        self.request("subscribe", {"op": "sub", "match": self.watching,
                                   "area": {"x": self.x, "y": self.y, "r": 50.0}}, "subscribed")
        self.moved = time.monotonic()

    def tick(self) -> None:
        if self.ws is None or self.watching is None or time.monotonic() - self.moved < 2.0:
            return
        self.moved = time.monotonic()
        angle = random.uniform(0, 2 * math.pi)
        self.x = min(max(self.x + 5 * math.cos(angle), 0.0), 200.0)
        self.y = min(max(self.y + 5 * math.sin(angle), 0.0), 200.0)
        # No id: the relay answers interest changes only on error.
        self.send({"op": "area", "match": self.watching,
                   "area": {"x": self.x, "y": self.y, "r": 50.0}})


class Analyst(_RelayUser):
    """Waits for anti-cheat alerts (``anticheat.alerts``)."""

    fixed_count = 1
    role = "analyst"

    def subscribe(self) -> None:
        self.request(f"subscribe {ALERTS_TOPIC}", {"op": "sub_alerts"}, "subscribed")


def _selected_shape() -> type[Any] | None:
    name = os.environ.get("GAMEBUS_SHAPE", "").strip().lower()
    if not name or name == "none":
        return None
    if name not in shapes.SHAPES:
        raise SystemExit(f"GAMEBUS_SHAPE={name!r}: choose one of {sorted(shapes.SHAPES)}")
    return shapes.SHAPES[name]


# Locust takes the first LoadTestShape subclass in this module's namespace,
# so only the selected one is bound here.
_shape = _selected_shape()
if _shape is not None:
    SelectedShape = _shape
del _shape
