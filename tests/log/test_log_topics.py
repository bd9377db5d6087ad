"""Topics and the Log manager: creation, lookup, key routing, persistence of config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from log_helpers import SMALL, append_n, read_all

import gamebus.log as log_pkg
from gamebus.errors import InvalidRequest, TopicExists, UnknownPartition, UnknownTopic
from gamebus.log import Log, LogConfig
from gamebus.partitioning import partition_for_key


def test_a_created_topic_has_its_partitions_and_config(tmp_path: Path):
    log = Log.open(tmp_path, default_config=SMALL)
    topic = log.create_topic("game.events", 4)
    assert [p.next_offset for p in topic.partitions] == [0, 0, 0, 0]
    assert topic.config == SMALL
    assert log.topic("game.events") is topic
    assert [t.name for t in log.topics()] == ["game.events"]
    assert (tmp_path / "game.events" / "topic.json").is_file()
    assert (tmp_path / "game.events" / "3").is_dir()


def test_keys_route_with_the_shared_crc32c_rule(tmp_path: Path):
    topic = Log.open(tmp_path).create_topic("t", 8)
    assert topic.partition_for("match-42") == partition_for_key("match-42", 8) == 2
    assert topic.partition(2) is topic.partitions[2]
    with pytest.raises(UnknownPartition):
        topic.partition(8)


def test_unknown_and_duplicate_topics_are_refused(tmp_path: Path):
    log = Log.open(tmp_path)
    log.create_topic("a", 1)
    with pytest.raises(TopicExists):
        log.create_topic("a", 2)
    with pytest.raises(UnknownTopic) as info:
        log.topic("b")
    assert info.value.topic == "b"


@pytest.mark.parametrize("name", ["", "..", "a/b", "has space", "x" * 201])
def test_topic_names_must_be_safe_directory_names(tmp_path: Path, name: str):
    with pytest.raises(InvalidRequest):
        Log.open(tmp_path).create_topic(name, 1)


def test_a_topic_needs_at_least_one_partition(tmp_path: Path):
    with pytest.raises(InvalidRequest):
        Log.open(tmp_path).create_topic("t", 0)


def test_reopening_the_log_finds_every_topic_with_its_own_config_and_data(tmp_path: Path):
    own = dataclasses.replace(SMALL, retention_bytes=5_000, fsync="interval")
    log = Log.open(tmp_path, default_config=SMALL)
    log.create_topic("a", 2)
    b = log.create_topic("b", 1, own)
    append_n(b.partitions[0], 10)
    data = read_all(b.partitions[0])
    log.flush_all(now_ms=5_000)
    log.close()
    again = Log.open(tmp_path, default_config=LogConfig())
    assert [t.name for t in again.topics()] == ["a", "b"]
    assert again.topic("b").config == own
    assert again.topic("a").config == SMALL
    assert read_all(again.topic("b").partitions[0]) == data
    assert again.topic("b").partitions[0].epoch == 0
    again.close()


def test_the_package_exports_its_public_api():
    assert sorted(log_pkg.__all__) == sorted(
        [
            "HEADER_BYTES",
            "AppendResult",
            "BatchHeader",
            "FsyncPolicy",
            "Log",
            "LogConfig",
            "Partition",
            "PendingWrite",
            "RecordBatch",
            "Recovery",
            "Segment",
            "Topic",
            "decode_batches",
            "decode_records",
            "encode_batch",
            "encode_header",
            "encode_records",
            "read_header",
        ]
    )
    for name in log_pkg.__all__:
        assert getattr(log_pkg, name) is not None
