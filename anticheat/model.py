"""The model for the suspicious: score, decide, and save without pickle.

Three separate steps, as in river's ``score_one`` / ``classify``:

- :class:`Scorer` turns a feature vector into a score in [0, 1]: a
  ``HistGradientBoostingClassifier`` calibrated with ``CalibratedClassifierCV``
  (so a score reads as a probability and thresholds transfer between
  versions), plus an ``IsolationForest`` anomaly score for what the labelled
  cheats do not cover.
- :class:`Policy` decides. It is pure and knows its own false-positive rate:
  the threshold was chosen on *clean held-out* players for a target rate and
  the rate actually measured there is stored beside it, so every alert can
  say how often an honest player is flagged.
- :func:`save` / :func:`load` persist with skops, never pickle: a model file
  cannot execute code on load. :func:`load` checks every type in the file
  against an explicit allow-list and refuses a file whose feature schema
  differs from :data:`anticheat.features.FEATURE_NAMES`, or whose features
  were read with other tunables (:func:`anticheat.features.feature_recipe`),
  since a model scoring the wrong columns, or the right columns measured
  another way, would be silently wrong.

Scores are aggregated per player per match from two kinds of evidence: the
best score of the match-long vectors (taken once a player has enough data,
:data:`MIN_ALIVE_S`) and the best score of the 20 s windows. A
:class:`Combiner` reads each against the same best among clean held-out
players and keeps the rarer of the two (see there for why not the plain
maximum); the threshold is chosen on the same aggregate, so the stated
false-positive rate is per player per match, the unit an analyst reviews.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from anticheat.features import FEATURE_NAMES, feature_recipe
from gamebus.errors import FileRejected

if TYPE_CHECKING:
    from anticheat.baseline import BaselineModel

__all__ = [
    "FORMAT",
    "MIN_ALIVE_S",
    "TRUSTED_TYPES",
    "Combiner",
    "ModelBundle",
    "ModelRejected",
    "Policy",
    "Scorer",
    "Verdict",
    "combine_scores",
    "load",
    "percentile_of",
    "save",
    "threshold_for_fpr",
    "to_matrix",
]

FloatArray = npt.NDArray[np.float64]

#: Bumped when the saved layout changes; older files are refused.
FORMAT: Final = "gamebus-anticheat/2"
#: Snapshots of a player with less play than this are not scored.
MIN_ALIVE_S: Final = 15.0

#: Every type a model file may contain. Anything else is refused before load.
TRUSTED_TYPES: Final[tuple[str, ...]] = (
    "builtins.dict",
    "builtins.float",
    "builtins.int",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
    "collections.OrderedDict",
)


class ModelRejected(FileRejected):
    """A model file that will not be loaded: untrusted types, another schema or another recipe."""

    kind = "model "


def to_matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str] = FEATURE_NAMES) -> FloatArray:
    """Feature dicts to a 2-D array in schema order (missing names become NaN)."""
    return np.array([[float(r.get(n, math.nan)) for n in names] for r in rows], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the policy decided about one score, with the facts behind it."""

    flagged: bool
    score: float
    threshold: float
    fpr: float


@dataclass(frozen=True, slots=True)
class Policy:
    """Flag a score above ``threshold``; ``fpr`` is its measured false-positive rate."""

    threshold: float
    fpr: float
    target_fpr: float

    def classify(self, score: float) -> Verdict:
        return Verdict(score > self.threshold, score, self.threshold, self.fpr)


def threshold_for_fpr(clean_scores: Sequence[float] | FloatArray, target_fpr: float) -> Policy:
    """The lowest threshold whose false-positive rate on ``clean_scores`` is at most ``target_fpr``."""
    s = np.sort(np.asarray(clean_scores, dtype=np.float64))[::-1]
    if len(s) == 0:
        return Policy(1.0, math.nan, target_fpr)
    allowed = math.floor(target_fpr * len(s))
    # Flag strictly above the (allowed+1)-th highest clean score.
    threshold = float(s[min(allowed, len(s) - 1)])
    fpr = float(np.mean(s > threshold))
    return Policy(threshold, fpr, target_fpr)


