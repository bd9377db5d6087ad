"""Online features of each player's stream, one event at a time.

:class:`MatchFeatures` holds the state of one match and routes every event
to the :class:`PlayerState` of its player with :meth:`MatchFeatures.update`;
:meth:`MatchFeatures.vector` returns the player's feature vector as a plain
``dict[str, float]`` whose keys are exactly :data:`FEATURE_NAMES`, the schema
a model is trained on and refuses to load without. A value is NaN while
there is not enough data to measure it (no shot yet, say): the model treats
missing as its own case instead of guessing a number.

Why these features. Cheats break one of three things, and each group of
features measures one against what the game allows (:mod:`anticheat.physics`)
or against the population:

- movement (speedhack, teleport, fly): horizontal speed against the cap of
  the weapon held, acceleration, displacement a tick cannot explain, time
  and height in the air against a jump, position rate against the match's
  tick cadence (timer hacks send more ticks than the server clock allows);
- aim (aimbots): angular speed, acceleration and jerk of the view, snaps that
  stop dead (a human flick decelerates over several ticks), angular error at
  the shot, reaction time from the moment the target became visible (the
  game's own line-of-sight test), how long the crosshair rested on the
  target before the shot (a triggerbot fires on contact), and how closely
  and how late it follows a target between shots (a hand answers a
  target's turns a visuomotor delay late, :mod:`anticheat.tracking_lag`;
  a bot steering from the game's memory does not);
- outcomes: accuracy and headshot ratio shrunk toward the population by
  empirical Bayes (a newcomer with 3 hits out of 4 shots is not a cheater),
  time-to-kill and the regularity of inter-shot intervals.

The parts, each in its own module: :mod:`anticheat.schema` (the vector's
names, the tunables, the revision a model checks), :mod:`anticheat.player_state`
(one player's running evidence and its vector), :mod:`anticheat.shot_reading`
(what one shot shows against its target), :mod:`anticheat.shot_evidence`
(the per-shot likelihood ratios the CUSUMs sum) and
:mod:`anticheat.tracking_lag`. This module routes a match's events to them.

Pure and synchronous: no clock (time is the events' ``ts``), no I/O. Events
must arrive in ``ts`` order per match (the consumer's reorder buffer sees to
that); a late event is dropped from the derivatives rather than corrupting them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from anticheat.physics import map_for
from anticheat.player_state import PlayerState, Sample, ShotReading, event_number, shrink
from anticheat.schema import FEATURE_NAMES, FEATURES_REVISION, FeatureConfig, feature_recipe
from anticheat.shot_evidence import STEP_KINDS, StepModel, packaged_step_model, shot_row
from anticheat.shot_reading import nearest_in_view, read_shot
from anticheat.stats import NAN
from gamebus.sim.world import GameMap

__all__ = [
    "FEATURES_REVISION",
    "FEATURE_NAMES",
    "FeatureConfig",
    "MatchFeatures",
    "PlayerState",
    "Sample",
    "ShotReading",
    "Window",
    "feature_recipe",
    "shrink",
]

class Window:
    """One sliding window of a match: fresh per-player states for ``[start, end)``.

    A window's players start from nothing at ``start``, so its vector reads
    only what happened inside it: a closet cheater's toggled-on stretch
    fills a window as a full-time cheater's play does, instead of being
    diluted by the rest of the match.
    """

    __slots__ = ("end", "players", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.players: dict[str, PlayerState] = {}

    def state(self, base: PlayerState) -> PlayerState:
        st = self.players.get(base.player)
        if st is None:
            st = self.players[base.player] = PlayerState(base.player, base.config)
            st.team, st.weapon, st.ping_ms = base.team, base.weapon, base.ping_ms
        return st


class MatchFeatures:
    """The features of every player of one match, fed in ``ts`` order.

    Besides the match-long state of each player (:attr:`players`) it keeps
    sliding windows (:class:`Window`, ``window_ms`` long, one starting every
    ``window_step_ms``): every event of a player goes to the match-long
    state and to the states of the windows its ``ts`` falls in. A window is
    complete once an event at or past its end arrives;
    :meth:`take_windows` hands complete windows over (once) for scoring.
    """

    def __init__(self, match: str, config: FeatureConfig | None = None, *,
                 keep_readings: bool = False,
                 step_models: Mapping[str, StepModel] | None = None) -> None:
        self.match = match
        self.config = config or FeatureConfig()
        self.players: dict[str, PlayerState] = {}
        self.map_name: str | None = None
        self.game_map: GameMap | None = None
        self.last_ts = 0
        self.last_pos_ts = -1
        # Shots wait for the positions of their tick: the game server sends a
        # shot before the tick's positions, and the hit test it ran used them.
        self.pending: list[tuple[PlayerState, str | None, Sample]] = []
        self.windows: list[Window] = []
        self.next_window_ts: int | None = None
        #: With ``keep_readings``, every analysed shot as ``(player, tick, reading,
        #: ping, weapon)``: what :mod:`anticheat.step_fit` refits the per-shot
        #: models on. Off in the service, where nothing would read it.
        self.readings: list[tuple[str, int, ShotReading, float, str | None]] | None = (
            [] if keep_readings else None)
        #: Weigh each shot for the aim and trigger CUSUMs (default: the models
        #: shipped with gamebus).
        models = dict(step_models or {})
        self.step_models: dict[str, StepModel] = {
            kind: models.get(kind) or packaged_step_model(kind) for kind in STEP_KINDS}

    def player(self, player: str) -> PlayerState:
        state = self.players.get(player)
        if state is None:
            state = self.players[player] = PlayerState(player, self.config)
        return state

    # --- windows ----------------------------------------------------------

    def _roll(self, ts: int) -> None:
        cfg = self.config
        if cfg.window_ms <= 0 or cfg.window_step_ms <= 0:
            return
        if self.next_window_ts is None:
            self.next_window_ts = ts
        while ts >= self.next_window_ts:
            self.windows.append(Window(self.next_window_ts, self.next_window_ts + cfg.window_ms))
            self.next_window_ts += cfg.window_step_ms
        # Complete windows nobody took (no scorer attached) are not kept forever.
        stale = ts - 2 * cfg.window_ms
        if self.windows and self.windows[0].end < stale:
            self.windows = [w for w in self.windows if w.end >= stale]

    def _views(self, state: PlayerState, ts: int) -> list[PlayerState]:
        """The match-long state and the window states an event at ``ts`` belongs to."""
        views = [state]
        for w in self.windows:
            if w.start <= ts < w.end:
                views.append(w.state(state))
        return views

    def take_windows(self) -> list[Window]:
        """Complete windows not handed over yet (each is handed over once)."""
        self.settle(self.last_pos_ts)
        done = [w for w in self.windows if w.end <= self.last_ts]
        if done:
            self.windows = [w for w in self.windows if w.end > self.last_ts]
        return done

    def window_vectors(self, window: Window, *, min_alive_ms: int) -> dict[str, dict[str, float]]:
        """Vectors of the players of ``window`` with at least ``min_alive_ms`` of play in it."""
        step = self.median_step_ms()
        return {name: st.vector(median_step_ms=step) for name, st in window.players.items()
                if st.alive_ms >= min_alive_ms}

    # --- events -----------------------------------------------------------

    def update(self, event: Mapping[str, Any]) -> None:
        """Fold one decoded, validated event into the state."""
        etype = event.get("type")
        ts = int(event.get("ts", 0))
        self.last_ts = max(self.last_ts, ts)
        if self.pending and ts > self.last_pos_ts:
            self.settle(self.last_pos_ts)
        self._roll(ts)
        if etype == "round_start" or etype == "match_end":
            if isinstance(event.get("map"), str):
                self.map_name = event["map"]
                self.game_map = map_for(self.map_name)
            if etype == "round_start":
                grace = ts + self.config.spawn_grace_ms
                for state in self.players.values():
                    state.grace_until = grace
                for w in self.windows:
                    for state in w.players.values():
                        state.grace_until = grace
            return
        player = event.get("player")
        if not isinstance(player, str):
            return
        state = self.player(player)
        if etype == "pos":
            self.last_pos_ts = max(self.last_pos_ts, ts)
            ping = event.get("ping")
            ping_ms = float(ping) if isinstance(ping, int) and not isinstance(ping, bool) else None
            # The weapon in hand, when the server says: the features judge
            # speed against the weapon the player fights with, so a knife
            # run (any player may) does not change it.
            weapon = event.get("weapon")
            weapon = weapon if isinstance(weapon, str) and weapon != "knife" else None
            sample = Sample(ts, float(event["x"]), float(event["y"]), float(event["z"]),
                            float(event["yaw"]), float(event["pitch"]),
                            event_number(event, "vx"), event_number(event, "vy"), event_number(event, "vz"))
            for st in self._views(state, ts):
                if ping_ms is not None:
                    st.ping_ms = ping_ms
                if weapon is not None:
                    st.weapon = weapon
                st.position(sample)
        elif etype == "spawn":
            team = event.get("team")
            for st in self._views(state, ts):
                if isinstance(team, str):
                    st.team = team
                st.spawn(ts, event)
        elif etype == "join":
            if isinstance(event.get("team"), str):
                state.team = event["team"]
            ping = event.get("ping")
            if isinstance(ping, int) and not isinstance(ping, bool):
                state.ping_ms = float(ping)
        elif etype == "shot":
            self._shot(state, ts, event)
        elif etype == "hit":
            for st in self._views(state, ts):
                st.hits += 1
                st.headshots += int(bool(event.get("headshot")))
        elif etype == "kill":
            target = event.get("target")
            if isinstance(target, str):
                for st in self._views(state, ts):
                    st.killed(target, ts, bool(event.get("headshot")))
                victim = self.players.get(target)
                if victim is not None:
                    for st in self._views(victim, ts):
                        st.engagements.clear()

    def _shot(self, state: PlayerState, ts: int, event: Mapping[str, Any]) -> None:
        weapon = event.get("weapon")
        target = event.get("target")
        for st in self._views(state, ts):
            st.shot(ts, weapon if isinstance(weapon, str) else None)
            if isinstance(target, str):
                st.engage(target, ts)  # at once: a kill in the same tick ends the engagement
        here = state.history[-1] if state.history else None
        x, y, z = event_number(event, "x"), event_number(event, "y"), event_number(event, "z")
        if math.isnan(x + y + z):
            if here is None:
                return
            x, y, z = here.x, here.y, here.z
        yaw, pitch = float(event["yaw"]), float(event["pitch"])
        self.pending.append((state, target if isinstance(target, str) else None,
                             Sample(ts, x, y, z, yaw, pitch)))

    def settle(self, upto_ts: float = math.inf) -> None:
        """Analyse the pending shots whose tick's positions have all arrived.

        Each step model weighs the shots a call settles in one pass (see
        :class:`~anticheat.shot_evidence.StepModel`); each shot's steps are
        folded into the match-long state and every window's, which share
        the player's ping and weapon.
        """
        keep, ready = [], []
        for state, target, shot in self.pending:
            if shot.ts > upto_ts:
                keep.append((state, target, shot))
                continue
            reading, target_state = self._read_shot(state, target, shot)
            if reading is None or target_state is None:
                continue
            ready.append((state, target, shot, reading, target_state, state.last_aimed))
        self.pending = keep
        if not ready:
            return
        rows = [shot_row(reading, state.ping_ms, state.weapon) for state, _, _, reading, _, _ in ready]
        kinds = list(self.step_models)
        by_kind = [self.step_models[kind].steps(rows) for kind in kinds]
        for (state, target, shot, reading, target_state, aimed), *steps in zip(ready, *by_kind, strict=True):
            # Reading a shot moves the shooter's last aimed tick, which the
            # CUSUMs' climbs are dated by: as of this shot, not the batch's last.
            state.last_aimed = aimed
            if self.readings is not None:
                self.readings.append((state.player, shot.ts, reading, state.ping_ms, state.weapon))
            for st in self._views(state, shot.ts):
                if target is None:
                    st.engage(target_state.player, shot.ts)
                st.settled(reading, dict(zip(kinds, steps, strict=True)))

    def _read_shot(self, state: PlayerState, target: str | None,
                   shot: Sample) -> tuple[ShotReading | None, PlayerState | None]:
        target_state = self.players.get(target) if target is not None else None
        if target_state is None:
            target_state = nearest_in_view(shot, self._enemies(state), self.config.limits)
        if target_state is None or not target_state.history:
            return None, None
        reading = read_shot(state, target_state, shot, config=self.config, game_map=self.game_map)
        return reading, target_state

    def _enemies(self, state: PlayerState) -> list[PlayerState]:
        return [
            p for p in self.players.values()
            if p is not state and p.history and (state.team is None or p.team != state.team)
        ]

    # --- vectors ----------------------------------------------------------

    def median_step_ms(self) -> float:
        """The match's tick cadence: median of the players' median steps."""
        steps = sorted(
            p.steps.quantile(0.5) for p in self.players.values() if p.steps.count >= 20
        )
        return steps[len(steps) // 2] if steps else NAN

    def vector(self, player: str) -> dict[str, float]:
        self.settle(self.last_pos_ts)
        return self.player(player).vector(median_step_ms=self.median_step_ms())

    def vectors(self) -> dict[str, dict[str, float]]:
        self.settle(self.last_pos_ts)
        step = self.median_step_ms()
        return {name: p.vector(median_step_ms=step) for name, p in self.players.items()}
