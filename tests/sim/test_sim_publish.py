"""Publishing: positions fire-and-forget, match events durable and in order, labels never sent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gamebus.errors import LimitExceeded
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC, decode_event
from gamebus.sim import MatchSimulator, simulate_match
from gamebus.sim.publish import publish_matches

START = 1_767_225_600_000


def _factory(duration_s: float = 2.0):
    def make(index: int, start_ts_ms: int) -> MatchSimulator:
        return MatchSimulator(seed=40 + index, match_id=f"pub{index}", players=6, cheaters=1,
                              duration_s=duration_s, start_ts_ms=START)
    return make


class FakeProducer:
    """Records what a real Producer would be asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any], str | None]] = []

    def send_nowait(self, topic: str, event: Any, *, key: str | None = None,
                    acks: Any = None) -> None:
        self.sent.append((f"nowait:{acks}", topic, dict(event), key))

    async def send(self, topic: str, event: Any, *, key: str | None = None, acks: Any = None) -> None:
        await asyncio.sleep(0)
        self.sent.append((f"send:{acks}", topic, dict(event), key))

    async def flush(self) -> None:
        pass


class FullProducer(FakeProducer):
    """A producer whose buffer is always full for match events."""

    def send_nowait(self, topic: str, event: Any, *, key: str | None = None,
                    acks: Any = None) -> None:
        if topic == EVENTS_TOPIC:
            raise LimitExceeded("producer buffer bytes", 1, 0)
        super().send_nowait(topic, event, key=key, acks=acks)


async def test_a_full_buffer_makes_match_events_wait_in_order():
    producer = FullProducer()
    await publish_matches(producer, _factory(), concurrent=2, total=2, realtime=False)
    events = [(how, e) for how, _, e, key in producer.sent if e["type"] != "pos"]
    assert events and all(how == "send:durable" for how, _ in events)
    for index in range(2):
        got = [e for _, e in events if e["match"] == f"pub{index}"]
        assert got == sorted(got, key=lambda e: e["ts"])


async def test_positions_are_fire_and_forget_and_match_events_durable():
    producer = FakeProducer()
    stats = await publish_matches(producer, _factory(), concurrent=2, total=2, realtime=False)
    assert stats.matches == 2
    for how, topic, event, key in producer.sent:
        assert key == event["match"]
        if event["type"] == "pos":
            assert (how, topic) == ("nowait:None", POSITIONS_TOPIC)  # the topic's memory acks
        else:
            assert (how, topic) == ("nowait:durable", EVENTS_TOPIC)
    assert stats.positions == sum(1 for s in producer.sent if s[2]["type"] == "pos")
    assert stats.match_events == len(producer.sent) - stats.positions


async def test_each_match_is_published_whole_and_in_order():
    producer = FakeProducer()
    await publish_matches(producer, _factory(), concurrent=2, total=2, realtime=False)
    for index in range(2):
        expected = simulate_match(seed=40 + index, match_id=f"pub{index}", players=6,
                                  cheaters=1, duration_s=2.0, start_ts_ms=START).events
        got = [event for _, _, event, key in producer.sent if key == f"pub{index}"]
        assert [e for e in got if e["type"] != "pos"] == [e for e in expected if e["type"] != "pos"]
        assert [e for e in got if e["type"] == "pos"] == [e for e in expected if e["type"] == "pos"]


async def test_labels_are_handed_to_the_caller_not_to_the_producer():
    producer = FakeProducer()
    seen: list[MatchSimulator] = []
    await publish_matches(producer, _factory(), concurrent=1, total=1, realtime=False,
                          on_start=seen.append)
    assert len(seen) == 1 and len(seen[0].labels) == 1
    label_keys = {"kind", "intensity", "on_intervals", "closet", "skill"}
    assert all(not (label_keys & set(event)) for _, _, event, _ in producer.sent)


async def test_real_time_publishing_follows_the_tick_clock():
    producer = FakeProducer()
    t0 = time.monotonic()
    stats = await publish_matches(producer, _factory(duration_s=1.0), concurrent=2, total=2,
                                  realtime=True)
    elapsed = time.monotonic() - t0
    assert 0.95 <= elapsed < 3.0
    assert stats.matches == 2


