"""A small train/evaluate run on simulated matches: held-out seeds, split by match."""

from __future__ import annotations

import pytest

from anticheat import evaluate, model, train
from anticheat.dataset import build_records, reshrink
from gamebus.sim.accounts import sample_accounts, season_rosters

SIM = {"players": 10, "cheaters": 0.3, "duration_s": 25.0, "cheat_kinds": ["snap_aimbot"],
       "intensity": "blatant", "closet_share": 0.0}


@pytest.fixture(scope="module")
def small_model():
    records = build_records(range(1000, 1008), **SIM)
    train_side = [r for r in records if r.match_index < 6]
    calib = [r for r in records if r.match_index >= 6]
    priors = train.priors_from(train_side)
    reshrink(records, priors)
    bundle = train.fit(train_side, calib, seed=3, version="small", priors=priors,
                       boosting_rounds=30, forest_trees=30)
    return bundle, {r.match for r in records}


def test_small_model_beats_chance_on_held_out_seeds_and_writes_its_report(small_model, tmp_path):
    bundle, trained_on = small_model
    held_out = build_records(range(9000, 9005), **SIM)
    assert not trained_on & {r.match for r in held_out}
    reshrink(held_out, bundle.priors)
    report, scores = evaluate.evaluate_records(bundle, held_out)
    assert report.overall.auc > 0.85
    assert report.clean > 20 and report.cheaters >= 10
    path = evaluate.write_report(report, held_out, scores, tmp_path, command="make it so")
    assert "snap_aimbot/blatant" in path.read_text()
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "recall_by_kind.png").stat().st_size > 1000
    model.save(bundle, tmp_path / "m.skops")
    assert model.load(tmp_path / "m.skops").priors == bundle.priors


def test_a_season_of_accounts_is_evaluated_per_account_after_each_number_of_matches(
        small_model, tmp_path):
    bundle, _ = small_model
    pool = sample_accounts(seed=4, n=20, cheaters=0.3, cheat_kinds=["snap_aimbot"],
                           intensity="blatant", closet_share=0.0)
    rosters = season_rosters(seed=5, accounts=pool, players=10, rounds=3)
    records = build_records(range(9100, 9106), players=10, duration_s=25.0, rosters=rosters)
    reshrink(records, bundle.priors)
    assert {r.player for r in records} == {a.name for a in pool}
    report, scores = evaluate.evaluate_records(bundle, records)
    honest, rows = evaluate.evaluate_accounts(records, scores, steps=[1, 3])
    assert honest == 14
    everyone = next(r for r in rows if r.group == "all cheaters")
    assert everyone.accounts == 6
    assert set(everyone.by_matches) == {1, 3}
    auc_3, recall_3 = everyone.by_matches[3]
    assert auc_3 > 0.85 and recall_3 > 0.5
    text = evaluate.account_markdown(honest, rows)
    assert "after 3 matches" in text and "snap_aimbot/blatant (full-time)" in text
    path = evaluate.write_report(report, records, scores, tmp_path, appendix=text)
    assert "## Accounts across matches" in path.read_text()
