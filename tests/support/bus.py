"""Helpers for tests that read a Bus subscription directly."""

from __future__ import annotations

import asyncio

from gamebus.engines.base import Batch, Subscription

__all__ = ["collect", "records_with_offsets"]


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
