"""The model: policy arithmetic, a small fit that beats chance, skops round trip and refusals."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anticheat import model, train
from anticheat.dataset import PlayerRecord, Snapshot
from anticheat.features import FEATURE_NAMES


def test_threshold_for_one_percent_fpr_flags_exactly_one_clean_in_a_hundred():
    policy = model.threshold_for_fpr([i / 100 for i in range(100)], 0.01)
    assert policy.threshold == pytest.approx(0.98)
    assert policy.fpr == pytest.approx(0.01)
    assert policy.classify(0.99).flagged and not policy.classify(0.98).flagged
    verdict = policy.classify(0.995)
    assert (verdict.threshold, verdict.fpr) == (policy.threshold, policy.fpr)


def test_percentile_of_a_value_in_the_population():
    quantiles = [float(i) for i in range(101)]
    assert model.percentile_of(quantiles, 50.0) == pytest.approx(50.0)
    assert model.percentile_of(quantiles, 1000.0) == 100.0
    assert model.percentile_of([0.0] * 101, 0.0) == 50.0  # nobody teleports: zero is typical
    assert math.isnan(model.percentile_of([], 1.0))


def _records(matches: int, seed: int) -> list[PlayerRecord]:
    """Synthetic players: cheaters react ~100 ms faster; everything else is noise."""
    rng = random.Random(seed)
    out = []
    for m in range(matches):
        for p in range(20):
            cheat = int(rng.random() < 0.2)
            snaps = []
            for k in range(2):
                f = {n: rng.gauss(0.0, 1.0) for n in FEATURE_NAMES}
                f["reaction_median_ms"] = rng.gauss(260.0 - 100.0 * cheat, 35.0)
                f["ping_ms"] = math.nan  # a feature the game never reports
                snaps.append(Snapshot(k, 60.0, 60.0 * cheat, f, (20, 6, 2)))
            out.append(PlayerRecord(f"m{seed}-{m}", m, seed, f"p{p}", cheat,
                                    "snap_aimbot" if cheat else "clean",
                                    "blatant" if cheat else "", snapshots=snaps,
                                    shots=20, hits=6, headshots=2))
    return out


@pytest.fixture(scope="module")
def bundle() -> model.ModelBundle:
    return train.fit(_records(25, 1), _records(10, 2), seed=1, version="test-1",
                     boosting_rounds=40, forest_trees=40)


def test_small_fit_beats_chance_by_a_clear_margin_on_held_out_matches(bundle):
    from sklearn.metrics import roc_auc_score

    held_out = _records(10, 3)
    scores = train.aggregate(held_out, bundle.scorer.score_many(train.snapshot_matrix(held_out)))
    auc = roc_auc_score([r.label for r in held_out], scores)
    assert auc > 0.9
    assert 0.0 <= bundle.policy.fpr <= 0.01 + 1e-9


def test_the_rarer_evidence_decides_each_read_against_its_own_kind():
    # honest players' best windows run higher than their match-long scores
    comb = model.Combiner.fit(best_match=[0.1 * k for k in range(10)], best_window=[0.5 + 0.05 * k for k in range(10)])
    # 0.95 is above every honest match-long score (tail under 1/11: halfway from the
    # top, 0.9, to 1, so three quarters of it) but an ordinary window (tail 2/11)
    assert comb.combine(0.95, math.nan) == pytest.approx(1 - 0.75 / 11)
    assert comb.combine(math.nan, 0.95) == pytest.approx(1 - 2 / 11)
    assert comb.combine(0.95, 0.95) == pytest.approx(1 - 0.75 / 11)
    assert not comb.window_decides(0.95, 0.95)
    assert comb.window_decides(0.0, 0.99)
    assert comb.combine(math.nan, math.nan) == 0.0
    # monotone in each kind of evidence
    assert comb.combine(0.35, 0.6) <= comb.combine(0.45, 0.6) <= comb.combine(0.45, 0.8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=8, unique=True))
def test_past_every_honest_reference_scores_keep_their_order_without_claiming_more(values: list[int]):
    """Past the top reference scores are not tied, and a tail stays within a factor two of 1 / (n + 1)."""
    comb = model.Combiner.fit(best_match=[k / 10 for k in range(10)], best_window=[0.5] * 10)
    beyond = sorted(0.9 + 0.0001 * v for v in values)  # 0.9001 ... 1.0
    scores = [comb.combine(v, math.nan) for v in beyond]
    assert all(a < b for a, b in itertools.pairwise(scores))
    assert all(1 - 1 / 11 < s <= 1 - 0.5 / 11 for s in scores)
    # at the top reference and within, the tail is the plain (k + 1) / (n + 1)
    assert comb.combine(0.9, math.nan) == pytest.approx(1 - 2 / 11)
    assert comb.combine(0.85, math.nan) == pytest.approx(1 - 2 / 11)
    assert comb.combine(1.0, math.nan) == pytest.approx(1 - 0.5 / 11)


def test_a_policy_set_on_one_set_of_honest_players_holds_its_rate_on_others():
    # The combiner's references and the threshold come from the same
    # calibration players. Over many draws of those players the threshold
    # must flag 1% of *other* honest players on average: a share that
    # counted a player against itself differently in and out of sample
    # would show here as a bias, while one draw alone is only good to
    # about +-0.2 points (2,000 players).
    rng = np.random.default_rng(7)

    def honest(n):  # best match-long and best window scores, correlated as a player's are
        z = rng.normal(size=(n, 2))
        return z[:, 0], 0.6 * z[:, 0] + 0.8 * z[:, 1]

    others_m, others_w = honest(20_000)
    rates = []
    for _ in range(20):
        m, w = honest(2_000)
        comb = model.Combiner.fit(m, w)
        policy = model.threshold_for_fpr([comb.combine(a, b) for a, b in zip(m, w, strict=True)], 0.01)
        assert policy.fpr <= 0.01
        others = np.array([comb.combine(a, b) for a, b in zip(others_m, others_w, strict=True)])
        rates.append(float(np.mean(others > policy.threshold)))
    assert 0.0085 < np.mean(rates) < 0.0115
    assert np.std(rates) > 0.001  # and one draw is not enough to pin it


def test_skops_round_trip_keeps_scores_version_schema_and_seed(bundle, tmp_path):
    path = model.save(bundle, tmp_path / "m.skops")
    loaded = model.load(path)
    x = train.snapshot_matrix(_records(2, 4))
    assert np.allclose(loaded.scorer.score_many(x), bundle.scorer.score_many(x))
    assert np.allclose(loaded.scorer.anomaly_many(x), bundle.scorer.anomaly_many(x))
    assert (loaded.version, loaded.seed, loaded.feature_names) == ("test-1", 1, FEATURE_NAMES)
    assert loaded.policy == bundle.policy
    assert loaded.combiner == bundle.combiner and bundle.combiner is not None
    assert path.read_bytes()[:2] == b"PK"  # a zip of JSON and arrays, not a pickle


def test_a_model_with_another_feature_schema_is_refused(bundle, tmp_path):
    path = model.save(bundle, tmp_path / "m.skops")
    with pytest.raises(model.ModelRejected, match="feature schema differs"):
        model.load(path, expected_features=(*FEATURE_NAMES, "new_feature"))


def test_a_model_whose_features_were_read_with_other_tunables_is_refused(bundle, tmp_path):
    from anticheat.features import FeatureConfig, feature_recipe

    path = model.save(bundle, tmp_path / "m.skops")
    assert model.load(path).recipe == feature_recipe()
    older = feature_recipe(FeatureConfig(lag_gap_ms=1000))
    with pytest.raises(model.ModelRejected, match=r"lag_gap_ms: 2000 in the model, 1000 in this version"):
        model.load(path, expected_recipe=older)
    # the priors are learned, not read: a model's own priors never refuse it
    assert model.load(path, expected_recipe=feature_recipe(FeatureConfig(accuracy_prior=(9.0, 1.0))))


def test_a_model_that_did_not_record_its_feature_recipe_is_refused(bundle, tmp_path):
    import skops.io as sio

    path = model.save(bundle, tmp_path / "m.skops")
    doc = sio.load(path, trusted=list(model.TRUSTED_TYPES))
    del doc["feature_recipe"]
    sio.dump(doc, path)
    with pytest.raises(model.ModelRejected, match="did not record how; retrain"):
        model.load(path)


def test_a_file_with_untrusted_types_is_refused_before_loading(tmp_path):
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "evil.skops"
    sio.dump({"format": model.FORMAT, "x": FunctionTransformer(func=os.system)}, path)
    with pytest.raises(model.ModelRejected, match="untrusted types"):
        model.load(path)


def test_a_pickle_is_not_a_model(tmp_path):
    import pickle

    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"format": model.FORMAT}))
    with pytest.raises(model.ModelRejected, match="not a skops model"):
        model.load(path)
