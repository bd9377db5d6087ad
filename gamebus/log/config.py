"""Per-topic storage configuration: one small frozen dataclass, units in names."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from gamebus.errors import ConfigError

__all__ = ["DEFAULT_MEMORY_WINDOW_BYTES", "FsyncPolicy", "LogConfig"]

FsyncPolicy = Literal["always", "interval", "never"]
#: Newest bytes of each partition kept in memory for readers, unless a topic says otherwise.
DEFAULT_MEMORY_WINDOW_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class LogConfig:
    """How a topic's partitions store, keep and sync their data.

    ``fsync`` decides what :meth:`Partition.flush` does after writing:
    ``"always"`` fsyncs on every flush (group commit: every batch written by
    that flush shares one fsync), ``"interval"`` fsyncs when
    ``fsync_interval_ms`` have passed since the last one, ``"never"`` leaves
    it to the OS. With ``"never"`` the durable offset is the written offset:
    it survives a process crash, not a power cut.

    ``memory_window_bytes`` bounds the newest batches kept in memory for
    reads; batches not yet written to a segment are never evicted, so the
    window can exceed the bound by what is pending.
    """

    segment_bytes: int = 64 * 1024 * 1024
    segment_ms: int = 24 * 3_600_000
    retention_bytes: int | None = None
    retention_ms: int | None = 7 * 24 * 3_600_000
    memory_window_bytes: int = DEFAULT_MEMORY_WINDOW_BYTES
    index_interval_bytes: int = 4096
    fsync: FsyncPolicy = "always"
    fsync_interval_ms: int = 1000
    max_batch_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("segment_bytes", "segment_ms", "index_interval_bytes", "max_batch_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("memory_window_bytes", "fsync_interval_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, not {getattr(self, name)}")
        for name in ("retention_bytes", "retention_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} must be None or >= 0, not {value}")
        if self.fsync not in ("always", "interval", "never"):
            raise ConfigError(f"fsync must be 'always', 'interval' or 'never', not {self.fsync!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the topic's ``topic.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: LogConfig | None = None) -> LogConfig:
        """Known keys from ``data`` over ``base`` (defaults); unknown keys are a ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown log config keys: {sorted(unknown)}")
        merged = (base or cls()).to_dict()
        merged.update(data)
        try:
            return cls(**merged)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None
