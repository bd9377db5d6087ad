"""Fixtures for the broker suite: a real broker subprocess per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# ``tests`` is not a package; make ``tests.support`` importable without
# depending on how pytest was started (pyproject could say pythonpath = ["."]).
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.support.broker import BrokerProcess  # noqa: E402


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A running broker on free loopback ports, stopped after the test."""
    proc = BrokerProcess(tmp_path / "data")
    with proc:
        yield proc
    if proc.running:
        proc.kill()
