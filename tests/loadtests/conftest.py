"""Make the ``loadtests`` package importable: it ships with the source tree only.

pyproject installs ``gamebus``, ``relay`` and ``anticheat``; ``loadtests``
lives beside them and is imported from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
