"""How much one shot says about a bot: per-shot log-likelihood ratios for the CUSUMs.

:class:`anticheat.player_state.PlayerState` sums these steps shot after
shot in a CUSUM (floored at zero) and keeps its maximum: the sum climbs
through a stretch of bot-like shots and sinks back after, so a closet
cheater's toggled-on stretch shows wherever it falls in the match. Each
step is ``ln(P(shot | bot) / P(shot | human))`` from rates measured on
simulated play, kept here as plain tables with where their numbers come
from, apart from the state that sums them.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "CONTACT_FIRST",
    "CONTACT_OFF",
    "CONTACT_ON",
    "CUSUM_STEPS",
    "FAST_OPENING_STEP",
    "TRIGGER_STEPS",
    "outcome_step",
    "trigger_step",
]

#: ln(P(bot-like shot | cheat) / P(... | human)) and the same for the opposite
#: outcome, from rates seen in simulated play: bots ~97% on the hitbox (humans
#: ~50%), aimbots ~90% within 0.5 degrees (humans ~25%).
CUSUM_STEPS: Final[dict[str, tuple[float, float]]] = {
    "cusum_hitbox_max": (math.log(0.97 / 0.50), math.log(0.03 / 0.50)),
    "cusum_lock_max": (math.log(0.90 / 0.25), math.log(0.10 / 0.75)),
    "cusum_turn_max": (math.log(0.60 / 0.15), math.log(0.40 / 0.85)),
}

#: Where the crosshair was when a shot was fired: off the hitbox, on it
#: since an earlier tick, or on it since this very tick (first contact).
CONTACT_OFF: Final = 0
CONTACT_ON: Final = 1
CONTACT_FIRST: Final = 2

#: The trigger's CUSUM steps, ln(P(shot | blatant triggerbot on) / P(shot |
#: honest)), for each contact, whether the view was turning fast at the shot
#: and whether the shot opens a burst (no shot at this target in the last
#: ``track_gap_ms``). Rates from 40 simulated matches of closet blatant
#: triggerbots (2,010 shots while on, 23,362 honest; docs/anticheat.md,
#: "Opening shots"), a cell never seen counted as half a shot. A bot fires as
#: the crosshair crosses a target: first contact is two thirds of its shots
#: and a fifth of a human's, and a bot's first contact mostly *opens* fire
#: (33% of its shots against 6% of a human's, still view), where a human's
#: comes inside a burst, the crosshair dragged back over a target it is
#: already shooting. A shot off the hitbox inside a burst (spray) is 38% of
#: a human's shots and 2% of a bot's.
TRIGGER_STEPS: Final[dict[tuple[int, bool, bool], float]] = {
    # (contact, turning, opens): ln(bot rate / human rate)
    (CONTACT_OFF, False, False): math.log(0.020 / 0.38),
    (CONTACT_OFF, False, True): math.log(0.017 / 0.146),
    (CONTACT_OFF, True, False): math.log(0.00025 / 0.0045),
    (CONTACT_OFF, True, True): math.log(0.005 / 0.0045),
    (CONTACT_ON, False, False): math.log(0.24 / 0.176),
    (CONTACT_ON, False, True): math.log(0.035 / 0.081),
    (CONTACT_ON, True, False): math.log(0.0045 / 0.0069),
    (CONTACT_ON, True, True): math.log(0.0005 / 0.0037),
    (CONTACT_FIRST, False, False): math.log(0.205 / 0.135),
    (CONTACT_FIRST, False, True): math.log(0.33 / 0.060),
    (CONTACT_FIRST, True, False): math.log(0.008 / 0.0017),
    (CONTACT_FIRST, True, True): math.log(0.078 / 0.0022),
}

#: A shot on the hitbox fired under ``fast_engage_ms`` after its target came
#: into view, whatever the contact: 5.4% of the bot's shots, 0.03% of a
#: human's (7 of 23,362), whose reaction, flick and settling take longer.
FAST_OPENING_STEP: Final = math.log(0.054 / 0.0003)


def trigger_step(*, on_box: bool, first_contact: bool, turning: bool, opens: bool,
                 fast_opening: bool) -> float:
    """The trigger CUSUM's step for one shot.

    ``first_contact``: fired the tick the crosshair met the hitbox;
    ``fast_opening`` (see :data:`FAST_OPENING_STEP`) overrides the rest.

    >>> trigger_step(on_box=True, first_contact=True, turning=False, opens=True,
    ...              fast_opening=False) > 0 > trigger_step(on_box=False, first_contact=False,
    ...              turning=False, opens=False, fast_opening=False)
    True
    """
    if fast_opening:
        return FAST_OPENING_STEP
    contact = CONTACT_FIRST if first_contact else CONTACT_ON if on_box else CONTACT_OFF
    return TRIGGER_STEPS[contact, turning, opens]


def outcome_step(name: str, hit: bool) -> float:
    """The step of one of :data:`CUSUM_STEPS`' CUSUMs for a shot that shows (``hit``) or not its tell."""
    up, down = CUSUM_STEPS[name]
    return up if hit else down
