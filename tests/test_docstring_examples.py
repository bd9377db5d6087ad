"""The examples in docstrings run, so the ones a reader copies still hold."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gamebus", "anticheat", "relay")


def _modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf-8"):
                rel = path.relative_to(ROOT).with_suffix("")
                parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
                found.append(".".join(parts))
    return found


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert "anticheat.shot_evidence" in MODULES and "gamebus.protocol" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: '>>>' in the file but no example was collected"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
