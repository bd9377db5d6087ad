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

from gamebus.sim.arrays import BoolArray
from gamebus.sim.cheats import subtle_boost
from gamebus.sim.combat import Combat
from gamebus.sim.engagement import IDLE, REACT, TRACK, AimNoise, evaluate_aim
from gamebus.sim.movement import step_bodies
from gamebus.sim.state import (
    RESPAWN_MS,
    START_HEALTH,
    Event,
    MatchSetup,
    tick_ms,
)
from gamebus.sim.world import (
    GRAVITY_MPS2,
    MAX_ACCEL_MPS2,
    MAX_SPEED_MPS,
    WEAPON_MAX_SPEED_MPS,
    line_of_sight_many,
)

__all__ = ["RESPAWN_MS", "Engine", "MatchSetup", "tick_ms"]

_STRAFE_FLIP_HZ: Final = 1.5  # how often a fighting player changes strafe direction


class Engine(Combat):
    """Plays ``matches`` together, tick by tick (see the module docstring)."""

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
        self.health[i] = START_HEALTH
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
        # The server moves a player by the movement commands that reached it
        # this tick, and commands arrive with jitter: the published position
        # is where the client was a few ms ago, by a lateness that changes
        # every tick, so the distance covered in one tick is never exactly
        # speed x tick. The view is the last command's absolute angles and
        # is not integrated, so it is published as is.
        late = np.minimum(np.abs(match.rng.normal(0.0, 1.0, match.n)), 3.0)
        late_ms = late[idx - lo] * self.command_jitter_ms[idx]
        v = self.bodies.vel[idx]
        p = self.bodies.pos[idx] - v * (late_ms / 1000.0)[:, None]
        p[:, 2] = np.maximum(p[:, 2], 0.0)
        ping = np.maximum(1, np.round(self.ping_ms[idx] * (1 + 0.06 * jitter) + jitter)).astype(int)
        ts, mid = round(match.start_ts_ms + t), match.match_id
        names = [self.profiles[i].player for i in idx.tolist()]
        # The weapon in hand: the server knows it, and it sets how fast the
        # player may run (a knife run is faster than a sniper's).
        held = ["knife" if self.knife[i] else self.profiles[i].primary for i in idx.tolist()]
        return [
            {"type": "pos", "match": mid, "ts": ts, "player": name, "x": x, "y": y, "z": z,
             "yaw": yw, "pitch": pt, "vx": vx, "vy": vy, "vz": vz, "ping": pg, "weapon": wp}
            for name, x, y, z, yw, pt, vx, vy, vz, pg, wp in zip(
                names, p[:, 0].tolist(), p[:, 1].tolist(), p[:, 2].tolist(),
                self.aim.yaw[idx].tolist(), self.aim.pitch[idx].tolist(),
                v[:, 0].tolist(), v[:, 1].tolist(), v[:, 2].tolist(), ping.tolist(), held,
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
        self._remember_bodies()
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
        # Strafing, no waypoint; not while still reacting: the body answers an
        # enemy no sooner than the view does, so nothing moves toward the
        # target before the reaction time is up.
        fighting = (self.target >= 0) & (self.lost_since < 0) & (self.aim.mode != REACT)
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
                if prof.intensity == "subtle":
                    f = self.boost[i] = subtle_boost(self._rng(i), float(self.boost[i]), q, self.dt_s)
                    ctl.factor[i] = f
                    ctl.ceiling[i] = MAX_SPEED_MPS
                    # Headroom for the speed-up's own drift, so the seen
                    # acceleration stays within the honest bound.
                    ctl.accel[i] = 0.85 * MAX_ACCEL_MPS2 / f
                else:
                    ctl.factor[i] = q["factor"]
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

