"""A small train/evaluate run on simulated matches: held-out seeds, split by match."""

from __future__ import annotations

from anticheat import evaluate, model, train
from anticheat.dataset import build_records, reshrink

SIM = {"players": 10, "cheaters": 0.3, "duration_s": 25.0, "cheat_kinds": ["snap_aimbot"],
       "intensity": "blatant", "closet_share": 0.0}


def test_small_model_beats_chance_on_held_out_seeds_and_writes_its_report(tmp_path):
    records = build_records(range(1000, 1008), **SIM)
    held_out = build_records(range(9000, 9005), **SIM)
    assert not {r.match for r in records} & {r.match for r in held_out}
    train_side = [r for r in records if r.match_index < 6]
    calib = [r for r in records if r.match_index >= 6]
    priors = train.priors_from(train_side)
    reshrink(records, priors)
    reshrink(held_out, priors)
    bundle = train.fit(train_side, calib, seed=3, version="small", priors=priors,
                       boosting_rounds=30, forest_trees=30)
    report, scores = evaluate.evaluate_records(bundle, held_out)
    assert report.overall.auc > 0.85
    assert report.clean > 20 and report.cheaters >= 10
    path = evaluate.write_report(report, held_out, scores, tmp_path, command="make it so")
    assert "snap_aimbot/blatant" in path.read_text()
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "recall_by_kind.png").stat().st_size > 1000
    model.save(bundle, tmp_path / "m.skops")
    assert model.load(tmp_path / "m.skops").priors == priors
