"""End to end: simulator -> broker -> relay -> WebSocket clients -> anti-cheat.

    python -m loadtests.bench.bench_e2e [--duration 300] [--clients 1000] [--quick]
                                        [--scaling] [--client-procs 2]

The pipeline, every part its own process on loopback:

- ``broker`` and ``relay``: ``python -m gamebus broker|relay`` (fresh data
  directory, a JWT key made for the run), started as ``make loadtest`` does;
- ``anticheat``: ``python -m gamebus anticheat run`` when that command
  exists (the consumer group scoring every player); otherwise the table says
  it was not in the pipeline;
- ``publisher``: the game simulator (:class:`gamebus.sim.match.MatchSimulator`,
  10 matches x 20 players, 20 Hz ticks) played in real time through
  ``gamebus.Producer``; each match is its own task with its tick phase
  offset, as real game servers are not synchronised. Every event carries
  ``lt``, its send time in microseconds, beside the simulator's ``ts``;
- ``clients``: ``--client-procs`` processes (asyncio + uvloop +
  ``websockets``), each holding its share of the connections and pinned to
  one core (process *i* on core *i mod cores*) so that the client side uses
  a known, bounded part of the machine; broker, relay, simulator and
  anti-cheat float. Clients spread evenly over the matches and watch them
  whole (no area of interest: the heaviest fan-out). One analyst connection
  subscribes to alerts.

Latency is publish-to-client: receive time minus ``lt``, per ``events``
frame, for the frame's oldest event (conservative: one frame is one bus
batch, i.e. one tick of one match). CPU is psutil's per-process percentage
(100 = one core) averaged over the run; memory is RSS sampled every second;
"flat" means the median RSS of the second half of the run is within 10 %
of the first half's.

The machine this runs on may be small and shared: the clients, the relay
and the broker compete for the same cores, so the result is the pipeline's
behaviour on *this* box, and the scaling curve says where it bends.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loadtests.bench.common import (  # noqa: E402
    DEFAULT_PERCENTILES,
    ProcessSampler,
    match_ids,
    owned_partitions,
    percentiles,
)

__all__ = ["main", "measure", "run"]

MATCHES, PLAYERS, TICK_HZ = 10, 20, 20


# ======================================================================== roles


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _publisher(bus_url: str, matches: list[str], players: int, tick_hz: int,
                     duration_s: float, out: Path, shard: tuple[int, int] = (0, 1)) -> None:
    """Play ``matches[shard[0]::shard[1]]`` in real time through the SDK.

    Each match keeps its global index (seed, tick phase), so any number of
    shards plays the same 10 matches.
    """
    from gamebus.client import Producer
    from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC
    from gamebus.sim.match import MatchSimulator

    stop = _stop_event()
    sent = {"pos": 0, "event": 0}
    durable_ms: list[float] = []
    lag_ms: list[float] = []
    errors: list[str] = []
    pending: set[asyncio.Task[None]] = set()

    async def durable(producer: Producer, ev: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        try:
            await producer.send(EVENTS_TOPIC, ev, key=ev["match"], acks="durable")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        else:
            durable_ms.append((time.perf_counter() - t0) * 1000)

    async def play(producer: Producer, index: int, match: str) -> None:
        start_ms = time.time_ns() // 1_000_000
        sim = MatchSimulator(seed=1000 + index, match_id=match, players=players,
                             tick_hz=tick_hz, duration_s=duration_s + 60, start_ts_ms=start_ms)
        period = 1.0 / tick_hz
        await asyncio.sleep(period * index / len(matches))  # phase offset per match
        t0 = time.monotonic()
        due = t0
        seq = {"pos": 0, "event": 0}
        ticks = sim.ticks()
        events = next(ticks)[1]
        while not stop.is_set() and time.monotonic() - t0 < duration_s:
            lag_ms.append(max(time.monotonic() - due, 0.0) * 1000)
            now_us = time.time_ns() // 1000
            for sim_ev in events:
                kind = "pos" if sim_ev["type"] == "pos" else "event"
                seq[kind] += 1
                # ``lt`` first: the clients read it from fixed bytes (e2e_clients).
                ev = {"lt": now_us, **sim_ev, "seq": seq[kind], "src": match}
                if kind == "pos":
                    producer.send_nowait(POSITIONS_TOPIC, ev, key=match)
                else:
                    t = asyncio.get_running_loop().create_task(durable(producer, ev))
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                sent[kind] += 1
            # Let the producer's linger-0 timer seal this tick's batch before
            # the simulator computes the next tick (up to ~10 ms of numpy),
            # so simulation time never counts as publish latency.
            await asyncio.sleep(0.0005)
            events = next(ticks, (0, []))[1]
            due += period
            if due < time.monotonic() - 1.0:
                due = time.monotonic()
            await asyncio.sleep(max(due - time.monotonic(), 0.0))

    mine = [(i, m) for i, m in enumerate(matches) if i % shard[1] == shard[0]]
    async with Producer(bus_url, linger_ms=0) as producer:
        t_play = time.monotonic()
        await asyncio.gather(*(play(producer, i, m) for i, m in mine))
        seconds = time.monotonic() - t_play
        if pending:
            await asyncio.wait(pending, timeout=10)
        await producer.flush()
    out.write_text(json.dumps({"sent": sent, "durable_ms": durable_ms, "tick_lag_ms": lag_ms,
                               "errors": errors[:20], "n_errors": len(errors),
                               "seconds": seconds}))


async def _clients(relay_url: str, secret: str, count: int, matches: list[str], first: int,
                   analyst: bool, ready: Path, out: Path, source_ip: str) -> None:
    """Hold ``count`` connections, each watching one match, until SIGTERM.

    The connections are :class:`~loadtests.bench.e2e_clients.RawClient` s
    (see that module for why not the ``websockets`` client); the one analyst
    connection, a handful of alerts, uses ``websockets``.
    """
    from urllib.parse import urlsplit

    import jwt
    import msgpack
    from websockets.asyncio.client import connect

    from loadtests.bench.e2e_clients import ClientStats, open_clients

    stop = _stop_event()
    owned = owned_partitions(matches, 8)
    # Each client process connects from its own loopback address: the relay
    # bounds connections per peer address (5,000), as it should for the
    # internet, and thousands of test clients would otherwise be one peer.
    token = jwt.encode({"sub": f"bench-{first}", "role": "spectator", "matches": "*",
                        "exp": int(time.time()) + 86_400}, secret, algorithm="HS256")
    atoken = jwt.encode({"sub": f"analyst-{first}", "role": "analyst", "matches": "*",
                         "exp": int(time.time()) + 86_400}, secret, algorithm="HS256")
    stats = ClientStats()
    alert_ms: list[float] = []
    alerts_seen = {"n": 0}

    async def alerts() -> None:
        try:
            async with connect(f"{relay_url}?token={atoken}",
                               subprotocols=["gamebus.v1.msgpack"],  # type: ignore[list-item]
                               ping_interval=None) as ws:
                await ws.send(msgpack.packb({"op": "sub_alerts", "id": 1}))
                async for data in ws:
                    frame = msgpack.unpackb(data, raw=False)
                    if frame.get("op") == "alert" and stats.measuring:
                        alerts_seen["n"] += 1
                        ts = (frame.get("alert") or {}).get("ts")
                        if isinstance(ts, int):
                            alert_ms.append(time.time() * 1000 - ts)
        except Exception as exc:
            if not stop.is_set():
                stats.problem(f"analyst: {type(exc).__name__}: {exc}")

    url = urlsplit(relay_url)
    transports = await open_clients(host=url.hostname or "127.0.0.1", port=url.port or 80,
                                    path=f"{url.path or '/'}?token={token}", matches=matches,
                                    first=first, count=count, owned=owned, stats=stats,
                                    source_ip=source_ip)
    tasks = [asyncio.create_task(alerts())] if analyst else []
    await asyncio.sleep(1.0)  # the snapshots that follow the last subscriptions
    ready.write_text(str(stats.subscribed))
    stats.measuring = True
    await stop.wait()
    stats.measuring = False
    stats.stopping = True
    for t in transports:
        t.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with out.with_suffix(".lat").open("wb") as f:
        stats.latency_ms.tofile(f)
    counts = dict(stats.counts, alerts=alerts_seen["n"])
    out.write_text(json.dumps({"counts": counts, "problems": stats.problems[:50],
                               "alert_ms": alert_ms, "connected": stats.subscribed,
                               "latency_file": str(out.with_suffix(".lat"))}))


async def _probe(bus_url: str, ready: Path, out: Path) -> None:
    """Subscribe to ``game.positions`` straight at the broker and time each batch.

    The same publish stamp as the clients' latency, taken where the relay
    takes its input: so publish -> broker -> subscriber and relay -> client
    can be told apart. One record decoded per batch; a tick is one batch.
    """
    from gamebus.engines import connect
    from gamebus.events import POSITIONS_TOPIC
    from loadtests.bench.e2e_clients import first_stamp

    stop = _stop_event()
    bus = await connect(bus_url)
    lat = array.array("d")

    async def drain(sub: Any) -> None:
        async for batch in sub:
            lt = first_stamp(batch.records[0], 0) if batch.records else None
            if lt is not None:
                lat.append((time.time_ns() // 1000 - lt) / 1000)

    subs = [await bus.subscribe(POSITIONS_TOPIC, p, "latest")
            for p in range(await bus.partitions(POSITIONS_TOPIC))]
    tasks = [asyncio.create_task(drain(sub)) for sub in subs]
    ready.write_text("ok")
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await bus.close()
    with out.open("wb") as f:
        lat.tofile(f)


async def _ingest_point(bus_url: str, *, topic: str, payload_bytes: int, batch_records: int,
                        partitions: int, seconds: float) -> dict[str, float]:
    """Producer flat out -> broker -> one subscriber per partition, in one process.

    Two chunks of 500 events are in flight at a time (the producer awaits
    the ack of the previous chunk's last event), so the queue, and with it
    the latency at saturation, stays bounded and comparable across points.
    """
    import msgpack

    from gamebus.client import Producer, connect

    bus = await connect(bus_url)
    await bus.create_topic(topic, partitions=partitions)
    lat: list[float] = []
    got = {"n": 0}
    subs = [await bus.subscribe(topic, p, "latest") for p in range(partitions)]

    async def drain(sub: Any) -> None:
        async for batch in sub:
            got["n"] += len(batch.records)
            first = msgpack.unpackb(batch.records[0], raw=False)
            lat.append((time.time_ns() // 1000 - first["lt"]) / 1000)

    readers = [asyncio.create_task(drain(sub)) for sub in subs]
    pad = "x" * max(payload_bytes - 60, 1)
    keys = [f"k{i}" for i in range(64)]
    sample = msgpack.packb({"type": "bench.blob", "match": "k00", "ts": 1, "lt": 1, "pad": pad})
    sent = 0
    async with Producer(bus, linger_ms=5, batch_bytes=max(len(sample) * batch_records, 64),
                        max_buffer_bytes=64 * 2**20) as producer:
        t0 = time.monotonic()
        prev: asyncio.Task[Any] | None = None
        while time.monotonic() - t0 < seconds:
            now_us = time.time_ns() // 1000
            for i in range(500):
                key = keys[i % 64]
                ev = {"type": "bench.blob", "match": key, "ts": now_us // 1000,
                      "lt": now_us, "pad": pad}
                if i < 499:
                    producer.send_nowait(topic, ev, key=key, acks="memory")
                else:
                    last = asyncio.create_task(producer.send(topic, ev, key=key, acks="memory"))
            sent += 500
            if prev is not None:
                await prev
            prev = last
        if prev is not None:
            await prev
        elapsed = time.monotonic() - t0
    await asyncio.sleep(0.5)
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for sub in subs:
        with contextlib.suppress(Exception):
            await sub.close()
    await bus.close()
    pct = percentiles(lat)
    return {"events_per_s": sent / elapsed, "delivered_per_s": got["n"] / elapsed,
            "mb_per_s": sent * len(sample) / elapsed / 1e6, "p50_ms": pct["p50"],
            "p99_ms": pct["p99"]}


def ingest_curves(*, quick: bool = False) -> list[dict[str, Any]]:
    """Throughput and p99 against payload size, batch size and partitions.

    One fresh broker; one parameter moves at a time from the defaults
    (256-byte events, 100 records per batch, 8 partitions); acks ``memory``.
    """
    from loadtests.run import local_services

    seconds = 2.0 if quick else 5.0
    base = {"payload_bytes": 256, "batch_records": 100, "partitions": 8}
    sweeps = {
        "payload_bytes": [64, 256, 1024, 4096] if not quick else [64, 1024],
        "batch_records": [1, 10, 100, 1000] if not quick else [1, 100],
        "partitions": [1, 4, 16] if not quick else [1, 8],
    }
    curves = []
    with local_services() as services:
        n = 0
        for param, values in sweeps.items():
            points = []
            for value in values:
                cfg = dict(base, **{param: value})
                n += 1
                point = asyncio.run(_ingest_point(services.bus_url, topic=f"bench.scale{n}",
                                                  seconds=seconds, **cfg))
                points.append({param: value, **point})
            curves.append({"param": param, "x": values,
                           "throughput": [p["events_per_s"] for p in points],
                           "p99_ms": [p["p99_ms"] for p in points], "points": points,
                           "seconds": seconds})
    return curves


# ======================================================================== orchestration


def _anticheat_available() -> bool:
    try:
        proc = subprocess.run([sys.executable, "-m", "gamebus", "anticheat", "run", "--help"],
                              cwd=ROOT, capture_output=True, timeout=60, check=False,
                              env=_env())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _anticheat_model(notes: list[str]) -> Path | None:
    """A small model for the live scorer, trained once and kept in loadtests/reports/.

    The bench measures the scorer's cost in the pipeline, not its accuracy
    (docs/anticheat.md has that), so 6 simulated matches are enough.
    """
    import hashlib

    # Keyed by the anti-cheat sources: a model from older code may not load.
    digest = hashlib.sha256()
    for src in sorted((ROOT / "anticheat").glob("*.py")):
        digest.update(src.read_bytes())
    out = ROOT / "loadtests" / "reports" / f"anticheat-bench-{digest.hexdigest()[:10]}"
    model = out / "anticheat.skops"
    if model.exists():
        return model
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "gamebus", "anticheat", "train", "--matches", "6",
                           "--seed", "99", "--out", str(out), "--workers", "1"],
                          cwd=ROOT, env=_env(), capture_output=True, timeout=900, check=False)
    if proc.returncode != 0 or not model.exists():
        notes.append("anti-cheat model training failed: "
                     + proc.stdout.decode(errors="replace")[-300:])
        return None
    notes.append(f"trained a 6-match anti-cheat model for the run in {time.monotonic() - t0:.0f} s")
    return model


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("GAMEBUS_LOG_LEVEL", "WARNING")
    # One thread per math library (numpy's OpenBLAS in the simulator, the
    # scorer's OpenMP): by default each takes a thread per core and a burst
    # of them occupies both cores at once, preempting the relay mid fan-out.
    # On a box shared by six processes each gets one core's worth at most.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    return env


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=env or _env())


def _terminate(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)


def measure(*, duration_s: float, clients: int, client_procs: int = 2,
            matches: int = MATCHES, players: int = PLAYERS, tick_hz: int = TICK_HZ,
            anticheat: bool = True, sample_interval_s: float = 1.0,
            profile: bool = False, pin_clients: bool = True,
            batch_clients: bool = True, generator_nice: int = 0,
            window_bytes: int | None = None, sim_procs: int = 1) -> dict[str, Any]:
    """One run of the whole pipeline; returns the raw measurements."""
    from loadtests.run import local_services

    ids = match_ids("e2e", matches, 8)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="gamebus-e2e-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    client_list: list[subprocess.Popen[bytes]] = []
    notes: list[str] = []
    ncpu = os.cpu_count() or 1
    broker_args: list[str] = []
    if window_bytes is not None:
        # The broker keeps the newest ``memory_window_bytes`` of every
        # partition in memory (8 MiB by default, 24 partitions): its RSS
        # grows until those windows are full, several minutes at this load.
        # Smaller windows fill within the first minute, so the rest of the
        # run shows whether anything else grows.
        (work / "broker.json").write_text(json.dumps({"broker": {"memory_window_bytes": window_bytes}}))
        broker_args = ["--config", str(work / "broker.json")]
    with local_services(broker_args=broker_args) as services:
        pids = {name: p.pid for name, p in services.procs.items()}
        model = _anticheat_model(notes) if anticheat and _anticheat_available() else None
        if model is not None:
            procs["anticheat"] = _spawn([sys.executable, "-m", "gamebus", "anticheat", "run",
                                         "--bus", services.bus_url, "--model", str(model),
                                         "--start", "latest"], work / "anticheat.log")
            pids["anticheat"] = procs["anticheat"].pid
            if generator_nice:
                os.setpriority(os.PRIO_PROCESS, procs["anticheat"].pid, generator_nice)
        elif anticheat:
            notes.append("anti-cheat was not in the pipeline: `gamebus anticheat run` "
                         "is not available in this tree yet")
        per = [clients // client_procs + (1 if i < clients % client_procs else 0)
               for i in range(client_procs)]
        first = 0
        for i, n in enumerate(per):
            argv = [sys.executable, "-m", "loadtests.bench.bench_e2e", "--role", "clients",
                    "--relay-url", services.relay_url, "--count", str(n),
                    "--first", str(first), "--matches", ",".join(ids),
                    "--source-ip", f"127.0.0.{10 + i}",
                    "--ready", str(work / f"ready-{i}"), "--out", str(work / f"clients-{i}.json")]
            if i == 0:
                argv.append("--analyst")
            env = _env()
            env["GAMEBUS_BENCH_SECRET"] = services.secret
            proc = _spawn(argv, work / f"clients-{i}.log", env)
            if pin_clients:
                with contextlib.suppress(OSError, AttributeError):
                    os.sched_setaffinity(proc.pid, {i % ncpu})
            if batch_clients:
                with contextlib.suppress(OSError, AttributeError):
                    os.sched_setscheduler(proc.pid, os.SCHED_BATCH, os.sched_param(0))
            if generator_nice:
                os.setpriority(os.PRIO_PROCESS, proc.pid, generator_nice)
            client_list.append(proc)
            first += n
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not all(
                (work / f"ready-{i}").exists() for i in range(client_procs)):
            if any(p.poll() is not None for p in client_list):
                break
            time.sleep(0.2)
        connected = sum(int((work / f"ready-{i}").read_text() or 0)
                        for i in range(client_procs) if (work / f"ready-{i}").exists())
        sampler = ProcessSampler(pids, interval_s=sample_interval_s)
        for proc in client_list:
            sampler.add("clients", proc.pid)
        probe = _spawn([sys.executable, "-m", "loadtests.bench.bench_e2e", "--role", "probe",
                        "--bus-url", services.bus_url, "--ready", str(work / "ready-probe"),
                        "--out", str(work / "probe.lat")], work / "probe.log")
        procs["probe"] = probe
        if generator_nice:
            os.setpriority(os.PRIO_PROCESS, probe.pid, generator_nice)
        deadline = time.monotonic() + 30
        while not (work / "ready-probe").exists() and probe.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        pubs = [_spawn([sys.executable, "-m", "loadtests.bench.bench_e2e", "--role", "publisher",
                        "--bus-url", services.bus_url, "--matches", ",".join(ids),
                        "--shard", f"{j}/{sim_procs}",
                        "--players", str(players), "--tick-hz", str(tick_hz),
                        "--duration", str(duration_s), "--out", str(work / f"publisher-{j}.json")],
                       work / f"publisher-{j}.log") for j in range(sim_procs)]
        pub = pubs[0]
        for p in pubs:
            sampler.add("simulator", p.pid)
            if generator_nice:
                os.setpriority(os.PRIO_PROCESS, p.pid, generator_nice)
        sampler.start()
        t0 = time.monotonic()
        profiles: dict[str, Any] = {}
        sched: dict[str, Any] = {}
        if profile:
            # Profile the middle of the run: after warm-up, before the end.
            time.sleep(min(duration_s / 3, 30.0))
            targets = {n: p for n, p in pids.items() if n in ("broker", "relay", "anticheat")}
            targets["clients"] = client_list[0].pid
            targets["simulator"] = pub.pid
            profiles = _start_profiles(targets, min(duration_s / 3, 30.0), work)
            named = {p: n for n, p in targets.items()}
            named.update({c.pid: "clients" for c in client_list})
            named.update({p.pid: "simulator" for p in pubs})
            named[probe.pid] = "probe"
            time.sleep(2.0)
            sched = _perf_sched(named, seconds=3.0, work=work)
        window_series: list[tuple[float, float]] = []
        while any(p.poll() is None for p in pubs) and time.monotonic() - t0 < duration_s + 120:
            with contextlib.suppress(subprocess.TimeoutExpired):
                pubs[-1].wait(timeout=5.0)
            held = _scrape(services.procs["broker"].args, "--admin-port",
                           "gamebus_memory_window_bytes")
            window_series.append((round(time.monotonic() - t0, 1), sum(held.values()) / 2**20))
        if any(p.poll() is None for p in pubs):
            notes.append("the publisher did not finish in time")
            for p in pubs:
                _terminate(p)
        elapsed = time.monotonic() - t0
        relay_metrics = _scrape(services.procs["relay"].args, "--http-port", "gamebus_relay")
        broker_metrics = _scrape(services.procs["broker"].args, "--admin-port", "gamebus_")
        hot = _profile_summary(profiles) if profiles else {}
        time.sleep(1.0)  # let the last frames arrive
        components = sampler.stop()
        alive = services.alive()
        if "anticheat" in procs:
            alive["anticheat"] = procs["anticheat"].poll() is None
        for proc in client_list:
            _terminate(proc)
        for proc in procs.values():
            _terminate(proc)
        if "anticheat" in procs and not alive["anticheat"]:
            notes.append("the anti-cheat scorer exited during the run: "
                         + (work / "anticheat.log").read_text(errors="replace")[-300:])
        relay_log = services.log_tail("relay")
        broker_log = services.log_tail("broker")
    pub_data = _merge_publishers([_read_json(work / f"publisher-{j}.json") for j in range(sim_procs)])
    cl = [_read_json(work / f"clients-{i}.json") for i in range(client_procs)]
    logs = {p.name: p.read_text(errors="replace")[-1500:] for p in work.glob("*.log")}
    latency, probe_ms = _load_samples([c.get("latency_file") for c in cl]), \
        _load_samples([str(work / "probe.lat")])
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return {
        "duration_s": duration_s, "elapsed_s": elapsed, "clients": clients,
        "connected": connected, "client_procs": client_procs, "matches": matches,
        "players": players, "tick_hz": tick_hz, "publisher": pub_data, "client_results": cl,
        "components": components, "alive": alive, "notes": notes, "profile": hot,
        "loadavg": (load_before, os.getloadavg()[0]),
        "logs": logs if not pub_data or not all(cl) else {},
        "relay_log": relay_log[-800:], "broker_log": broker_log[-800:],
        "latency": latency, "probe": probe_ms, "relay_metrics": relay_metrics,
        "broker_metrics": broker_metrics, "window_series": window_series, "sched": sched,
    }


def _scrape(argv: Any, flag: str, prefix: str) -> dict[str, float]:
    """A service's own counters at the end of the run (``/metrics`` on the port after ``flag``)."""
    import urllib.request

    args = [str(a) for a in argv]
    if flag not in args:
        return {}
    url = f"http://127.0.0.1:{args[args.index(flag) + 1]}/metrics"
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith(prefix) and " " in line:
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = out.get(name, 0.0) + float(value)
    return out


def _pyspy() -> str | None:
    import shutil

    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return exe if Path(exe).exists() else None


def _start_profiles(pids: dict[str, int], seconds: float, work: Path) -> dict[str, Any]:
    """``py-spy record`` each process for ``seconds`` (50 Hz, nonblocking)."""
    exe = _pyspy()
    if exe is None:
        return {}
    procs = {}
    for name, pid in pids.items():
        out = work / f"profile-{name}.txt"
        procs[name] = (subprocess.Popen(
            [exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50", "-f", "raw",
             "-o", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
    return procs


def _perf_sched(named: dict[int, str], *, seconds: float, work: Path) -> dict[str, Any]:
    """``perf sched record`` for ``seconds``: per component, how often it was switched out.

    ``preempted`` counts switches with the task still runnable (it wanted
    the CPU and something else got it), ``slept`` the ones where it waited
    for I/O; ``by`` says which components took the CPU from it. Empty when
    ``perf`` is not installed or not permitted.
    """
    import re
    import shutil

    exe = shutil.which("perf")
    if exe is None:
        return {}
    # perf sees threads: map every thread of the named processes to its name.
    for pid, name in list(named.items()):
        with contextlib.suppress(OSError, ValueError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                named.setdefault(int(tid), name)
    data = work / "sched.data"
    try:
        subprocess.run([exe, "sched", "record", "-o", str(data), "--", "sleep", str(seconds)],
                       capture_output=True, timeout=seconds + 30, check=True)
        script = subprocess.run([exe, "script", "-i", str(data), "-F", "event,trace"],
                                capture_output=True, timeout=120, check=True).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return {}
    finally:
        data.unlink(missing_ok=True)
    pat = re.compile(r"prev_pid=(\d+) .*?prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
    out: dict[str, Any] = {}
    for line in script.splitlines():
        m = pat.search(line)
        if m is None:
            continue
        prev = named.get(int(m.group(1)))
        if prev is None:
            continue
        entry = out.setdefault(prev, {"preempted": 0, "slept": 0, "by": {}})
        if m.group(2).startswith("R"):
            entry["preempted"] += 1
            comm = m.group(3).split("/")[0].split(":")[0]
            by = named.get(int(m.group(4)), f"other ({comm})")
            entry["by"][by] = entry["by"].get(by, 0) + 1
        else:
            entry["slept"] += 1
    for entry in out.values():
        entry["per_s"] = {k: round(v / seconds) for k, v in entry["by"].items()}
        entry["preempted_per_s"] = round(entry["preempted"] / seconds)
        entry["slept_per_s"] = round(entry["slept"] / seconds)
    return out


def _profile_summary(procs: dict[str, Any], top: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Top self-time functions per process, as shares of its busy samples."""
    out: dict[str, list[tuple[str, float]]] = {}
    for name, (proc, path) in procs.items():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=120)
        if proc.poll() is None:
            _terminate(proc)
        selfs: dict[str, int] = {}
        total = 0
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                leaf = stack.split(";")[-1]
                func, _, where = leaf.partition(" (")
                where = where.rstrip(")").rsplit(":", 1)[0]
                label = f"{func} ({'/'.join(where.split('/')[-2:])})"
                selfs[label] = selfs.get(label, 0) + int(count)
                total += int(count)
        if total:
            ranked = sorted(selfs.items(), key=lambda kv: -kv[1])[:top]
            out[name] = [(label, 100.0 * n / total) for label, n in ranked]
    return out


def _load_samples(paths: list[str | None]) -> Any:
    """The float64 samples the client and probe processes wrote, as one numpy array."""
    import numpy as np

    parts = [np.fromfile(p, dtype=np.float64) for p in paths if p and Path(p).exists()]
    return np.concatenate(parts) if parts else np.zeros(0)


def _merge_publishers(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One publisher result out of the shards' (empty when any shard wrote none)."""
    if not parts or not all(parts):
        return {}
    out: dict[str, Any] = {"sent": {}, "durable_ms": [], "tick_lag_ms": [], "errors": [],
                           "n_errors": 0, "seconds": 0.0}
    for part in parts:
        for k, v in part.get("sent", {}).items():
            out["sent"][k] = out["sent"].get(k, 0) + v
        for k in ("durable_ms", "tick_lag_ms", "errors"):
            out[k].extend(part.get(k, []))
        out["n_errors"] += part.get("n_errors", 0)
        out["seconds"] = max(out["seconds"], part.get("seconds", 0.0))
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _percentiles_np(samples: Any) -> dict[str, float]:
    """:func:`~loadtests.bench.common.percentiles` for millions of samples (numpy, linear)."""
    import numpy as np

    if not len(samples):
        return percentiles([])
    values = np.percentile(samples, [q * 100 for q in DEFAULT_PERCENTILES])
    out = {f"p{q * 100:.10g}": float(v) for q, v in zip(DEFAULT_PERCENTILES, values, strict=True)}
    out["max"] = float(np.max(samples))
    out["n"] = float(len(samples))
    return out


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Percentiles, rates, CPU and memory out of one :func:`measure` result."""
    lat, probe = raw["latency"], raw["probe"]
    counts: dict[str, int] = {}
    problems: list[str] = []
    alert_ms: list[float] = []
    for c in raw["client_results"]:
        alert_ms.extend(c.get("alert_ms", []))
        for k, v in (c.get("counts") or {}).items():
            counts[k] = counts.get(k, 0) + int(v)
        problems.extend(c.get("problems", []))
    pub = raw["publisher"] or {}
    sent = pub.get("sent", {})
    # Rates over the time the matches were played (not the processes' start-up).
    dur = pub.get("seconds") or raw["elapsed_s"] or raw["duration_s"]
    comps = {name: {k: v for k, v in c.items() if k != "series"}
             for name, c in raw["components"].items()}
    for name, c in raw["components"].items():
        comps[name].update(_after_warmup(c["series"]))
    memory_series = {name: [(t, rss / 2**20) for t, _cpu, rss in c["series"]]
                     for name, c in raw["components"].items() if name in ("broker", "relay")}
    if raw.get("window_series"):
        memory_series["broker: memory windows"] = list(raw["window_series"])
    rm = raw.get("relay_metrics") or {}
    return {
        "clients": raw["clients"], "connected": raw["connected"],
        "duration_s": raw["duration_s"],
        "events_in_per_s": (sent.get("pos", 0) + sent.get("event", 0)) / dur,
        "ticks_per_s": len(pub.get("tick_lag_ms", [])) / dur / max(raw["matches"], 1),
        "events_out_per_s": counts.get("events", 0) / dur,
        "frames_out_per_s": counts.get("frames", 0) / dur,
        "latency_ms": _percentiles_np(lat),
        "bus_latency_ms": _percentiles_np(probe),
        "durable_ack_ms": percentiles(pub.get("durable_ms", [])),
        "tick_lag_ms": percentiles(pub.get("tick_lag_ms", [])),
        "alerts": counts.get("alerts", 0), "alert_ms": percentiles(alert_ms),
        "gaps": counts.get("gaps", 0), "duplicates": counts.get("duplicates", 0),
        "client_errors": counts.get("errors", 0) + counts.get("closed", 0)
        + counts.get("connect_failed", 0),
        "publish_errors": int(pub.get("n_errors", 0)),
        "problems": problems[:10], "components": comps, "memory_series": memory_series,
        "alive": raw["alive"], "notes": raw["notes"], "profile": raw.get("profile", {}),
        "loadavg": raw.get("loadavg", (0.0, 0.0)), "sched": raw.get("sched", {}),
        "window_end_mib": raw["window_series"][-1][1] if raw.get("window_series") else None,
        "conflated": rm.get("gamebus_relay_conflated_positions_total", 0.0),
        "slow_closes": rm.get("gamebus_relay_slow_client_closes_total", 0.0),
    }


#: Memory is judged after this much of the run: the broker's windows (sized
#: by ``WINDOW_BYTES``) are full by then, see the window line in the plot.
WARMUP_S = 60.0


def _after_warmup(series: list[tuple[float, float, int]]) -> dict[str, float]:
    """RSS growth after warm-up: median of the last minute against the minute after warm-up."""
    import statistics

    early = [r for t, _, r in series if WARMUP_S <= t < WARMUP_S + 60]
    end = series[-1][0] if series else 0.0
    late = [r for t, _, r in series if t >= max(end - 60, WARMUP_S + 60)]
    if not early or not late:
        return {}
    a, b = statistics.median(early), statistics.median(late)
    return {"rss_warm_mib": a / 2**20, "rss_late_mib": b / 2**20,
            "rss_warm_growth_pct": (b - a) / a * 100 if a else 0.0}


#: Broker memory window per partition in the bench (the default is 8 MiB):
#: small enough to be full within the first minute of the run.
WINDOW_BYTES = 256 * 1024


def run(repeats: int = 1, *, quick: bool = False, duration_s: float | None = None,
        clients: int | None = None, client_procs: int = 2,
        scaling: bool | None = None, diagnostics: bool = True) -> dict[str, Any]:
    """The suite entry point: ``repeats`` main runs, diagnostics, the clients curve.

    Full: ``repeats`` runs of 5 minutes with 1,000 clients (median and spread);
    then two 60 s diagnostic runs at the same load (one under py-spy and perf
    sched, one with the load generators at nice 10), the clients curve at
    100 / 1,000 / 5,000 clients (30 s each) and the ingest curves. Quick:
    30 s runs of 200 clients, 20 s diagnostics, a curve at 50 / 200 / 500.
    """
    from loadtests.bench import e2e_report

    duration = duration_s or (30.0 if quick else 300.0)
    n_clients = clients or (200 if quick else 1000)
    load_start = os.getloadavg()[0]
    common: dict[str, Any] = {"clients": n_clients, "client_procs": client_procs,
                              "window_bytes": WINDOW_BYTES}
    runs = []
    for i in range(max(repeats, 1)):
        print(f"bench_e2e: run {i + 1} of {max(repeats, 1)}, {duration:.0f} s", flush=True)
        runs.append(summarize(measure(duration_s=duration, **common)))
    profiled = niced = None
    if diagnostics:
        diag_s = 20.0 if quick else 60.0
        print("bench_e2e: diagnostics (py-spy, perf sched; generators at nice 10)", flush=True)
        profiled = summarize(measure(duration_s=diag_s, profile=True, **common))
        niced = summarize(measure(duration_s=diag_s, generator_nice=10, **common))
    curve: dict[str, Any] | None = None
    do_scaling = scaling if scaling is not None else True
    if do_scaling:
        seconds = 15.0 if quick else 30.0
        points = []
        for n in (50, 200, 500) if quick else (100, 1000, 5000):
            print(f"bench_e2e: clients curve, {n} clients", flush=True)
            s = summarize(measure(duration_s=seconds, clients=n, client_procs=client_procs,
                                  anticheat=False, window_bytes=WINDOW_BYTES))
            points.append(e2e_report.curve_point(n, s))
        curve = {"param": "clients", "x": [c["clients"] for c in points],
                 "throughput": [c["events_out_per_s"] for c in points],
                 "p99_ms": [c["p99_ms"] for c in points], "points": points,
                 "seconds": seconds}
    ingest = ingest_curves(quick=quick) if do_scaling else []
    return e2e_report.report(runs, duration=duration, n_clients=n_clients,
                             client_procs=client_procs, window_bytes=WINDOW_BYTES,
                             profiled=profiled, niced=niced, curve=curve, ingest=ingest,
                             loadavg_start=load_start)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench.bench_e2e",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--role", choices=("bench", "publisher", "clients", "probe"), default="bench")
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--no-diagnostics", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    # roles
    p.add_argument("--bus-url")
    p.add_argument("--relay-url")
    p.add_argument("--matches", default="")
    p.add_argument("--players", type=int, default=PLAYERS)
    p.add_argument("--tick-hz", type=int, default=TICK_HZ)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--analyst", action="store_true")
    p.add_argument("--source-ip", default="127.0.0.1")
    p.add_argument("--shard", default="0/1", help="publisher: play matches[i::n] for i/n")
    p.add_argument("--ready", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.role != "bench":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    if args.role == "publisher":
        index, _, count = args.shard.partition("/")
        asyncio.run(_publisher(args.bus_url, args.matches.split(","), args.players,
                               args.tick_hz, args.duration, args.out,
                               shard=(int(index), int(count or 1))))
        return 0
    if args.role == "probe":
        asyncio.run(_probe(args.bus_url, args.ready, args.out))
        return 0
    if args.role == "clients":
        asyncio.run(_clients(args.relay_url, os.environ["GAMEBUS_BENCH_SECRET"], args.count,
                             args.matches.split(","), args.first, args.analyst, args.ready,
                             args.out, args.source_ip))
        return 0
    result = run(args.repeats, quick=args.quick, duration_s=args.duration, clients=args.clients,
                 client_procs=args.client_procs, scaling=not args.no_scaling,
                 diagnostics=not args.no_diagnostics)
    print(result["table"])
    for note in result["notes"]:
        print(f"- {note}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    random.seed(7)
    sys.exit(main())
