"""The compiled tree ensemble scores as scikit-learn does, and its file refuses what it is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.ensemble import HistGradientBoostingClassifier

from anticheat.tree_ensemble import EnsembleRejected, TreeEnsemble, from_hist_gradient_boosting


def _fitted() -> HistGradientBoostingClassifier:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4_000, 4))
    x[rng.random(x.shape) < 0.2] = np.nan  # missing values take a learned side
    signal = np.nan_to_num(x[:, 0]) + np.where(np.isnan(x[:, 1]), 1.0, x[:, 1] * x[:, 2])
    y = signal + rng.normal(size=len(x)) > 0.5
    return HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0).fit(x, y)


MODEL = _fitted()
ENSEMBLE = from_hist_gradient_boosting(MODEL, {"columns": ["a", "b", "c", "d"]})

cell = st.one_of(st.just(np.nan), st.floats(-4.0, 4.0), st.sampled_from([0.0, -0.0]))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.just(4)), elements=cell))
def test_the_compiled_trees_score_every_row_as_the_fitted_model(rows: np.ndarray) -> None:
    np.testing.assert_allclose(ENSEMBLE.raw(rows), MODEL.decision_function(rows), rtol=0, atol=1e-9)


def test_a_row_exactly_on_a_threshold_goes_left_as_in_scikit_learn() -> None:
    inner = np.flatnonzero(~ENSEMBLE.is_leaf)
    rows = np.zeros((len(inner), 4))
    rows[np.arange(len(inner)), ENSEMBLE.feature[inner]] = ENSEMBLE.threshold[inner]
    np.testing.assert_allclose(ENSEMBLE.raw(rows), MODEL.decision_function(rows), rtol=0, atol=1e-9)


def test_saved_and_loaded_back_it_scores_the_same(tmp_path: Path) -> None:
    rows = np.random.default_rng(1).normal(size=(50, 4))
    loaded = TreeEnsemble.load(ENSEMBLE.save(tmp_path / "m.npz"))
    assert loaded.meta == {"columns": ["a", "b", "c", "d"]}
    np.testing.assert_array_equal(loaded.raw(rows), ENSEMBLE.raw(rows))


def test_rows_of_the_wrong_shape_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="x: expected a 2-d"):
        ENSEMBLE.raw(np.zeros(4))
    with pytest.raises(ValueError, match="x: the ensemble reads 4 columns, got 2"):
        ENSEMBLE.raw(np.zeros((3, 2)))


def _arrays(ensemble: TreeEnsemble) -> dict[str, np.ndarray]:
    keys = ("feature", "threshold", "left", "right", "missing_left", "is_leaf", "value", "roots")
    return {k: getattr(ensemble, k) for k in keys}


def test_files_that_are_not_ensembles_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("not a model")
    with pytest.raises(EnsembleRejected, match="not a tree ensemble file"):
        TreeEnsemble.load(text)
    partial = tmp_path / "partial.npz"
    np.savez(partial, feature=ENSEMBLE.feature)
    with pytest.raises(EnsembleRejected, match="missing arrays"):
        TreeEnsemble.load(partial)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.array(json.dumps({"format": "someone-else/9", "baseline": 0.0})), **_arrays(ENSEMBLE))
    with pytest.raises(EnsembleRejected, match="format 'someone-else/9'"):
        TreeEnsemble.load(other)


def test_a_file_holding_pickled_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    arrays_ = _arrays(ENSEMBLE)
    arrays_["value"] = np.array([object()] * len(ENSEMBLE.value), dtype=object)
    header = np.array(json.dumps({"format": "gamebus-tree-ensemble/1", "baseline": 0.0}))
    np.savez(path, header=header, **arrays_)
    with pytest.raises(EnsembleRejected, match="not a tree ensemble file"):
        TreeEnsemble.load(path)


def test_a_damaged_tree_that_would_loop_or_overrun_is_refused(tmp_path: Path) -> None:
    root = int(ENSEMBLE.roots[1])
    looping = _arrays(ENSEMBLE)
    looping["left"] = looping["left"].copy()
    looping["left"][root] = root  # a node its own child: the walk would never end
    path = tmp_path / "loop.npz"
    np.savez(path, header=np.array(json.dumps({"format": "gamebus-tree-ensemble/1", "baseline": 0.0})), **looping)
    with pytest.raises(EnsembleRejected, match="left: a child out of order"):
        TreeEnsemble.load(path)
    overrun = _arrays(ENSEMBLE)
    overrun["roots"] = overrun["roots"] + len(ENSEMBLE.feature)
    np.savez(path, header=np.array(json.dumps({"format": "gamebus-tree-ensemble/1", "baseline": 0.0})), **overrun)
    with pytest.raises(EnsembleRejected, match="roots or features out of range"):
        TreeEnsemble.load(path)
