"""Configured limits are enforced with a clear LimitExceeded, and the connection lives on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import gamebus
from gamebus.errors import LimitExceeded
from tests.support.broker import BrokerProcess


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root = Path(tmp_path_factory.mktemp("limits"))
    config = root / "broker.toml"
    config.write_text(
        "[limits]\nmax_records_per_batch = 10\nmax_subscriptions_per_connection = 2\n"
        "max_connections = 3\n"
    )
    with BrokerProcess(root / "data", extra_args=["--config", str(config)]) as proc:
        yield proc


async def test_limits_are_refused_clearly_and_the_connection_survives(limited: BrokerProcess) -> None:
    bus = await gamebus.connect(limited.url)
    await bus.create_topic("lim.t", partitions=4)
    with pytest.raises(LimitExceeded) as info:
        await bus.produce("lim.t", 0, [b"\x80"] * 11, acks="memory")
    assert (info.value.what, info.value.value, info.value.limit) == ("records per batch", 11, 10)  # type: ignore[attr-defined]
    subs = [await bus.subscribe("lim.t", p, "earliest") for p in range(2)]
    with pytest.raises(LimitExceeded, match="subscriptions per connection"):
        await bus.subscribe("lim.t", 2, "earliest")
    await subs[0].close()
    third = await bus.subscribe("lim.t", 2, "earliest")  # room again after a close
    ok = await bus.produce("lim.t", 0, [b"\x80"] * 10, acks="memory")
    assert ok is not None and ok.base_offset == 0
    await third.close()
    await bus.close()


async def test_connections_past_the_limit_are_refused(limited: BrokerProcess) -> None:
    buses = [await gamebus.connect(limited.url) for _ in range(3)]
    with pytest.raises(LimitExceeded, match="connections"):
        await gamebus.connect(limited.url, connect_timeout_ms=2000)
    for b in buses:
        await b.close()
