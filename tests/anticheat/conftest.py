"""Small models trained on the real simulator, shared by the anti-cheat tests."""

from __future__ import annotations

import dataclasses

import pytest

from anticheat import model, train
from anticheat.dataset import build_records, reshrink
from tests.support.sims import POOL, SIM


@pytest.fixture(scope="session")
def small_model() -> tuple[model.ModelBundle, set[str]]:
    """A small per-match model and the matches it was trained on."""
    records = build_records(range(1000, 1008), **SIM)
    train_side = [r for r in records if r.match_index < 6]
    calib = [r for r in records if r.match_index >= 6]
    priors = train.priors_from(train_side)
    reshrink(records, priors)
    bundle = train.fit(train_side, calib, seed=3, version="small", priors=priors,
                       boosting_rounds=30, forest_trees=30)
    return bundle, {r.match for r in records}


@pytest.fixture(scope="session")
def with_baseline(small_model: tuple[model.ModelBundle, set[str]]) -> model.ModelBundle:
    """The small model plus a baseline fitted on a season whose cheaters all start clean.

    Half the accounts turn: with 40 accounts the trees need that many
    changed matches to learn from more than one feature.
    """
    bundle, _ = small_model
    baseline = train.fit_baseline_season(accounts=40, seed=3, priors=bundle.priors, players=10,
                                         cheaters=0.5, duration_s=25.0, **POOL)
    return dataclasses.replace(bundle, baseline=baseline)
