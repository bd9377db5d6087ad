"""An account against its own earlier self: the per-account baseline.

Within one match a careful cheater looks like a better player: a subtle
humanised aimbot on an average player reads like a good player, and good
players exist. What no honest player does is become that good overnight.
Most cheaters played clean before they bought the cheat, and their clean
matches are the best reference there is: the same hands, the same mouse,
the same ping. So the baseline reads each match's feature vector against
the median of the account's earlier *unflagged* matches:

- ``z = (value - own median) / scale``, where ``scale`` is how much that
  feature moves between two matches of the same honest account (form,
  lobbies and luck, measured on honest accounts of a training season);
- a logistic regression over the ``z`` of every feature turns them into a
  probability that the account changed the way cheats change players
  (tracking twice as steady, reactions 40 ms faster, the crosshair resting
  on the hitbox); its threshold is set on honest accounts' matches, like
  the per-match policy's, and its measured false-positive rate travels with
  every alert;
- the explanation is the terms of that sum: which features moved, from
  what to what, and how many of the account's own standard deviations.

Flagged matches are kept out of the history, so a cheater who is caught
does not become its own reference. An account needs :data:`MIN_HISTORY`
matches before it has a baseline; until then only the per-match model
speaks.

Pure: no I/O; the model is plain numbers (saved inside the model bundle).
Example::

    model = fit_baseline(rows, target_fpr=0.01)       # rows: (history, current, label)
    model.score(history=[v0, v1, v2], current=v3)     # probability, NaN without history
    model.explain(history=[v0, v1, v2], current=v3)   # the features that moved most
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from anticheat.features import FEATURE_NAMES
from anticheat.model import Policy, Verdict, threshold_for_fpr, to_matrix

__all__ = [
    "BASELINE_FEATURES",
    "HISTORY_MATCHES",
    "MIN_HISTORY",
    "AccountHistory",
    "BaselineModel",
    "BaselineRow",
    "fit_baseline",
    "history_from_scores",
    "replay_accounts",
    "season_rows",
]

FloatArray = npt.NDArray[np.float64]

#: Features that describe the match or the connection rather than the player's play.
_NOT_PLAY: Final = frozenset({"ping_ms", "alive_s", "tick_rate_drift"})
#: The features read against the account's own history.
BASELINE_FEATURES: Final[tuple[str, ...]] = tuple(n for n in FEATURE_NAMES if n not in _NOT_PLAY)
#: Unflagged matches an account needs before its baseline speaks.
MIN_HISTORY: Final = 2
#: Unflagged matches kept per account (the most recent).
HISTORY_MATCHES: Final = 8
#: |z| is capped: one feature that never moved for this account cannot decide alone.
_Z_CAP: Final = 6.0

Vector = Mapping[str, float]


def _own_median(history: Sequence[Vector], names: Sequence[str]) -> FloatArray:
    hist = to_matrix(list(history), names)
    out = np.full(len(names), math.nan)
    seen = ~np.isnan(hist).all(axis=0)
    if seen.any():
        out[seen] = np.nanmedian(hist[:, seen], axis=0)
    return out


@dataclass(frozen=True, slots=True)
class BaselineModel:
    """How far a match is from its account's own median, and what that says.

    ``scale[j]`` is feature ``j``'s match-to-match spread within honest
    accounts; ``coef``/``intercept`` the logistic regression over the
    capped ``z``; ``policy`` its threshold on honest accounts' matches.
    """

    features: tuple[str, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    policy: Policy
    metrics: dict[str, Any] = field(default_factory=dict)

    def z(self, history: Sequence[Vector], current: Vector) -> FloatArray:
        """Each feature's move from the account's own median, in its honest spread; 0 if unknown."""
        own = _own_median(history, self.features)
        now = to_matrix([current], self.features)[0]
        z = (now - own) / np.asarray(self.scale)
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), -_Z_CAP, _Z_CAP)

    def _logit(self, z: FloatArray) -> float:
        return float(z @ np.asarray(self.coef) + self.intercept)

    def score(self, history: Sequence[Vector], current: Vector) -> float:
        """Probability that ``current`` is a changed player; NaN with too little history."""
        if len(history) < MIN_HISTORY:
            return math.nan
        return 1.0 / (1.0 + math.exp(-self._logit(self.z(history, current))))

    def classify(self, history: Sequence[Vector], current: Vector) -> Verdict | None:
        """The policy's verdict, or None when the account has no baseline yet."""
        s = self.score(history, current)
        return None if math.isnan(s) else self.policy.classify(s)

    def explain(self, history: Sequence[Vector], current: Vector, k: int = 5) -> list[dict[str, float | str]]:
        """The ``k`` features pushing the score up most: value, own median, z and log-odds."""
        z = self.z(history, current)
        own = _own_median(history, self.features)
        terms = z * np.asarray(self.coef)
        out: list[dict[str, float | str]] = []
        for j in np.argsort(-terms)[:k]:
            if terms[j] <= 0.0:
                break
            out.append({
                "name": self.features[j],
                "value": round(float(current.get(self.features[j], math.nan)), 4),
                "own_median": round(float(own[j]), 4),
                "z": round(float(z[j]), 2),
                "log_odds": round(float(terms[j]), 3),
            })
        return out

    def to_doc(self) -> dict[str, Any]:
        """Plain numbers for the model file."""
        return {
            "features": list(self.features), "scale": [float(s) for s in self.scale],
            "coef": [float(c) for c in self.coef], "intercept": float(self.intercept),
            "policy": {"threshold": self.policy.threshold, "fpr": self.policy.fpr,
                       "target_fpr": self.policy.target_fpr},
            "metrics": self.metrics,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BaselineModel:
        pol = doc["policy"]
        return cls(
            features=tuple(str(n) for n in doc["features"]),
            scale=tuple(float(s) for s in doc["scale"]),
            coef=tuple(float(c) for c in doc["coef"]),
            intercept=float(doc["intercept"]),
            policy=Policy(float(pol["threshold"]), float(pol["fpr"]), float(pol["target_fpr"])),
            metrics=dict(doc.get("metrics", {})),
        )


@dataclass(frozen=True, slots=True)
class BaselineRow:
    """One match of one account with the account's earlier clean matches."""

    account: str
    history: tuple[Vector, ...]
    current: Vector
    label: int
    group: str = "clean"


def season_rows(matches: Iterable[tuple[str, int, Vector, int, str]]) -> list[BaselineRow]:
    """Rows from ``(account, round, vector, label, group)`` per account match.

    Each match is read against the account's earlier matches that were
    clean (label 0), the most recent :data:`HISTORY_MATCHES` of them; matches
    with fewer than :data:`MIN_HISTORY` clean ones before them have no row.
    """
    by_account: dict[str, list[tuple[int, Vector, int, str]]] = {}
    for account, rnd, vec, label, group in matches:
        by_account.setdefault(account, []).append((rnd, vec, label, group))
    rows: list[BaselineRow] = []
    for account, seq in sorted(by_account.items()):
        seq.sort(key=lambda m: m[0])
        clean: deque[Vector] = deque(maxlen=HISTORY_MATCHES)
        for _, vec, label, group in seq:
            if len(clean) >= MIN_HISTORY:
                rows.append(BaselineRow(account, tuple(clean), vec, label, group))
            if not label:
                clean.append(vec)
    return rows


def _within_scale(rows: Sequence[BaselineRow], names: Sequence[str]) -> FloatArray:
    """Spread of (match - own median) among honest accounts, per feature (robust, floored)."""
    honest = [r for r in rows if not r.label]
    if not honest:
        raise ValueError("fitting a baseline needs honest accounts with a history")
    dev = np.array([to_matrix([r.current], names)[0] - _own_median(r.history, names) for r in honest])
    scale = np.full(len(names), 1.0)
    for j in range(len(names)):
        col = dev[:, j][~np.isnan(dev[:, j])]
        if len(col) < 10:
            continue
        mad = 1.4826 * float(np.median(np.abs(col - np.median(col))))
        scale[j] = max(mad, 0.5 * float(np.std(col)), 1e-6)
    return scale


def fit_baseline(
    rows: Sequence[BaselineRow], *, target_fpr: float = 0.01, calib_share: float = 0.3, seed: int = 0,
    regularisation: float = 0.1,
) -> BaselineModel:
    """Fit scales and the regression on ``rows``, the threshold on held-out honest accounts.

    Accounts (not matches) are split: a ``calib_share`` of them sets the
    threshold and measures its false-positive rate, so an honest account's
    steady skill cannot make the threshold look better than it is.
    """
    from sklearn.linear_model import LogisticRegression

    names = BASELINE_FEATURES
    accounts = sorted({r.account for r in rows})
    rng = np.random.default_rng(seed)
    calib_accounts = set(rng.choice(accounts, size=max(1, round(calib_share * len(accounts))),
                                    replace=False).tolist())
    fit_rows = [r for r in rows if r.account not in calib_accounts]
    calib_rows = [r for r in rows if r.account in calib_accounts]
    labels = {r.label for r in fit_rows}
    if labels != {0, 1}:
        raise ValueError("fitting a baseline needs honest and cheating matches with a history")
    scale = _within_scale(fit_rows, names)
    draft = BaselineModel(names, tuple(float(s) for s in scale), (0.0,) * len(names), 0.0,
                          Policy(1.0, math.nan, target_fpr))
    x = np.array([draft.z(r.history, r.current) for r in fit_rows])
    y = np.array([r.label for r in fit_rows])
    lr = LogisticRegression(C=regularisation, max_iter=5000).fit(x, y)
    model = BaselineModel(names, draft.scale, tuple(float(c) for c in lr.coef_[0]),
                          float(lr.intercept_[0]), Policy(1.0, math.nan, target_fpr))
    clean_scores = [model.score(r.history, r.current) for r in calib_rows if not r.label]
    policy = threshold_for_fpr(clean_scores, target_fpr)
    return BaselineModel(
        names, model.scale, model.coef, model.intercept, policy,
        metrics={"fit_rows": len(fit_rows), "fit_cheating": int(y.sum()),
                 "calib_honest": len(clean_scores), "accounts": len(accounts)},
    )


@dataclass(slots=True)
class AccountHistory:
    """Each account's recent unflagged matches, as the service remembers them.

    Matches are keyed by match id: a worker adds the matches it judged
    itself and, from the scores topic, those every other worker judged, so
    the same match arriving twice counts once.
    """

    keep: int = HISTORY_MATCHES
    _matches: dict[str, deque[tuple[str, dict[str, float]]]] = field(default_factory=dict)

    def history(self, account: str) -> tuple[dict[str, float], ...]:
        return tuple(vec for _, vec in self._matches.get(account, ()))

    def add(self, account: str, vector: Mapping[str, float], match: str = "") -> bool:
        """Remember an unflagged match of ``account`` (the oldest drops out); False if known."""
        seen = self._matches.setdefault(account, deque(maxlen=self.keep))
        if match and any(m == match for m, _ in seen):
            return False
        seen.append((match, dict(vector)))
        return True

    def __len__(self) -> int:
        return len(self._matches)


def history_from_scores(
    scores: Iterable[Mapping[str, Any]], player: str, *, before_ts: int, exclude_match: str = ""
) -> list[dict[str, float]]:
    """``player``'s history as the service kept it, rebuilt from ``anticheat.score`` events.

    The final scores that joined the history (``window.history``) before
    ``before_ts``, oldest first, the last :data:`HISTORY_MATCHES` of them;
    ``exclude_match`` (the match being explained) never counts.
    """
    judged: dict[str, tuple[int, dict[str, float]]] = {}
    for e in scores:
        window, vector = e.get("window"), e.get("features")
        if (e.get("type") != "anticheat.score" or e.get("player") != player
                or not isinstance(window, dict) or window.get("history") is not True
                or not isinstance(vector, dict) or e.get("match") in (exclude_match, None)):
            continue
        ts = int(e.get("ts", 0))
        if ts < before_ts:
            judged[str(e["match"])] = (ts, {str(k): float(v) for k, v in vector.items()
                                            if isinstance(v, (int, float)) and not isinstance(v, bool)})
    ordered = sorted(judged.values(), key=lambda tv: tv[0])
    return [vec for _, vec in ordered[-HISTORY_MATCHES:]]


def replay_accounts(
    model: BaselineModel, matches: Sequence[tuple[str, int, Vector, bool]]
) -> list[float]:
    """Baseline score of each ``(account, round, vector, flagged)`` match, as the service would.

    Each account's matches are walked in round order with an
    :class:`AccountHistory`: a match is read against the unflagged matches
    before it, and joins the history only if neither ``flagged`` (the
    per-match model or a rule alerted) nor the baseline itself flags it.
    NaN where the account had too little history.
    """
    order = sorted(range(len(matches)), key=lambda i: (matches[i][0], matches[i][1]))
    memory = AccountHistory()
    out = [math.nan] * len(matches)
    for i in order:
        account, _, vec, flagged = matches[i]
        history = memory.history(account)
        out[i] = model.score(history, vec)
        if not flagged and not out[i] > model.policy.threshold:
            memory.add(account, vec)
    return out
