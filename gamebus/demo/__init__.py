"""``gamebus demo``: the whole system on one machine, in one command.

It starts the broker, a relay, the simulator and the anti-cheat service as a
supervised group of processes (:mod:`gamebus.demo.supervisor`), serves the
browser page with its tokens (:mod:`gamebus.demo.web`), prints one line with
the URL and, on Ctrl-C or SIGTERM, stops everything in reverse order. See
``docs/demo.md`` for what the page shows and how the tokens work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``gamebus`` command line."""
    p = subparsers.add_parser(
        "demo",
        help="run broker, relay, simulator, anti-cheat and the browser page",
        description=(
            "Run the whole of gamebus on this machine: broker, relay, game simulator, "
            "anti-cheat service and the demo page. Prints the page's URL; Ctrl-C stops everything."
        ),
    )
    p.add_argument("--matches", type=int, default=4, help="simulated matches (default 4)")
    p.add_argument("--players", type=int, default=10, help="players per match (default 10)")
    p.add_argument("--cheaters", type=int, default=2, help="cheaters per match on average: the pool of accounts holds this many per lobby (default 2)")
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="broker data and logs directory (default: a temporary one, removed on exit)")
    p.add_argument("--host", default="127.0.0.1", help="interface for the page and the relay (default 127.0.0.1); the broker stays on loopback")
    p.add_argument("--port", type=int, default=8080, help="HTTP port of the page (default 8080)")
    p.add_argument("--broker-port", type=int, default=0, help="broker port (default: a free one)")
    p.add_argument("--broker-admin-port", type=int, default=0, help="broker admin HTTP port (default: a free one)")
    p.add_argument("--relay-port", type=int, default=0, help="relay WebSocket port (default: a free one)")
    p.add_argument("--relay-http-port", type=int, default=0, help="relay health/metrics port (default: a free one)")
    p.add_argument("--seed", type=int, default=None, help="simulator seed (default: random)")
    p.add_argument("--match-seconds", type=float, default=180.0,
                   help="length of each simulated match; a new one starts when one ends (default 180)")
    p.add_argument("--turn-share", type=float, default=0.5,
                   help="share (0..1) of the cheating accounts that play 2-4 clean rounds before their "
                        "cheat goes on, for the anti-cheat's per-account baseline to catch (default 0.5)")
    p.add_argument("--model", type=Path, default=None,
                   help="anti-cheat model file (default: trained once and cached in ~/.cache/gamebus/models)")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # Imported here so that `gamebus --help` does not pay for aiohttp.
    from gamebus.demo.run import DemoConfig, main

    return main(DemoConfig.from_args(args))
