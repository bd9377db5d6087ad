"""Broker configuration: one frozen dataclass, loaded from flags and a file.

The config file is TOML (``.toml``) or JSON (anything else) with optional
sections; every key has a default, so an empty file is valid::

    [broker]
    auto_create = true
    default_partitions = 8
    flush_interval_ms = 2
    fsync = "always"              # or "interval", "never"
    memory_window_bytes = 8388608 # per partition, default for new topics

    [limits]
    max_frame_bytes = 8388608
    max_records_per_batch = 100000
    max_connections = 1024
    max_subscriptions_per_connection = 256
    max_unflushed_bytes = 16777216

    [[tokens]]                    # any token section turns auth on
    token = "s3cret-game-server"
    name = "game-server"
    produce = ["game.*"]          # fnmatch patterns of topic names
    consume = []
    admin = false                 # create topics, read metadata of everything

Environment variables are read only by the CLI, never here.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gamebus.errors import ConfigError
from gamebus.log.config import DEFAULT_MEMORY_WINDOW_BYTES

__all__ = ["BrokerConfig", "Limits", "TokenGrant", "load_config"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Explicit bounds; hitting one is a clear ``LimitExceeded``."""

    max_frame_bytes: int = 8 * 1024 * 1024
    max_records_per_batch: int = 100_000
    max_connections: int = 1024
    max_subscriptions_per_connection: int = 256
    max_credit_bytes: int = 64 * 1024 * 1024
    #: Bytes a connection may have queued for sending before the broker
    #: stops reading its requests (answers then wait, memory stays bounded).
    max_pending_write_bytes: int = 16 * 1024 * 1024
    #: Bytes appended but not yet written to segments, over all partitions;
    #: past it producers are paused until the flusher catches up.
    max_unflushed_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What one token may do: fnmatch patterns of topics per permission."""

    token: str
    name: str
    produce: tuple[str, ...] = ()
    consume: tuple[str, ...] = ()
    admin: bool = False


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 7400
    admin_host: str = "127.0.0.1"
    admin_port: int = 7401
    auto_create: bool = True
    default_partitions: int = 8
    #: How long the flusher waits for more appends before writing (group commit).
    flush_interval_ms: float = 2.0
    flush_bytes: int = 1024 * 1024
    #: With nobody waiting for durability, write behind at least this often.
    flush_idle_ms: float = 200.0
    fsync: str = "always"
    #: Default for new topics: the newest bytes of each partition kept in
    #: memory for readers (bounded; a fresh broker's RSS grows until full).
    memory_window_bytes: int = DEFAULT_MEMORY_WINDOW_BYTES
    group_session_timeout_ms: int = 10_000
    retention_check_ms: int = 30_000
    limits: Limits = field(default_factory=Limits)
    tokens: tuple[TokenGrant, ...] = ()

    @property
    def auth_enabled(self) -> bool:
        return bool(self.tokens)

    def with_overrides(self, **overrides: Any) -> BrokerConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config section [{name}] must be a table")
    return value


def _typed(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(cls)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key {where}.{key}")
        out[key] = value
    return out


def _grant(raw: Any, index: int) -> TokenGrant:
    if not isinstance(raw, dict):
        raise ConfigError(f"tokens[{index}] must be a table")
    token = raw.get("token")
    if not isinstance(token, str) or len(token) < 8:
        raise ConfigError(f"tokens[{index}].token must be a string of at least 8 characters")

    def patterns(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"tokens[{index}].{key} must be a list of topic patterns")
        return tuple(value)

    return TokenGrant(
        token=token,
        name=str(raw.get("name", f"token-{index}")),
        produce=patterns("produce"),
        consume=patterns("consume"),
        admin=bool(raw.get("admin", False)),
    )


def load_config(path: Path | None, *, data_dir: Path, **overrides: Any) -> BrokerConfig:
    """Read ``path`` (TOML or JSON) and apply command-line ``overrides``."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        try:
            raw = tomllib.loads(text) if str(path).endswith(".toml") else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"config {path} is not valid: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a table/object at the top")
    broker = _typed(BrokerConfig, _section(raw, "broker"), "broker")
    broker.pop("limits", None)
    broker.pop("tokens", None)
    if "data_dir" in broker:
        broker["data_dir"] = Path(broker["data_dir"])
    limits = Limits(**_typed(Limits, _section(raw, "limits"), "limits"))
    tokens_raw = raw.get("tokens", [])
    if not isinstance(tokens_raw, list):
        raise ConfigError("tokens must be a list of tables")
    tokens = tuple(_grant(t, i) for i, t in enumerate(tokens_raw))
    if len({t.token for t in tokens}) != len(tokens):
        raise ConfigError("tokens must be unique")
    base = {**broker, "data_dir": data_dir}
    config = BrokerConfig(**base, limits=limits, tokens=tokens).with_overrides(**overrides)
    if config.fsync not in ("always", "interval", "never"):
        raise ConfigError(f"fsync must be always, interval or never, not {config.fsync!r}")
    if config.default_partitions < 1:
        raise ConfigError("default_partitions must be at least 1")
    if config.memory_window_bytes < 0:
        raise ConfigError("memory_window_bytes must not be negative")
    return config
