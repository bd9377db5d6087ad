"""The ``gamebus`` command line.

One entry point with subcommands. Each part of gamebus owns its subcommands
in a small ``cli`` module exposing ``register(subparsers)``; the handler it
sets as ``func`` receives the parsed arguments and returns an exit code.
Heavy imports (scikit-learn, aiohttp) happen inside handlers so that
``gamebus --help`` stays fast. Errors are one clear line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gamebus.errors import GamebusError

__all__ = ["main"]

#: Modules that contribute subcommands, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "gamebus.server.cli",      # broker
    "relay.cli",               # relay
    "gamebus.sim.cli",         # sim
    "anticheat.cli",           # anticheat ...
    "gamebus.demo",            # demo
    "gamebus.tools",           # produce, consume, topics
    "loadtests.bench.cli",     # bench
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gamebus", description="A real-time event bus for multiplayer games."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A part that is not installed (loadtests ships with the source
            # tree only) simply contributes no commands.
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except GamebusError as exc:
        print(f"gamebus {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
