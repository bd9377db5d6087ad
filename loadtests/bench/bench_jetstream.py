"""Scale-out on JetStream: what gamebus on NATS JetStream costs on one machine.

    python -m loadtests.bench.bench_jetstream [--repeats 3] [--quick]

Ingest of the same events four ways, each into a fresh 8-partition topic
(one stream, one subject per partition), keyed by 8 match ids, then read
back from the start by one consumer:

- ``raw nats-py`` R=1 and R=3: ``js.publish_async`` with ``Nats-Msg-Id``,
  up to 1,000 pub acks outstanding, then wait for all; read back through one
  ordered push consumer on the whole stream. The floor of what any
  JetStream client pays for acknowledged, deduplicated publishing.
- ``gamebus Producer/Consumer`` R=1 and R=3: ``gamebus.Producer`` on a
  ``nats://`` URL, ``send_nowait`` with ``acks="durable"`` (linger 5 ms),
  then ``flush()``: the SDK path game servers use, on the JetStream engine;
  read back by ``gamebus.Consumer`` (one flow-controlled subscription per
  partition, as relays and anti-cheat read).

And one latency row per setup: 300 awaited ``send(..., acks="durable")``
one after the other (publish -> pub ack round trip through the SDK).

R=1 is one nats-server; R=3 is three nats-servers routed on loopback, each
with its own store, which on a small machine share the same cores: the R=3
numbers are what replication costs *here*, not across three machines.
Servers are stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

import gamebus  # noqa: E402
from gamebus.partitioning import partition_for_key  # noqa: E402
from loadtests.bench.common import (  # noqa: E402
    fmt_spread,
    machine_info,
    markdown_table,
    median_spread,
    percentiles,
)
from tests.nats.support import (  # noqa: E402
    NatsCluster,
    NatsServer,
    wait_for_jetstream,
)

__all__ = ["main", "run"]

PARTITIONS = 8
MATCHES = [f"match-{i}" for i in range(8)]
RECORD = b"x" * 120  # about the size of an encoded match event
LATENCY_SENDS = 300


def _event(i: int) -> dict[str, Any]:
    return {"type": "shot", "match": MATCHES[i % len(MATCHES)], "ts": i, "player": "p1",
            "weapon": "rifle", "yaw": 90.0, "pitch": 1.5, "target": "p2",
            "visible": True}  # fmt: skip


async def _raw_ingest(url: str, topic: str, replicas: int, events: int) -> tuple[float, float]:
    """Events per second with plain nats-py: publish_async (with message ids), then
    read back through one ordered push consumer."""
    nc = await nats.connect(url.split(",")[0])
    js = nc.jetstream(publish_async_max_pending=1000)
    stream = "RAW_" + topic.replace(".", "_")
    await js.add_stream(
        name=stream,
        subjects=[f"raw.{topic}.{p}" for p in range(PARTITIONS)],
        num_replicas=replicas,
    )
    subjects = [f"raw.{topic}.{partition_for_key(m, PARTITIONS)}" for m in MATCHES]
    started = time.perf_counter()
    futures = []
    for i in range(events):
        futures.append(
            await js.publish_async(
                subjects[i % len(subjects)], RECORD, headers={"Nats-Msg-Id": f"r{i}"}
            )
        )
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    count = 0
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        nonlocal count
        count += 1
        if count >= events:
            done.set()

    started = time.perf_counter()
    sub = await js.subscribe(f"raw.{topic}.*", stream=stream, ordered_consumer=True, cb=on_msg)
    await asyncio.wait_for(done.wait(), 120)
    read_s = time.perf_counter() - started
    await sub.unsubscribe()
    await js.delete_stream(stream)
    await nc.close()
    return events / elapsed, events / read_s


async def _sdk_ingest(url: str, topic: str, replicas: int, events: int) -> tuple[float, float]:
    """Events per second through gamebus.Producer on the JetStream engine, then read
    back through one gamebus.Consumer (8 partition subscriptions)."""
    bus = await gamebus.connect(url)
    await bus.create_topic(topic, partitions=PARTITIONS, replicas=replicas)
    payloads = [_event(i) for i in range(events)]
    async with gamebus.Producer(bus, linger_ms=5, acks="durable") as producer:
        started = time.perf_counter()
        for event in payloads:
            producer.send_nowait(topic, event)
        await producer.flush()
        elapsed = time.perf_counter() - started
    started = time.perf_counter()
    async with gamebus.Consumer(bus, [topic], start="earliest") as consumer:
        count = 0
        async for _ in consumer:
            count += 1
            if count >= events:
                break
    read_s = time.perf_counter() - started
    await bus.delete_topic(topic)  # type: ignore[attr-defined]
    await bus.close()
    return events / elapsed, events / read_s


async def _sdk_latency(url: str, topic: str, replicas: int) -> list[float]:
    """Milliseconds per awaited durable send, one at a time."""
    bus = await gamebus.connect(url)
    await bus.create_topic(topic, partitions=PARTITIONS, replicas=replicas)
    samples = []
    async with gamebus.Producer(bus, linger_ms=0, acks="durable") as producer:
        for i in range(LATENCY_SENDS):
            t0 = time.perf_counter()
            await producer.send(topic, _event(i))
            samples.append((time.perf_counter() - t0) * 1000)
    await bus.delete_topic(topic)  # type: ignore[attr-defined]
    await bus.close()
    return samples


async def _measure(url: str, replicas: int, repeats: int, events: int) -> dict[str, Any]:
    raw, sdk, raw_read, sdk_read = [], [], [], []
    for r in range(repeats):
        ingest, read = await _raw_ingest(url, f"bench.raw{r}", replicas, events)
        raw.append(ingest)
        raw_read.append(read)
        ingest, read = await _sdk_ingest(url, f"bench.sdk{r}", replicas, events)
        sdk.append(ingest)
        sdk_read.append(read)
    latency = await _sdk_latency(url, "bench.lat", replicas)
    return {
        "raw": median_spread(raw),
        "sdk": median_spread(sdk),
        "raw_read": median_spread(raw_read),
        "sdk_read": median_spread(sdk_read),
        "latency": latency,
    }


async def _measure_at(replicas: int, repeats: int, events: int, url: str) -> dict[str, Any]:
    return await _measure(url, replicas, repeats, events)


async def _with_servers(
    replicas: int, body: Callable[[str], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gamebus-bench-js-") as tmp:
        if replicas == 1:
            server = NatsServer(Path(tmp))
            server.start()
            try:
                await wait_for_jetstream([server.url])
                return await body(server.url)
            finally:
                server.stop()
        cluster = NatsCluster(Path(tmp))
        cluster.start()
        try:
            await wait_for_jetstream(cluster.urls, timeout_s=30)
            await asyncio.sleep(1.0)  # let the meta layer see all three peers
            return await body(cluster.url)
        finally:
            cluster.stop()


def run(repeats: int = 3, quick: bool = False) -> dict[str, Any]:
    """Measure, print the Markdown table, and return the suite's result dict."""
    events = 5_000 if quick else 30_000
    machine = machine_info()
    results: dict[int, dict[str, Any]] = {}
    for replicas in (1, 3):
        results[replicas] = asyncio.run(
            _with_servers(replicas, functools.partial(_measure_at, replicas, repeats, events))
        )
    rows = []
    throughput: dict[str, float] = {}
    latency_ms: dict[str, dict[str, float]] = {}
    for replicas, res in results.items():
        lat = percentiles(res["latency"])
        lat_text = f"p50 {lat['p50']:.2f} / p99 {lat['p99']:.2f}"
        rows.append([f"raw nats-py, R={replicas}", fmt_spread(res["raw"], " ev/s"),
                     fmt_spread(res["raw_read"], " ev/s"), "-"])  # fmt: skip
        rows.append([f"gamebus Producer/Consumer on JetStream, R={replicas}",
                     fmt_spread(res["sdk"], " ev/s"), fmt_spread(res["sdk_read"], " ev/s"),
                     lat_text])  # fmt: skip
        throughput[f"raw nats-py R={replicas}"] = res["raw"]["median"]
        throughput[f"gamebus JetStream R={replicas}"] = res["sdk"]["median"]
        latency_ms[f"gamebus JetStream R={replicas}"] = lat
    table = markdown_table(
        ["setup (durable acks, 8 partitions)", "ingest, median (min-max)",
         "read back by one consumer", "awaited send latency ms"],
        rows,
        align="lrrr",
    )  # fmt: skip
    ratio = {r: results[r]["sdk"]["median"] / results[r]["raw"]["median"] for r in (1, 3)}
    notes = [
        f"{events:,} events of ~120 bytes per run, {repeats} run(s) per row; machine: "
        f"{machine.get('cores')} cores, load {machine.get('loadavg_1m')} at start.",
        f"gamebus on JetStream ingests {ratio[1]:.0%} (R=1) and {ratio[3]:.0%} (R=3) of what raw "
        "nats-py publish_async does; on top of the raw publish it validates and encodes each "
        "event, batches per partition, keeps one batch in flight per partition (ordering) and "
        "tracks every record for retries.",
        "R=3 runs three servers on the same cores: the cost shown is replication on one box.",
    ]
    print(table)
    for note in notes:
        print(f"- {note}")
    return {
        "title": "Scale-out on JetStream (bench_jetstream)",
        "table": table,
        "throughput": throughput,
        "latency_ms": latency_ms,
        "notes": notes,
        "events": events,
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    run(args.repeats, quick=args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
