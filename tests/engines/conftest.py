"""Both engines behind one fixture: a real broker process and a real nats-server."""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from gamebus.engines import connect  # noqa: E402
from gamebus.engines.base import Bus  # noqa: E402
from tests.nats.support import NatsServer, nats_server_available, wait_for_jetstream  # noqa: E402
from tests.support.broker import BrokerProcess  # noqa: E402

_counter = itertools.count()


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("jetstream", marks=pytest.mark.nats)]
)
def engine_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a running engine; each test module gets one of each kind."""
    if request.param == "embedded":
        with BrokerProcess(tmp_path_factory.mktemp("broker")) as broker:
            yield broker.url
        return
    if not nats_server_available():
        pytest.skip("nats-server is not installed")
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def bus(engine_url: str) -> AsyncIterator[Bus]:
    if engine_url.startswith("nats://"):
        await wait_for_jetstream([engine_url])
    b = await connect(engine_url)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def topic() -> str:
    return f"c{next(_counter)}.{uuid.uuid4().hex[:8]}"
