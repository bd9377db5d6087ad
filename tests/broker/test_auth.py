"""Tokens with per-topic permissions; open mode refuses non-loopback binds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gamebus
from gamebus.errors import AuthenticationFailed, NotAuthorized
from tests.support.broker import BrokerProcess

_REPO = Path(__file__).resolve().parents[2]
_CONFIG = {
    "tokens": [
        {"token": "game-server-token", "name": "gs", "produce": ["game.*"]},
        {"token": "anticheat-token", "name": "ac", "consume": ["game.*"], "produce": ["anticheat.*"]},
        {"token": "admin-token-123", "name": "admin", "admin": True},
    ]
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root = Path(tmp_path_factory.mktemp("auth"))
    config = root / "broker.json"
    config.write_text(json.dumps(_CONFIG))
    with BrokerProcess(root / "data", extra_args=["--config", str(config)]) as proc:
        yield proc


async def test_tokens_allow_only_their_topics(secured: BrokerProcess) -> None:
    gs = await gamebus.connect(secured.url, token="game-server-token")
    ac = await gamebus.connect(secured.url, token="anticheat-token")
    try:
        ok = await gs.produce("game.events", 0, [b"\x80"], acks="memory")
        assert ok is not None
        with pytest.raises(NotAuthorized) as info:
            await gs.produce("anticheat.alerts", 0, [b"\x80"], acks="memory")
        assert (info.value.action, info.value.resource) == ("produce", "anticheat.alerts")
        with pytest.raises(NotAuthorized):
            await gs.subscribe("game.events", 0, "earliest")
        with pytest.raises(NotAuthorized):
            await gs.create_topic("game.new", partitions=1)
        sub = await ac.subscribe("game.events", 0, "earliest")
        await sub.close()
        with pytest.raises(NotAuthorized):
            await ac.fetch("anticheat.alerts", 0, 0)
    finally:
        await gs.close()
        await ac.close()


async def test_a_wrong_or_missing_token_is_refused_at_connect(secured: BrokerProcess) -> None:
    with pytest.raises(AuthenticationFailed):
        await gamebus.connect(secured.url, token="not-a-real-token")
    with pytest.raises(AuthenticationFailed):
        await gamebus.connect(secured.url)


def test_open_mode_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(_REPO))
    result = subprocess.run(
        [sys.executable, "-m", "gamebus", "broker", "--data", str(tmp_path / "d"),
         "--host", "0.0.0.0", "--port", "0", "--admin-port", "0"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "open mode is loopback-only" in result.stderr
