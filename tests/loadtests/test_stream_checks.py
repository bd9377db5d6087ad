"""The load-test clients' gap and duplicate checks, and the shapes, without a network."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgpack
import pytest

from loadtests.bench.common import StreamChecker, match_ids, owned_partitions
from loadtests.bench.e2e_clients import first_stamp, read_head

EV = "game.events"
POS = "game.positions"


def _ev(seq: int, kind: str = "kill", src: str = "s1") -> dict[str, Any]:
    return {"type": kind, "match": "m", "ts": 1, "seq": seq, "src": src}


def _pos(end: int, topic: str = EV) -> dict[str, Any]:
    return {"epoch": 3, "offsets": {topic: end}}


def test_consecutive_match_event_frames_pass_the_strict_check() -> None:
    c = StreamChecker()
    assert c.frame("m", EV, _pos(12), [_ev(1), _ev(2)], strict=True) == []
    assert c.frame("m", EV, _pos(13), [_ev(3)], strict=True) == []


def test_a_missing_match_event_is_a_gap_by_offset_and_by_sequence() -> None:
    c = StreamChecker()
    c.frame("m", EV, _pos(12), [_ev(1), _ev(2)], strict=True)
    problems = c.frame("m", EV, _pos(14), [_ev(4)], strict=True)
    assert [kind for kind, _ in problems] == ["gap", "gap"]


def test_a_repeated_frame_is_a_duplicate() -> None:
    c = StreamChecker()
    c.frame("m", EV, _pos(12), [_ev(1), _ev(2)], strict=True)
    problems = c.frame("m", EV, _pos(12), [_ev(1), _ev(2)], strict=True)
    assert [kind for kind, _ in problems] == ["duplicate", "duplicate", "duplicate"]


def test_skipped_positions_are_reported_as_skips_not_gaps() -> None:
    c = StreamChecker()
    c.frame("m", POS, _pos(5, POS), [_ev(1, "pos")], strict=True)
    assert c.frame("m", POS, _pos(9, POS), [_ev(4, "pos")], strict=True) == [("skipped", "2")]


def test_a_new_epoch_restarts_the_offset_check() -> None:
    c = StreamChecker()
    c.frame("m", EV, _pos(12), [], strict=True)
    assert c.frame("m", EV, {"epoch": 4, "offsets": {EV: 1}}, [], strict=True) == []


def test_match_ids_own_their_partitions_while_there_are_enough() -> None:
    ids = match_ids("lt", 8, 8)
    assert ids == match_ids("lt", 8, 8)
    assert owned_partitions(ids, 8) == set(ids)
    assert len(owned_partitions(match_ids("lt", 10, 8), 8)) < 10


def test_read_head_stops_at_the_events_array_and_counts_it() -> None:
    events = [{"lt": 1_700_000_000_000_000 + i, "type": "pos"} for i in range(20)]
    data = msgpack.packb({"op": "events", "match": "m", "topic": POS,
                          "position": _pos(20, POS), "events": events})
    head = read_head(data)
    assert (head.op, head.count, head.fields["position"]) == ("events", 20, _pos(20, POS))
    rest = msgpack.Unpacker(raw=False)
    rest.feed(data[head.events_at:])
    assert rest.unpack() == events[0]
    assert read_head(msgpack.packb({"op": "subscribed", "id": 1})).count == 0


def test_first_stamp_reads_lt_from_the_first_key_or_decodes_the_event() -> None:
    data = msgpack.packb([{"lt": 1_700_000_000_000_123, "type": "pos"}])
    assert first_stamp(data, 1) == 1_700_000_000_000_123
    later = msgpack.packb([{"type": "pos", "lt": 1_700_000_000_000_456}])
    assert first_stamp(later, 1) == 1_700_000_000_000_456
    small = msgpack.packb([{"lt": 5, "type": "pos"}])
    assert first_stamp(small, 1) == 5
    assert first_stamp(msgpack.packb([{"type": "pos"}]), 1) is None


def test_launch_shape_ramps_overshoots_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing locust patches the whole process for gevent (threads, sockets,
    # locks), which would break every asyncio test after this one; the shapes
    # need none of it. A real locust run happens in its own process.
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")
    from loadtests.shapes import LaunchRamp, MatchNight

    opts = SimpleNamespace(peak_users=100, shape_seconds=100.0)
    runner = SimpleNamespace(environment=SimpleNamespace(
        parsed_options=opts, user_classes=[SimpleNamespace(fixed_count=5)]))
    shape = LaunchRamp()
    shape.runner = runner  # type: ignore[assignment]
    at = {}
    for t in (5, 30, 49, 55, 80, 101):
        shape.start_time -= t - (shape.get_run_time())
        at[t] = shape.tick()
    assert at[5] is not None and at[5][0] == 5
    assert at[30] is not None and 5 < at[30][0] < 105
    assert at[49] is not None and at[49][0] >= 5 + 115  # the launch rush overshoots the peak
    assert at[80] is not None and at[80][0] == 105
    assert at[101] is None
    night = MatchNight()
    night.runner = runner  # type: ignore[assignment]
    night.start_time -= 50
    value = night.tick()
    assert value is not None and 95 <= value[0] <= 115
