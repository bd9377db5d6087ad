"""The event schema: what the SDK refuses and what decoders skip."""

from __future__ import annotations

import math

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamebus.errors import InvalidEvent
from gamebus.events import (
    EVENTS_TOPIC,
    POSITIONS_TOPIC,
    decode_event,
    encode_event,
    match_event,
    position,
    topic_for,
    validate_event,
)


def _pos(**over: object) -> dict[str, object]:
    ev = position(match="m1", player="p1", x=1.0, y=2.0, z=0.0, yaw=90.0, pitch=-3.0, ts=5)
    ev.update(over)
    return ev


def test_a_valid_position_round_trips_through_msgpack() -> None:
    ev = _pos(vx=1.5)
    assert decode_event(encode_event(ev)) == ev


@pytest.mark.parametrize(
    ("field", "value"),
    [("x", "1"), ("x", math.nan), ("x", True), ("ts", 1.5), ("ts", -1), ("player", ""),
     ("match", 7), ("ping", 2.5)],
)
def test_an_ill_typed_field_is_named_in_the_error(field: str, value: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(_pos(**{field: value}))
    assert info.value.field == field


def test_a_missing_required_field_is_named() -> None:
    ev = match_event("kill", match="m1", ts=1, player="a", target="b", weapon="rifle")
    with pytest.raises(InvalidEvent) as info:
        validate_event(ev)
    assert info.value.field == "headshot"


def test_unknown_types_are_refused_unless_namespaced() -> None:
    with pytest.raises(InvalidEvent):
        validate_event({"type": "teleportz", "match": "m", "ts": 1})
    assert validate_event({"type": "mygame.chest", "match": "m", "ts": 1, "gold": 3})["gold"] == 3


def test_invalid_event_is_a_value_error_for_callers_that_catch_those() -> None:
    with pytest.raises(ValueError):
        validate_event({"type": "pos"})


def test_topics_follow_the_event_type() -> None:
    assert topic_for("pos") == POSITIONS_TOPIC
    assert topic_for("kill") == EVENTS_TOPIC
    assert topic_for("anticheat.alert") == "anticheat.alerts"


@given(st.binary(max_size=256))
def test_decoding_garbage_raises_invalid_event_or_returns_a_valid_event(data: bytes) -> None:
    try:
        ev = decode_event(data)
    except InvalidEvent:
        return
    assert validate_event(ev) == ev


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(), st.none(),
                                                       st.floats(), st.booleans()), max_size=8))
def test_decoding_arbitrary_maps_never_raises_anything_but_invalid_event(d: dict) -> None:
    try:
        decode_event(msgpack.packb(d))
    except InvalidEvent:
        pass
