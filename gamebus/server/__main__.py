"""``python -m gamebus.server [options]``: ``gamebus broker`` without the other commands.

Same options as ``gamebus broker``; it skips importing every other
subcommand's module (scikit-learn and friends), which makes a broker start
noticeably faster, e.g. in tests that restart it often.
"""

from __future__ import annotations

import argparse
import sys

from gamebus.errors import GamebusError
from gamebus.server import cli

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gamebus-broker")
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(["broker", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except GamebusError as exc:
        print(f"gamebus broker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