async def test_publishing_to_a_real_broker_lands_every_event_in_its_match_partition(tmp_path: Path):
    gamebus_client = pytest.importorskip("gamebus.client")
    from tests.support.broker import BrokerProcess

    with BrokerProcess(tmp_path / "data") as broker:
        async with gamebus_client.Producer(broker.url) as producer:
            stats = await publish_matches(producer, _factory(), concurrent=2, total=2,
                                          realtime=False)
        assert stats.matches == 2
        bus = await gamebus_client.connect(broker.url)
        try:
            for index in range(2):
                match = f"pub{index}"
                expected = simulate_match(seed=40 + index, match_id=match, players=6, cheaters=1,
                                          duration_s=2.0, start_ts_ms=START).events
                for topic, want in (
                    (EVENTS_TOPIC, [e for e in expected if e["type"] != "pos"]),
                    (POSITIONS_TOPIC, [e for e in expected if e["type"] == "pos"]),
                ):
                    partition = await bus.partition_for(topic, match)
                    got: list[dict[str, Any]] = []
                    offset = 0
                    while True:
                        batches = await bus.fetch(topic, partition, offset)
                        if not batches:
                            break
                        for batch in batches:
                            got += [decode_event(r) for r in batch.records]
                            offset = batch.next_offset
                    assert [e for e in got if e["match"] == match] == want
        finally:
            await bus.close()


async def test_loop_mode_restarts_matches_with_new_ids():
    producer = FakeProducer()
    started: list[str] = []

    def factory(index: int, start_ts_ms: int) -> MatchSimulator:
        return MatchSimulator(seed=index, match_id=f"loop{index}", players=4, duration_s=0.5,
                              start_ts_ms=start_ts_ms)

    task = asyncio.ensure_future(publish_matches(
        producer, factory, concurrent=2, total=None, realtime=False,
        on_start=lambda sim: started.append(sim.match_id)))
    while len(started) < 5:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started[:5] == [f"loop{i}" for i in range(5)]
    ended = {e["match"] for _, _, e, _ in producer.sent if e["type"] == "match_end"}
    assert {"loop0", "loop1"} <= ended


async def test_real_time_events_are_published_when_their_ts_comes_round_even_if_building_a_match_is_slow():
    """Building a simulator takes time; it must not shift every event of the match late."""
    now = [START / 1000.0]

    def clock() -> float:
        return now[0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    def slow_factory(index: int, start_ts_ms: int) -> MatchSimulator:
        sim = MatchSimulator(seed=40 + index, match_id=f"slow{index}", players=6, cheaters=1,
                             duration_s=2.0, start_ts_ms=start_ts_ms)
        now[0] += 0.8  # what a real build costs on a busy machine
        return sim

    class TimedProducer(FakeProducer):
        def __init__(self) -> None:
            super().__init__()
            self.lateness_ms: list[float] = []

        def send_nowait(self, topic: str, event: Any, *, key: str | None = None,
                        acks: Any = None) -> None:
            self.lateness_ms.append(now[0] * 1000 - event["ts"])
            super().send_nowait(topic, event, key=key, acks=acks)

    producer = TimedProducer()
    await publish_matches(producer, slow_factory, concurrent=1, total=1, realtime=True,
                          clock=clock, sleep=sleep)
    late = sorted(producer.lateness_ms)
    # Only the ticks that fell due while the match was being built go out late.
    assert late[len(late) // 2] < 1.0
    assert late[-1] <= 1_000.0


async def test_a_leagues_next_round_starts_only_after_every_match_of_the_last_one_ended():
    """Lobbies of one round end at different times; no account may be in two matches at once."""
    order: list[str] = []  # "start:i" and "end:i" in the order they happened

    class Recording(FakeProducer):
        def send_nowait(self, topic: str, event: Any, *, key: str | None = None,
                        acks: Any = None) -> None:
            super().send_nowait(topic, event, key=key, acks=acks)
            if event["type"] == "match_end":
                order.append(f"end:{event['match'][1:]}")

    def factory(index: int, start_ts_ms: int) -> MatchSimulator:
        # Odd lobbies play twice as long as even ones.
        return MatchSimulator(seed=index, match_id=f"r{index}", players=4,
                              duration_s=0.5 * (1 + index % 2), start_ts_ms=START)

    producer = Recording()
    await publish_matches(producer, factory, concurrent=3, total=6, realtime=False, round_size=2,
                          on_start=lambda sim: order.append(f"start:{sim.match_id[1:]}"))
    for i in range(2, 6):
        started = order.index(f"start:{i}")
        earlier = [j for j in range(6) if j // 2 < i // 2]
        assert all(order.index(f"end:{j}") < started for j in earlier), order
    # Within a round the lobbies run together.
    assert order[:2] == ["start:0", "start:1"]
    with pytest.raises(ValueError, match="round_size"):
        await publish_matches(FakeProducer(), factory, concurrent=1, total=1, round_size=0)
