"""Helpers for tests that read a Bus subscription directly."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gamebus.engines.base import Batch, Bus, Subscription
from gamebus.events import ALERTS_TOPIC, EVENTS_TOPIC, POSITIONS_TOPIC, decode_event, encode_event

__all__ = ["collect", "first_alert", "publish_events", "records_with_offsets"]


async def collect(sub: Subscription, count: int, *, timeout_s: float = 10.0) -> list[Batch]:
    """Batches from ``sub`` until they hold ``count`` records."""
    batches: list[Batch] = []

    async def run() -> None:
        async for batch in sub:
            batches.append(batch)
            if sum(len(b.records) for b in batches) >= count:
                return

    await asyncio.wait_for(run(), timeout_s)
    return batches


def records_with_offsets(batches: list[Batch]) -> list[tuple[int, bytes]]:
    """``(offset, record)`` for every record of ``batches``, in order."""
    return [(b.base_offset + i, r) for b in batches for i, r in enumerate(b.records)]


async def first_alert(bus: Bus, match: str, player: str, *, timeout_s: float) -> dict[str, Any]:
    """The first ``anticheat.alert`` for ``player`` in ``match``, polling the alerts topic.

    Reads from the partition's log start (not offset 0), since on JetStream a
    partition's offsets are stream sequences.
    """
    part = await bus.partition_for(ALERTS_TOPIC, match)
    deadline = time.monotonic() + timeout_s
    offset: int | None = None
    while time.monotonic() < deadline:
        info = next(p for p in await bus.metadata(ALERTS_TOPIC) if p.partition == part)
        offset = info.log_start if offset is None else offset
        if info.log_end > offset:
            for batch in await bus.fetch(ALERTS_TOPIC, part, offset):
                for raw in batch.records:
                    ev = decode_event(raw)
                    if ev["player"] == player and ev["match"] == match:
                        return ev
                offset = batch.next_offset
        await asyncio.sleep(0.2)
    raise AssertionError(f"no alert for {player} within {timeout_s}s")


async def publish_events(bus: Bus, events: list[dict[str, Any]]) -> None:
    """A recorded match onto the bus as a game server would route it, durably acked."""
    groups: dict[tuple[str, int], list[bytes]] = {}
    for ev in events:
        topic = POSITIONS_TOPIC if ev["type"] == "pos" else EVENTS_TOPIC
        part = await bus.partition_for(topic, ev["match"])
        groups.setdefault((topic, part), []).append(encode_event(ev))
    for (topic, part), records in groups.items():
        for i in range(0, len(records), 500):
            await bus.produce(topic, part, records[i : i + 500], acks="durable")
