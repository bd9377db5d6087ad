"""Topics as the broker sees them: the :class:`gamebus.log.Log` plus per-partition state.

A thin adapter: it opens the log, creates topics with a
:class:`~gamebus.log.LogConfig` built from the request's config map over the
broker defaults, and keeps one :class:`PartitionState` per partition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gamebus.errors import ConfigError, InvalidRequest, UnknownTopic
from gamebus.log import Log, LogConfig
from gamebus.log.config import DEFAULT_MEMORY_WINDOW_BYTES
from gamebus.server.partitions import PartitionState

__all__ = ["Store"]

#: Topic config keys a client may set when creating a topic.
_CLIENT_KEYS = frozenset(
    {"segment_bytes", "segment_ms", "retention_bytes", "retention_ms", "memory_window_bytes", "fsync"}
)


class Store:
    def __init__(self, log: Log) -> None:
        self.log = log
        self._topics: dict[str, list[PartitionState]] = {
            t.name: [PartitionState(t.name, i, p) for i, p in enumerate(t.partitions)]
            for t in log.topics()
        }

    @classmethod
    def open(cls, data_dir: Path, *, fsync: str = "always",
             memory_window_bytes: int = DEFAULT_MEMORY_WINDOW_BYTES) -> Store:
        config = LogConfig.from_dict({"fsync": fsync, "memory_window_bytes": memory_window_bytes})
        return cls(Log.open(data_dir, default_config=config))

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def get(self, topic: str) -> list[PartitionState] | None:
        return self._topics.get(topic)

    def topic(self, topic: str) -> list[PartitionState]:
        parts = self._topics.get(topic)
        if parts is None:
            raise UnknownTopic(topic)
        return parts

    def all_partitions(self) -> list[PartitionState]:
        return [p for parts in self._topics.values() for p in parts]

    def create_topic(self, topic: str, *, partitions: int, config: dict[str, Any]) -> None:
        unknown = set(config) - _CLIENT_KEYS
        if unknown:
            raise InvalidRequest("config", f"unknown topic settings {sorted(unknown)}")
        if partitions > 1024:
            raise InvalidRequest("partitions", "at most 1024 partitions per topic")
        try:
            log_config = LogConfig.from_dict(config, base=self.log.default_config)
        except ConfigError as exc:
            raise InvalidRequest("config", str(exc)) from None
        t = self.log.create_topic(topic, partitions, log_config)
        self._topics[topic] = [PartitionState(topic, i, p) for i, p in enumerate(t.partitions)]

    def close(self) -> None:
        self.log.close()
