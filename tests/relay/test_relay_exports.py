"""Every relay module declares its public names, and they exist."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

MODULES = [
    "relay", "relay.backpressure", "relay.channels", "relay.cli", "relay.config", "relay.connection",
    "relay.delay", "relay.feed", "relay.history", "relay.interest", "relay.limits", "relay.metrics", "relay.protocol",
    "relay.records", "relay.server", "relay.tokens",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_module_exports_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    for export in module.__all__:
        assert hasattr(module, export), f"{name}.{export}"


def test_pure_cores_do_no_io() -> None:
    for name in ("relay.protocol", "relay.channels", "relay.interest", "relay.backpressure", "relay.tokens",
                 "relay.delay", "relay.limits", "relay.records"):  # fmt: skip
        source = importlib.import_module(name).__file__
        assert source is not None
        text = Path(source).read_text()
        for edge in ("import asyncio", "import socket", "websockets", "aiohttp"):
            assert edge not in text, f"{name} imports {edge}"
