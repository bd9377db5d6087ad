"""One simulated match: who plays, who cheats, and the recording it makes.

:class:`MatchSimulator` draws a match from its seed (map, players, cheaters
and their labels) and plays it as a generator of ticks ``(ts_ms, events)``:
the match events of the tick (with their own sub-tick timestamps) followed
by one ``pos`` per alive player at the tick's timestamp, so the stream is
ordered by ``ts``. :func:`simulate_match` collects a whole match;
:func:`play_together` steps several at once (much faster, same results);
the real-time publisher walks the ticks itself. The tick loop lives in
:mod:`gamebus.sim.engine`.

Everything random comes from one ``numpy.random.Generator`` seeded by the
``seed`` argument (and, for a roster's form on the day, a second one seeded
by ``[seed, 2]``), so a seed always gives the same match; nothing here
reads the clock or the network.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from gamebus.errors import ConfigError
from gamebus.sim.accounts import Account, match_form
from gamebus.sim.cheats import (
    CLOSET_SHARE,
    CheaterLabel,
    CheatProfile,
    Intensity,
    cheat_choice,
    sample_cheat,
    sample_on_intervals,
)
from gamebus.sim.engine import RESPAWN_MS, Engine, MatchSetup, tick_ms
from gamebus.sim.profiles import TEAMS, PlayerProfile, sample_profiles
from gamebus.sim.world import MAP_NAMES, get_map

__all__ = [
    "DEFAULT_DURATION_S",
    "DEFAULT_ROUND_S",
    "DEFAULT_START_TS_MS",
    "RESPAWN_MS",
    "MatchRecording",
    "MatchSimulator",
    "play_together",
    "simulate_match",
    "ticks_together",
]

#: 60 simulated seconds: long enough for ~10 engagements per player, short
#: enough that 1,000 training matches take a few minutes.
DEFAULT_DURATION_S: Final = 60.0
DEFAULT_ROUND_S: Final = 30.0
#: 2026-01-01T00:00:00Z: a fixed clock so recordings are reproducible.
DEFAULT_START_TS_MS: Final = 1_767_225_600_000


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
    ``closet_share`` is the share of cheaters who only cheat part-time;
    ``command_jitter`` publishes positions as the server's late copy of
    them (see :data:`~gamebus.sim.state.COMMAND_JITTER_BASE_MS`), off only
    for tests of the exact physics.
    ``roster`` plays a lobby of persistent accounts
    (:mod:`gamebus.sim.accounts`): players, their skill and their cheats
    come from the accounts (``players``, ``cheaters``, ``cheat_kinds``,
    ``intensity`` and ``closet_share`` are then unused); the seed draws the
    map, the teams and a closet cheater's on-intervals for this match.
    With ``form`` (the default) each account plays as it is on the day
    (:func:`~gamebus.sim.accounts.match_form`, drawn in lobby order from a
    generator seeded by ``[seed, 2]``, apart from the match's own): the
    recorded profiles are the ones played. ``form=False`` plays every
    account's exact profile. Without a roster ``form`` is unused.
    Everything about the match except its play (map, players, cheaters,
    labels) is drawn here, before the first tick.
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
        command_jitter: bool = True,
        roster: Sequence[Account] | None = None,
        form: bool = True,
    ) -> None:
        if roster is not None:
            players = len(roster)
        if players < 2:
            raise ConfigError("a match needs at least 2 players")
        if not 1 <= tick_hz <= 128:
            raise ConfigError(f"tick_hz must be within 1..128, got {tick_hz}")
        if duration_s <= 0 or round_s <= 0:
            raise ConfigError("duration_s and round_s must be positive")
        kinds = cheat_choice(cheat_kinds, intensity)
        if map_name is not None:
            get_map(map_name)
        self.seed, self.match_id = seed, match_id
        rng = np.random.default_rng(seed)
        self.tick_hz = tick_hz
        self.round_ms = round_s * 1000.0
        self.start_ts_ms = start_ts_ms
        self.n_ticks = max(1, round(duration_s * 1000 / tick_ms(tick_hz)))
        self.end_ts_ms = start_ts_ms + self.n_ticks * tick_ms(tick_hz)
        self.map_name = map_name or str(rng.choice(MAP_NAMES))
        cheat: dict[int, tuple[CheatProfile, CheaterLabel]] = {}

        def add(idx: int, prof: CheatProfile, closet: bool) -> None:
            intervals = sample_on_intervals(
                rng, start_ms=start_ts_ms, end_ms=self.end_ts_ms, closet=closet
            )
            label = CheaterLabel(
                match=match_id, player=self.profiles[idx].player, kind=prof.kind,
                intensity=prof.intensity, on_intervals=intervals, closet=closet,
                params=dict(prof.params),
            )
            cheat[idx] = (prof, label)

        if roster is not None:
            lobby = sorted(roster, key=lambda a: a.name)
            if len({a.name for a in lobby}) != len(lobby):
                raise ConfigError("an account appears twice in the roster")
            side = rng.permutation(players)
            self.profiles = [replace(a.profile, team=TEAMS[int(side[i]) % 2])
                             for i, a in enumerate(lobby)]
            if form:
                day = np.random.default_rng([seed, 2])
                self.profiles = [match_form(day, p) for p in self.profiles]
            for idx, a in enumerate(lobby):
                if a.cheat is not None:
                    add(idx, a.cheat, a.closet)
        else:
            self.profiles = sample_profiles(rng, players)
            count = _cheater_count(players, cheaters)
            chosen = rng.choice(players, size=count, replace=False) if count else np.array([], int)
            for idx in sorted(int(i) for i in chosen):
                kind = str(rng.choice(kinds))
                inten: Intensity = intensity or ("blatant" if rng.random() < 0.5 else "subtle")
                prof = sample_cheat(rng, kind, inten)
                add(idx, prof, bool(rng.random() < closet_share))
        self.labels = [lab for _, lab in cheat.values()]
        self.setup = MatchSetup(
            seed=seed, match_id=match_id, rng=rng, map_name=self.map_name,
            profiles=self.profiles, cheat=cheat, start_ts_ms=start_ts_ms, end_ts_ms=self.end_ts_ms,
            command_jitter=command_jitter,
        )
        self._played = False

    @property
    def grid(self) -> tuple[int, int, float]:
        """``(tick_hz, n_ticks, round_ms)``: matches sharing it can be stepped together."""
        return self.tick_hz, self.n_ticks, self.round_ms

    def _take_setup(self) -> MatchSetup:
        if self._played:
            raise ConfigError(f"match {self.match_id} was already played; make a new simulator")
        self._played = True
        return self.setup

    def ticks(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Play the match, yielding ``(ts_ms, events)`` once per tick (once only)."""
        engine = Engine([self._take_setup()], tick_hz=self.tick_hz, n_ticks=self.n_ticks,
                        round_ms=self.round_ms)
        for per_match in engine.ticks():
            yield per_match[0]

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event of the match in ``ts`` order."""
        for _, evs in self.ticks():
            yield from evs

    def recording(self, events: list[dict[str, Any]]) -> MatchRecording:
        """A :class:`MatchRecording` of this match holding ``events``."""
        return MatchRecording(
            match=self.match_id, seed=self.seed, map=self.map_name, start_ts_ms=self.start_ts_ms,
            end_ts_ms=self.end_ts_ms, events=events, labels=self.labels, players=self.profiles,
        )

    def side_record(self) -> dict[str, Any]:
        """The labels-file record of this match (known before it is played)."""
        return self.recording([]).side_record()


def ticks_together(sims: Sequence[MatchSimulator]) -> Iterator[list[tuple[int, list[dict[str, Any]]]]]:
    """Step several matches as one batch; per tick, ``(ts_ms, events)`` of each match.

    The matches must share tick rate, duration and round length. Each keeps
    its own generator, players and map, so the events are exactly those of
    the matches played one by one, for a fraction of the cost.
    """
    if not sims:
        return
    grids = {s.grid for s in sims}
    if len(grids) != 1:
        raise ConfigError("matches played together need the same tick_hz, duration_s and round_s")
    tick_hz, n_ticks, round_ms = grids.pop()
    engine = Engine([s._take_setup() for s in sims], tick_hz=tick_hz, n_ticks=n_ticks,
                    round_ms=round_ms)
    yield from engine.ticks()


def play_together(sims: Sequence[MatchSimulator]) -> list[MatchRecording]:
    """Play several matches as one batch (see :func:`ticks_together`) and record them."""
    events: list[list[dict[str, Any]]] = [[] for _ in sims]
    for per_match in ticks_together(sims):
        for k, (_, evs) in enumerate(per_match):
            events[k].extend(evs)
    return [s.recording(evs) for s, evs in zip(sims, events, strict=True)]


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
    command_jitter: bool = True,
    roster: Sequence[Account] | None = None,
    form: bool = True,
) -> MatchRecording:
    """Simulate one whole match; the same arguments always give the same recording."""
    sim = MatchSimulator(
        seed=seed, match_id=match_id, players=players, cheaters=cheaters, tick_hz=tick_hz,
        duration_s=duration_s, start_ts_ms=start_ts_ms, cheat_kinds=cheat_kinds,
        intensity=intensity, map_name=map_name, round_s=round_s, closet_share=closet_share,
        command_jitter=command_jitter, roster=roster, form=form,
    )
    return sim.recording(list(sim.events()))
