"""The log manager: every topic under one data directory.

``Log.open(DATA)`` opens (and recovers) every ``DATA/<topic>/`` that has a
``topic.json``; topics are created with :meth:`Log.create_topic`.
"""

from __future__ import annotations

import os

from gamebus.errors import TopicExists, UnknownTopic
from gamebus.log.config import LogConfig
from gamebus.log.topic import TOPIC_FILE, Topic, validate_topic_name

__all__ = ["Log"]


class Log:
    """All topics of one broker. Owner-thread only, like :class:`Partition`."""

    def __init__(self, directory: str, default_config: LogConfig, topics: dict[str, Topic]) -> None:
        self.directory = directory
        self.default_config = default_config
        self._topics = topics

    def __repr__(self) -> str:
        return f"Log({self.directory!r}, topics={sorted(self._topics)})"

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], *, default_config: LogConfig | None = None
    ) -> Log:
        """Open the data directory (created when missing) and recover every topic."""
        path = os.fspath(directory)
        config = default_config or LogConfig()
        os.makedirs(path, exist_ok=True)
        topics: dict[str, Topic] = {}
        for name in sorted(os.listdir(path)):
            topic_dir = os.path.join(path, name)
            if os.path.isfile(os.path.join(topic_dir, TOPIC_FILE)):
                topic = Topic.open(topic_dir, default_config=config)
                topics[topic.name] = topic
        return cls(path, config, topics)

    def create_topic(self, name: str, partitions: int, config: LogConfig | None = None) -> Topic:
        """Create ``name`` with ``partitions`` partitions; :class:`TopicExists` if it does."""
        validate_topic_name(name)
        if name in self._topics:
            raise TopicExists(name)
        topic = Topic.create(
            os.path.join(self.directory, name),
            name,
            partitions=partitions,
            config=config or self.default_config,
        )
        self._topics[name] = topic
        return topic

    def topic(self, name: str) -> Topic:
        """The topic called ``name``, or :class:`UnknownTopic`."""
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopic(name) from None

    def topics(self) -> list[Topic]:
        """Every topic, sorted by name."""
        return [self._topics[n] for n in sorted(self._topics)]

    def flush_all(self, *, now_ms: int, fsync: bool | None = None) -> None:
        """Flush every partition of every topic (the simple, single-threaded flusher)."""
        for topic in self._topics.values():
            topic.flush(now_ms=now_ms, fsync=fsync)

    def apply_retention(self, now_ms: int) -> int:
        """Run retention on every partition; the number of segments deleted."""
        return sum(t.apply_retention(now_ms) for t in self._topics.values())

    def close(self) -> None:
        """Flush, fsync and close everything, leaving clean-shutdown markers."""
        for topic in self._topics.values():
            topic.close()
        self._topics.clear()
