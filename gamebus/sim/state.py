"""The state of every player of the matches an engine steps, and shared helpers.

Per-player quantities are numpy arrays over the players of all the matches
of a batch (``pm`` maps a player to its match); per-match things (the
generator, the map, the event list) are reached through ``pm``. Besides the
state, this layer has the helpers both others need (draws from each match's
own generator, wall tests on each match's map, geometry, routing to a goal):
:mod:`gamebus.sim.combat` decides and shoots on top of it, and
:mod:`gamebus.sim.engine` runs the ticks.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from gamebus.sim.arrays import BoolArray, FloatArray, IntArray
from gamebus.sim.cheats import CheaterLabel, CheatProfile
from gamebus.sim.engagement import (
    IDLE,
    AimArrays,
    AimParams,
)
from gamebus.sim.movement import Bodies, Controls
from gamebus.sim.navigation import NavGrid, nav_grid
from gamebus.sim.profiles import PlayerProfile
from gamebus.sim.world import (
    CHEST_HEIGHT_M,
    EYE_HEIGHT_M,
    WEAPON_MAX_SPEED_MPS,
    GameMap,
    get_map,
)

__all__ = [
    "RESPAWN_MS",
    "START_HEALTH",
    "Event",
    "MatchSetup",
    "PlayerState",
    "human_params",
    "tick_ms",
]

Event = dict[str, Any]

RESPAWN_MS: Final = 2500.0
START_HEALTH: Final = 100.0
#: How late a client's movement commands reach the server, sd in ms: a base
#: plus a share of the ping (a longer route jitters more), so a player at
#: 40 ms ping is 0-18 ms late each tick (its per-tick speed spreads by about
#: 10%) and one at 200 ms twice that. See
#: :meth:`~gamebus.sim.engine.Engine._positions`.
COMMAND_JITTER_BASE_MS: Final = 2.0
COMMAND_JITTER_PER_PING: Final = 0.1
#: Longest visuomotor delay the position trail covers (ms); see ``_seen_positions``.
MAX_TRACK_DELAY_MS: Final = 400.0


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
        command_jitter: bool = True,
    ) -> None:
        self.seed, self.match_id, self.rng = seed, match_id, rng
        self.command_jitter = command_jitter
        self.map_name = map_name
        self.map: GameMap = get_map(map_name)
        self.nav: NavGrid = nav_grid(map_name)
        self.profiles = profiles
        self.cheat = cheat
        self.labels = [label for _, label in cheat.values()]
        self.start_ts_ms, self.end_ts_ms = start_ts_ms, end_ts_ms
        self.n = len(profiles)


def human_params(p: PlayerProfile) -> AimParams:
    return AimParams(
        rt_mu_ms=p.rt_mu_ms, rt_sigma_ms=p.rt_sigma_ms, rt_tau_ms=p.rt_tau_ms,
        rt_shift_ms=0.0, fitts_a_ms=p.fitts_a_ms, fitts_b_ms=p.fitts_b_ms,
        overshoot=p.overshoot, scatter=p.scatter, track_sd_deg=p.track_sd_deg,
        head_pref=p.head_pref, fire_tol=p.fire_tol, decide_ms=p.decide_ms,
    )


class PlayerState:
    """Arrays of per-player state over all the matches of a batch, and helpers."""

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
        self.health = np.full(n, START_HEALTH)
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
        jitter_on = np.concatenate([np.full(m.n, float(m.command_jitter)) for m in matches])
        self.command_jitter_ms = jitter_on * (COMMAND_JITTER_BASE_MS + COMMAND_JITTER_PER_PING * self.ping_ms)
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
        self.boost = np.ones(n)  # a subtle speedhack's current speed-up (wanders, see cheats)
        self.params: list[AimParams] = [human_params(p) for p in self.profiles]
        self.track_delay_ms = np.minimum([p.track_delay_ms for p in self.profiles], MAX_TRACK_DELAY_MS)
        self.bot_pull = np.zeros(n)  # of the engagement being tracked (AimParams.bot_pull)
        # The last ticks' positions and velocities (a ring; ``_trail_ticks``
        # counts the pushes): what a hand tracking a target a visuomotor
        # delay late is looking at.
        self._trail_len = math.ceil(MAX_TRACK_DELAY_MS / self.dt_ms) + 2
        self._trail_pos = np.zeros((self._trail_len, n, 3))
        self._trail_vel = np.zeros((self._trail_len, n, 3))
        self._trail_ticks = 0
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

    def _angles_to(self, i: int, j: int, height: float) -> tuple[float, float, float]:
        p = self.bodies.pos
        dx, dy = p[j, 0] - p[i, 0], p[j, 1] - p[i, 1]
        dz = p[j, 2] + height - p[i, 2] - EYE_HEIGHT_M
        hd = math.hypot(dx, dy)
        return math.degrees(math.atan2(dy, dx)), math.degrees(math.atan2(dz, hd)), hd

    def _remember_bodies(self) -> None:
        """Push this tick's positions and velocities onto the trail (after moving)."""
        slot = self._trail_ticks % self._trail_len
        self._trail_pos[slot] = self.bodies.pos
        self._trail_vel[slot] = self.bodies.vel
        self._trail_ticks += 1

    def _seen_positions(self, tj: IntArray) -> FloatArray:
        """Where each player's hand sees its target ``tj``: a visuomotor delay late.

        Tracking a moving target, a person's hand answers what the eyes saw
        100-200 ms ago, extrapolated along the motion seen then: a target
        keeping its course is followed without lag, one that turns (a
        strafe reversed) is followed late until the delay has passed. A
        bot reads where the target is now; a humanised aimbot's share of
        the tracking (``bot_pull``) comes from there, the hand's from the
        delayed view. Player ``i``'s own motion is not delayed (the body
        knows where it moves).
        """
        now = self.bodies.pos[tj]
        if self._trail_ticks < self._trail_len:
            return now
        ago = self.track_delay_ms / self.dt_ms  # in ticks, per shooter
        older = np.floor(ago).astype(np.int64) + 1  # ticks ago of the sample before
        w = (ago - (older - 1))[:, None]  # weight of that older sample
        newest = self._trail_ticks - 1
        a, b = (newest - older) % self._trail_len, (newest - older + 1) % self._trail_len
        pos = self._trail_pos[a, tj] * w + self._trail_pos[b, tj] * (1.0 - w)
        vel = self._trail_vel[a, tj] * w + self._trail_vel[b, tj] * (1.0 - w)
        seen = pos + vel * (self.track_delay_ms / 1000.0)[:, None]
        pull = self.bot_pull[:, None]
        out: FloatArray = seen * (1.0 - pull) + now * pull
        return out

    def _target_angles(self) -> tuple[FloatArray, FloatArray]:
        """Direction to each player's aim point on its target, as its hand sees it."""
        p = self.bodies.pos
        has = (self.target >= 0) & self.alive
        tj = np.where(has, self.target, 0)
        q = self._seen_positions(tj)
        dx, dy = q[:, 0] - p[:, 0], q[:, 1] - p[:, 1]
        dz = q[:, 2] + self.aim_height - p[:, 2] - EYE_HEIGHT_M
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

