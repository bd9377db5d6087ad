"""The aim step's refit: it recovers known weights, and reads a real simulated match."""

from __future__ import annotations

import numpy as np
import pytest

from anticheat.aim_step_fit import TERMS, fit_weights, shot_terms
from anticheat.shot_evidence import AIM_STEP_WEIGHTS


def test_the_fit_gives_back_the_weights_that_made_the_data_in_raw_units() -> None:
    # Terms on very different scales (as a reaction in seconds and a
    # log-error are): the printed weights must be in the terms' own units.
    rng = np.random.default_rng(3)
    n = 60_000
    x = np.zeros((n, len(TERMS)))
    x[:, 0] = rng.normal(-1.0, 0.8, n)  # log_error
    x[:, 1] = rng.random(n) < 0.5  # on_box
    x[:, 4] = rng.uniform(0.0, 1.5, n)  # engage_s
    truth = np.zeros(len(TERMS))
    truth[0], truth[1], truth[4] = -1.2, 0.6, -2.0
    z = -0.5 + x @ truth
    on = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
    fit = fit_weights(x.tolist(), on.tolist())
    assert set(fit) == set(AIM_STEP_WEIGHTS)
    assert fit["log_error"] == pytest.approx(-1.2, abs=0.08)
    assert fit["on_box"] == pytest.approx(0.6, abs=0.08)
    assert fit["engage_s"] == pytest.approx(-2.0, abs=0.12)
    assert fit["intercept"] == pytest.approx(-0.5, abs=0.12)
    assert abs(fit["log_turn"]) < 0.05  # a constant term carries no weight
    assert fit.prior == pytest.approx(on.mean()) and fit.shots == n


def test_one_class_of_shots_cannot_be_fitted() -> None:
    with pytest.raises(ValueError, match="on:"):
        fit_weights([[0.0] * len(TERMS)] * 3, [False] * 3)


def test_a_simulated_match_gives_every_shot_its_terms_and_its_label() -> None:
    rows, on = shot_terms(8_600_000, duration_s=30.0)
    assert rows and len(rows) == len(on)
    assert all(len(r) == len(TERMS) for r in rows)
    assert any(on) and not all(on)  # aimbots on and honest players both shot
    on_box = [r[TERMS.index("on_box")] for r in rows]
    assert set(on_box) <= {0.0, 1.0}
