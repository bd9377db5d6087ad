"""The per-shot likelihood ratios point the way the play behind them says."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anticheat.features import MatchFeatures
from anticheat.player_state import PlayerState, ShotReading
from anticheat.schema import FeatureConfig, feature_recipe
from anticheat.shot_evidence import (
    CUSUM_STEPS,
    SHOT_COLUMNS,
    STEP_KINDS,
    StepModel,
    outcome_step,
    packaged_step_model,
    shot_row,
    shot_step,
)
from anticheat.tracking_lag import ZERO_TERMS, LagTerms
from gamebus.sim.match import simulate_match


def aim_step(r: ShotReading, ping: float, weapon: str | None = None) -> float:
    return shot_step("aim", r, ping, weapon)


def trigger_step(r: ShotReading, ping: float, weapon: str | None = "rifle") -> float:
    return shot_step("trigger", r, ping, weapon)


def test_outcome_steps_climb_on_the_tell_and_sink_without_it() -> None:
    for name in CUSUM_STEPS:
        assert outcome_step(name, True) > 0.0 > outcome_step(name, False)


def _reading(*, error: float = 0.8, on_box: bool = True, turn: float = 10.0, engage: float = math.nan,
             reaction: float = math.nan, delay: float = 60.0, flick: float = math.nan,
             track: tuple[float, ...] = (0.6, 0.7), jitter: tuple[float, ...] = (12.0,),
             lag: LagTerms = ZERO_TERMS, opens: bool = False) -> ShotReading:
    return ShotReading(error, on_box, turn, engage, reaction, delay, flick, track, jitter, lag, opens)


def test_a_tighter_aim_is_likelier_from_the_aimbot() -> None:
    # Each reading the bot tightens, tightened alone, raises the step.
    base = aim_step(_reading(), 40.0)
    assert aim_step(_reading(error=0.1), 40.0) > base
    assert aim_step(_reading(track=(0.1, 0.12)), 40.0) > base
    assert aim_step(_reading(jitter=(2.0,)), 40.0) > base
    opening = _reading(engage=700.0, reaction=350.0, flick=120.0, track=(), jitter=(), opens=True)
    faster = opening._replace(engage_ms=450.0, reaction_ms=190.0, flick_ms_per_bit=70.0)
    assert aim_step(faster, 40.0) > aim_step(opening, 40.0)


def test_the_reaction_is_read_net_of_the_players_ping() -> None:
    opening = _reading(engage=500.0, reaction=300.0, flick=90.0, track=(), jitter=(), opens=True)
    engage, reaction = SHOT_COLUMNS.index("engage_net_ms"), SHOT_COLUMNS.index("reaction_net_ms")
    row = shot_row(opening, 120.0, "rifle")
    assert (row[engage], row[reaction]) == (380.0, 180.0)
    # An unknown ping leaves the reaction unread rather than guessed.
    row = shot_row(opening, math.nan, "rifle")
    assert math.isnan(row[engage]) and math.isnan(row[reaction])
    # A weapon the model never saw is unread too, not taken for another.
    assert math.isnan(shot_row(opening, 40.0, "railgun")[SHOT_COLUMNS.index("weapon")])
    assert math.isnan(shot_row(opening, 40.0, None)[SHOT_COLUMNS.index("weapon")])


@pytest.mark.parametrize("kind", sorted(STEP_KINDS))
def test_the_shipped_models_read_the_columns_of_this_version(kind: str) -> None:
    model = packaged_step_model(kind)
    assert tuple(model.ensemble.meta["columns"]) == SHOT_COLUMNS
    assert model.kind == kind and model.version.startswith(f"{kind}-") and 0.0 < model.prior < 1.0
    # The features' recipe names it: a match model trained on another
    # step model's CUSUM is refused at load.
    assert feature_recipe()[f"{kind}_model"] == model.version


def test_a_neutral_model_weighs_every_shot_zero() -> None:
    assert StepModel.neutral("trigger").steps([shot_row(_reading(), 40.0, "rifle")] * 3) == [0.0, 0.0, 0.0]


def test_a_model_of_another_kind_or_none_is_refused() -> None:
    ensemble = StepModel.neutral("aim").ensemble
    with pytest.raises(ValueError, match=r"meta\.kind"):
        StepModel(replace(ensemble, meta={**ensemble.meta, "kind": "wallhack"}))


def test_a_trigger_pull_on_first_contact_counts_for_the_bot_and_spray_against_it() -> None:
    # Opening fire the tick the crosshair meets a still target: a bot's
    # pull. Settling on the target first, or spraying off the hitbox inside
    # a burst: a human's.
    opening = _reading(error=0.3, turn=5.0, engage=650.0, delay=0.0, track=(), jitter=(), opens=True)
    settled = opening._replace(delay_ms=180.0)
    spray = _reading(error=2.5, on_box=False, turn=20.0, delay=math.nan, track=(1.5, 2.0), jitter=(30.0,))
    assert trigger_step(opening, 40.0) > 1.0  # several times likelier from a bot
    assert trigger_step(settled, 40.0) < 0.0 and trigger_step(spray, 40.0) < 0.0
    # Opening fire sooner after the target appeared than a hand can see,
    # flick and settle: stronger still.
    assert trigger_step(opening._replace(engage_ms=300.0), 40.0) > trigger_step(opening, 40.0) + 2.0


nan_or = st.one_of(st.just(math.nan), st.floats(0.0, 5000.0))


@given(error=nan_or, turn=nan_or, engage=nan_or, reaction=nan_or, delay=nan_or, flick=nan_or,
       track=st.lists(st.floats(0.0, 90.0), max_size=5), ping=nan_or, opens=st.booleans(),
       ticks=st.integers(0, 50), ee=st.floats(0.0, 1e4), motion=st.floats(0.0, 1e4),
       weapon=st.sampled_from([None, "rifle", "smg", "pistol", "sniper", "knife"]))
def test_any_reading_gives_a_finite_step(error: float, turn: float, engage: float, reaction: float,
                                         delay: float, flick: float, track: list[float], ping: float,
                                         opens: bool, ticks: int, ee: float, motion: float,
                                         weapon: str | None) -> None:
    lag = LagTerms(ticks, ee if ticks else 0.0, (0.0,) * 7, (motion if ticks else 0.0,) * 7)
    r = _reading(error=error, turn=turn, engage=engage, reaction=reaction, delay=delay, flick=flick,
                 track=tuple(track), jitter=tuple(track), lag=lag, opens=opens)
    assert math.isfinite(aim_step(r, ping, weapon)) and math.isfinite(trigger_step(r, ping, weapon))


def test_the_aim_cusum_finds_a_stretch_of_bot_like_shots_and_sinks_after() -> None:
    honest, bot = _reading(error=1.5, track=(1.2, 1.4), jitter=(25.0,)), _reading(error=0.1, track=(0.1,), jitter=(2.0,))
    assert aim_step(honest, 40.0) < 0.0 < aim_step(bot, 40.0)
    state = PlayerState("p01", FeatureConfig())
    state.ping_ms = 40.0
    for k, r in enumerate([honest] * 30 + [bot] * 10 + [honest] * 50):
        state.last_aimed = (1_000 * k, "p02")  # the shot's tick, as read_shot leaves it
        state.settled(r)
    top = state.vector()["cusum_aim_max"]
    assert top == pytest.approx(10 * aim_step(bot, 40.0))
    assert state.cusum_now["cusum_aim_max"] == 0.0  # sunk back once the stretch ended
    # The analyst is told where: from the stretch's first shot to its last.
    assert state.climbs["cusum_aim_max"] == (30_000, 39_000)


def test_a_match_weighs_its_shots_in_batches_as_one_by_one() -> None:
    # MatchFeatures weighs the shots a tick settles in one call to the
    # model; the CUSUM it keeps is the one each shot's own step gives.
    played = simulate_match(seed=8_600_001, match_id="m", players=8, cheaters=0.3,
                            cheat_kinds=["humanised_aimbot"], duration_s=20.0)
    features = MatchFeatures(played.match, keep_readings=True)
    for event in played.events:
        features.update(event)
    vectors = features.vectors()
    for kind in STEP_KINDS:
        climbed: dict[str, float] = {}
        now: dict[str, float] = {}
        for player, _, reading, ping, weapon in features.readings or ():
            now[player] = max(0.0, now.get(player, 0.0) + shot_step(kind, reading, ping, weapon))
            climbed[player] = max(climbed.get(player, 0.0), now[player])
        assert climbed and any(v > 0.0 for v in climbed.values())
        for player, top in climbed.items():
            assert vectors[player][f"cusum_{kind}_max"] == pytest.approx(top, abs=1e-9)
