"""Shared fixtures: free loopback ports and real broker processes."""

from __future__ import annotations

import socket

import pytest
from hypothesis import settings

# Property tests assert what a decoder or a state machine does, never how
# fast: on a shared 2-core CI box a single example can pass Hypothesis's
# default 200 ms deadline while a training run or the broker suites share
# the cores, and a deadline failure there says nothing about gamebus.
settings.register_profile("gamebus", deadline=None)
settings.load_profile("gamebus")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()
