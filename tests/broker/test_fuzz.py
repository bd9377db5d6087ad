"""Random bytes at a live broker: it answers or waits, never dies, others unaffected."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gamebus.protocol import PROTOCOL_VERSION, encode_frame
from tests.support.broker import BrokerProcess


@pytest.fixture(scope="module")
def fuzz_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(Path(tmp_path_factory.mktemp("fuzz")) / "data") as proc:
        yield proc


def _ping_ok(broker: BrokerProcess) -> bool:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as s:
        s.sendall(encode_frame("hello", 0, {"version": PROTOCOL_VERSION}) + encode_frame("ping", 1, {}))
        data = b""
        while data.count(b"\x93\xa2ok") < 2:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        return True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    garbage=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from([b"\x00\x00\x00\x05", b"\x93", b"\xa4ping", b"\x80", b"\xff" * 4]),
                 max_size=20).map(b"".join),
    ),
    after_hello=st.booleans(),
)
def test_random_bytes_never_take_the_broker_down(
    fuzz_broker: BrokerProcess, garbage: bytes, after_hello: bool
) -> None:
    prefix = encode_frame("hello", 0, {"version": PROTOCOL_VERSION}) if after_hello else b""
    with socket.create_connection(("127.0.0.1", fuzz_broker.port), timeout=5) as s:
        s.sendall(prefix + garbage)
        s.settimeout(0.2)
        try:
            while s.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass  # still waiting for the rest of a frame: fine
    assert fuzz_broker.running
    assert _ping_ok(fuzz_broker)
