"""The game-server simulator: matches with human-like players and labelled cheaters.

Pure and deterministic for a seed, with no network in the core:
:func:`simulate_match` returns a :class:`MatchRecording` (events for the bus,
labels for the side file); :class:`MatchSimulator` yields the same match tick
by tick for real-time publishing; :func:`simulate_matches` and
:func:`play_together` make many matches at once (same recordings, faster);
:mod:`gamebus.sim.world` holds the maps, physics constants and line of sight
shared with the anti-cheat service.
See docs/simulator.md for the models.
"""

from gamebus.sim.batch import simulate_matches
from gamebus.sim.cheats import CHEAT_KINDS, INTENSITIES, CheaterLabel
from gamebus.sim.match import (
    DEFAULT_DURATION_S,
    DEFAULT_START_TS_MS,
    MatchRecording,
    MatchSimulator,
    play_together,
    simulate_match,
)

__all__ = [
    "CHEAT_KINDS",
    "DEFAULT_DURATION_S",
    "DEFAULT_START_TS_MS",
    "INTENSITIES",
    "CheaterLabel",
    "MatchRecording",
    "MatchSimulator",
    "play_together",
    "simulate_match",
    "simulate_matches",
]
