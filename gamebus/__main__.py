"""``python -m gamebus``: the same command line as the ``gamebus`` script."""

import sys

from gamebus.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
