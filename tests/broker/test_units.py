"""Pure parts of the broker: range assignment, group membership, config, auth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamebus.engines.base import Position
from gamebus.errors import AuthenticationFailed, ConfigError, NotAuthorized, UnknownMember
from gamebus.server.auth import Authorizer, check_bind
from gamebus.server.config import load_config
from gamebus.server.groups import GroupCoordinator, range_assign
from gamebus.server.offsets import OffsetStore


def test_range_assignment_deals_contiguous_ranges_in_member_order() -> None:
    got = range_assign({"b": ("t",), "a": ("t",), "c": ("t", "u")}, {"t": 8, "u": 2}.__getitem__)
    assert got == {
        "a": [("t", 0), ("t", 1), ("t", 2)],
        "b": [("t", 3), ("t", 4), ("t", 5)],
        "c": [("t", 6), ("t", 7), ("u", 0), ("u", 1)],
    }


def test_groups_rebalance_on_join_leave_and_expiry_without_sleeping() -> None:
    groups = GroupCoordinator({"t": 4}.__getitem__)
    g, a = groups.join("g", ["t"], member=None, session_timeout_ms=1000, now_ms=0, owner=1)
    g, b = groups.join("g", ["t"], member="b", session_timeout_ms=1000, now_ms=0, owner=2)
    assert g.generation == 2 and len(g.assignment[a]) == len(g.assignment[b]) == 2
    groups.heartbeat("g", a, now_ms=900)
    (changed,) = groups.expire(now_ms=1500)  # b last seen at 0
    assert changed.generation == 3 and changed.assignment == {a: [("t", p) for p in range(4)]}
    with pytest.raises(UnknownMember):
        groups.heartbeat("g", b, now_ms=1600)
    assert groups.drop_owner(1)[0].members == {}


def test_committed_offsets_survive_reopen_and_a_torn_tail(tmp_path: Path) -> None:
    store = OffsetStore(tmp_path)
    store.commit("g", {("t", 0): Position(1, 10), ("t", 1): Position(1, 20)})
    store.commit("g", {("t", 0): Position(2, 11)})
    store.close()
    with open(store.path, "ab") as f:
        f.write(b"\x00\x00\x00\x30\x01\x02")  # a crash mid-record
    again = OffsetStore(tmp_path)
    assert again.get("g", "t", 0) == Position(2, 11) and again.get("g", "t", 1) == Position(1, 20)
    assert again.get("h", "t", 0) is None
    again.close()


def test_config_loads_tokens_and_refuses_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"limits": {"max_connections": 3},
                                "tokens": [{"token": "abcdefgh", "produce": ["game.*"]}]}))  # fmt: skip
    config = load_config(path, data_dir=tmp_path / "d", port=1234)
    assert (config.port, config.limits.max_connections, config.auth_enabled) == (1234, 3, True)
    principal = Authorizer(config).authenticate("abcdefgh")
    assert principal.allowed("produce", "game.events")
    with pytest.raises(NotAuthorized):
        principal.require("consume", "game.events")
    with pytest.raises(AuthenticationFailed):
        Authorizer(config).authenticate("wrong-token")
    path.write_text(json.dumps({"limits": {"max_conections": 3}}))
    with pytest.raises(ConfigError, match="max_conections"):
        load_config(path, data_dir=tmp_path)


def test_open_mode_binds_only_loopback(tmp_path: Path) -> None:
    check_bind(load_config(None, data_dir=tmp_path, host="127.0.0.1"))
    check_bind(load_config(None, data_dir=tmp_path, host="::1"))
    with pytest.raises(ConfigError, match="loopback-only"):
        check_bind(load_config(None, data_dir=tmp_path, host="0.0.0.0"))


def test_memory_window_bytes_from_the_config_file_is_the_default_of_new_topics(tmp_path: Path) -> None:
    from gamebus.server.store import Store

    path = tmp_path / "b.json"
    path.write_text(json.dumps({"broker": {"memory_window_bytes": 262_144}}))
    config = load_config(path, data_dir=tmp_path / "d")
    assert config.memory_window_bytes == 262_144
    store = Store.open(config.data_dir, memory_window_bytes=config.memory_window_bytes)
    try:
        assert store.log.default_config.memory_window_bytes == 262_144
    finally:
        store.close()
    path.write_text(json.dumps({"broker": {"memory_window_bytes": -1}}))
    with pytest.raises(ConfigError, match="memory_window_bytes"):
        load_config(path, data_dir=tmp_path / "d")
