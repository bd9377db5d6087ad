"""One simulated match: players, cheaters, the tick loop and its events.

:class:`MatchSimulator` is a generator of ticks ``(ts_ms, events)``: the
match events that happened during the tick (with their own, sub-tick
timestamps) followed by one ``pos`` per alive player at the tick's
timestamp, so the stream is ordered by ``ts``. :func:`simulate_match`
collects a whole match; the real-time publisher walks the ticks itself.

Everything random comes from one ``numpy.random.Generator`` seeded by the
``seed`` argument, so a seed always gives the same match; nothing here reads
the clock or the network.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.aim import ex_gaussian_ms, plan_flick, target_width_deg
from gamebus.sim.cheats import (
    CHEAT_KINDS,
    CLOSET_SHARE,
    INTENSITIES,
    CheaterLabel,
    CheatProfile,
    Intensity,
    sample_cheat,
    sample_on_intervals,
)
from gamebus.sim.engagement import (
    CORRECT,
    FLICK,
    IDLE,
    REACT,
    TRACK,
    AimArrays,
    AimParams,
    evaluate_aim,
)
from gamebus.sim.movement import Bodies, Controls, step_bodies
from gamebus.sim.navigation import nav_grid
from gamebus.sim.profiles import PlayerProfile, sample_profiles
from gamebus.sim.weapons import WEAPONS, hit_test, spread_sd_deg
from gamebus.sim.world import (
    CHEST_HEIGHT_M,
    EYE_HEIGHT_M,
    GRAVITY_MPS2,
    HEAD_HEIGHT_M,
    MAP_NAMES,
    MAX_ACCEL_MPS2,
    MAX_SPEED_MPS,
    PLAYER_RADIUS_M,
    WEAPON_MAX_SPEED_MPS,
    get_map,
    line_of_sight_many,
)

__all__ = [
    "DEFAULT_DURATION_S",
    "DEFAULT_ROUND_S",
    "DEFAULT_START_TS_MS",
    "MatchRecording",
    "MatchSimulator",
    "simulate_match",
]

#: 60 simulated seconds: long enough for ~10 engagements per player, short
#: enough that 1,000 training matches take a few minutes.
DEFAULT_DURATION_S: Final = 60.0
DEFAULT_ROUND_S: Final = 30.0
#: 2026-01-01T00:00:00Z: a fixed clock so recordings are reproducible.
DEFAULT_START_TS_MS: Final = 1_767_225_600_000
RESPAWN_MS: Final = 2500.0
_HEALTH: Final = 100.0
_LOST_MS: Final = 900.0  # a target out of sight this long is given up
_FOV_HALF_DEG: Final = 60.0  # humans notice enemies inside this half-angle
_NEAR_M: Final = 6.0  # ... or this close (footsteps)
_SOUND_RATE_HZ: Final = 0.8  # ... or, behind them, at this rate
_STRAFE_FLIP_HZ: Final = 1.5
_SPOT_M: Final = 30.0  # an enemy in view nearer than this is noticed at once
_SPOT_RATE_HZ: Final = 20.0  # ... farther, at this rate, fading with distance
_SPOT_FADE_M: Final = 12.0
_BURST_MAX: Final = 5  # shots in a burst before a pause to let the spread recover
_BURST_PAUSE_MS: Final = 300.0


@dataclass(slots=True)
class MatchRecording:
    """A whole simulated match: the events for the bus and the truth beside them."""

    match: str
    seed: int
    map: str
    start_ts_ms: int
    end_ts_ms: int
    events: list[dict[str, Any]]
    labels: list[CheaterLabel]
    players: list[PlayerProfile] = field(default_factory=list)

    @property
    def profiles(self) -> list[PlayerProfile]:
        """The players' profiles (ground truth: skill, ping); same as ``players``."""
        return self.players

    def side_record(self) -> dict[str, Any]:
        """What the labels file holds for this match (never published)."""
        return {
            "match": self.match,
            "seed": self.seed,
            "map": self.map,
            "start_ts_ms": self.start_ts_ms,
            "end_ts_ms": self.end_ts_ms,
            "players": [p.public() for p in self.players],
            "cheaters": [label.to_dict() for label in self.labels],
        }


def _cheater_count(players: int, cheaters: float | int) -> int:
    if isinstance(cheaters, bool) or cheaters < 0:
        raise ConfigError(f"cheaters must be a count or a fraction >= 0, got {cheaters!r}")
    if isinstance(cheaters, int):
        count = cheaters
    elif cheaters <= 1.0:
        count = round(players * cheaters)
    else:
        raise ConfigError(f"cheaters as a fraction must be <= 1, got {cheaters!r}")
    if count > players:
        raise ConfigError(f"{count} cheaters among {players} players")
    return count