@dataclass(frozen=True, slots=True)
class Combiner:
    """One score per player per match from the best match-long and the best window score.

    The plain maximum over both lets the noisier evidence set the bar: a
    player has a dozen 20 s windows and each is a fresh draw, so honest
    players' best window scores reach high, the 1% threshold has to sit
    above them, and a full-time cheater's steady match-long score no longer
    clears it (on held-out matches that cost a humanised aimbot a quarter of
    its recall). So each kind of evidence is read against its own kind among
    clean held-out players, as the share of them scoring at least as high
    (a tail share, ``(k + 1) / (n + 1)``), and the rarer of the two counts:
    the combined score is ``1 - min(tail_match, tail_window)``. A closet
    cheater still shows in the windows, a steady one in the match-long
    vector, and each sets its own bar. Missing evidence (no window yet) has
    a tail share of 1.
    """

    match_ref: tuple[float, ...]  # sorted best match-long scores of clean held-out players
    window_ref: tuple[float, ...]  # sorted best window scores of the same players

    @classmethod
    def fit(cls, best_match: Sequence[float] | FloatArray, best_window: Sequence[float] | FloatArray) -> Combiner:
        def ref(values: Sequence[float] | FloatArray) -> tuple[float, ...]:
            return tuple(sorted(float(v) for v in values if not math.isnan(v)))

        return cls(ref(best_match), ref(best_window))

    def combine(self, best_match: float, best_window: float) -> float:
        return 1.0 - min(_tail(self.match_ref, best_match), _tail(self.window_ref, best_window))

    def window_decides(self, best_match: float, best_window: float) -> bool:
        """Whether the window, not the match-long vector, is the rarer evidence."""
        return _tail(self.window_ref, best_window) < _tail(self.match_ref, best_match)


def combine_scores(combiner: Combiner | None, best_match: float, best_window: float) -> float:
    """One player's score: the combiner's rarer evidence, or without one the plain maximum (NaN: none yet).

    The one reading shared by the service (:meth:`ModelBundle.combine`) and
    training and evaluation (:func:`anticheat.train.combine_best`), so the
    threshold is chosen on the very score the service alerts on.
    """
    if combiner is None:
        return max((v for v in (best_match, best_window) if not math.isnan(v)), default=0.0)
    return combiner.combine(best_match, best_window)


def _tail(ref: Sequence[float], value: float) -> float:
    """Share of ``ref`` at or above ``value``, as ``(k + 1) / (n + 1)``; 1 when unknown.

    Past the highest reference every value would share the tail
    ``1 / (n + 1)``, and the combined score would tie there: a blatant
    cheater with the game's surest evidence level with the one honest
    outlier in a few thousand, an analyst's queue unordered at its top and
    recall at 0.1% FPR read as 0 whenever more than 0.1% of held-out clean
    players land past it (docs/anticheat.md, "Ties at the top"). So past
    the top the tail shrinks with how much of the distance from the top
    reference to 1 the value covers, down to half that share at 1: the
    order the raw scores give, while the tail stays within a factor of two
    of what the reference can measure (accounts add tails up as p-values).
    """
    if math.isnan(value) or not ref:
        return 1.0
    k = len(ref) - bisect.bisect_left(ref, value)
    share = 1.0 / (len(ref) + 1)
    if k == 0 and ref[-1] < 1.0:
        beyond = min((value - ref[-1]) / (1.0 - ref[-1]), 1.0)
        return share * (1.0 - 0.5 * beyond)
    return (k + 1) * share


