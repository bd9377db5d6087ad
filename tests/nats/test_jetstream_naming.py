"""The pure half of the JetStream engine: names, ids, reply subjects, assignment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gamebus.engines.jetstream import assign, naming, parse_url
from gamebus.errors import ConfigError


def test_topic_maps_to_stream_and_partition_subjects() -> None:
    assert naming.stream_name("game.positions") == "GAMEBUS_game_positions"
    assert naming.partition_subject("game.positions", 3) == "gamebus.game.positions.3"


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "ü"])
def test_topic_names_that_would_break_subjects_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        naming.stream_name(bad)


def test_description_round_trips_topic_and_partition_count() -> None:
    text = naming.describe_topic("game.events", 8)
    assert naming.parse_description(text) == ("game.events", 8)
    assert naming.parse_description("someone else's stream") is None
    assert naming.parse_description(None) is None


def test_msg_id_is_stable_and_unique_per_record_of_a_batch() -> None:
    assert naming.msg_id(42, 3, 7, 0) == "42:3:7:0"
    ids = {naming.msg_id(42, 3, seq, i) for seq in range(3) for i in range(3)}
    assert len(ids) == 9  # batch-numbered sequences never collide across batches


def test_epoch_is_creation_time_in_microseconds() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert naming.epoch_from_created(created) == 1767323045678901
    assert naming.epoch_from_created(created) < 2**53
    assert naming.epoch_from_created(None) == 0


def test_ack_reply_v1_is_parsed() -> None:
    info = naming.parse_ack_reply("$JS.ACK.GAMEBUS_t.cons.1.17.5.1700000000123456789.3")
    assert info == naming.AckInfo(
        stream_seq=17, consumer_seq=5, timestamp_ms=1700000000123, pending=3
    )


def test_ack_reply_v2_with_domain_and_hash_is_parsed() -> None:
    info = naming.parse_ack_reply(
        "$JS.ACK.hub.ACCHASH.GAMEBUS_t.cons.1.17.5.1700000000123456789.3.rnd"
    )
    assert info is not None and (info.stream_seq, info.consumer_seq, info.pending) == (17, 5, 3)


def test_non_jetstream_reply_is_ignored() -> None:
    assert naming.parse_ack_reply("_INBOX.abc") is None
    assert naming.parse_ack_reply("$JS.ACK.s.c.x.y.z.w.v") is None


def test_url_with_several_servers_is_split() -> None:
    assert parse_url("nats://127.0.0.1:4222,127.0.0.1:4223") == [
        "nats://127.0.0.1:4222",
        "nats://127.0.0.1:4223",
    ]
    assert parse_url("nats://a:1,nats://b:2") == ["nats://a:1", "nats://b:2"]
    with pytest.raises(ConfigError):
        parse_url("gamebus://a:1")


def test_assignment_gives_contiguous_disjoint_ranges_covering_every_partition() -> None:
    members = {"b": ["t"], "a": ["t"], "c": ["t"]}
    shares = {m: assign(members, {"t": 8}, m) for m in members}
    assert shares["a"] == [("t", 0), ("t", 1), ("t", 2)]
    assert shares["b"] == [("t", 3), ("t", 4), ("t", 5)]
    assert shares["c"] == [("t", 6), ("t", 7)]


def test_assignment_only_spreads_a_topic_over_members_that_read_it() -> None:
    members = {"a": ["t", "u"], "b": ["u"]}
    assert assign(members, {"t": 2, "u": 2}, "a") == [("t", 0), ("t", 1), ("u", 0)]
    assert assign(members, {"t": 2, "u": 2}, "b") == [("u", 1)]


def test_more_members_than_partitions_leaves_some_idle() -> None:
    members = {"a": ["t"], "b": ["t"], "c": ["t"]}
    owned = [assign(members, {"t": 2}, m) for m in "abc"]
    assert sorted(p for share in owned for _, p in share) == [0, 1]
    assert [] in owned


def test_election_symptoms_are_retriable_and_become_engine_unavailable() -> None:
    import nats.errors
    import nats.js.errors

    from gamebus.engines.jetstream.translate import is_retriable, to_gamebus
    from gamebus.errors import ConnectionLost, EngineUnavailable, RequestError

    for exc in (
        nats.errors.TimeoutError(),
        nats.js.errors.NoStreamResponseError(),
        nats.js.errors.ServiceUnavailableError(code=503, err_code=10008),
    ):
        assert is_retriable(exc)
        assert isinstance(to_gamebus(exc, "x"), EngineUnavailable)
    bad = nats.js.errors.BadRequestError(code=400, err_code=10071)
    assert not is_retriable(bad)
    assert type(to_gamebus(bad, "x")) is RequestError
    assert isinstance(to_gamebus(nats.errors.ConnectionClosedError(), "x"), ConnectionLost)
