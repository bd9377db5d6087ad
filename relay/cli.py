"""``gamebus relay``: run a relay node.

The only place in the relay that reads the environment: the JWT key comes
from ``--jwt-secret`` or, better (it stays out of ``ps``), from the
environment variable named by ``--jwt-secret-env`` (default
``GAMEBUS_JWT_SECRET``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from gamebus.errors import ConfigError

__all__ = ["build_config", "register"]


def register(subparsers: Any) -> None:
    """Add ``gamebus relay`` to the ``gamebus`` command."""
    p = subparsers.add_parser("relay", help="run a WebSocket relay node", description=__doc__)
    p.add_argument("--bus", default="gamebus://127.0.0.1:7400", help="bus URL (gamebus:// or nats://)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s)")
    p.add_argument("--port", type=int, default=7410, help="WebSocket port (0: any free port)")
    p.add_argument("--http-port", type=int, default=7411, help="/healthz and /metrics port (-1: none)")
    p.add_argument("--jwt-secret", default=None, help="HS256 key (prefer --jwt-secret-env)")
    p.add_argument("--jwt-secret-env", default="GAMEBUS_JWT_SECRET", help="environment variable holding the key")
    p.add_argument("--jwt-algorithm", default="HS256", help="algorithm tokens are signed with (default: %(default)s)")
    p.add_argument("--spectator-delay-ms", type=int, default=0,
                   help="how far spectators are held behind live; players never are (default: %(default)s)")
    p.add_argument("--max-subscriptions", type=int, default=16,
                   help="subscriptions one connection may hold (default: %(default)s)")
    p.add_argument("--max-message-bytes", type=int, default=64 * 1024,
                   help="largest client message; a bigger one closes with 1009 (default: %(default)s)")
    p.add_argument("--message-rate", type=float, default=50.0, help="client messages per second")
    p.add_argument("--idle-timeout-s", type=float, default=60.0,
                   help="close a connection with no subscription after this long (default: %(default)s)")
    p.add_argument("--ping-interval-s", type=float, default=20.0,
                   help="WebSocket ping interval; a peer that stops answering is closed (default: %(default)s)")
    p.add_argument("--high-water-bytes", type=int, default=256 * 1024,
                   help="unsent bytes past which a slow client's positions are conflated "
                        "(default: %(default)s)")
    p.add_argument("--max-queued-events", type=int, default=2_048,
                   help="match events queued for a slow client before it is closed with 4009 "
                        "(default: %(default)s)")
    p.add_argument("--socket-send-buffer-bytes", type=int, default=128 * 1024,
                   help="SO_SNDBUF per client (0: leave the kernel's autotuning)")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING or ERROR (default: %(default)s)")
    p.set_defaults(func=_run)


def build_config(args: argparse.Namespace) -> Any:
    from relay.backpressure import QueueConfig
    from relay.config import RelayConfig

    key = args.jwt_secret or os.environ.get(args.jwt_secret_env, "")
    if not key:
        raise ConfigError(f"no JWT key: pass --jwt-secret or set {args.jwt_secret_env}")
    if args.spectator_delay_ms < 0:
        raise ConfigError("--spectator-delay-ms must not be negative")
    return RelayConfig(
        bus_url=args.bus,
        host=args.host,
        port=args.port,
        http_port=None if args.http_port < 0 else args.http_port,
        jwt_key=key,
        jwt_algorithms=(args.jwt_algorithm,),
        spectator_delay_ms=args.spectator_delay_ms,
        max_subscriptions=args.max_subscriptions,
        max_message_bytes=args.max_message_bytes,
        message_rate_per_s=args.message_rate,
        message_burst=max(1, int(args.message_rate * 2)),
        idle_timeout_s=args.idle_timeout_s,
        ping_interval_s=args.ping_interval_s or None,
        ping_timeout_s=args.ping_interval_s or None,
        socket_send_buffer_bytes=args.socket_send_buffer_bytes or None,
        queue=QueueConfig(high_water_bytes=args.high_water_bytes, max_queued_events=args.max_queued_events),
    )


def _run(args: argparse.Namespace) -> int:
    from relay.server import run_relay

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = build_config(args)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run_relay(config))
    return 0
