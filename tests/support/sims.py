"""Simulator settings for small, quick anti-cheat models in tests."""

from __future__ import annotations

from typing import Any, Final

#: Short matches of one blatant cheat: seconds to simulate, enough to learn.
SIM: Final[dict[str, Any]] = {"players": 10, "cheaters": 0.3, "duration_s": 25.0,
                              "cheat_kinds": ["snap_aimbot"], "intensity": "blatant",
                              "closet_share": 0.0}
#: The same cheat for pools of accounts.
POOL: Final[dict[str, Any]] = {"cheat_kinds": ["snap_aimbot"], "intensity": "blatant",
                               "closet_share": 0.0}
