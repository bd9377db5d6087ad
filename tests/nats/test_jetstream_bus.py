"""The Bus contract on one real nats-server with JetStream."""

from __future__ import annotations

import asyncio

import pytest

from gamebus.engines import connect
from gamebus.engines.base import Bus, Position
from gamebus.engines.jetstream import JetStreamBus, connect_jetstream
from gamebus.errors import (
    ConfigError,
    EpochMismatch,
    InvalidRequest,
    OffsetOutOfRange,
    TopicExists,
    UnknownPartition,
    UnknownTopic,
)
from gamebus.partitioning import partition_for_key
from tests.nats.support import NatsServer
from tests.support.bus import collect, records_with_offsets

pytestmark = pytest.mark.nats


async def test_bus_satisfies_the_protocol_and_connect_dispatches_nats_urls(
    nats_server: NatsServer,
) -> None:
    bus = await connect(nats_server.url)
    try:
        assert isinstance(bus, JetStreamBus)
        assert isinstance(bus, Bus)
        assert bus.url == nats_server.url
    finally:
        await bus.close()


async def test_create_topic_makes_one_stream_with_a_subject_per_partition(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=4, replicas=1, storage="memory")
    info = await bus.js.stream_info("GAMEBUS_" + topic.replace(".", "_"))
    assert info.config.subjects == [f"gamebus.{topic}.{p}" for p in range(4)]
    assert await bus.partitions(topic) == 4
    meta = await bus.metadata(topic)
    assert [m.partition for m in meta] == [0, 1, 2, 3]
    assert {m.epoch for m in meta} == {meta[0].epoch} and meta[0].epoch > 0
    assert meta[0].extra["storage"] == "memory" and meta[0].extra["replicas"] == 1
    assert topic in {m.topic for m in await bus.metadata()}


async def test_create_topic_twice_raises_topic_exists(bus: JetStreamBus, topic: str) -> None:
    await bus.create_topic(topic, partitions=2)
    with pytest.raises(TopicExists):
        await bus.create_topic(topic, partitions=2)


async def test_create_topic_refuses_bad_options(bus: JetStreamBus, topic: str) -> None:
    with pytest.raises(InvalidRequest):
        await bus.create_topic(topic, partitions=1, storage="tape")
    with pytest.raises(ConfigError):
        await bus.create_topic(topic, partitions=1, segment_bytes=1 << 20)
    with pytest.raises(ConfigError):  # a single server cannot hold three replicas
        await bus.create_topic(topic, partitions=1, replicas=3)


async def test_unknown_topic_and_partition_are_named(bus: JetStreamBus, topic: str) -> None:
    with pytest.raises(UnknownTopic):
        await bus.partitions(topic)
    await bus.create_topic(topic, partitions=2)
    with pytest.raises(UnknownPartition):
        await bus.produce(topic, 2, [b"x"])


async def test_offsets_are_stream_sequences_and_fetch_returns_one_partition(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=2)
    r0 = await bus.produce(topic, 0, [b"a", b"b"], acks="durable")
    r1 = await bus.produce(topic, 1, [b"X"], acks="memory")
    r2 = await bus.produce(topic, 0, [b"c"], acks="durable")
    assert r0 is not None and r1 is not None and r2 is not None
    assert (r0.base_offset, r1.base_offset, r2.base_offset) == (1, 3, 4)
    assert r0.epoch == (await bus.metadata(topic))[0].epoch
    batches = await bus.fetch(topic, 0, 1)
    # Offsets 1, 2 are consecutive (one batch); 4 follows a gap (a new batch).
    assert [(b.base_offset, b.records) for b in batches] == [(1, [b"a", b"b"]), (4, [b"c"])]
    assert batches[-1].next_offset == 5
    assert records_with_offsets(await bus.fetch(topic, 1, 1)) == [(3, b"X")]
    assert await bus.fetch(topic, 0, 5) == []
    assert records_with_offsets(await bus.fetch(topic, 0, 3)) == [(4, b"c")]