@dataclass(slots=True)
class Scorer:
    """The fitted estimators and how to read their scores."""

    supervised: Any
    isolation: Any
    iso_cutoff: float
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def score_many(self, x: FloatArray) -> FloatArray:
        """Calibrated probability of cheating for each row."""
        proba: FloatArray = self.supervised.predict_proba(x)[:, 1]
        return proba

    def anomaly_many(self, x: FloatArray) -> FloatArray:
        """Isolation-forest anomaly score: higher is stranger (negated ``score_samples``)."""
        raw: FloatArray = -self.isolation.score_samples(x)
        return raw

    def score_one(self, x: Mapping[str, float]) -> float:
        return float(self.score_many(to_matrix([x], self.feature_names))[0])

    def anomaly_one(self, x: Mapping[str, float]) -> float:
        return float(self.anomaly_many(to_matrix([x], self.feature_names))[0])


@dataclass(slots=True)
class ModelBundle:
    """Everything a scoring service needs, as saved on disk.

    ``population`` maps each feature to its 101 percentiles among clean
    training players, for "this value is above 99.7% of players" in alerts.
    ``priors`` are the empirical-Bayes Beta priors the features shrink with.
    ``baseline`` reads each account's match against its own earlier ones
    (:mod:`anticheat.baseline`); None for a model trained without a season
    of accounts (``train --season-accounts 0``, the demo's quick model).
    """

    scorer: Scorer
    policy: Policy
    version: str
    seed: int
    combiner: Combiner | None = None  # None: the plain maximum (stand-in models in tests)
    priors: dict[str, tuple[float, float]] = field(default_factory=dict)
    population: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: BaselineModel | None = None  # accounts against their own history (anticheat.baseline)
    #: How the features it was trained on were read (anticheat.features.feature_recipe).
    recipe: dict[str, Any] = field(default_factory=feature_recipe)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.scorer.feature_names

    def combine(self, best_match: float, best_window: float) -> float:
        """The player's score from its best match-long and best window scores (NaN: none yet)."""
        return combine_scores(self.combiner, best_match, best_window)

    def window_decides(self, best_match: float, best_window: float) -> bool:
        """Whether the best window, not the match-long vector, explains the score."""
        if self.combiner is None:
            return best_window > best_match or (math.isnan(best_match) and not math.isnan(best_window))
        return self.combiner.window_decides(best_match, best_window)

    def percentile(self, name: str, value: float) -> float:
        return percentile_of(self.population.get(name, []), value)

    def top_features(self, x: Mapping[str, float], k: int = 5) -> list[dict[str, float | str]]:
        """The ``k`` features furthest from the population median, with percentiles."""
        ranked = []
        for name in self.feature_names:
            value = x.get(name, math.nan)
            if value is None or math.isnan(value):
                continue
            pct = self.percentile(name, value)
            if math.isnan(pct):
                continue
            ranked.append((abs(pct - 50.0), name, value, pct))
        ranked.sort(reverse=True)
        return [{"name": n, "value": round(v, 4), "percentile": round(p, 2)}
                for _, n, v, p in ranked[:k]]


def percentile_of(quantiles: Sequence[float], value: float) -> float:
    """Where ``value`` falls among 101 population percentiles (0..100), NaN if unknown."""
    if not quantiles or math.isnan(value):
        return math.nan
    q = np.asarray(quantiles, dtype=np.float64)
    if np.all(np.isnan(q)):
        return math.nan
    q = q[~np.isnan(q)]
    ranks = np.linspace(0.0, 100.0, len(q))
    lo, hi = int(np.searchsorted(q, value, "left")), int(np.searchsorted(q, value, "right"))
    if hi - lo > 1:  # a value shared by many players (zero teleports): the middle of the tie
        return float((ranks[lo] + ranks[hi - 1]) / 2.0)
    return float(np.interp(value, q, ranks))


