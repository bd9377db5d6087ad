"""Fixtures for the relay suite."""

from __future__ import annotations

import sys
from pathlib import Path

# ``tests`` is not a package; make ``tests.relay.*`` and ``tests.support``
# importable however pytest was started.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
