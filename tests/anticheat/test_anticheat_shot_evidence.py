"""The per-shot likelihood ratios point the way the rates behind them say."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anticheat.features import MatchFeatures
from anticheat.player_state import PlayerState, ShotReading
from anticheat.schema import FeatureConfig, feature_recipe
from anticheat.shot_evidence import (
    AIM_COLUMNS,
    CONTACT_FIRST,
    CONTACT_OFF,
    CONTACT_ON,
    CUSUM_STEPS,
    FAST_OPENING_STEP,
    TRIGGER_STEPS,
    AimModel,
    aim_row,
    aim_step,
    outcome_step,
    packaged_aim_model,
    trigger_step,
)
from anticheat.tracking_lag import ZERO_TERMS, LagTerms
from gamebus.sim.match import simulate_match


def test_every_trigger_cell_is_a_finite_log_ratio() -> None:
    cells = set(itertools.product((CONTACT_OFF, CONTACT_ON, CONTACT_FIRST), (False, True), (False, True)))
    assert set(TRIGGER_STEPS) == cells
    assert all(math.isfinite(v) and v != 0.0 for v in TRIGGER_STEPS.values())


def test_a_first_contact_that_opens_fire_counts_for_the_bot_and_spray_against_it() -> None:
    opening = trigger_step(on_box=True, first_contact=True, turning=False, opens=True, fast_opening=False)
    spray_off = trigger_step(on_box=False, first_contact=False, turning=False, opens=False, fast_opening=False)
    assert opening > 1.0  # several times likelier from a bot
    assert spray_off < -2.0  # a human's spray off the hitbox, almost never a bot's
    assert opening < FAST_OPENING_STEP  # an opening faster than a hand is the strongest single shot


@given(on_box=st.booleans(), first=st.booleans(), turning=st.booleans(), opens=st.booleans())
def test_a_fast_opening_overrides_the_contact_cells(on_box: bool, first: bool, turning: bool,
                                                    opens: bool) -> None:
    step = trigger_step(on_box=on_box, first_contact=first, turning=turning, opens=opens, fast_opening=True)
    assert step == FAST_OPENING_STEP


@given(turning=st.booleans(), opens=st.booleans())
def test_first_contact_is_read_before_resting_on_the_hitbox(turning: bool, opens: bool) -> None:
    # A first contact is on the hitbox too; its own cell decides.
    step = trigger_step(on_box=True, first_contact=True, turning=turning, opens=opens, fast_opening=False)
    assert step == TRIGGER_STEPS[CONTACT_FIRST, turning, opens]


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
    engage, reaction = AIM_COLUMNS.index("engage_net_ms"), AIM_COLUMNS.index("reaction_net_ms")
    row = aim_row(opening, 120.0, "rifle")
    assert (row[engage], row[reaction]) == (380.0, 180.0)
    # An unknown ping leaves the reaction unread rather than guessed.
    row = aim_row(opening, math.nan, "rifle")
    assert math.isnan(row[engage]) and math.isnan(row[reaction])
    # A weapon the model never saw is unread too, not taken for another.
    assert math.isnan(aim_row(opening, 40.0, "railgun")[AIM_COLUMNS.index("weapon")])
    assert math.isnan(aim_row(opening, 40.0, None)[AIM_COLUMNS.index("weapon")])


def test_the_shipped_model_reads_the_columns_of_this_version() -> None:
    model = packaged_aim_model()
    assert tuple(model.ensemble.meta["columns"]) == AIM_COLUMNS
    assert model.version.startswith("aim-") and 0.0 < model.prior < 1.0
    # The features' recipe names it: a match model trained on another
    # aim model's CUSUM is refused at load.
    assert feature_recipe()["aim_model"] == model.version


def test_a_neutral_model_weighs_every_shot_zero() -> None:
    assert AimModel.neutral().steps([aim_row(_reading(), 40.0, "rifle")] * 3) == [0.0, 0.0, 0.0]


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
    assert math.isfinite(aim_step(r, ping, weapon))


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
    climbed: dict[str, float] = {}
    now: dict[str, float] = {}
    for player, _, reading, ping, weapon in features.readings or ():
        now[player] = max(0.0, now.get(player, 0.0) + aim_step(reading, ping, weapon))
        climbed[player] = max(climbed.get(player, 0.0), now[player])
    assert climbed and any(v > 0.0 for v in climbed.values())
    for player, top in climbed.items():
        assert vectors[player]["cusum_aim_max"] == pytest.approx(top, abs=1e-9)
