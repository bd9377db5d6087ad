"""Admin HTTP (aiohttp): ``/healthz``, ``/metrics`` and ``/v1/topics``.

Bound to loopback by default like the broker port. ``/v1/topics`` shows per
partition the offsets, epoch and sizes, and per consumer group the
committed position and lag of each partition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from gamebus.server.broker import Broker

__all__ = ["build_admin_app"]


def build_admin_app(broker: Broker) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "connections": len(broker.connections)})

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(broker.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def topics(request: web.Request) -> web.Response:
        return web.json_response(topics_view(broker))

    async def memory(request: web.Request) -> web.Response:
        """Top allocations, only when started with PYTHONTRACEMALLOC (debugging)."""
        import tracemalloc

        if not tracemalloc.is_tracing():
            raise web.HTTPNotFound(text="start the broker with PYTHONTRACEMALLOC=1")
        stats = tracemalloc.take_snapshot().statistics("lineno")[:25]
        return web.Response(text="\n".join(str(s) for s in stats))

    app = web.Application()
    app.router.add_get("/debug/memory", memory)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/topics", topics)
    return app


def topics_view(broker: Broker) -> dict[str, Any]:
    out: dict[str, Any] = {"topics": {}, "groups": {}}
    ends: dict[tuple[str, int], int] = {}
    for name in broker.store.topics():
        parts = []
        for p in broker.store.topic(name):
            info = p.info()
            ends[(name, p.index)] = info["log_end"]
            parts.append({k: v for k, v in info.items() if k != "topic"})
        out["topics"][name] = {"partitions": parts}
    for group, offsets in broker.offsets.groups().items():
        entry: dict[str, Any] = {"partitions": []}
        g = broker.groups.groups.get(group)
        if g is not None:
            entry["generation"] = g.generation
            entry["members"] = sorted(g.members)
        for (topic, partition), pos in sorted(offsets.items()):
            end = ends.get((topic, partition), pos.offset)
            entry["partitions"].append(
                {
                    "topic": topic,
                    "partition": partition,
                    "epoch": pos.epoch,
                    "committed": pos.offset,
                    "lag": max(end - pos.offset, 0),
                }
            )
        out["groups"][group] = entry
    return out
