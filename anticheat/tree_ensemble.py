"""A boosted tree ensemble as flat arrays: evaluated with numpy, saved without pickle.

The aim CUSUM weighs every shot with a small boosted model
(:mod:`anticheat.shot_evidence`). Called through scikit-learn a few shots
at a time, as the online features settle them tick by tick, its
``decision_function`` costs about 2 ms a call (one Python-level visit per
tree), which at 20 ticks a second and ten matches is more than the whole
scoring core spends. Walking every tree at once as arrays costs a
fraction of that and keeps the model a plain, versioned ``.npz`` of
numbers: no pickle, no dependence on scikit-learn's private tree layout
at load time, only when :func:`from_hist_gradient_boosting` compiles a
fitted model.

>>> import numpy as np
>>> stump = TreeEnsemble(
...     feature=np.array([0, 0, 0]), threshold=np.array([1.0, 0.0, 0.0]),
...     left=np.array([1, 0, 0]), right=np.array([2, 0, 0]),
...     missing_left=np.array([False, False, False]),
...     is_leaf=np.array([False, True, True]), value=np.array([0.0, -1.0, 1.0]),
...     roots=np.array([0]), baseline=0.5, meta={})
>>> stump.raw(np.array([[0.5], [2.0], [np.nan]])).tolist()
[-0.5, 1.5, 1.5]
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from gamebus.errors import FileRejected

__all__ = ["FORMAT", "EnsembleRejected", "TreeEnsemble", "from_hist_gradient_boosting"]

#: Bumped when the saved layout changes; other files are refused.
FORMAT: Final = "gamebus-tree-ensemble/1"

_ARRAYS: Final = ("feature", "threshold", "left", "right", "missing_left", "is_leaf", "value", "roots")


class EnsembleRejected(FileRejected):
    """A tree ensemble file that will not be loaded (not ours, another format, inconsistent arrays)."""


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """Every tree's nodes in one set of arrays; ``roots`` holds each tree's first node.

    A row goes left at a node when its ``feature`` is at most ``threshold``,
    or is NaN and the node sends missing values left (``missing_left``), as
    scikit-learn's histogram boosting decides. :meth:`raw` is the
    baseline plus the leaves' values: the log-odds of a binary booster.
    """

    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    missing_left: npt.NDArray[np.bool_]
    is_leaf: npt.NDArray[np.bool_]
    value: npt.NDArray[np.float64]
    roots: npt.NDArray[np.int64]
    baseline: float
    #: Plain data about the model (columns, what it was fitted on), saved with it.
    meta: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def columns_read(self) -> int:
        """How many leading columns of a row the splits read."""
        inner = ~self.is_leaf
        return int(self.feature[inner].max()) + 1 if inner.any() else 0

    def raw(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The ensemble's raw score (log-odds) for each row of ``x``."""
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim != 2:
            raise ValueError(f"x: expected a 2-d array of rows, got shape {rows.shape}")
        if rows.shape[1] < self.columns_read:
            raise ValueError(f"x: the ensemble reads {self.columns_read} columns, got {rows.shape[1]}")
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        at = np.arange(len(rows))[:, None]
        while True:
            inner = ~self.is_leaf[node]
            if not inner.any():
                break
            values = rows[at, self.feature[node]]
            go_left = np.where(np.isnan(values), self.missing_left[node], values <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.baseline + self.value[node].sum(axis=1)

    def save(self, path: str | Path) -> Path:
        """Write the arrays and ``meta`` as an ``.npz`` (loaded back without pickle)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"format": FORMAT, "baseline": self.baseline, "meta": self.meta}, sort_keys=True)
        with path.open("wb") as fh:
            np.savez_compressed(fh, header=np.array(header), **{k: getattr(self, k) for k in _ARRAYS})
        return path

    @classmethod
    def load(cls, path: str | Path) -> TreeEnsemble:
        """Read a file :meth:`save` wrote, refusing anything else."""
        where = str(path)
        try:
            with np.load(path, allow_pickle=False) as doc:
                arrays = {k: doc[k] for k in doc.files}
        except (OSError, ValueError) as exc:
            raise EnsembleRejected(where, f"not a tree ensemble file ({exc})") from None
        missing = sorted({"header", *_ARRAYS} - set(arrays))
        if missing:
            raise EnsembleRejected(where, f"missing arrays {missing}")
        try:
            header = json.loads(str(arrays.pop("header")))
        except json.JSONDecodeError as exc:
            raise EnsembleRejected(where, f"unreadable header ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise EnsembleRejected(where, f"format {found!r}, expected {FORMAT!r}")
        ensemble = cls(
            feature=arrays["feature"].astype(np.int64), threshold=arrays["threshold"].astype(np.float64),
            left=arrays["left"].astype(np.int64), right=arrays["right"].astype(np.int64),
            missing_left=arrays["missing_left"].astype(bool), is_leaf=arrays["is_leaf"].astype(bool),
            value=arrays["value"].astype(np.float64), roots=arrays["roots"].astype(np.int64),
            baseline=float(header["baseline"]), meta=dict(header.get("meta") or {}),
        )
        ensemble.check(where)
        return ensemble

    def check(self, where: str = "tree ensemble") -> None:
        """Refuse arrays that would index out of range or loop (a damaged or hand-edited file)."""
        n = len(self.feature)
        if any(len(getattr(self, k)) != n for k in _ARRAYS if k != "roots"):
            raise EnsembleRejected(where, "node arrays of different lengths")
        inner = ~self.is_leaf
        for name in ("left", "right"):
            child = getattr(self, name)[inner]
            # Children come after their parent: walking down always ends at a leaf.
            if ((child <= np.flatnonzero(inner)) | (child >= n)).any():
                raise EnsembleRejected(where, f"{name}: a child out of order or out of range")
        if ((self.roots < 0) | (self.roots >= n)).any() or (self.feature[inner] < 0).any():
            raise EnsembleRejected(where, "roots or features out of range")


def from_hist_gradient_boosting(model: Any, meta: dict[str, Any] | None = None) -> TreeEnsemble:
    """Compile a fitted binary ``HistGradientBoostingClassifier`` (numeric features only).

    Reads the fitted predictors' node records once; the result's
    :meth:`TreeEnsemble.raw` equals the model's ``decision_function``.
    """
    trees = [p[0] for p in model._predictors]  # one predictor per round for a binary loss
    nodes = [t.nodes for t in trees]
    if any(n["is_categorical"].any() for n in nodes):
        raise ValueError("model: categorical splits are not supported")
    offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
    cat = np.concatenate(nodes)
    shift = np.concatenate([np.full(len(n), o) for n, o in zip(nodes, offsets, strict=True)])
    leaf = cat["is_leaf"].astype(bool)
    return TreeEnsemble(
        feature=cat["feature_idx"].astype(np.int64),
        threshold=cat["num_threshold"].astype(np.float64),
        left=np.where(leaf, 0, cat["left"].astype(np.int64) + shift),
        right=np.where(leaf, 0, cat["right"].astype(np.int64) + shift),
        missing_left=cat["missing_go_to_left"].astype(bool),
        is_leaf=leaf,
        value=np.where(leaf, cat["value"], 0.0),
        roots=offsets.astype(np.int64),
        baseline=float(np.ravel(model._baseline_prediction)[0]),
        meta=dict(meta or {}),
    )
