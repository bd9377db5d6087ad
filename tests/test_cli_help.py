"""Every option of every ``gamebus`` command says what it is for in ``--help``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from gamebus.cli import build_parser

_REPO = Path(__file__).resolve().parents[1]


def _options(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_has_help_text() -> None:
    options = list(_options(build_parser(), "gamebus"))
    assert len(options) > 80  # the walk reached the subcommands
    missing = [f"{path} {a.option_strings[-1]}" for path, a in options if not a.help]
    assert missing == []


def test_help_renders_the_defaults_it_names() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gamebus", "anticheat", "evaluate", "--help"],
        capture_output=True, text=True, timeout=30, cwd=_REPO, check=True,
    ).stdout  # fmt: skip
    assert "held-out matches to simulate (default: 300)" in out
    assert "%(default)" not in out
