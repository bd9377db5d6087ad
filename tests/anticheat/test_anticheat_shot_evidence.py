"""The per-shot likelihood ratios point the way the rates behind them say."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from anticheat.shot_evidence import (
    CONTACT_FIRST,
    CONTACT_OFF,
    CONTACT_ON,
    CUSUM_STEPS,
    FAST_OPENING_STEP,
    TRIGGER_STEPS,
    outcome_step,
    trigger_step,
)


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
