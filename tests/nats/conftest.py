"""Fixtures for the JetStream engine suite: real nats-server processes on loopback."""

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

from gamebus.engines.jetstream import JetStreamBus, connect_jetstream  # noqa: E402
from tests.nats.support import NatsServer, nats_server_available, wait_for_jetstream  # noqa: E402

_counter = itertools.count()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if not nats_server_available():
        pytest.skip("nats-server is not installed (make system-deps installs it)")
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[JetStreamBus]:
    await wait_for_jetstream([nats_server.url])
    b = await connect_jetstream(nats_server.url, produce_timeout_ms=5_000, heartbeat_ms=500)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses, with a dot like the real ones."""
    return f"t{next(_counter)}.{uuid.uuid4().hex[:8]}"
