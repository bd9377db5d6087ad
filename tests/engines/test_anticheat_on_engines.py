"""The anti-cheat service, unchanged, on both engines.

A simulated match with one blatant teleporter goes onto the bus; one
``AnticheatService`` worker (rules only, no trained model, to keep it fast)
joins the ``anticheat`` group, scores it and publishes an explained alert to
``anticheat.alerts``, which is read back from the log start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import pytest

from anticheat.consumer import AnticheatService
from anticheat.service import CoreConfig
from gamebus.engines import connect
from gamebus.errors import TopicExists
from gamebus.events import (
    DEFAULT_TOPICS,
)
from gamebus.sim import simulate_match
from tests.support.bus import first_alert, publish_events

pytestmark = pytest.mark.timeout(90)

MATCH = "eng-ac-m1"


@functools.cache
def _recording() -> Any:
    return simulate_match(seed=11, match_id=MATCH, players=8, cheaters=1, cheat_kinds=["teleport"],
                          intensity="blatant", closet_share=0.0, duration_s=20.0)  # fmt: skip


async def test_the_anticheat_service_alerts_on_a_teleporter(engine_url: str) -> None:
    from tests.nats.support import wait_for_jetstream

    if engine_url.startswith("nats://"):
        await wait_for_jetstream([engine_url])
    rec = _recording()
    cheater = rec.labels[0].player
    bus = await connect(engine_url)
    try:
        for spec in DEFAULT_TOPICS:
            with contextlib.suppress(TopicExists):
                await bus.create_topic(spec.name, partitions=spec.partitions)
        await publish_events(bus, rec.events)
        service = AnticheatService(
            bus, None, start="earliest", config=CoreConfig(score_interval_ms=2000)
        )
        task = asyncio.ensure_future(service.run())
        try:
            alert = await first_alert(bus, MATCH, cheater, timeout_s=45.0)
        finally:
            service.stop()
            await asyncio.wait_for(task, 15.0)
    finally:
        await bus.close()
    assert alert["match"] == MATCH
    assert alert["kind"].startswith("rule:")
    assert alert["reason"]
