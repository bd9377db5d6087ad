"""The exception tree: codes are unique and survive the wire."""

from __future__ import annotations

from gamebus import errors
from gamebus.errors import (
    GamebusError,
    OffsetOutOfRange,
    RebalanceInProgress,
    UnknownTopic,
    error_from_wire,
    for_code,
)


def test_every_exported_error_has_a_distinct_code() -> None:
    classes = [getattr(errors, n) for n in errors.__all__ if n[0].isupper()]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(issubclass(c, GamebusError) for c in classes)


def test_an_error_rebuilt_from_the_wire_keeps_class_message_and_facts() -> None:
    sent = OffsetOutOfRange(5, 10, 20)
    got = error_from_wire(sent.to_wire())
    assert type(got) is OffsetOutOfRange
    assert str(got) == "offset 5 outside [10, 20)"
    assert (got.offset, got.log_start, got.log_end) == (5, 10, 20)


def test_unknown_codes_map_to_the_root() -> None:
    assert for_code(9999) is GamebusError
    assert for_code(UnknownTopic.code) is UnknownTopic


def test_retriable_is_a_class_fact() -> None:
    assert RebalanceInProgress.retriable and not UnknownTopic.retriable
