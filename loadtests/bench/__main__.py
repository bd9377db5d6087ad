"""``python -m loadtests.bench`` (``make bench``): the whole benchmark suite.

Same options as ``gamebus bench``; see :mod:`loadtests.bench.cli`.
"""

from __future__ import annotations

import sys

from loadtests.bench.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
