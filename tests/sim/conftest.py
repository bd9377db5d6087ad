"""Shared simulated matches: simulated once per session, they keep the suite fast.

They publish exact positions (``command_jitter=False``): these tests check
the game's physics and the cheats' behaviour, which the server's jittered
copy of the positions would blur; ``test_sim_physics`` checks the jitter itself.
"""

from __future__ import annotations

import pytest

from gamebus.sim import MatchRecording, MatchSimulator, simulate_match
from gamebus.sim.match import play_together

#: Short matches: long enough for dozens of engagements, short enough for CI.
SHORT_S = 30.0


@pytest.fixture(scope="session")
def mixed_match() -> MatchRecording:
    """A match with a cheater of every kind, half of them subtle."""
    return simulate_match(seed=11, match_id="mixed", players=20, cheaters=6, duration_s=SHORT_S,
                          command_jitter=False)


@pytest.fixture(scope="session")
def clean_matches() -> list[MatchRecording]:
    """Honest players only, on every map."""
    return play_together([
        MatchSimulator(seed=100 + i, match_id=f"clean{i}", players=20, cheaters=0,
                       duration_s=SHORT_S, map_name=name, command_jitter=False)
        for i, name in enumerate(("warehouse", "courtyard", "canyon"))
    ])
