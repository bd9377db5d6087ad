"""A topic: N partitions sharing one config, and the key -> partition rule.

On disk: ``DATA/<topic>/topic.json`` (partition count and config) and one
directory per partition, ``DATA/<topic>/<partition>/``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Final

from gamebus.errors import ConfigError, InvalidRequest, UnknownPartition
from gamebus.log.config import LogConfig
from gamebus.log.partition import Partition
from gamebus.log.segment import fsync_dir
from gamebus.partitioning import partition_for_key

__all__ = ["TOPIC_FILE", "Topic", "validate_topic_name"]

TOPIC_FILE: Final = "topic.json"
_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def validate_topic_name(name: str) -> str:
    """A topic name is a safe directory name: ``[A-Za-z0-9._-]``, 1-200 chars, not ``.``/``..``."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise InvalidRequest(
            "topic", f"{name!r} is not a valid topic name ([A-Za-z0-9._-], 1-200 chars)"
        )
    return name


class Topic:
    """A named set of partitions; ``partitions[i]`` is partition ``i``."""

    def __init__(
        self, name: str, directory: str, config: LogConfig, partitions: list[Partition]
    ) -> None:
        self.name = name
        self.directory = directory
        self.config = config
        self.partitions = partitions

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, partitions={len(self.partitions)})"

    @classmethod
    def create(cls, directory: str, name: str, *, partitions: int, config: LogConfig) -> Topic:
        """Create the topic's files; the caller checks it does not exist yet."""
        if not isinstance(partitions, int) or partitions < 1:
            raise InvalidRequest("partitions", f"must be a positive integer, not {partitions!r}")
        os.makedirs(directory, exist_ok=True)
        parts = [Partition.open(os.path.join(directory, str(i)), config) for i in range(partitions)]
        path = os.path.join(directory, TOPIC_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"name": name, "partitions": partitions, "config": config.to_dict()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(directory)
        fsync_dir(os.path.dirname(directory) or ".")
        return cls(name, directory, config, parts)

    @classmethod
    def open(cls, directory: str, *, default_config: LogConfig) -> Topic:
        """Open an existing topic, recovering each partition."""
        try:
            with open(os.path.join(directory, TOPIC_FILE), encoding="utf-8") as f:
                meta = json.load(f)
            name, count = str(meta["name"]), int(meta["partitions"])
            config = LogConfig.from_dict(dict(meta.get("config") or {}), base=default_config)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"unreadable topic metadata in {directory}: {exc}") from None
        parts = [Partition.open(os.path.join(directory, str(i)), config) for i in range(count)]
        return cls(name, directory, config, parts)

    def partition_for(self, key: str | bytes) -> int:
        """The partition index for ``key``: ``crc32c(key UTF-8) % partitions``."""
        return partition_for_key(key, len(self.partitions))

    def partition(self, index: int) -> Partition:
        """Partition ``index``, or :class:`UnknownPartition`."""
        if not 0 <= index < len(self.partitions):
            raise UnknownPartition(self.name, index)
        return self.partitions[index]

    def flush(self, *, now_ms: int, fsync: bool | None = None) -> list[int]:
        """Flush every partition; their durable offsets in partition order."""
        return [p.flush(now_ms=now_ms, fsync=fsync) for p in self.partitions]

    def apply_retention(self, now_ms: int) -> int:
        return sum(p.apply_retention(now_ms) for p in self.partitions)

    def close(self) -> None:
        for p in self.partitions:
            p.close()