async def test_fetch_outside_the_log_raises_offset_out_of_range(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"a", b"b", b"c"])
    with pytest.raises(OffsetOutOfRange) as err:
        await bus.fetch(topic, 0, 9)
    assert (err.value.log_start, err.value.log_end) == (1, 4)
    await bus.js.purge_stream("GAMEBUS_" + topic.replace(".", "_"), keep=1)
    with pytest.raises(OffsetOutOfRange):
        await bus.fetch(topic, 0, 1)
    assert records_with_offsets(await bus.fetch(topic, 0, 3)) == [(3, b"c")]


async def test_fetch_stops_at_max_bytes_but_returns_at_least_one_record(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"x" * 100] * 10)
    got = records_with_offsets(await bus.fetch(topic, 0, 1, max_bytes=250))
    assert [o for o, _ in got] == [1, 2, 3]
    assert len(records_with_offsets(await bus.fetch(topic, 0, 1, max_bytes=1))) == 1


async def test_partition_for_uses_the_embedded_brokers_hash(bus: JetStreamBus, topic: str) -> None:
    await bus.create_topic(topic, partitions=8)
    for key in ["m1", "match-42", "ü"]:
        assert await bus.partition_for(topic, key) == partition_for_key(key, 8)


async def test_retried_produce_with_the_same_sequence_is_acked_as_duplicate(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=1)
    first = await bus.produce(topic, 0, [b"a", b"b"], acks="durable", producer_id=7, sequence=0)
    again = await bus.produce(topic, 0, [b"a", b"b"], acks="durable", producer_id=7, sequence=0)
    assert first is not None and again is not None
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.base_offset == first.base_offset == 1
    # The SDK numbers batches, not records: the next batch is sequence 1.
    nxt = await bus.produce(topic, 0, [b"c", b"d"], acks="durable", producer_id=7, sequence=1)
    assert nxt is not None and (nxt.base_offset, nxt.duplicate) == (3, False)
    stored = [r for _, r in records_with_offsets(await bus.fetch(topic, 0, 1))]
    assert stored == [b"a", b"b", b"c", b"d"]


async def test_acks_none_returns_nothing_and_the_record_still_arrives(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=1)
    assert await bus.produce(topic, 0, [b"fire"], acks="none") is None
    sub = await bus.subscribe(topic, 0, "earliest")
    try:
        assert records_with_offsets(await collect(sub, 1)) == [(1, b"fire")]
    finally:
        await sub.close()


async def test_subscribe_earliest_sees_history_then_live_records_of_its_partition_only(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=2)
    await bus.produce(topic, 0, [b"h1", b"h2"])
    await bus.produce(topic, 1, [b"other"])
    sub = await bus.subscribe(topic, 0, "earliest")
    try:
        history = await collect(sub, 2)
        await bus.produce(topic, 1, [b"other2"])
        await bus.produce(topic, 0, [b"live"])
        live = await collect(sub, 1)
    finally:
        await sub.close()
    assert records_with_offsets(history) == [(1, b"h1"), (2, b"h2")]
    assert records_with_offsets(live) == [(5, b"live")]


async def test_subscribe_latest_skips_history(bus: JetStreamBus, topic: str) -> None:
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"old"])
    sub = await bus.subscribe(topic, 0, "latest")
    try:
        it = sub.__aiter__()
        first = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.3)  # the consumer exists before the new record
        await bus.produce(topic, 0, [b"new"])
        batch = await asyncio.wait_for(first, 10)
    finally:
        await sub.close()
    assert (batch.base_offset, batch.records) == (2, [b"new"])


async def test_resuming_from_last_seen_plus_one_has_no_gap_and_no_duplicate(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=2)
    for i in range(6):
        await bus.produce(topic, i % 2, [f"r{i}".encode()])
    sub = await bus.subscribe(topic, 0, "earliest")
    try:
        first = await collect(sub, 1)
    finally:
        await sub.close()
    resume = first[0].position
    assert resume.offset == 2
    sub = await bus.subscribe(topic, 0, resume)
    try:
        rest = await collect(sub, 2)
    finally:
        await sub.close()
    assert records_with_offsets(first) + records_with_offsets(rest) == [
        (1, b"r0"),
        (3, b"r2"),
        (5, b"r4"),
    ]


