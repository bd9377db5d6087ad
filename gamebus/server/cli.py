"""``gamebus broker``: run the broker in the foreground.

    gamebus broker --data DIR [--port 7400] [--admin-port 7401] [--config FILE]

Without ``--config`` tokens the broker runs in open mode and refuses to
bind anything but loopback. ``GAMEBUS_LOG_LEVEL`` sets the log level.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "broker", help="run the gamebus broker", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--data", type=Path, required=True, help="data directory (created if missing)")
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="client port (default 7400)")
    p.add_argument("--admin-host", default=None, help="admin HTTP address (default 127.0.0.1)")
    p.add_argument("--admin-port", type=int, default=None, help="admin HTTP port (default 7401)")
    p.add_argument("--config", type=Path, default=None, help="TOML or JSON config (tokens, limits)")
    p.add_argument("--fsync", choices=("always", "interval", "never"), default=None,
                   help="when durable acks wait for the disk: every flush, on a timer, or never "
                        "(default always)")
    p.add_argument("--default-partitions", type=int, default=None,
                   help="partitions of a topic created on first produce (default 8)")
    auto = p.add_mutually_exclusive_group()
    auto.add_argument("--auto-create", dest="auto_create", action="store_true", default=None,
                      help="create unknown topics on first produce (default)")
    auto.add_argument("--no-auto-create", dest="auto_create", action="store_false",
                      help="refuse produces to unknown topics (create them with 'gamebus topics create')")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from gamebus.server.broker import run_broker
    from gamebus.server.config import load_config

    logging.basicConfig(
        level=os.environ.get("GAMEBUS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = load_config(
        args.config,
        data_dir=args.data,
        host=args.host,
        port=args.port,
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        fsync=args.fsync,
        default_partitions=args.default_partitions,
        auto_create=args.auto_create,
    )
    try:
        import uvloop

        uvloop.run(run_broker(config))
    except ImportError:
        asyncio.run(run_broker(config))
    return 0
