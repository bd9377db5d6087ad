"""Garbage, oversized and out-of-order frames: an error, a close, nobody else hurt."""

from __future__ import annotations

import asyncio
import socket
import struct

import gamebus
from gamebus.errors import FrameTooLarge, ProtocolError, error_from_wire
from gamebus.protocol import PROTOCOL_VERSION, Frame, FrameReader, encode_frame
from tests.support.broker import BrokerProcess


def _exchange(broker: BrokerProcess, payload: bytes) -> tuple[list[Frame], bool]:
    """Send ``payload`` on a raw socket; return the frames received and whether it closed."""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as s:
        s.sendall(payload)
        reader = FrameReader()
        frames: list[Frame] = []
        closed = False
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    closed = True
                    break
                reader.feed(data)
                frames.extend(reader.frames())
        except (TimeoutError, ConnectionResetError):
            closed = isinstance(frames, list) and bool(frames)
        return frames, closed


def _hello() -> bytes:
    return encode_frame("hello", 0, {"version": PROTOCOL_VERSION})


async def test_garbage_and_oversized_frames_get_an_error_and_a_close_others_unaffected(
    broker: BrokerProcess,
) -> None:
    bus = await gamebus.connect(broker.url)
    await bus.create_topic("bad.t", partitions=1)
    cases = {
        "garbage": _hello() + struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1",
        "oversized": _hello() + struct.pack(">I", 1 << 30),
        "not hello first": encode_frame("produce", 1, {"topic": "bad.t"}),
        "wrong version": encode_frame("hello", 0, {"version": 99}),
        "random bytes": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    results = await asyncio.gather(
        *(asyncio.to_thread(_exchange, broker, payload) for payload in cases.values())
    )
    for (name, _), (frames, closed) in zip(cases.items(), results, strict=True):
        assert closed, name
        errors = [error_from_wire(f.body) for f in frames if f.op == "err"]
        assert errors and isinstance(errors[-1], ProtocolError), (name, frames)
    oversized = [f for f in results[1][0] if f.op == "err"]
    assert isinstance(error_from_wire(oversized[0].body), FrameTooLarge)
    # The well-behaved client never noticed.
    result = await bus.produce("bad.t", 0, [b"\x80"], acks="durable")
    assert result is not None and result.base_offset == 0
    await bus.close()


async def test_a_bad_request_is_refused_but_the_connection_lives_on(broker: BrokerProcess) -> None:
    frames, closed = await asyncio.to_thread(
        _exchange_some, broker, _hello() + encode_frame("produce", 5, {"topic": 7})
        + encode_frame("fetch", 6, {"topic": "nope", "partition": 0, "offset": 0})
        + encode_frame("ping", 7, {}),
    )  # fmt: skip
    by_id = {f.id: f for f in frames}
    assert by_id[5].op == "err" and by_id[5].body["code"] == 34  # InvalidRequest
    assert by_id[6].op == "err" and by_id[6].body["code"] == 31  # UnknownTopic
    assert by_id[7].op == "ok" and not closed


def _exchange_some(broker: BrokerProcess, payload: bytes) -> tuple[list[Frame], bool]:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as s:
        s.sendall(payload)
        reader = FrameReader()
        frames: list[Frame] = []
        while len(frames) < 4:
            data = s.recv(65536)
            if not data:
                return frames, True
            reader.feed(data)
            frames.extend(reader.frames())
        return frames, False
