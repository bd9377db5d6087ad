"""The broker: the asyncio edge of gamebus, the only package with sockets and a clock.

One job per module::

    config.py         BrokerConfig / Limits / TokenGrant, loaded from flags and TOML/JSON
    auth.py           tokens -> Principal with per-topic permissions; open mode is loopback-only
    connection.py     one client connection (asyncio.Protocol): codec in, coalesced writes out
    handlers.py       one method per request op; errors become err frames
    partitions.py     the broker's view of a log partition (subscribers, durable waiters)
    store.py          topics over gamebus.log.Log
    subscriptions.py  credit-based push fan-out
    flusher.py        the write-behind flusher: group commit, durable acks in order
    groups.py         consumer groups, range assignment (pure)
    offsets.py        durable committed offsets
    metrics.py        Prometheus metrics in a private registry
    admin.py          aiohttp: /healthz, /metrics, /v1/topics
    broker.py         wiring, lifecycle, graceful shutdown
    cli.py            ``gamebus broker``

Run it with ``gamebus broker --data DIR`` (or ``python -m gamebus.server --data DIR``).
"""

__all__: list[str] = []
