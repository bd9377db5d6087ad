"""The step models' refit: it learns a known signal, stamps what it is, and reads a real match."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anticheat.shot_evidence import SHOT_COLUMNS, StepModel
from anticheat.step_fit import fit_model, main, shot_rows

ERROR, ON_BOX, ENGAGE = (SHOT_COLUMNS.index(c) for c in ("error_deg", "on_box", "engage_net_ms"))
#: A smaller booster than the shipped one's: the tests read what the fit does, not how well.
SMALL = {"max_iter": 40, "learning_rate": 0.2, "max_leaf_nodes": 15, "min_samples_leaf": 50, "random_state": 0}


def _shots(seed: int, n: int = 6_000) -> tuple[np.ndarray, np.ndarray]:
    """Shots where the cheat shows as a small error and a fast engage, the engage unread on half."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(SHOT_COLUMNS)))
    on = rng.random(n) < 0.3
    x[:, ERROR] = np.where(on, rng.gamma(2.0, 0.2, n), rng.gamma(2.0, 0.6, n))
    x[:, ENGAGE] = np.where(on, rng.normal(350.0, 80.0, n), rng.normal(520.0, 120.0, n))
    x[rng.random(n) < 0.5, ENGAGE] = np.nan
    x[:, ON_BOX] = rng.random(n) < 0.5
    return x, on


def test_the_fit_learns_the_signal_and_its_steps_are_log_likelihood_ratios() -> None:
    x, on = _shots(1)
    model = StepModel(fit_model(x.tolist(), on.tolist(), fitted_on="a test", booster=SMALL))
    assert model.prior == pytest.approx(on.mean())
    held_x, held_on = _shots(2)
    steps = np.array(model.steps(held_x.tolist()))
    # Cheat-on shots step up and honest ones down, on shots the fit never saw.
    assert np.median(steps[held_on]) > 0.5 > -0.5 > np.median(steps[~held_on])
    # A step is the evidence beyond the prior: put the prior back and the
    # model's chance that the cheat was on matches how often it was.
    logit = math.log(model.prior / (1.0 - model.prior))
    assert np.mean(1.0 / (1.0 + np.exp(-(steps + logit)))) == pytest.approx(held_on.mean(), abs=0.02)
    assert model.ensemble.meta["fitted_on"] == "a test"


def test_the_version_names_the_numbers() -> None:
    x, on = _shots(1, n=2_000)
    same = fit_model(x.tolist(), on.tolist(), booster=SMALL).meta["version"]
    assert same == fit_model(x.tolist(), on.tolist(), booster=SMALL).meta["version"]
    x2, on2 = _shots(3, n=2_000)
    assert fit_model(x2.tolist(), on2.tolist(), booster=SMALL).meta["version"] != same


def test_the_version_names_the_kind() -> None:
    x, on = _shots(1, n=2_000)
    ensemble = fit_model(x.tolist(), on.tolist(), kind="trigger", booster=SMALL)
    assert StepModel(ensemble).kind == "trigger" and ensemble.meta["version"].startswith("trigger-")
    with pytest.raises(ValueError, match="kind: expected one of"):
        fit_model(x.tolist(), on.tolist(), kind="wallhack", booster=SMALL)


def test_one_class_of_shots_or_other_columns_cannot_be_fitted() -> None:
    with pytest.raises(ValueError, match="on:"):
        fit_model([[0.0] * len(SHOT_COLUMNS)] * 3, [False] * 3)
    with pytest.raises(ValueError, match="rows: expected 17 columns"):
        fit_model([[0.0] * 5] * 3, [False, True, False])


def test_a_model_of_other_columns_or_no_prior_is_refused() -> None:
    x, on = _shots(1, n=2_000)
    ensemble = fit_model(x.tolist(), on.tolist(), booster=SMALL)
    with pytest.raises(ValueError, match="reads columns"):
        StepModel(replace(ensemble, meta={**ensemble.meta, "columns": ["error_deg"]}))
    with pytest.raises(ValueError, match=r"meta\.prior"):
        StepModel(replace(ensemble, meta={**ensemble.meta, "prior": 1.0}))


@pytest.mark.parametrize("kind", ["aim", "trigger"])
def test_a_simulated_match_gives_every_shot_its_row_and_its_label(kind: str) -> None:
    rows, on = shot_rows(8_600_000, kind=kind, duration_s=30.0)
    assert rows and len(rows) == len(on)
    assert all(len(r) == len(SHOT_COLUMNS) for r in rows)
    assert any(on) and not all(on)  # aimbots on and honest players both shot
    assert {r[ON_BOX] for r in rows} <= {0.0, 1.0}
    weapons = {r[SHOT_COLUMNS.index("weapon")] for r in rows}
    assert weapons and all(not math.isnan(w) for w in weapons)  # the simulator's guns are all known


def test_the_command_writes_a_model_the_service_can_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trigger.npz"
    assert main(["trigger", "--matches", "5", "--seed", "8800000", "--workers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held out" in printed and str(out) in printed
    model = StepModel.load(out)
    assert model.kind == "trigger" and model.version.startswith("trigger-") and model.ensemble.meta["shots"] > 100
    assert "triggerbots" in model.ensemble.meta["fitted_on"]
