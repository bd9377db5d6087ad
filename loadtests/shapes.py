"""Load shapes for the locust scenarios: a launch ramp and a steady match night.

Locust uses the first :class:`~locust.LoadTestShape` subclass it finds in the
locustfile's namespace, so the locustfile imports only the one selected by
``GAMEBUS_SHAPE`` (``launch`` or ``night``); without it, locust's own
``--users`` / ``--spawn-rate`` / ``--run-time`` apply. Both shapes read the
peak user count and the duration from the locustfile's options
(``--peak-users``, ``--shape-seconds``) so that one pair of numbers scales
them, on a laptop or on a cluster of workers.

The game servers (``GameServer.fixed_count``, one per match) and the analyst
are fixed-count users: locust spawns them first, so the shapes only move the
number of watching clients.
"""

from __future__ import annotations

import math
from typing import Any

from locust import LoadTestShape

__all__ = ["SHAPES", "LaunchRamp", "MatchNight"]


class _GamebusShape(LoadTestShape):
    """Reads its scale from the parsed locust options (defaults when absent)."""

    abstract = True
    default_peak = 50
    default_seconds = 60.0

    def _options(self) -> tuple[int, float]:
        runner: Any = self.runner
        opts = getattr(getattr(runner, "environment", None), "parsed_options", None)
        peak = int(getattr(opts, "peak_users", 0) or self.default_peak)
        seconds = float(getattr(opts, "shape_seconds", 0) or self.default_seconds)
        return peak, seconds


class LaunchRamp(_GamebusShape):
    """Launch day: quiet, then a rush that overshoots, then a plateau.

    0-10 %: only the fixed users (game servers, analyst); 10-50 %: clients
    ramp linearly to 120 % of the peak (the rush when the servers open);
    50-60 %: back down to the peak (early leavers); 60-100 %: hold. The spawn
    rate is set to make the ramp, so it is the rate clients connect to the
    relay: the test of the relay's accept path.
    """

    abstract = False

    def tick(self) -> tuple[int, float] | None:
        peak, seconds = self._options()
        fixed = _fixed_users(self)
        t = self.get_run_time() / seconds
        if t >= 1.0:
            return None
        if t < 0.1:
            return fixed, 10.0
        if t < 0.5:
            users = fixed + round(1.2 * peak * (t - 0.1) / 0.4)
            return users, max(1.2 * peak / (0.4 * seconds) * 2, 1.0)
        if t < 0.6:
            return fixed + peak, max(0.2 * peak / (0.1 * seconds), 1.0)
        return fixed + peak, 10.0


class MatchNight(_GamebusShape):
    """A steady evening: ramp up in 10 %, then the peak with a slow swell.

    Clients come and go between matches (a +-10 % sine with a period of a
    third of the run), so the relay keeps taking subscriptions and
    unsubscriptions while the publish rate stays constant.
    """

    abstract = False

    def tick(self) -> tuple[int, float] | None:
        peak, seconds = self._options()
        fixed = _fixed_users(self)
        t = self.get_run_time() / seconds
        if t >= 1.0:
            return None
        if t < 0.1:
            return fixed + round(peak * t / 0.1), max(peak / (0.1 * seconds), 1.0)
        swell = 0.1 * math.sin(2 * math.pi * (t - 0.1) * 3)
        return fixed + round(peak * (1 + swell)), max(peak / seconds * 2, 1.0)


def _fixed_users(shape: LoadTestShape) -> int:
    runner: Any = shape.runner
    classes = getattr(getattr(runner, "environment", None), "user_classes", []) or []
    return sum(int(getattr(c, "fixed_count", 0) or 0) for c in classes)


#: ``GAMEBUS_SHAPE`` value -> shape class.
SHAPES: dict[str, type[LoadTestShape]] = {"launch": LaunchRamp, "night": MatchNight}
