"""Aim decisions and shooting: who engages whom, flicks, tracking, the trigger.

Plain Python per player, called only for players with something to decide
this tick (the engine selects them with array masks). See
:mod:`gamebus.sim.engagement` for the aim modes and :mod:`gamebus.sim.aim`
for the motor models behind each flick.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from gamebus.sim.aim import ex_gaussian_ms, plan_flick, target_width_deg
from gamebus.sim.arrays import BoolArray
from gamebus.sim.cheats import CheatProfile
from gamebus.sim.engagement import CORRECT, FLICK, IDLE, REACT, TRACK, AimParams
from gamebus.sim.state import RESPAWN_MS, PlayerState
from gamebus.sim.weapons import WEAPONS, hit_test, spread_sd_deg
from gamebus.sim.world import CHEST_HEIGHT_M, HEAD_HEIGHT_M, MAX_SPEED_MPS, PLAYER_RADIUS_M

__all__ = ["Combat", "bot_params"]

_LOST_MS: Final = 900.0  # a target out of sight this long is given up
_FOV_HALF_DEG: Final = 60.0  # humans notice enemies inside this half-angle
_NEAR_M: Final = 6.0  # ... or this close (footsteps)
_SOUND_RATE_HZ: Final = 0.8  # ... or, behind them, at this rate
_SPOT_M: Final = 30.0  # an enemy in view nearer than this is noticed at once
_SPOT_RATE_HZ: Final = 20.0  # ... farther, at this rate, fading with distance
_SPOT_FADE_M: Final = 12.0
_BURST_MAX: Final = 5  # shots in a burst before a pause to let the spread recover
_BURST_PAUSE_MS: Final = 300.0

def bot_params(h: AimParams, prof: CheatProfile) -> AimParams:
    q = prof.params
    if prof.kind == "snap_aimbot":
        return AimParams(
            rt_mu_ms=0.0, rt_sigma_ms=0.0, rt_tau_ms=0.0, rt_shift_ms=0.0,
            fitts_a_ms=0.0, fitts_b_ms=0.0, overshoot=0.0, scatter=0.0,
            track_sd_deg=q["track_sd_deg"], head_pref=q["head_share"],
            fire_tol=1.0, decide_ms=0.0, snap=True, bot_pull=1.0,
        )
    return AimParams(
        rt_mu_ms=h.rt_mu_ms, rt_sigma_ms=h.rt_sigma_ms, rt_tau_ms=h.rt_tau_ms,
        rt_shift_ms=q["rt_shift_ms"], fitts_a_ms=h.fitts_a_ms * 0.9,
        fitts_b_ms=h.fitts_b_ms * q["b_scale"], overshoot=h.overshoot * q["overshoot_scale"],
        scatter=h.scatter * q["scatter_scale"], track_sd_deg=h.track_sd_deg * q["track_scale"],
        head_pref=min(0.95, h.head_pref + q["head_bonus"]), fire_tol=h.fire_tol,
        decide_ms=h.decide_ms * (0.5 + 0.5 * q["b_scale"]),
        # The bot steers toward where the target is (it reads the game's
        # memory, not the screen), the hand does the rest: the same share
        # that scales the tracking error.
        bot_pull=1.0 - q["track_scale"],
    )


class Combat(PlayerState):
    """Decisions and shots on top of the player state."""

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
            params = bot_params(params, cheat[0])
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
            self.engaged_params[i] = bot_params(self.params[i], cheat[0])

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
        self.bot_pull[i] = params.bot_pull
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