class MatchSimulator:
    """A deterministic match; iterate :meth:`ticks` to play it.

    ``cheaters`` is a count (int) or a share of ``players`` (float, rounded).
    ``cheat_kinds`` restricts the kinds drawn (default: all of
    :data:`~gamebus.sim.cheats.CHEAT_KINDS`); ``intensity`` forces
    ``"blatant"`` or ``"subtle"`` (default: either, evenly);
    ``closet_share`` is the share of cheaters who only cheat part-time.
    """

    def __init__(
        self,
        *,
        seed: int,
        match_id: str,
        players: int = 20,
        cheaters: float | int = 0.1,
        tick_hz: int = 20,
        duration_s: float = DEFAULT_DURATION_S,
        start_ts_ms: int = DEFAULT_START_TS_MS,
        cheat_kinds: Sequence[str] | None = None,
        intensity: Intensity | None = None,
        map_name: str | None = None,
        round_s: float = DEFAULT_ROUND_S,
        closet_share: float = CLOSET_SHARE,
    ) -> None:
        if players < 2:
            raise ConfigError("a match needs at least 2 players")
        if not 1 <= tick_hz <= 128:
            raise ConfigError(f"tick_hz must be within 1..128, got {tick_hz}")
        if duration_s <= 0 or round_s <= 0:
            raise ConfigError("duration_s and round_s must be positive")
        kinds = tuple(cheat_kinds) if cheat_kinds else CHEAT_KINDS
        for k in kinds:
            if k not in CHEAT_KINDS:
                raise ConfigError(f"unknown cheat kind {k!r}; known: {', '.join(CHEAT_KINDS)}")
        if intensity is not None and intensity not in INTENSITIES:
            raise ConfigError(f"intensity must be one of {INTENSITIES}, got {intensity!r}")
        self.seed, self.match_id = seed, match_id
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.tick_hz = tick_hz
        self.dt_ms = 1000.0 / tick_hz
        self.dt_s = 1.0 / tick_hz
        self.start_ts_ms = start_ts_ms
        self.n_ticks = max(1, round(duration_s * tick_hz))
        self.end_ts_ms = start_ts_ms + round(self.n_ticks * self.dt_ms)
        self.round_ms = round_s * 1000.0
        self.map_name = map_name or str(rng.choice(MAP_NAMES))
        self.map = get_map(self.map_name)
        self.profiles = sample_profiles(rng, players)
        self.n = players
        # --- cheaters
        count = _cheater_count(players, cheaters)
        chosen = rng.choice(players, size=count, replace=False) if count else np.array([], int)
        self.cheat: dict[int, tuple[CheatProfile, CheaterLabel]] = {}
        for idx in sorted(int(i) for i in chosen):
            kind = str(rng.choice(kinds))
            inten: Intensity = intensity or ("blatant" if rng.random() < 0.5 else "subtle")
            prof = sample_cheat(rng, kind, inten)
            closet = bool(rng.random() < closet_share)
            intervals = sample_on_intervals(
                rng, start_ms=start_ts_ms, end_ms=self.end_ts_ms, closet=closet
            )
            label = CheaterLabel(
                match=match_id, player=self.profiles[idx].player, kind=kind, intensity=inten,
                on_intervals=intervals, closet=closet, params=dict(prof.params),
            )
            self.cheat[idx] = (prof, label)
        self.labels = [lab for _, lab in self.cheat.values()]
        self._init_state()

    # ------------------------------------------------------------------ setup
    def _init_state(self) -> None:
        n, rng = self.n, self.rng
        self.team = np.array([0 if p.team == "red" else 1 for p in self.profiles])
        self.bodies = Bodies.empty(n)
        self.aim = AimArrays.empty(n)
        self.aim.tremor_sd[:] = rng.uniform(0.03, 0.08, n)
        self.alive = np.zeros(n, dtype=np.bool_)
        self.health = np.full(n, _HEALTH)
        self.respawn_at = np.full(n, np.inf)
        self.primary_cap = np.array([WEAPON_MAX_SPEED_MPS[p.primary] for p in self.profiles])
        self.knife = np.zeros(n, dtype=np.bool_)
        self.draw_until = np.zeros(n)
        self.waypoint = np.zeros((n, 2))
        self.wp_deadline = np.zeros(n)
        self.wp_set = np.zeros(n)
        self.goal = np.zeros((n, 2))
        self.goal_deadline = np.zeros(n)
        self.nav = nav_grid(self.map_name)
        self.strafe = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        self.ping_ms = np.array([p.ping_ms for p in self.profiles])
        self.jump_rate = np.array([p.jump_rate_hz for p in self.profiles])
        # engagement state, per player
        self.target = np.full(n, -1, dtype=np.int64)
        self.aim_height = np.full(n, CHEST_HEIGHT_M)
        self.react_until = np.zeros(n)
        self.settle_at = np.zeros(n)
        self.next_fire = np.zeros(n)
        self.lost_since = np.full(n, -1.0)
        self.burst = np.zeros(n, dtype=np.int64)
        self.params: list[AimParams] = [self._human_params(p) for p in self.profiles]
        self.engaged_params: list[AimParams] = list(self.params)
        self.trig_since = np.full(n, -1.0)
        self.kills = [0, 0]
        self.round = 0
        self._ei, self._ej = np.nonzero(self.team[:, None] != self.team[None, :])
        self._eye = np.array([0.0, 0.0, EYE_HEIGHT_M])
        self._chest = np.array([0.0, 0.0, CHEST_HEIGHT_M])
        self._ctl = Controls.honest(n)

    @staticmethod
    def _human_params(p: PlayerProfile) -> AimParams:
        return AimParams(
            rt_mu_ms=p.rt_mu_ms, rt_sigma_ms=p.rt_sigma_ms, rt_tau_ms=p.rt_tau_ms,
            rt_shift_ms=0.0, fitts_a_ms=p.fitts_a_ms, fitts_b_ms=p.fitts_b_ms,
            overshoot=p.overshoot, scatter=p.scatter, track_sd_deg=p.track_sd_deg,
            head_pref=p.head_pref, fire_tol=p.fire_tol, decide_ms=p.decide_ms,
        )

    def _bot_params(self, i: int, prof: CheatProfile) -> AimParams:
        h, q = self.params[i], prof.params
        if prof.kind == "snap_aimbot":
            return AimParams(
                rt_mu_ms=0.0, rt_sigma_ms=0.0, rt_tau_ms=0.0, rt_shift_ms=0.0,
                fitts_a_ms=0.0, fitts_b_ms=0.0, overshoot=0.0, scatter=0.0,
                track_sd_deg=q["track_sd_deg"], head_pref=q["head_share"],
                fire_tol=1.0, decide_ms=0.0, snap=True,
            )
        return AimParams(
            rt_mu_ms=h.rt_mu_ms, rt_sigma_ms=h.rt_sigma_ms, rt_tau_ms=h.rt_tau_ms,
            rt_shift_ms=q["rt_shift_ms"], fitts_a_ms=h.fitts_a_ms * 0.9,
            fitts_b_ms=h.fitts_b_ms * q["b_scale"], overshoot=h.overshoot * q["overshoot_scale"],
            scatter=h.scatter * q["scatter_scale"], track_sd_deg=h.track_sd_deg * q["track_scale"],
            head_pref=min(0.95, h.head_pref + q["head_bonus"]), fire_tol=h.fire_tol,
            decide_ms=h.decide_ms * (0.5 + 0.5 * q["b_scale"]),
        )

    def _random_point(self, *, near: tuple[float, float] | None = None, radius: float = 0.0,
                      min_dist: float = 0.0) -> tuple[float, float]:
        """A free spot anywhere, or ``min_dist``..``radius`` from ``near``."""
        m, rng = self.map, self.rng
        k = 24
        if near is None:
            xy = 1.0 + rng.uniform(0.0, 1.0, (k, 2)) * (
                np.array([m.size_x_m, m.size_y_m]) - 2.0
            )
        else:
            ang = rng.uniform(0.0, 2 * math.pi, k)
            r = rng.uniform(min_dist, max(radius, min_dist + 1e-6), k)
            xy = np.array(near) + np.c_[np.cos(ang), np.sin(ang)] * r[:, None]
        free = np.nonzero(~m.blocked_many(xy))[0]
        if len(free):
            x, y = xy[free[0]]
            return float(x), float(y)
        return (near if near is not None else m.spawns[0][:2])  # type: ignore[return-value]

    def _next_waypoint(self, i: int, t: float, *, new_goal: bool) -> None:
        """Pick the next straight-line leg toward the player's goal.

        Goals are often an enemy's surroundings (hunting brings fights),
        otherwise anywhere; the navigation grid routes around walls.
        """
        rng, b = self.rng, self.bodies
        here = b.pos[i, :2].copy()
        if new_goal or t >= self.goal_deadline[i] or np.hypot(*(self.goal[i] - here)) < 2.0:
            enemies = np.nonzero(self.alive & (self.team != self.team[i]))[0]
            if len(enemies) and rng.random() < 0.6:
                j = int(rng.choice(enemies))
                self.goal[i] = self._random_point(near=(float(b.pos[j, 0]), float(b.pos[j, 1])),
                                                  radius=6.0)
            else:
                self.goal[i] = self._random_point()
            self.goal_deadline[i] = t + rng.uniform(6000.0, 15000.0)
        wp = self.nav.next_waypoint(self.map, here, self.goal[i])
        self.waypoint[i] = wp
        self.wp_set[i] = t
        self.wp_deadline[i] = t + 1000.0 * float(np.hypot(*(wp - here))) / 3.5 + 1000.0

    # --------------------------------------------------------------- events
    def _ev(self, etype: str, ts: float, **fields: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {"type": etype, "match": self.match_id, "ts": round(ts)}
        ev.update(fields)
        return ev

    def _spawn(self, i: int, t: float, out: list[dict[str, Any]]) -> None:
        mid_x, mid_y = self.map.size_x_m / 2, self.map.size_y_m / 2
        side = [s for s in self.map.spawns if (s[0] < mid_x) == (self.team[i] == 0)]
        sx, sy, _ = side[int(self.rng.integers(len(side)))]
        x, y = self._random_point(near=(sx, sy), radius=3.0)
        yaw = math.degrees(math.atan2(mid_y - y, mid_x - x))
        b = self.bodies
        b.pos[i] = (x, y, 0.0)
        b.vel[i] = 0.0
        b.base_vel[i] = 0.0
        self.aim.yaw[i], self.aim.pitch[i] = yaw, 0.0
        self.aim.mode[i] = IDLE
        self.alive[i] = True
        self.health[i] = _HEALTH
        self.respawn_at[i] = np.inf
        self.target[i] = -1
        self.knife[i] = bool(self.rng.random() < self.profiles[i].knife_run)
        self.wp_deadline[i] = 0.0
        self.next_fire[i] = t
        out.append(self._ev("spawn", t, player=self.profiles[i].player, x=x, y=y, z=0.0,
                            yaw=yaw, pitch=0.0, team=self.profiles[i].team))

    def _start_round(self, t: float, out: list[dict[str, Any]]) -> None:
        self.round += 1
        self.kills = [0, 0]
        out.append(self._ev("round_start", t, round=self.round, map=self.map_name))
        for i in range(self.n):
            self._spawn(i, t, out)

    def _end_round(self, t: float, out: list[dict[str, Any]]) -> None:
        fields: dict[str, Any] = {"round": self.round}
        if self.kills[0] != self.kills[1]:
            fields["winner"] = "red" if self.kills[0] > self.kills[1] else "blue"
        out.append(self._ev("round_end", t, **fields))

    # ------------------------------------------------------------- the loop
    def ticks(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Play the match, yielding ``(ts_ms, events)`` once per tick."""
        t = float(self.start_ts_ms)
        out: list[dict[str, Any]] = []
        for p in self.profiles:
            out.append(self._ev("join", t, player=p.player, team=p.team,
                                ping=round(p.ping_ms), name=p.player))
        self._start_round(t, out)
        out.extend(self._positions(t))
        yield round(t), out
        next_round = self.start_ts_ms + self.round_ms
        totals = [0, 0]
        for k in range(1, self.n_ticks + 1):
            t = self.start_ts_ms + k * self.dt_ms
            out = []
            self._step(t, out)
            if k < self.n_ticks and t >= next_round:
                totals[0] += self.kills[0]
                totals[1] += self.kills[1]
                self._end_round(t, out)
                self._start_round(t, out)
                next_round += self.round_ms
            out.sort(key=lambda e: e["ts"])
            out.extend(self._positions(t))
            if k == self.n_ticks:
                totals[0] += self.kills[0]
                totals[1] += self.kills[1]
                self._end_round(t, out)
                end: dict[str, Any] = {"map": self.map_name}
                if totals[0] != totals[1]:
                    end["winner"] = "red" if totals[0] > totals[1] else "blue"
                out.append(self._ev("match_end", t, **end))
                for p in self.profiles:
                    out.append(self._ev("leave", t, player=p.player, reason="match_end"))
            yield round(t), out

    def recording(self, events: list[dict[str, Any]]) -> MatchRecording:
        """A :class:`MatchRecording` of this match holding ``events``."""
        return MatchRecording(
            match=self.match_id, seed=self.seed, map=self.map_name, start_ts_ms=self.start_ts_ms,
            end_ts_ms=self.end_ts_ms, events=events, labels=self.labels, players=self.profiles,
        )

    def side_record(self) -> dict[str, Any]:
        """The labels-file record of this match (known before it is played)."""
        return self.recording([]).side_record()

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event of the match in ``ts`` order."""
        for _, evs in self.ticks():
            yield from evs

    def _positions(self, t: float) -> list[dict[str, Any]]:
        idx = np.nonzero(self.alive)[0]
        if len(idx) == 0:
            return []
        p, v = self.bodies.pos[idx], self.bodies.vel[idx]
        jitter = self.rng.normal(0.0, 1.0, len(idx))
        ping = np.maximum(1, np.round(self.ping_ms[idx] * (1 + 0.06 * jitter) + jitter)).astype(int)
        ts, match = round(t), self.match_id
        names = [self.profiles[i].player for i in idx.tolist()]
        return [
            {"type": "pos", "match": match, "ts": ts, "player": name, "x": x, "y": y, "z": z,
             "yaw": yw, "pitch": pt, "vx": vx, "vy": vy, "vz": vz, "ping": pg}
            for name, x, y, z, yw, pt, vx, vy, vz, pg in zip(
                names, p[:, 0].tolist(), p[:, 1].tolist(), p[:, 2].tolist(),
                self.aim.yaw[idx].tolist(), self.aim.pitch[idx].tolist(),
                v[:, 0].tolist(), v[:, 1].tolist(), v[:, 2].tolist(), ping.tolist(),
                strict=True,
            )
        ]

    # ------------------------------------------------------------ one tick
    def _step(self, t: float, out: list[dict[str, Any]]) -> None:
        on = {i: lab.is_on(t) for i, (_, lab) in self.cheat.items()}
        for i in np.nonzero(~self.alive & (self.respawn_at <= t))[0].tolist():
            self._spawn(i, t, out)
        self._move(t, on)
        vis = self._visibility()
        self._decide(t, vis, on)
        tgt_yaw, tgt_pitch = self._target_angles()
        speed = np.hypot(self.bodies.vel[:, 0], self.bodies.vel[:, 1])
        evaluate_aim(
            self.rng, self.aim, t_ms=t, dt_s=self.dt_s, alive=self.alive,
            heading=np.degrees(np.arctan2(self.bodies.vel[:, 1], self.bodies.vel[:, 0])),
            moving=speed > 0.7, tgt_yaw=tgt_yaw, tgt_pitch=tgt_pitch,
        )
        self._fire(t, vis, on, out)

    def _move(self, t: float, on: dict[int, bool]) -> None:
        n, rng, b = self.n, self.rng, self.bodies
        alive = self.alive
        # new waypoints for who arrived, got stuck or timed out
        d = self.waypoint - b.pos[:, :2]
        dist = np.hypot(d[:, 0], d[:, 1])
        speed = np.hypot(b.vel[:, 0], b.vel[:, 1])
        stuck = (speed < 0.3) & (t - self.wp_set > 800.0) & (self.target < 0)
        need = alive & ((dist < 1.5) | (t >= self.wp_deadline) | stuck)
        for i in np.nonzero(need)[0].tolist():
            self._next_waypoint(i, t, new_goal=bool(stuck[i]))
            if self.target[i] < 0 and rng.random() < 0.3:
                self.knife[i] = bool(rng.random() < self.profiles[i].knife_run)
        d = self.waypoint - b.pos[:, :2]
        dist = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
        cap = np.where(self.knife, WEAPON_MAX_SPEED_MPS["knife"], self.primary_cap)
        wanted = d / dist[:, None] * cap[:, None]
        fighting = (self.target >= 0) & (self.lost_since < 0)
        if fighting.any():
            flip = rng.random(n) < _STRAFE_FLIP_HZ * self.dt_s
            self.strafe = np.where(flip, -self.strafe, self.strafe)
            tj = np.where(fighting, self.target, 0)
            to = b.pos[tj, :2] - b.pos[:, :2]
            to /= np.maximum(np.hypot(to[:, 0], to[:, 1]), 1e-6)[:, None]
            perp = np.stack([-to[:, 1], to[:, 0]], axis=1) * self.strafe[:, None]
            frac = np.where(self.aim.mode == TRACK, 0.3, 0.6)
            # Strafe across the line of fire while closing in a little.
            fight = perp * (cap * frac)[:, None] + to * (0.25 * cap)[:, None]
            wanted = np.where(fighting[:, None], fight, wanted)
        ctl = self._ctl
        ctl.active = alive
        ctl.wanted = wanted
        ctl.cap = cap
        jump_rate = self.jump_rate
        for i, (prof, _) in self.cheat.items():
            # back to honest, then the cheat if it is on
            ctl.factor[i], ctl.accel[i], ctl.ceiling[i] = 1.0, MAX_ACCEL_MPS2, np.inf
            ctl.gravity[i], ctl.hover[i] = GRAVITY_MPS2, np.nan
            if not on[i] or not alive[i]:
                continue
            q = prof.params
            if prof.kind == "speedhack":
                ctl.factor[i] = q["factor"]
                if prof.intensity == "subtle":
                    ctl.ceiling[i] = MAX_SPEED_MPS * 0.999
                    ctl.accel[i] = MAX_ACCEL_MPS2 / q["factor"]
            elif prof.kind == "fly":
                if prof.intensity == "blatant":
                    ctl.hover[i] = q["altitude_m"]
                else:
                    ctl.gravity[i] = GRAVITY_MPS2 * q["gravity_scale"]
                    if jump_rate is self.jump_rate:
                        jump_rate = jump_rate.copy()
                    jump_rate[i] *= q["jump_boost"]
            elif prof.kind == "teleport" and rng.random() < q["rate_hz"] * self.dt_s:
                x, y = self._random_point(near=(float(b.pos[i, 0]), float(b.pos[i, 1])),
                                          radius=q["max_m"], min_dist=q["min_m"])
                b.pos[i, 0], b.pos[i, 1] = x, y
        ctl.jump = alive & (rng.random(n) < jump_rate * self.dt_s)
        step_bodies(rng, self.map, b, ctl, self.dt_s)

    def _visibility(self) -> np.ndarray:
        """``vis[i, j]``: alive ``i`` sees alive enemy ``j`` (eye to chest)."""
        vis = np.zeros((self.n, self.n), dtype=np.bool_)
        both = self.alive[self._ei] & self.alive[self._ej]
        ii, jj = self._ei[both], self._ej[both]
        if len(ii):
            p = self.bodies.pos
            vis[ii, jj] = line_of_sight_many(self.map, p[ii] + self._eye, p[jj] + self._chest)
        return vis

    def _angles_to(self, i: int, j: int, height: float) -> tuple[float, float, float]:
        p = self.bodies.pos
        dx, dy = p[j, 0] - p[i, 0], p[j, 1] - p[i, 1]
        dz = p[j, 2] + height - p[i, 2] - EYE_HEIGHT_M
        hd = math.hypot(dx, dy)
        return math.degrees(math.atan2(dy, dx)), math.degrees(math.atan2(dz, hd)), hd

    def _target_angles(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.bodies.pos
        has = (self.target >= 0) & self.alive
        tj = np.where(has, self.target, 0)
        dx, dy = p[tj, 0] - p[:, 0], p[tj, 1] - p[:, 1]
        dz = p[tj, 2] + self.aim_height - p[:, 2] - EYE_HEIGHT_M
        yaw = np.degrees(np.arctan2(dy, dx))
        pitch = np.degrees(np.arctan2(dz, np.hypot(dx, dy)))
        return np.where(has, yaw, np.nan), np.where(has, pitch, np.nan)

    def _off_crosshair(self, i: int, j: int) -> float:
        yaw, pitch, _ = self._angles_to(i, j, CHEST_HEIGHT_M)
        dy = (yaw - self.aim.yaw[i] + 180.0) % 360.0 - 180.0
        return math.hypot(dy, pitch - self.aim.pitch[i])

    def _disengage(self, i: int) -> None:
        self.target[i] = -1
        self.aim.mode[i] = IDLE
        self.lost_since[i] = -1.0
        self.trig_since[i] = -1.0

    def _decide(self, t: float, vis: np.ndarray, on: dict[int, bool]) -> None:
        """Aim mode transitions of every alive player (see engagement.py)."""
        aim = self.aim
        p_sound = 1.0 - math.exp(-_SOUND_RATE_HZ * self.dt_s)
        alive, modes, tgt = self.alive, aim.mode, self.target
        has = tgt >= 0
        tj = np.where(has, tgt, 0)
        ok = alive[tj] & vis[np.arange(self.n), tj]
        busy = alive & (
            (has & (~ok | (self.lost_since >= 0)))
            | ((modes == IDLE) & vis.any(axis=1))
            | ((modes == REACT) & (t >= self.react_until))
            | (((modes == FLICK) | (modes == CORRECT)) & (t >= aim.fl_t0 + aim.fl_T))
        )
        for i in np.nonzero(busy)[0].tolist():
            j = int(self.target[i])
            if j >= 0:
                if not self.alive[j]:
                    self._disengage(i)
                elif not vis[i, j]:
                    if self.lost_since[i] < 0:
                        self.lost_since[i] = t
                        # Chase: walk to where the target was last seen.
                        self.goal[i] = self.bodies.pos[j, :2]
                        self.goal_deadline[i] = t + 5000.0
                        self._next_waypoint(i, t, new_goal=False)
                    elif t - self.lost_since[i] > _LOST_MS:
                        self._disengage(i)
                else:
                    self.lost_since[i] = -1.0
            mode = int(aim.mode[i])
            if mode == IDLE:
                self._acquire(i, t, vis, on, p_sound)
            elif mode == REACT and t >= self.react_until[i]:
                self._start_flick(i, float(self.react_until[i]))
            elif mode in (FLICK, CORRECT) and t >= aim.fl_t0[i] + aim.fl_T[i]:
                end = float(aim.fl_t0[i] + aim.fl_T[i])
                if mode == FLICK:
                    self._correct(i, end)
                else:
                    self._track(i, end, from_flick=True)

    def _acquire(self, i: int, t: float, vis: np.ndarray, on: dict[int, bool], p_sound: float) -> None:
        enemies = np.nonzero(vis[i])[0].tolist()
        if not enemies:
            return
        rng = self.rng
        offs = [(self._off_crosshair(i, j), j) for j in enemies]
        offs.sort()
        cheat = self.cheat.get(i)
        bot = cheat is not None and on[i] and cheat[0].kind in ("snap_aimbot", "humanised_aimbot")
        params = self.params[i]
        chosen = -1
        if bot and cheat is not None and offs[0][0] <= cheat[0].params["fov_deg"]:
            chosen = offs[0][1]
            params = self._bot_params(i, cheat[0])
        else:
            p = self.bodies.pos
            for off, j in offs:
                dist = math.hypot(p[j, 0] - p[i, 0], p[j, 1] - p[i, 1])
                if dist < _NEAR_M:
                    chosen = j
                    break
                if off > _FOV_HALF_DEG:
                    if rng.random() < p_sound:
                        chosen = j
                        break
                    continue
                # In view: seen at once when close, with growing odds over time when far.
                if dist <= _SPOT_M or rng.random() < 1.0 - math.exp(
                    -_SPOT_RATE_HZ * math.exp(-(dist - _SPOT_M) / _SPOT_FADE_M) * self.dt_s
                ):
                    chosen = j
                    break
        if chosen < 0:
            return
        self.engaged_params[i] = params
        self.target[i] = chosen
        self.lost_since[i] = -1.0
        head = rng.random() < params.head_pref
        self.aim_height[i] = HEAD_HEIGHT_M if head else CHEST_HEIGHT_M
        if params.snap:
            q = cheat[0].params if cheat is not None else {}
            rt = rng.uniform(q.get("rt_min_ms", 0.0), q.get("rt_max_ms", 30.0))
        else:
            rt = float(ex_gaussian_ms(rng, params.rt_mu_ms, params.rt_sigma_ms,
                                      params.rt_tau_ms)[0]) - params.rt_shift_ms
        # The server sees the reaction one round trip after the target appeared.
        self.react_until[i] = t + rt + self.ping_ms[i]
        self.aim.mode[i] = REACT
        if self.knife[i]:
            self.knife[i] = False
            self.draw_until[i] = t + WEAPONS[self.profiles[i].primary].draw_ms

    def _start_flick(self, i: int, t0: float) -> None:
        params, j = self.engaged_params[i], int(self.target[i])
        if params.snap:
            self._track(i, t0, from_flick=False)
            return
        yaw, pitch, hd = self._angles_to(i, j, float(self.aim_height[i]))
        width = target_width_deg(PLAYER_RADIUS_M, hd)
        flick = plan_flick(
            self.rng, t0_ms=t0, start=(float(self.aim.yaw[i]), float(self.aim.pitch[i])),
            goal=(yaw, pitch), width_deg=width, a_ms=params.fitts_a_ms, b_ms=params.fitts_b_ms,
            overshoot=params.overshoot, scatter=params.scatter,
        )
        self.aim.set_flick(i, flick, FLICK)

    def _correct(self, i: int, t0: float) -> None:
        params, j = self.engaged_params[i], int(self.target[i])
        yaw, pitch, hd = self._angles_to(i, j, float(self.aim_height[i]))
        a = self.aim
        start = (float(a.fl_y0[i] + a.fl_dy[i]), float(a.fl_p0[i] + a.fl_dp[i]))
        width = target_width_deg(PLAYER_RADIUS_M, hd)
        flick = plan_flick(
            self.rng, t0_ms=t0, start=start, goal=(yaw, pitch), width_deg=width,
            a_ms=0.6 * params.fitts_a_ms, b_ms=params.fitts_b_ms,
            overshoot=0.3 * params.overshoot, scatter=0.5 * params.scatter,
        )
        a.set_flick(i, flick, CORRECT)

    def _track(self, i: int, t0: float, *, from_flick: bool) -> None:
        params, j = self.engaged_params[i], int(self.target[i])
        a = self.aim
        a.mode[i] = TRACK
        a.track_sd[i] = params.track_sd_deg
        if from_flick:
            yaw, pitch, _ = self._angles_to(i, j, float(self.aim_height[i]))
            end_y = float(a.fl_y0[i] + a.fl_dy[i])
            end_p = float(a.fl_p0[i] + a.fl_dp[i])
            a.err_y[i] = (end_y - yaw + 180.0) % 360.0 - 180.0
            a.err_p[i] = end_p - pitch
        else:
            a.err_y[i], a.err_p[i] = self.rng.normal(0.0, params.track_sd_deg, 2)
        self.settle_at[i] = t0
        self.burst[i] = 0

    # ------------------------------------------------------------- shooting
    def _fire(self, t: float, vis: np.ndarray, on: dict[int, bool], out: list[dict[str, Any]]) -> None:
        t_prev = t - self.dt_ms
        trig = np.zeros(self.n, dtype=np.bool_)
        for i, (prof, _) in self.cheat.items():
            trig[i] = on[i] and prof.kind == "triggerbot"
        ready = self.alive & (t >= self.next_fire) & (t >= self.draw_until)
        cands = ready & (trig | ((self.aim.mode == TRACK) & (self.target >= 0)))
        for i in np.nonzero(cands)[0].tolist():
            if not self.alive[i]:  # killed earlier in this tick
                continue
            cheat = self.cheat.get(i)
            if cheat is not None and on[i] and cheat[0].kind == "triggerbot":
                self._trigger(i, t, vis, cheat[0], out)
                continue
            j = int(self.target[i])
            if self.aim.mode[i] != TRACK or j < 0 or not vis[i, j] or not self.alive[j]:
                continue
            params = self.engaged_params[i]
            ready = self.settle_at[i] + params.decide_ms
            if t < ready:
                continue
            yaw, pitch, hd = self._angles_to(i, j, float(self.aim_height[i]))
            err = math.hypot((self.aim.yaw[i] - yaw + 180.0) % 360.0 - 180.0, self.aim.pitch[i] - pitch)
            tol = params.fire_tol * target_width_deg(PLAYER_RADIUS_M, hd) / 2.0
            if err > tol and (t - self.settle_at[i] < 700.0 or err > 2.5 * tol):
                continue
            ts = min(max(ready, float(self.next_fire[i]), t_prev + 1.0), t)
            self._shoot(i, j, ts, out)
            if self.burst[i] >= _BURST_MAX + (i % 3):
                self.burst[i] = 0
                self.next_fire[i] = ts + _BURST_PAUSE_MS * (0.8 + 0.4 * self.rng.random())

    def _crosshair_on(self, i: int, j: int) -> bool:
        p = self.bodies.pos
        return hit_test(tuple(p[i]), float(self.aim.yaw[i]), float(self.aim.pitch[i]),
                        tuple(p[j])) is not None

    def _trigger(self, i: int, t: float, vis: np.ndarray, prof: CheatProfile,
                 out: list[dict[str, Any]]) -> None:
        """The triggerbot fires when the crosshair is on an enemy, never otherwise."""
        on_target = -1
        for j in np.nonzero(vis[i])[0].tolist():
            if self.alive[j] and self._crosshair_on(i, j):
                on_target = j
                break
        if on_target < 0:
            self.trig_since[i] = -1.0
            return
        delay = prof.params["delay_ms"]
        if self.trig_since[i] < 0:
            self.trig_since[i] = t
        fire_at = self.trig_since[i] + delay
        if fire_at <= t:
            ts = max(fire_at, float(self.next_fire[i]), t - self.dt_ms + 1.0)
            self._shoot(i, on_target, min(ts, t), out)

    def _shoot(self, i: int, j: int, ts: float, out: list[dict[str, Any]]) -> None:
        prof = self.profiles[i]
        weapon = WEAPONS[prof.primary]
        b, a = self.bodies, self.aim
        yaw, pitch = float(a.yaw[i]), float(a.pitch[i])
        speed = math.hypot(b.vel[i, 0], b.vel[i, 1])
        sd = spread_sd_deg(weapon, speed_frac=min(speed / MAX_SPEED_MPS, 1.0),
                           airborne=bool(b.pos[i, 2] > 0.0), burst=int(self.burst[i]))
        dy, dp = self.rng.normal(0.0, sd, 2)
        self.burst[i] += 1
        self.next_fire[i] = ts + weapon.interval_ms
        shooter, victim = prof.player, self.profiles[j].player
        out.append(self._ev("shot", ts, player=shooter, weapon=weapon.name, yaw=yaw, pitch=pitch,
                            target=victim, visible=True, x=float(b.pos[i, 0]),
                            y=float(b.pos[i, 1]), z=float(b.pos[i, 2])))
        where = hit_test(tuple(b.pos[i]), yaw + dy, pitch + dp, tuple(b.pos[j]))
        if where is None:
            return
        head = where == "head"
        damage = weapon.head_damage if head else weapon.body_damage
        distance = float(np.hypot(*(b.pos[j, :2] - b.pos[i, :2])))
        out.append(self._ev("hit", ts, player=shooter, target=victim, weapon=weapon.name,
                            damage=damage, headshot=head, distance=distance))
        self.health[j] -= damage
        if self.health[j] <= 0.0:
            out.append(self._ev("kill", ts, player=shooter, target=victim, weapon=weapon.name,
                                headshot=head, distance=distance))
            self.alive[j] = False
            self.respawn_at[j] = ts + RESPAWN_MS
            self._disengage(j)
            self.kills[int(self.team[i])] += 1
            self._disengage(i)


def simulate_match(
    *,
    seed: int,
    match_id: str,
    players: int = 20,
    cheaters: float | int = 0.1,
    tick_hz: int = 20,
    duration_s: float = DEFAULT_DURATION_S,
    start_ts_ms: int = DEFAULT_START_TS_MS,
    cheat_kinds: Sequence[str] | None = None,
    intensity: Intensity | None = None,
    map_name: str | None = None,
    round_s: float = DEFAULT_ROUND_S,
    closet_share: float = CLOSET_SHARE,
) -> MatchRecording:
    """Simulate one whole match; the same arguments always give the same recording."""
    sim = MatchSimulator(
        seed=seed, match_id=match_id, players=players, cheaters=cheaters, tick_hz=tick_hz,
        duration_s=duration_s, start_ts_ms=start_ts_ms, cheat_kinds=cheat_kinds,
        intensity=intensity, map_name=map_name, round_s=round_s, closet_share=closet_share,
    )
    return sim.recording(list(sim.events()))
