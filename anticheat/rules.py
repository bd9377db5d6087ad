"""Deterministic rules for what no honest client can do: speed, teleport, fly.

A model says "suspicious"; a rule says "impossible". Each rule keeps a
violation *level* per player that rises with every offending step in
proportion to how far past the limit it went, and decays exponentially
(``half_life_s``), so one glitchy tick never fires but a sustained or
repeated violation does. A rule fires once when its level crosses
``fire_level`` and re-arms after the level has decayed below ``rearm_level``.

Legitimate teleports are excluded: a ``spawn`` (respawn) and a
``round_start`` (everyone is moved to a spawn point) open a grace window of
``grace_ms`` during which movement is not judged, and the last position is
forgotten so the jump to the spawn point is never measured.

Pure and synchronous: time is the events' ``ts``; ``ref`` is an opaque
evidence reference the caller attaches (the consumer uses topic, partition
and offset) and gets back in the :class:`Violation`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from anticheat.physics import Limits

__all__ = ["RULE_NAMES", "MatchRules", "RuleConfig", "RuleState", "Violation"]

RULE_NAMES: Final = ("speed", "teleport", "fly")


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Limits and gains of the rules; the defaults give no false positive on honest play."""

    limits: Limits = field(default_factory=Limits)
    grace_ms: int = 500
    half_life_s: float = 10.0
    fire_level: float = 1.0
    rearm_level: float = 0.3
    speed_window_ms: int = 500
    speed_tolerance: float = 1.1
    weapon_speed_tolerance: float = 1.28
    held_speed_tolerance: float = 1.1
    speed_gain_per_s: float = 1.0
    speed_gain_per_excess: float = 10.0
    teleport_factor: float = 2.0
    teleport_slack_m: float = 1.5
    #: A step 2 m past what the game allows fires on its own: a position the
    #: server published that far from the last one is no jitter (the slack
    #: above covers that), and a closet cheater's subtle hops (2.5-4.5 m) can
    #: come one at a time, further apart than the half-life (at 0.25 a
    #: cheater with two 3 m hops 11 s apart peaked at 0.99 and was missed).
    #: Smaller impossible steps still need another within a few seconds.
    teleport_gain_per_m: float = 0.5
    max_step_ms: int = 1000
    air_slack_s: float = 0.25
    height_slack_m: float = 0.4
    fly_gain_per_s: float = 2.0
    evidence: int = 8

    @property
    def speed_floor_mps(self) -> float:
        """The lowest limit the speed rule can set, whatever the weapon: a speed under it breaks none."""
        lim = self.limits
        lowest = min(lim.weapon_max_speed_mps.values(), default=lim.max_speed_mps)
        return min(lim.max_speed_mps * self.speed_tolerance,
                   lowest * min(self.held_speed_tolerance, self.weapon_speed_tolerance))


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule that fired: its level, the worst measured value, and the evidence refs.

    ``value`` is in the rule's unit: speed in m/s over the speed window,
    teleport the metres a step went past what the game allows, fly the
    height of the feet in metres. A speed violation also says the limit it
    broke at that moment, the weapon in hand (None when the positions do
    not name one), since a run that is legal with the knife out is not with
    a sniper out, and the window its speed was measured over.
    """

    rule: str
    player: str
    ts: int
    level: float
    value: float
    evidence: tuple[Any, ...] = ()
    limit: float | None = None
    weapon: str | None = None
    window_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "ts": self.ts, "level": round(self.level, 3),
                               "value": round(self.value, 3)}
        if self.limit is not None:
            out["limit"] = round(self.limit, 3)
        if self.weapon is not None:
            out["weapon"] = self.weapon
        if self.window_ms is not None:
            out["window_ms"] = self.window_ms
        return out

    def reason(self) -> str:
        """One line for an analyst."""
        if self.rule == "speed":
            held = f", {self.weapon} in hand" if self.weapon else ""
            limit = f" against {self.limit:.2f} m/s{held}" if self.limit is not None else ""
            over = f" over {self.window_ms / 1000:g} s" if self.window_ms is not None else ""
            what = f"{self.value:.2f} m/s{over}{limit}"
        elif self.rule == "teleport":
            what = f"{self.value:.2f} m past the step the game allows"
        else:
            what = f"{self.value:.2f} m above the floor"
        return f"rule {self.rule}: {what}, violation level {self.level:.2f}"


@dataclass(slots=True)
class _Level:
    value: float = 0.0
    ts: int = 0
    armed: bool = True
    worst: float = 0.0
    worst_limit: float | None = None  # the limit broken when ``worst`` was measured
    worst_weapon: str | None = None
    evidence: deque[Any] = field(default_factory=lambda: deque(maxlen=8))


class RuleState:
    """The rules' memory of one player."""

    def __init__(self, player: str, config: RuleConfig) -> None:
        self.player = player
        self.config = config
        self.levels = {name: _Level() for name in RULE_NAMES}
        # (ts, x, y, cap of the weapon in hand or None) for the speed window
        self.trail: deque[tuple[int, float, float, float | None]] = deque()
        self.last: tuple[int, float, float, float] | None = None
        self.grace_until = -1
        self.air_start: int | None = None
        self.fired: list[Violation] = []
        self.weapon: str | None = None
        self.speed_floor = config.speed_floor_mps  # most positions are under it: no limit to work out
        #: Speed over the speed window at the last position (NaN: not judged there).
        self.window_speed = math.nan

    def reset(self, ts: int) -> None:
        """A legitimate teleport (spawn, new round): forget positions, open a grace window."""
        self.trail.clear()
        self.last = None
        self.air_start = None
        self.grace_until = ts + self.config.grace_ms

    def level(self, rule: str, ts: int) -> float:
        """The decayed level of ``rule`` at ``ts``."""
        lv = self.levels[rule]
        return lv.value * self._decay(ts - lv.ts)

    def _decay(self, dt_ms: int) -> float:
        return 0.5 ** (max(dt_ms, 0) / 1000.0 / self.config.half_life_s)

    def _raise(self, rule: str, ts: int, amount: float, value: float, ref: Hashable | None,
               out: list[Violation], limit: float | None = None, weapon: str | None = None) -> None:
        cfg = self.config
        lv = self.levels[rule]
        lv.value = lv.value * self._decay(ts - lv.ts) + amount
        lv.ts = ts
        if value > lv.worst:
            lv.worst, lv.worst_limit, lv.worst_weapon = value, limit, weapon
        if ref is not None:
            lv.evidence.append(ref)
        if lv.armed and lv.value >= cfg.fire_level:
            lv.armed = False
            v = Violation(rule, self.player, ts, lv.value, lv.worst, tuple(lv.evidence),
                          lv.worst_limit, lv.worst_weapon,
                          cfg.speed_window_ms if rule == "speed" else None)
            self.fired.append(v)
            out.append(v)

    def _rearm(self, ts: int) -> None:
        for lv in self.levels.values():
            if not lv.armed and lv.value * self._decay(ts - lv.ts) < self.config.rearm_level:
                lv.armed = True
                lv.worst = 0.0

    def speed_limit(self) -> float:
        """The speed no honest player can sustain over the speed window, in m/s.

        When the positions say which weapon is in hand, the limit is the
        fastest of the caps held over the window with a margin: a sniper's
        carrier that switched to the knife may run at the knife's speed, but
        one with the sniper out may not. Otherwise anyone may be running
        with the knife, so the limit is the game's top speed with a margin;
        a player known (from its shots) to carry a slow weapon gets a tighter
        limit that still sits above the knife's speed.
        """
        cfg, lim = self.config, self.config.limits
        absolute = lim.max_speed_mps * cfg.speed_tolerance
        held = [cap for *_, cap in self.trail if cap is not None]
        if held and len(held) == len(self.trail):
            return min(absolute, max(held) * cfg.held_speed_tolerance)
        if self.weapon is None:
            return absolute
        return min(absolute, lim.speed_cap(self.weapon) * cfg.weapon_speed_tolerance)

    def position(self, ts: int, x: float, y: float, z: float, ref: Hashable | None,
                 weapon: str | None = None) -> list[Violation]:
        """Judge one position; ``weapon`` is the one in hand, when the game server says."""
        cfg, lim = self.config, self.config.limits
        cap = lim.speed_cap(weapon) if weapon is not None else None
        out: list[Violation] = []
        self.window_speed = math.nan
        self._rearm(ts)
        last = self.last
        self.last = (ts, x, y, z)
        judged = ts >= self.grace_until
        # fly: time and height in the air against a jump (the floor is z = 0)
        if z > 0.05:
            if self.air_start is None:
                self.air_start = ts
            air_s = (ts - self.air_start) / 1000.0
            over_s = air_s - lim.jump_airtime_s - cfg.air_slack_s
            over_m = z - lim.jump_apex_m - cfg.height_slack_m
            if judged and last is not None and (over_s > 0 or over_m > 0):
                dt = max(ts - last[0], 0) / 1000.0
                excess = max(over_s / lim.jump_airtime_s, over_m / lim.jump_apex_m, 0.0)
                self._raise("fly", ts, cfg.fly_gain_per_s * dt * (1.0 + excess), z, ref, out)
        else:
            self.air_start = None
        if last is None or not judged:
            self.trail.clear()
            self.trail.append((ts, x, y, cap))
            return out
        dt_ms = ts - last[0]
        if dt_ms <= 0:
            return out
        # teleport: a step no speed within the game can explain
        step = math.hypot(x - last[1], y - last[2])
        allowed = lim.max_speed_mps * dt_ms / 1000.0
        if dt_ms <= cfg.max_step_ms and step > allowed * cfg.teleport_factor + cfg.teleport_slack_m:
            excess = step - allowed
            self._raise("teleport", ts, cfg.teleport_gain_per_m * excess, excess, ref, out)
            self.trail.clear()
        elif dt_ms > cfg.max_step_ms:
            self.trail.clear()
        # speed: distance over a short window, so one jittery tick cannot fire it
        self.trail.append((ts, x, y, cap))
        while len(self.trail) > 2 and self.trail[1][0] <= ts - cfg.speed_window_ms:
            self.trail.popleft()
        t0, x0, y0, _ = self.trail[0]
        span_ms = ts - t0
        if span_ms >= cfg.speed_window_ms:
            speed = self.window_speed = math.hypot(x - x0, y - y0) / (span_ms / 1000.0)
            limit = self.speed_limit() if speed > self.speed_floor else math.inf
            excess = speed / limit - 1.0
            if excess > 0:
                per_s = cfg.speed_gain_per_s + cfg.speed_gain_per_excess * excess
                self._raise("speed", ts, per_s * dt_ms / 1000.0, speed, ref, out, limit, weapon)
        return out


