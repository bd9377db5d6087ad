"""Every anticheat module declares its public names, and they exist; the core stays pure."""

from __future__ import annotations

import importlib
import pathlib

import pytest

import anticheat

MODULES = sorted(p.stem for p in pathlib.Path(anticheat.__file__).parent.glob("*.py") if p.stem != "__init__")
PURE = ("features", "rules", "stats", "physics", "service", "accounts", "review")


@pytest.mark.parametrize("name", MODULES)
def test_module_exports_exist(name):
    module = importlib.import_module(f"anticheat.{name}")
    assert isinstance(module.__all__, list)
    for export in module.__all__:
        assert hasattr(module, export), f"anticheat.{name}.{export}"


@pytest.mark.parametrize("name", PURE)
def test_pure_cores_import_no_asyncio_sockets_or_clock(name):
    source = (pathlib.Path(anticheat.__file__).parent / f"{name}.py").read_text()
    for forbidden in ("import asyncio", "import socket", "time.time(", "now_ms("):
        assert forbidden not in source, f"{name} uses {forbidden}"