async def test_subscription_holds_no_more_than_its_credit_per_batch(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"y" * 1000] * 50)
    sub = await bus.subscribe(topic, 0, "earliest", credit_bytes=4000)
    try:
        batches = await collect(sub, 50)
    finally:
        await sub.close()
    assert max(sum(len(r) for r in b.records) for b in batches) <= 4000
    assert [o for o, _ in records_with_offsets(batches)] == list(range(1, 51))


async def test_a_recreated_stream_is_a_new_epoch(bus: JetStreamBus, topic: str) -> None:
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"a", b"b"])
    old = (await bus.metadata(topic))[0].epoch
    live = await bus.subscribe(topic, 0, "earliest")
    await collect(live, 2)
    await bus.delete_topic(topic)
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"new"])
    new = (await bus.metadata(topic))[0].epoch
    assert new > old
    with pytest.raises(EpochMismatch) as err:
        await collect(live, 1)  # the live subscription notices its consumer vanished
    assert (err.value.given, err.value.current, err.value.resume_offset) == (old, new, 1)
    sub = await bus.subscribe(topic, 0, Position(old, 3))
    with pytest.raises(EpochMismatch):
        await collect(sub, 1)
    await sub.close()
    await live.close()


async def test_epoch_and_data_survive_a_server_restart(
    tmp_path: object, nats_server: NatsServer, topic: str
) -> None:
    bus = await connect_jetstream(nats_server.url)
    try:
        await bus.create_topic(topic, partitions=1)
        await bus.produce(topic, 0, [b"kept"], acks="durable")
        epoch = (await bus.metadata(topic))[0].epoch
    finally:
        await bus.close()
    nats_server.stop()
    nats_server.start()
    bus = await connect_jetstream(nats_server.url)
    try:
        from tests.nats.support import wait_for_jetstream

        await wait_for_jetstream([nats_server.url])
        assert (await bus.metadata(topic))[0].epoch == epoch
        assert records_with_offsets(await bus.fetch(topic, 0, 1)) == [(1, b"kept")]
    finally:
        await bus.close()


async def test_commit_and_committed_round_trip(bus: JetStreamBus, topic: str) -> None:
    await bus.create_topic(topic, partitions=2)
    assert await bus.committed("g1", topic, 0) is None
    await bus.commit("g1", {(topic, 0): Position(5, 10), (topic, 1): Position(5, 3)})
    await bus.commit("g1", {(topic, 0): Position(5, 12)})
    assert await bus.committed("g1", topic, 0) == Position(5, 12)
    assert await bus.committed("g1", topic, 1) == Position(5, 3)
    assert await bus.committed("g2", topic, 0) is None


async def test_produce_result_names_every_offset_when_partitions_interleave(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=2)
    batches = [[f"p{p}r{i}".encode() for i in range(50)] for p in range(2)]
    results = await asyncio.gather(*(bus.produce(topic, p, batches[p]) for p in range(2)))
    for p, result in enumerate(results):
        assert result is not None
        stored = dict(records_with_offsets(await bus.fetch(topic, p, 1)))
        assert {result.offset_of(i): r for i, r in enumerate(batches[p])} == stored


async def test_a_deleted_topic_ends_its_subscriptions_with_unknown_topic(
    bus: JetStreamBus, topic: str
) -> None:
    await bus.create_topic(topic, partitions=1)
    await bus.produce(topic, 0, [b"a"])
    sub = await bus.subscribe(topic, 0, "earliest")
    try:
        await collect(sub, 1)
        await bus.delete_topic(topic)
        with pytest.raises(UnknownTopic):
            await collect(sub, 1)
    finally:
        await sub.close()