def save(bundle: ModelBundle, path: str | Path) -> Path:
    """Write ``bundle`` with skops (no pickle), stamped with format, version, schema and seed."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "version": bundle.version,
        "seed": int(bundle.seed),
        "feature_names": list(bundle.feature_names),
        "feature_recipe": bundle.recipe,
        "supervised": bundle.scorer.supervised,
        "isolation": bundle.scorer.isolation,
        "iso_cutoff": float(bundle.scorer.iso_cutoff),
        "policy": {"threshold": float(bundle.policy.threshold), "fpr": float(bundle.policy.fpr),
                   "target_fpr": float(bundle.policy.target_fpr)},
        "combiner": None if bundle.combiner is None else {
            "match_ref": list(bundle.combiner.match_ref), "window_ref": list(bundle.combiner.window_ref)},
        "priors": {k: [float(a), float(b)] for k, (a, b) in bundle.priors.items()},
        "population": {k: [float(x) for x in v] for k, v in bundle.population.items()},
        "metrics": bundle.metrics,
        "baseline": None if bundle.baseline is None else bundle.baseline.to_doc(),
    }
    sio.dump(doc, path)
    return path


def _recipe_difference(recipe: object, expected: Mapping[str, Any]) -> str:
    """Which of the features' tunables differ, the model's value first."""
    if not isinstance(recipe, dict):
        return "its features were read by a version that did not record how"
    names = sorted(set(recipe) | set(expected))
    changed = [f"{k}: {recipe.get(k, '-')!r} in the model, {expected.get(k, '-')!r} in this version"
               for k in names if recipe.get(k) != expected.get(k)]
    return "its features were read another way (" + "; ".join(changed) + ")"


def load(
    path: str | Path,
    *,
    expected_features: Sequence[str] = FEATURE_NAMES,
    expected_recipe: Mapping[str, Any] | None = None,
) -> ModelBundle:
    """Load a model saved by :func:`save`, refusing untrusted types and other schemas.

    ``expected_recipe`` defaults to this version's :func:`feature_recipe`;
    a model whose features were read another way is refused like one with
    other feature names.
    """
    import skops.io as sio

    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip, not skops: say so in one line
        raise ModelRejected(str(path), f"not a skops model file ({exc})") from None
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise ModelRejected(str(path), f"untrusted types {unknown}")
    doc = sio.load(path, trusted=list(TRUSTED_TYPES))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelRejected(str(path), f"format {doc.get('format') if isinstance(doc, dict) else '?'!r}, "
                                       f"expected {FORMAT!r}")
    names = tuple(doc.get("feature_names", ()))
    if names != tuple(expected_features):
        missing = sorted(set(expected_features) - set(names))
        extra = sorted(set(names) - set(expected_features))
        raise ModelRejected(
            str(path),
            f"feature schema differs (missing {missing}, unexpected {extra}"
            + (", same names in another order" if not missing and not extra else "")
            + "); retrain with this version",
        )
    recipe = doc.get("feature_recipe")
    expected = dict(feature_recipe() if expected_recipe is None else expected_recipe)
    if recipe != expected:
        raise ModelRejected(str(path), _recipe_difference(recipe, expected) + "; retrain with this version")
    from anticheat.baseline import BaselineModel

    pol = doc["policy"]
    comb = doc.get("combiner")
    base = doc.get("baseline")
    if base is not None and not {"classifier", "logged"} <= set(base):
        raise ModelRejected(str(path), "its account baseline has an older layout; retrain with this version")
    return ModelBundle(
        scorer=Scorer(doc["supervised"], doc["isolation"], float(doc["iso_cutoff"]), names),
        policy=Policy(float(pol["threshold"]), float(pol["fpr"]), float(pol["target_fpr"])),
        version=str(doc["version"]),
        seed=int(doc["seed"]),
        combiner=None if comb is None else Combiner(tuple(map(float, comb["match_ref"])),
                                                    tuple(map(float, comb["window_ref"]))),
        priors={k: (float(v[0]), float(v[1])) for k, v in doc.get("priors", {}).items()},
        population={k: list(v) for k, v in doc.get("population", {}).items()},
        metrics=dict(doc.get("metrics", {})),
        baseline=None if base is None else BaselineModel.from_doc(base),
        recipe=dict(recipe),
    )
