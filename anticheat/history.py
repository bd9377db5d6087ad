"""Reading the past back from the bus: one match's events, alerts, scores, a player's history.

Used by the analyst tools (``rescore``, ``explain``, ``review``, ``accounts``). A match
lives in one partition of each game topic (the key is the match id), so a
re-read is a sequential ``fetch`` of two partitions from their log start,
keeping the records of that match. Offsets come back with each event so an
explanation can point at the exact records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack

from gamebus.engines.base import Bus
from gamebus.errors import InvalidEvent
from gamebus.events import (
    ALERTS_TOPIC,
    EVENTS_TOPIC,
    HISTORY_TOPIC,
    POSITIONS_TOPIC,
    SCORES_TOPIC,
    decode_event,
)

__all__ = [
    "Ref",
    "read_alerts",
    "read_events_file",
    "read_history",
    "read_match",
    "read_partition",
    "read_scores",
    "read_topic",
]

Ref = tuple[str, int, int]


async def read_partition(
    bus: Bus, topic: str, partition: int, *, max_bytes: int = 1 << 20
) -> list[tuple[dict[str, Any], Ref]]:
    """Every decodable event of one partition from its log start to its end."""
    info = [p for p in await bus.metadata(topic) if p.partition == partition]
    if not info:
        return []
    offset, end = info[0].log_start, info[0].log_end
    out: list[tuple[dict[str, Any], Ref]] = []
    while offset < end:
        batches = await bus.fetch(topic, partition, offset, max_bytes=max_bytes)
        if not batches:
            break
        for batch in batches:
            for i, record in enumerate(batch.records):
                try:
                    out.append((decode_event(record), (topic, partition, batch.base_offset + i)))
                except InvalidEvent:
                    continue
            offset = max(offset, batch.next_offset)
    return out


async def read_match(
    bus: Bus, match: str, *, topics: Sequence[str] = (POSITIONS_TOPIC, EVENTS_TOPIC)
) -> list[tuple[dict[str, Any], Ref]]:
    """One match's events from the bus's history, merged in ``ts`` order."""
    out: list[tuple[dict[str, Any], Ref]] = []
    for topic in topics:
        partition = await bus.partition_for(topic, match)
        out += [(e, r) for e, r in await read_partition(bus, topic, partition) if e.get("match") == match]
    out.sort(key=lambda er: (er[0]["ts"], er[1][0] != EVENTS_TOPIC, er[1][2]))
    return out


async def read_topic(bus: Bus, topic: str, event_type: str) -> list[tuple[dict[str, Any], Ref]]:
    """Every event of ``event_type`` still retained on ``topic``, all partitions."""
    out: list[tuple[dict[str, Any], Ref]] = []
    for p in range(await bus.partitions(topic)):
        out += [(e, r) for e, r in await read_partition(bus, topic, p) if e.get("type") == event_type]
    return out


async def read_alerts(bus: Bus) -> list[tuple[dict[str, Any], Ref]]:
    """Every alert still retained on the alerts topic."""
    return await read_topic(bus, ALERTS_TOPIC, "anticheat.alert")


async def read_scores(bus: Bus) -> list[tuple[dict[str, Any], Ref]]:
    """Every score still retained on the scores topic (the accounts view reads these)."""
    return await read_topic(bus, SCORES_TOPIC, "anticheat.score")


async def read_history(bus: Bus, player: str) -> list[tuple[dict[str, Any], Ref]]:
    """``player``'s judged clean matches on the history topic (one partition: keyed by player)."""
    partition = await bus.partition_for(HISTORY_TOPIC, player)
    return [(e, r) for e, r in await read_partition(bus, HISTORY_TOPIC, partition)
            if e.get("type") == "anticheat.history" and e.get("player") == player]


def read_events_file(path: str | Path, match: str | None = None) -> list[tuple[dict[str, Any], Ref]]:
    """Events from a msgpack stream file (``gamebus sim --out``): maps or arrays of maps."""
    out: list[tuple[dict[str, Any], Ref]] = []
    with open(path, "rb") as f:
        for n, item in enumerate(msgpack.Unpacker(f, raw=False)):
            items = item if isinstance(item, list) else [item]
            for k, ev in enumerate(items):
                if isinstance(ev, (bytes, bytearray)):
                    try:
                        ev = decode_event(bytes(ev))
                    except InvalidEvent:
                        continue
                if isinstance(ev, dict) and (match is None or ev.get("match") == match):
                    out.append((ev, (str(path), n, k)))
    out.sort(key=lambda er: er[0].get("ts", 0))
    return out
