"""The wire codec: frames survive any split; garbage fails fast and bounded."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamebus.engines.base import Position
from gamebus.errors import (
    FrameTooLarge,
    InvalidRequest,
    ProtocolError,
    UnknownTopic,
    error_from_wire,
)
from gamebus.protocol import (
    Frame,
    FrameReader,
    decode_start,
    encode_error,
    encode_frame,
    encode_push,
    encode_start,
)

frames_strategy = st.lists(
    st.builds(
        Frame,
        op=st.sampled_from(["hello", "produce", "ok", "push", "subscribe"]),
        id=st.integers(min_value=0, max_value=2**32),
        body=st.dictionaries(
            st.text(max_size=8),
            st.one_of(st.integers(-(2**40), 2**40), st.binary(max_size=300), st.text(max_size=20)),
            max_size=5,
        ),
    ),
    max_size=20,
)


def test_a_ping_frame_is_length_prefixed_msgpack() -> None:
    assert encode_frame("ping", 7, {}) == b"\x00\x00\x00\x08" + b"\x93\xa4ping\x07\x80"


def test_reader_returns_frames_fed_whole() -> None:
    reader = FrameReader(max_frame_bytes=1024)
    reader.feed(encode_frame("ping", 1, {}) + encode_frame("ok", 1, {"x": b"\x00"}))
    assert list(reader.frames()) == [Frame("ping", 1, {}), Frame("ok", 1, {"x": b"\x00"})]
    assert reader.buffered == 0


@settings(max_examples=200, deadline=None)
@given(frames=frames_strategy, cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=30))
def test_any_split_of_a_valid_stream_decodes_identically(frames: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f.op, f.id, f.body) for f in frames)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    reader = FrameReader(max_frame_bytes=1 << 20)
    out: list[Frame] = []
    prev = 0
    for point in [*points, len(stream)]:
        reader.feed(stream[prev:point])
        out.extend(reader.frames())
        prev = point
    assert out == frames
    assert reader.buffered == 0


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=2000), chunk=st.integers(min_value=1, max_value=64))
def test_garbage_yields_protocol_error_or_nothing_and_the_buffer_stays_bounded(
    garbage: bytes, chunk: int
) -> None:
    reader = FrameReader(max_frame_bytes=256)
    try:
        for i in range(0, len(garbage), chunk):
            reader.feed(garbage[i : i + chunk])
            for frame in reader.frames():
                assert isinstance(frame, Frame)
            assert reader.buffered <= 256 + 4
    except ProtocolError:
        with pytest.raises(ProtocolError):
            reader.feed(b"x")


def test_oversized_length_prefix_fails_before_the_body_arrives() -> None:
    reader = FrameReader(max_frame_bytes=65_536)
    reader.feed(b"\x00\x01\x00\x01" + b"x" * 10)
    with pytest.raises(FrameTooLarge) as info:
        list(reader.frames())
    assert (info.value.size, info.value.max_size) == (65_537, 65_536)


@pytest.mark.parametrize(
    "body",
    [
        msgpack.packb({"op": "ping"}),
        msgpack.packb(["ping", -1, {}]),
        msgpack.packb(["", 1, {}]),
        msgpack.packb(["ping", 1, []]),
        msgpack.packb(["ping", 1, {1: 2}]),
        b"\xc1",
    ],
)
def test_ill_shaped_frames_are_protocol_errors(body: bytes) -> None:
    reader = FrameReader()
    reader.feed(len(body).to_bytes(4, "big") + body)
    with pytest.raises(ProtocolError):
        list(reader.frames())


def test_error_frames_rebuild_the_same_error_class_with_its_facts() -> None:
    reader = FrameReader()
    reader.feed(encode_error(3, UnknownTopic("nope")))
    (frame,) = reader.frames()
    err = error_from_wire(frame.body)
    assert isinstance(err, UnknownTopic) and err.topic == "nope" and frame.id == 3


def test_push_frames_carry_batches_byte_for_byte() -> None:
    reader = FrameReader()
    reader.feed(encode_push(9, 2, [b"\x01\x02", b"\xff" * 5]))
    (frame,) = reader.frames()
    assert frame == Frame("push", 9, {"epoch": 2, "batches": [b"\x01\x02", b"\xff" * 5]})


def test_start_positions_round_trip_and_reject_nonsense() -> None:
    for start in ("earliest", "latest", Position(3, 42)):
        assert decode_start(encode_start(start)) == start  # type: ignore[arg-type]
    for bad in ("middle", [1], [1, -2], [True, 2], None):
        with pytest.raises(InvalidRequest):
            decode_start(bad)
