"""relay.protocol: client messages in, frames out; garbage never escapes as anything else."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamebus.events import encode_event, position
from relay.protocol import (
    Area,
    ClientMessageError,
    Follow,
    Ping,
    Resume,
    SetInterest,
    Subscribe,
    SubscribeAlerts,
    Unsubscribe,
    encode_events,
    encode_message,
    parse_client_message,
)


def both(message: Any) -> list[tuple[bytes | str, str]]:
    return [(msgpack.packb(message), "msgpack"), (json.dumps(message), "json")]


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_a_full_subscribe_parses_into_a_frozen_dataclass(fmt: str) -> None:
    msg = {
        "op": "sub", "id": 1, "match": "m1",
        "resume": {"epoch": 3, "offsets": {"game.positions": 120, "game.events": 42}},
        "area": {"x": 1, "y": 2.5, "r": 10}, "follow": {"player": "p7", "r": 5},
    }  # fmt: skip
    data = msgpack.packb(msg) if fmt == "msgpack" else json.dumps(msg)
    parsed = parse_client_message(data, fmt)  # type: ignore[arg-type]
    assert parsed == Subscribe(
        1, "m1",
        resume=Resume((("game.events", 42), ("game.positions", 120)), (("game.events", 3), ("game.positions", 3))),
        area=Area(1.0, 2.5, 10.0), follow=Follow("p7", 5.0),
    )  # fmt: skip
    assert isinstance(parsed, Subscribe) and parsed.resume is not None
    assert parsed.resume.offset("game.events") == 42 and parsed.resume.epoch("game.positions") == 3


def test_every_op_parses() -> None:
    assert parse_client_message(json.dumps({"op": "unsub", "id": 2, "match": "m1"}), "json") == Unsubscribe(2, "m1")
    assert parse_client_message(json.dumps({"op": "area", "match": "m1", "area": None, "follow": "p7"}), "json") == SetInterest(
        None, "m1", None, Follow("p7")
    )
    assert parse_client_message(json.dumps({"op": "sub_alerts", "id": 3}), "json") == SubscribeAlerts(3)
    assert parse_client_message(json.dumps({"op": "ping", "id": 4}), "json") == Ping(4)


def test_per_topic_epochs_override_the_common_epoch() -> None:
    msg = {"op": "sub", "match": "m", "resume": {"epoch": 1, "epochs": {"game.events": 2}, "offsets": {"game.events": 5, "game.positions": 9}}}
    parsed = parse_client_message(json.dumps(msg), "json")
    assert isinstance(parsed, Subscribe) and parsed.resume is not None
    assert parsed.resume.epochs == (("game.events", 2), ("game.positions", 1))


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"op": "sub", "id": 1}, "bad_field", "match"),
        ({"op": "sub", "id": 1, "match": ""}, "bad_field", "match"),
        ({"op": "sub", "id": 1, "match": "m", "area": {"x": 0, "y": 0, "r": 0}}, "bad_field", "area.r"),
        ({"op": "sub", "id": 1, "match": "m", "area": {"x": "0", "y": 0, "r": 1}}, "bad_field", "area.x"),
        ({"op": "sub", "id": 1, "match": "m", "area": [1, 2, 3]}, "bad_field", "area"),
        ({"op": "sub", "id": 1, "match": "m", "follow": 7}, "bad_field", "follow"),
        ({"op": "sub", "id": 1, "match": "m", "resume": {"offsets": {"game.events": 1}}}, "bad_field", "resume.epoch"),
        ({"op": "sub", "id": 1, "match": "m", "resume": {"epoch": 1, "offsets": {"game.events": -1}}}, "bad_field", "resume.offsets.game.events"),
        ({"op": "sub", "id": 1, "match": "m", "resume": {"epoch": 1, "offsets": {}, "positions": "some"}}, "bad_field", "resume.positions"),
        ({"op": "sub", "id": True, "match": "m"}, "bad_field", "id"),
        ({"op": "fly", "id": 1}, "bad_op", "op"),
        ({"id": 1}, "bad_op", "op"),
    ],
)
def test_ill_formed_requests_name_the_field_and_echo_the_id(message: dict[str, Any], code: str, field: str) -> None:
    for data, fmt in both(message):
        with pytest.raises(ClientMessageError) as info:
            parse_client_message(data, fmt)  # type: ignore[arg-type]
        assert (info.value.code, info.value.field) == (code, field)
        if field != "id":
            assert info.value.id == 1


@pytest.mark.parametrize(
    ("data", "fmt"),
    [(b"\xc1", "msgpack"), (b"\x93\x01", "msgpack"), ("[1,2]", "json"), ("{", "json"), ("NaN", "json"),
     ("text", "msgpack"), (msgpack.packb([1, 2]), "msgpack"), ("[" * 100_000, "json")],
)  # fmt: skip
def test_undecodable_messages_are_bad_message(data: bytes | str, fmt: str) -> None:
    with pytest.raises(ClientMessageError) as info:
        parse_client_message(data, fmt)  # type: ignore[arg-type]
    assert info.value.code == "bad_message"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ops = st.sampled_from(["sub", "unsub", "area", "sub_alerts", "ping", "nope"])
near_messages = st.fixed_dictionaries(
    {"op": ops},
    optional={"id": json_values, "match": json_values, "area": json_values, "follow": json_values, "resume": json_values},
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_client_message_error(data: bytes) -> None:
    for fmt in ("msgpack", "json"):
        try:
            parse_client_message(data, fmt)  # type: ignore[arg-type]
        except ClientMessageError:
            pass


@settings(max_examples=300, deadline=None)
@given(near_messages)
def test_near_miss_messages_only_ever_raise_client_message_error(message: dict[str, Any]) -> None:
    for data, fmt in both(message):
        try:
            parse_client_message(data, fmt)  # type: ignore[arg-type]
        except ClientMessageError as exc:
            assert exc.code in {"bad_message", "bad_op", "bad_field"}


def test_msgpack_events_frames_splice_records_and_match_the_json_frame() -> None:
    events = [position(match="m1", player=f"p{i}", x=i, y=-i, z=0.5, yaw=1.0, pitch=0.0, ts=10 + i) for i in range(3)]
    records = [encode_event(e) for e in events]
    args: dict[str, Any] = dict(match="m1", topic="game.positions", position={"epoch": 1, "offsets": {"game.positions": 3}}, records=records, events=events)
    mp = msgpack.unpackb(encode_events(**args, fmt="msgpack"), raw=False)
    js = json.loads(encode_events(**args, fmt="json"))
    assert mp == js == {"op": "events", "match": "m1", "topic": "game.positions", "position": {"epoch": 1, "offsets": {"game.positions": 3}}, "events": events}


def test_control_messages_encode_in_both_formats() -> None:
    message = {"op": "error", "id": None, "code": "bad_op", "message": "x"}
    assert msgpack.unpackb(encode_message(message, "msgpack")) == message
    assert json.loads(encode_message(message, "json")) == message


def test_wire_frames_are_unmasked_final_frames_with_the_right_length_encoding() -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    from relay.protocol import wire_frame

    for size, text in ((5, False), (125, True), (126, False), (70_000, False)):
        data = b"x" * size
        raw = wire_frame(data, text=text)
        reader = StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frame = done.value
        assert frame.fin and frame.opcode == (Opcode.TEXT if text else Opcode.BINARY) and frame.data == data