class MatchRules:
    """The rules for every player of one match; events in ``ts`` order."""

    def __init__(self, match: str, config: RuleConfig | None = None) -> None:
        self.match = match
        self.config = config or RuleConfig()
        self.players: dict[str, RuleState] = {}

    def player(self, player: str) -> RuleState:
        state = self.players.get(player)
        if state is None:
            state = self.players[player] = RuleState(player, self.config)
        return state

    def update(self, event: Mapping[str, Any], ref: Hashable | None = None) -> list[Violation]:
        """Fold one event in; return the violations that fired on it."""
        etype = event.get("type")
        ts = int(event.get("ts", 0))
        if etype == "round_start":
            for state in self.players.values():
                state.reset(ts)
            return []
        player = event.get("player")
        if not isinstance(player, str):
            return []
        if etype == "spawn":
            self.player(player).reset(ts)
            return []
        if etype == "shot":
            weapon = event.get("weapon")
            if isinstance(weapon, str) and weapon != "knife":
                self.player(player).weapon = weapon
            return []
        if etype == "pos":
            weapon = event.get("weapon")
            return self.player(player).position(
                ts, float(event["x"]), float(event["y"]), float(event["z"]), ref,
                weapon if isinstance(weapon, str) else None,
            )
        return []

    def fired(self, player: str) -> list[Violation]:
        state = self.players.get(player)
        return list(state.fired) if state else []
