"""The tick loop: many matches stepped together as one set of arrays.

Per tick, a match costs a few hundred numpy calls on arrays of 20 players,
and at that size the call overhead, not the arithmetic, is the bill. The
engine therefore concatenates the players of several matches (same tick
rate, duration and rounds) and pays the overhead once per tick for all of
them. Matches stay independent: each has its own random generator, and
every random draw, every decision and every wall test of a match uses only
its own players, generator and map, so a match is the same recording
whether it is stepped alone or in a batch.

Per tick, for every match: respawns; movement (:mod:`~gamebus.sim.movement`);
visibility (eye to chest, :mod:`~gamebus.sim.world`); aim decisions
(plain Python, only for players with something to decide); aim angles
(:mod:`~gamebus.sim.engagement`); shooting (:mod:`~gamebus.sim.weapons`);
then the tick's match events (their own sub-tick ``ts``) and one ``pos``
per alive player at the tick's ``ts``. Times inside are milliseconds since
the start of the matches; events carry each match's own clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from gamebus.sim.aim import ex_gaussian_ms, plan_flick, target_width_deg
from gamebus.sim.cheats import CheaterLabel, CheatProfile
from gamebus.sim.engagement import (
    CORRECT,
    FLICK,
    IDLE,
    REACT,
    TRACK,
    AimArrays,
    AimNoise,
    AimParams,
    evaluate_aim,
)
from gamebus.sim.movement import Bodies, Controls, step_bodies
from gamebus.sim.navigation import NavGrid, nav_grid
from gamebus.sim.profiles import PlayerProfile
from gamebus.sim.weapons import WEAPONS, hit_test, spread_sd_deg
from gamebus.sim.world import (
    CHEST_HEIGHT_M,
    EYE_HEIGHT_M,
    GRAVITY_MPS2,
    HEAD_HEIGHT_M,
    MAX_ACCEL_MPS2,
    MAX_SPEED_MPS,
    PLAYER_RADIUS_M,
    WEAPON_MAX_SPEED_MPS,
    GameMap,
    get_map,
    line_of_sight_many,
)

__all__ = ["RESPAWN_MS", "Engine", "MatchSetup", "tick_ms"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Event = dict[str, Any]

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


def tick_ms(tick_hz: int) -> int:
    """The tick period in whole milliseconds for a tick rate."""
    return max(1, round(1000 / tick_hz))


class MatchSetup:
    """Everything drawn before a match starts: the truth of the side file.

    Built by :class:`gamebus.sim.match.MatchSimulator`; the engine plays it.
    """

    def __init__(
        self,
        *,
        seed: int,
        match_id: str,
        rng: np.random.Generator,
        map_name: str,
        profiles: list[PlayerProfile],
        cheat: dict[int, tuple[CheatProfile, CheaterLabel]],
        start_ts_ms: int,
        end_ts_ms: int,
    ) -> None:
        self.seed, self.match_id, self.rng = seed, match_id, rng
        self.map_name = map_name
        self.map: GameMap = get_map(map_name)
        self.nav: NavGrid = nav_grid(map_name)
        self.profiles = profiles
        self.cheat = cheat
        self.labels = [label for _, label in cheat.values()]
        self.start_ts_ms, self.end_ts_ms = start_ts_ms, end_ts_ms
        self.n = len(profiles)


def _human_params(p: PlayerProfile) -> AimParams:
    return AimParams(
        rt_mu_ms=p.rt_mu_ms, rt_sigma_ms=p.rt_sigma_ms, rt_tau_ms=p.rt_tau_ms,
        rt_shift_ms=0.0, fitts_a_ms=p.fitts_a_ms, fitts_b_ms=p.fitts_b_ms,
        overshoot=p.overshoot, scatter=p.scatter, track_sd_deg=p.track_sd_deg,
        head_pref=p.head_pref, fire_tol=p.fire_tol, decide_ms=p.decide_ms,
    )


def _bot_params(h: AimParams, prof: CheatProfile) -> AimParams:
    q = prof.params
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


class Engine:
    """Plays ``matches`` together, tick by tick (see the module docstring)."""

    def __init__(self, matches: list[MatchSetup], *, tick_hz: int, n_ticks: int, round_ms: float) -> None:
        self.matches = matches
        # A whole number of milliseconds per tick, so that positions moved over
        # one tick and the difference of their integer ``ts`` agree exactly
        # (64 Hz runs at 16 ms ticks).
        self.dt_ms = float(tick_ms(tick_hz))
        self.dt_s = self.dt_ms / 1000.0
        self.n_ticks = n_ticks
        self.round_ms = round_ms
        sizes = [m.n for m in matches]
        self.offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        n = self.n = int(self.offsets[-1])
        self.pm = np.repeat(np.arange(len(matches)), sizes)  # match of each player
        self.local = np.arange(n) - self.offsets[self.pm]
        self.profiles: list[PlayerProfile] = [p for m in matches for p in m.profiles]
        self.cheat: dict[int, tuple[CheatProfile, CheaterLabel]] = {
            int(self.offsets[k]) + i: c for k, m in enumerate(matches) for i, c in m.cheat.items()
        }
        # Global team ids: 2 * match + (0 red, 1 blue); enemies are ``team ^ 1``.
        local_team = np.array([0 if p.team == "red" else 1 for p in self.profiles], dtype=np.int64)
        self.team = 2 * self.pm + local_team
        self.start = np.array([m.start_ts_ms for m in matches], dtype=np.float64)
        self.bodies = Bodies.empty(n)
        self.aim = AimArrays.empty(n)
        self.aim.tremor_sd[:] = np.concatenate([m.rng.uniform(0.03, 0.08, m.n) for m in matches])
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
        self.strafe = np.concatenate([np.where(m.rng.random(m.n) < 0.5, -1.0, 1.0) for m in matches])
        self.ping_ms = np.array([p.ping_ms for p in self.profiles])
        self.jump_rate = np.array([p.jump_rate_hz for p in self.profiles])
        self.target = np.full(n, -1, dtype=np.int64)
        self.aim_height = np.full(n, CHEST_HEIGHT_M)
        self.react_until = np.zeros(n)
        self.settle_at = np.zeros(n)
        self.next_fire = np.zeros(n)
        self.lost_since = np.full(n, -1.0)
        self.burst = np.zeros(n, dtype=np.int64)
        self.trig_since = np.full(n, -1.0)
        self.trig_target = np.zeros(n, dtype=np.int64)
        self.spawned_at = np.zeros(n)
        self.next_tp = np.full(n, np.inf)
        self.params: list[AimParams] = [_human_params(p) for p in self.profiles]
        self.engaged_params: list[AimParams] = list(self.params)
        self.kills = [[0, 0] for _ in matches]
        self.round = 0
        same = self.pm[:, None] == self.pm[None, :]
        self._ei, self._ej = np.nonzero(same & (self.team[:, None] != self.team[None, :]))
        self._maps = sorted({m.map_name for m in matches})
        self._player_map = np.array([self._maps.index(m.map_name) for m in matches])[self.pm]
        self._eye = np.array([0.0, 0.0, EYE_HEIGHT_M])
        self._chest = np.array([0.0, 0.0, CHEST_HEIGHT_M])
        self._ctl = Controls.honest(n)
        self._out: list[list[Event]] = [[] for _ in matches]
        self._on: dict[int, bool] = {}
        self._was_on: dict[int, bool] = {}

    # ------------------------------------------------------------ helpers
    def _rng(self, i: int) -> np.random.Generator:
        return self.matches[self.pm[i]].rng

    def _normal(self, tail: tuple[int, ...] = ()) -> FloatArray:
        """Standard normal draws, ``(n,) + tail``, each match from its own generator."""
        if len(self.matches) == 1:
            return self.matches[0].rng.standard_normal((self.n, *tail))
        return np.concatenate([m.rng.standard_normal((m.n, *tail)) for m in self.matches])

    def _uniform(self) -> FloatArray:
        if len(self.matches) == 1:
            return self.matches[0].rng.random(self.n)
        return np.concatenate([m.rng.random(m.n) for m in self.matches])

    def _blocked(self, xy: FloatArray, rows: IntArray | None = None) -> BoolArray:
        """Wall test of positions ``xy`` of players ``rows`` (default: all), each on its map."""
        if len(self._maps) == 1:
            return get_map(self._maps[0]).blocked_many(xy)
        which = self._player_map if rows is None else self._player_map[rows]
        out = np.zeros(len(xy), dtype=np.bool_)
        for k, name in enumerate(self._maps):
            sel = which == k
            if sel.any():
                out[sel] = get_map(name).blocked_many(xy[sel])
        return out

    def _enemies(self, i: int) -> IntArray:
        result: IntArray = np.nonzero(self.alive & (self.team == (self.team[i] ^ 1)))[0]
        return result

    def _ev(self, m: int, etype: str, t: float, **fields: Any) -> Event:
        ev: Event = {"type": etype, "match": self.matches[m].match_id,
                     "ts": round(self.start[m] + t)}
        ev.update(fields)
        return ev

    def _emit(self, i: int, etype: str, t: float, **fields: Any) -> None:
        m = int(self.pm[i])
        self._out[m].append(self._ev(m, etype, t, **fields))

    def _random_point(self, i: int, *, near: tuple[float, float] | None = None,
                      radius: float = 0.0, min_dist: float = 0.0) -> tuple[float, float]:
        """A free spot on player ``i``'s map: anywhere, or ``min_dist``..``radius`` from ``near``."""
        match = self.matches[self.pm[i]]
        m, rng = match.map, match.rng
        k = 24
        if near is None:
            xy = 1.0 + rng.uniform(0.0, 1.0, (k, 2)) * (np.array([m.size_x_m, m.size_y_m]) - 2.0)
        else:
            ang = rng.uniform(0.0, 2 * math.pi, k)
            r = rng.uniform(min_dist, max(radius, min_dist + 1e-6), k)
            xy = np.array(near) + np.c_[np.cos(ang), np.sin(ang)] * r[:, None]
        free = np.nonzero(~m.blocked_many(xy))[0]
        if len(free):
            x, y = xy[free[0]]
            return float(x), float(y)
        if near is not None:
            return near
        return m.spawns[0][0], m.spawns[0][1]

    def _next_waypoint(self, i: int, t: float, *, new_goal: bool) -> None:
        """Pick the next straight-line leg toward the player's goal.

        Goals are often an enemy's surroundings (hunting brings fights),
        otherwise anywhere; the navigation grid routes around walls.
        """
        match = self.matches[self.pm[i]]
        rng, b = match.rng, self.bodies
        here = b.pos[i, :2].copy()
        if new_goal or t >= self.goal_deadline[i] or np.hypot(*(self.goal[i] - here)) < 2.0:
            enemies = self._enemies(i)
            if len(enemies) and rng.random() < 0.6:
                j = int(rng.choice(enemies))
                self.goal[i] = self._random_point(i, near=(float(b.pos[j, 0]), float(b.pos[j, 1])),
                                                  radius=6.0)
            else:
                self.goal[i] = self._random_point(i)
            self.goal_deadline[i] = t + rng.uniform(6000.0, 15000.0)
        wp = match.nav.next_waypoint(match.map, here, self.goal[i])
        self.waypoint[i] = wp
        self.wp_set[i] = t
        self.wp_deadline[i] = t + 1000.0 * float(np.hypot(*(wp - here))) / 3.5 + 1000.0

    # ------------------------------------------------------------- lifecycle
    def _spawn(self, i: int, t: float) -> None:
        match = self.matches[self.pm[i]]
        m, rng = match.map, match.rng
        mid_x, mid_y = m.size_x_m / 2, m.size_y_m / 2
        red = self.team[i] % 2 == 0
        side = [s for s in m.spawns if (s[0] < mid_x) == red]
        sx, sy, _ = side[int(rng.integers(len(side)))]
        x, y = self._random_point(i, near=(sx, sy), radius=3.0)
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
        self.knife[i] = bool(rng.random() < self.profiles[i].knife_run)
        self.wp_deadline[i] = 0.0
        self.next_fire[i] = t
        self.spawned_at[i] = t
        p = self.profiles[i]
        self._emit(i, "spawn", t, player=p.player, x=x, y=y, z=0.0, yaw=yaw, pitch=0.0, team=p.team)

    def _start_round(self, t: float) -> None:
        self.round += 1
        for k, match in enumerate(self.matches):
            self.kills[k] = [0, 0]
            self._out[k].append(self._ev(k, "round_start", t, round=self.round, map=match.map_name))
        for i in range(self.n):
            self._spawn(i, t)

    def _end_round(self, t: float, totals: list[list[int]]) -> None:
        for k in range(len(self.matches)):
            kills = self.kills[k]
            totals[k][0] += kills[0]
            totals[k][1] += kills[1]
            fields: dict[str, Any] = {"round": self.round}
            if kills[0] != kills[1]:
                fields["winner"] = "red" if kills[0] > kills[1] else "blue"
            self._out[k].append(self._ev(k, "round_end", t, **fields))

    def ticks(self) -> Iterator[list[tuple[int, list[Event]]]]:
        """Play every match; yield, once per tick, ``(ts_ms, events)`` for each match."""
        t = 0.0
        for k, match in enumerate(self.matches):
            for p in match.profiles:
                self._out[k].append(self._ev(k, "join", t, player=p.player, team=p.team,
                                             ping=round(p.ping_ms), name=p.player))
        self._start_round(t)
        yield self._flush(t)
        next_round = self.round_ms
        totals = [[0, 0] for _ in self.matches]
        for step in range(1, self.n_ticks + 1):
            t = step * self.dt_ms
            self._step(t)
            if step < self.n_ticks and t >= next_round:
                self._end_round(t, totals)
                self._start_round(t)
                next_round += self.round_ms
            last = step == self.n_ticks
            yield self._flush(t, final=totals if last else None)

    def _flush(self, t: float, final: list[list[int]] | None = None) -> list[tuple[int, list[Event]]]:
        """This tick's events of every match: match events by ``ts``, then positions.

        On the last tick (``final`` holds the kill totals) the round and
        match end and everyone leaves, after the positions.
        """
        out = []
        for k, match in enumerate(self.matches):
            events = self._out[k]
            events.sort(key=lambda e: e["ts"])
            events.extend(self._positions(k, t))
            out.append((round(match.start_ts_ms + t), events))
        self._out = [[] for _ in self.matches]
        if final is not None:
            self._end_round(t, final)
            for k, match in enumerate(self.matches):
                tail = self._out[k]
                kills = final[k]
                end: dict[str, Any] = {"map": match.map_name}
                if kills[0] != kills[1]:
                    end["winner"] = "red" if kills[0] > kills[1] else "blue"
                tail.append(self._ev(k, "match_end", t, **end))
                tail.extend(self._ev(k, "leave", t, player=p.player, reason="match_end")
                            for p in match.profiles)
                out[k][1].extend(tail)
            self._out = [[] for _ in self.matches]
        return out

    def _positions(self, k: int, t: float) -> list[Event]:
        match = self.matches[k]
        lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
        jitter = match.rng.normal(0.0, 1.0, match.n)
        idx = lo + np.nonzero(self.alive[lo:hi])[0]
        if len(idx) == 0:
            return []
        jitter = jitter[idx - lo]
        p, v = self.bodies.pos[idx], self.bodies.vel[idx]
        ping = np.maximum(1, np.round(self.ping_ms[idx] * (1 + 0.06 * jitter) + jitter)).astype(int)
        ts, mid = round(match.start_ts_ms + t), match.match_id
        names = [self.profiles[i].player for i in idx.tolist()]
        return [
            {"type": "pos", "match": mid, "ts": ts, "player": name, "x": x, "y": y, "z": z,
             "yaw": yw, "pitch": pt, "vx": vx, "vy": vy, "vz": vz, "ping": pg}
            for name, x, y, z, yw, pt, vx, vy, vz, pg in zip(
                names, p[:, 0].tolist(), p[:, 1].tolist(), p[:, 2].tolist(),
                self.aim.yaw[idx].tolist(), self.aim.pitch[idx].tolist(),
                v[:, 0].tolist(), v[:, 1].tolist(), v[:, 2].tolist(), ping.tolist(),
                strict=True,
            )
        ]

    # -------------------------------------------------------------- one tick
    def _step(self, t: float) -> None:
        on = {i: lab.is_on(self.start[self.pm[i]] + t) for i, (_, lab) in self.cheat.items()}
        self._was_on, self._on = self._on, on
        for i in np.nonzero(~self.alive & (self.respawn_at <= t))[0].tolist():
            self._spawn(i, t)
        self._move(t, on)
        vis = self._visibility()
        self._decide(t, vis, on)
        tgt_yaw, tgt_pitch = self._target_angles()
        b = self.bodies
        speed = np.hypot(b.vel[:, 0], b.vel[:, 1])
        noise = AimNoise(look=self._normal(), track=self._normal((2,)), tremor=self._normal((2,)))
        evaluate_aim(
            self.aim, noise, t_ms=t, dt_s=self.dt_s, alive=self.alive,
            heading=np.degrees(np.arctan2(b.vel[:, 1], b.vel[:, 0])),
            moving=speed > 0.7, tgt_yaw=tgt_yaw, tgt_pitch=tgt_pitch,
        )
        self._fire(t, vis, on)

    def _move(self, t: float, on: dict[int, bool]) -> None:
        b = self.bodies
        alive = self.alive
        d = self.waypoint - b.pos[:, :2]
        dist = np.hypot(d[:, 0], d[:, 1])
        speed = np.hypot(b.vel[:, 0], b.vel[:, 1])
        stuck = (speed < 0.3) & (t - self.wp_set > 800.0) & (self.target < 0)
        fighting = (self.target >= 0) & (self.lost_since < 0)  # strafing, no waypoint
        need = alive & ~fighting & ((dist < 1.5) | (t >= self.wp_deadline) | stuck)
        for i in np.nonzero(need)[0].tolist():
            self._next_waypoint(i, t, new_goal=bool(stuck[i]))
            rng = self._rng(i)
            if self.target[i] < 0 and rng.random() < 0.3:
                self.knife[i] = bool(rng.random() < self.profiles[i].knife_run)
        d = self.waypoint - b.pos[:, :2]
        dist = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
        cap = np.where(self.knife, WEAPON_MAX_SPEED_MPS["knife"], self.primary_cap)
        wanted = d / dist[:, None] * cap[:, None]
        flip = self._uniform() < _STRAFE_FLIP_HZ * self.dt_s
        self.strafe = np.where(flip, -self.strafe, self.strafe)
        if fighting.any():
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
            elif prof.kind == "teleport":
                # Used soon after it is switched on or the player spawns (to
                # get to the fight), then at random (Poisson at rate_hz).
                rng = self._rng(i)
                if not self._was_on.get(i, False) or self.spawned_at[i] >= t - self.dt_ms:
                    self.next_tp[i] = t + rng.uniform(1500.0, 3000.0)
                elif t >= self.next_tp[i]:
                    x, y = self._random_point(i, near=(float(b.pos[i, 0]), float(b.pos[i, 1])),
                                              radius=q["max_m"], min_dist=q["min_m"])
                    b.pos[i, 0], b.pos[i, 1] = x, y
                    self.next_tp[i] = t + rng.exponential(1000.0 / q["rate_hz"])
        ctl.jump = alive & (self._uniform() < jump_rate * self.dt_s)
        step_bodies(self._normal((2,)), self._blocked, b, ctl, self.dt_s)

    def _visibility(self) -> BoolArray:
        """``vis[i, j]``: alive ``i`` sees alive enemy ``j`` (eye to chest)."""
        vis = np.zeros((self.n, self.n), dtype=np.bool_)
        # Only what a decision reads: every enemy for whoever may pick a new
        # target (idle, reacting, or running a triggerbot), else the target.
        ei, ej = self._ei, self._ej
        looking = (self.aim.mode <= REACT) | (self.target < 0)
        for i, (prof, _) in self.cheat.items():
            looking[i] |= prof.kind == "triggerbot"
        need = self.alive[ei] & self.alive[ej] & (looking[ei] | (self.target[ei] == ej))
        ii, jj = ei[need], ej[need]
        if len(ii):
            p = self.bodies.pos
            a, c = p[ii] + self._eye, p[jj] + self._chest
            if len(self._maps) == 1:
                vis[ii, jj] = line_of_sight_many(self._maps[0], a, c)
            else:
                which = self._player_map[ii]
                for k, name in enumerate(self._maps):
                    sel = which == k
                    if sel.any():
                        vis[ii[sel], jj[sel]] = line_of_sight_many(name, a[sel], c[sel])
        return vis

    def _angles_to(self, i: int, j: int, height: float) -> tuple[float, float, float]:
        p = self.bodies.pos
        dx, dy = p[j, 0] - p[i, 0], p[j, 1] - p[i, 1]
        dz = p[j, 2] + height - p[i, 2] - EYE_HEIGHT_M
        hd = math.hypot(dx, dy)
        return math.degrees(math.atan2(dy, dx)), math.degrees(math.atan2(dz, hd)), hd

    def _target_angles(self) -> tuple[FloatArray, FloatArray]:
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

    # ------------------------------------------------------------ decisions
    def _decide(self, t: float, vis: BoolArray, on: dict[int, bool]) -> None:
        """Aim mode transitions of every player with something to decide."""
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

    def _acquire(self, i: int, t: float, vis: BoolArray, on: dict[int, bool], p_sound: float) -> None:
        enemies = np.nonzero(vis[i])[0].tolist()
        if not enemies:
            return
        rng = self._rng(i)
        offs = sorted((self._off_crosshair(i, j), j) for j in enemies)
        cheat = self.cheat.get(i)
        bot = cheat is not None and on[i] and cheat[0].kind in ("snap_aimbot", "humanised_aimbot")
        params = self.params[i]
        chosen = -1
        if bot and cheat is not None and offs[0][0] <= cheat[0].params["fov_deg"]:
            chosen = offs[0][1]
            params = _bot_params(params, cheat[0])
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
            self._rng(i), t0_ms=t0, start=(float(self.aim.yaw[i]), float(self.aim.pitch[i])),
            goal=(yaw, pitch), width_deg=width, a_ms=params.fitts_a_ms, b_ms=params.fitts_b_ms,
            overshoot=params.overshoot, scatter=params.scatter,
        )
        self.aim.set_flick(i, flick, FLICK)

    def _bot_takes_over(self, i: int) -> None:
        """A humanised aimbot steers whenever the target is inside its field of view.

        So a flick the human started outside the FOV is finished, and the
        target then tracked, by the bot: that lock is what the cheat is for.
        """
        cheat = self.cheat.get(i)
        if cheat is None or not self._on.get(i) or cheat[0].kind != "humanised_aimbot":
            return
        if self.engaged_params[i] is self.params[i] and (
            self._off_crosshair(i, int(self.target[i])) <= cheat[0].params["fov_deg"]
        ):
            self.engaged_params[i] = _bot_params(self.params[i], cheat[0])

    def _correct(self, i: int, t0: float) -> None:
        self._bot_takes_over(i)
        params, j = self.engaged_params[i], int(self.target[i])
        yaw, pitch, hd = self._angles_to(i, j, float(self.aim_height[i]))
        a = self.aim
        start = (float(a.fl_y0[i] + a.fl_dy[i]), float(a.fl_p0[i] + a.fl_dp[i]))
        width = target_width_deg(PLAYER_RADIUS_M, hd)
        flick = plan_flick(
            self._rng(i), t0_ms=t0, start=start, goal=(yaw, pitch), width_deg=width,
            a_ms=0.6 * params.fitts_a_ms, b_ms=params.fitts_b_ms,
            overshoot=0.3 * params.overshoot, scatter=0.5 * params.scatter,
        )
        a.set_flick(i, flick, CORRECT)

    def _track(self, i: int, t0: float, *, from_flick: bool) -> None:
        self._bot_takes_over(i)
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
            a.err_y[i], a.err_p[i] = self._rng(i).normal(0.0, params.track_sd_deg, 2)
        self.settle_at[i] = t0
        self.burst[i] = 0

    # ------------------------------------------------------------- shooting
    def _fire(self, t: float, vis: BoolArray, on: dict[int, bool]) -> None:
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
            if cheat is not None and trig[i]:
                self._trigger(i, t, vis, cheat[0])
                continue
            j = int(self.target[i])
            if self.aim.mode[i] != TRACK or j < 0 or not vis[i, j] or not self.alive[j]:
                continue
            params = self.engaged_params[i]
            ready_at = self.settle_at[i] + params.decide_ms
            if t < ready_at:
                continue
            yaw, pitch, hd = self._angles_to(i, j, float(self.aim_height[i]))
            err = math.hypot((self.aim.yaw[i] - yaw + 180.0) % 360.0 - 180.0, self.aim.pitch[i] - pitch)
            tol = params.fire_tol * target_width_deg(PLAYER_RADIUS_M, hd) / 2.0
            if err > tol and (t - self.settle_at[i] < 700.0 or err > 2.5 * tol):
                continue
            ts = min(max(ready_at, float(self.next_fire[i]), t_prev + 1.0), t)
            self._shoot(i, j, ts)
            if self.burst[i] >= _BURST_MAX + int(self.local[i]) % 3:
                self.burst[i] = 0
                self.next_fire[i] = ts + _BURST_PAUSE_MS * (0.8 + 0.4 * self._rng(i).random())

    def _crosshair_on(self, i: int, j: int) -> bool:
        p = self.bodies.pos
        return hit_test(tuple(p[i]), float(self.aim.yaw[i]), float(self.aim.pitch[i]),
                        tuple(p[j])) is not None

    def _trigger(self, i: int, t: float, vis: BoolArray, prof: CheatProfile) -> None:
        """The triggerbot clicks when the crosshair meets an enemy.

        Blatant: that very tick, and only while on target. Subtle: a fixed
        delay later, wherever the crosshair has gone by then (the click was
        scheduled), which hides the perfect hit rate a little.
        """
        delay = prof.params["delay_ms"]
        if delay > 0.0 and self.trig_since[i] >= 0.0:
            fire_at = self.trig_since[i] + delay
            if fire_at <= t:
                self.trig_since[i] = -1.0
                j = int(self.trig_target[i])
                if self.alive[j] and vis[i, j]:
                    self._shoot(i, j, min(max(fire_at, t - self.dt_ms + 1.0), t))
            return
        on_target = -1
        for j in np.nonzero(vis[i])[0].tolist():
            if self.alive[j] and self._crosshair_on(i, j):
                on_target = j
                break
        if on_target < 0:
            return
        if delay <= 0.0:
            self._shoot(i, on_target, max(float(self.next_fire[i]), t - self.dt_ms + 1.0))
        else:
            self.trig_since[i] = t
            self.trig_target[i] = on_target

    def _shoot(self, i: int, j: int, ts: float) -> None:
        prof = self.profiles[i]
        weapon = WEAPONS[prof.primary]
        b, a = self.bodies, self.aim
        yaw, pitch = float(a.yaw[i]), float(a.pitch[i])
        speed = math.hypot(b.vel[i, 0], b.vel[i, 1])
        sd = spread_sd_deg(weapon, speed_frac=min(speed / MAX_SPEED_MPS, 1.0),
                           airborne=bool(b.pos[i, 2] > 0.0), burst=int(self.burst[i]))
        dy, dp = self._rng(i).normal(0.0, sd, 2)
        self.burst[i] += 1
        self.next_fire[i] = ts + weapon.interval_ms
        shooter, victim = prof.player, self.profiles[j].player
        self._emit(i, "shot", ts, player=shooter, weapon=weapon.name, yaw=yaw, pitch=pitch,
                   target=victim, visible=True, x=float(b.pos[i, 0]), y=float(b.pos[i, 1]),
                   z=float(b.pos[i, 2]))
        where = hit_test(tuple(b.pos[i]), yaw + dy, pitch + dp, tuple(b.pos[j]))
        if where is None:
            return
        head = where == "head"
        damage = weapon.head_damage if head else weapon.body_damage
        distance = float(np.hypot(*(b.pos[j, :2] - b.pos[i, :2])))
        self._emit(i, "hit", ts, player=shooter, target=victim, weapon=weapon.name,
                   damage=damage, headshot=head, distance=distance)
        self.health[j] -= damage
        if self.health[j] <= 0.0:
            self._emit(i, "kill", ts, player=shooter, target=victim, weapon=weapon.name,
                       headshot=head, distance=distance)
            self.alive[j] = False
            self.respawn_at[j] = ts + RESPAWN_MS
            self._disengage(j)
            self.kills[int(self.pm[i])][int(self.team[i]) % 2] += 1
            self._disengage(i)
