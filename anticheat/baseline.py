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
  features on a ratio scale (times, angles, jitter) are compared as logs,
  so "half the jitter" reads the same for a pro and for a casual player;
- a gradient-boosted classifier over the ``z`` of every play feature
  turns them into a probability that the account changed the way cheats
  change players (tracking twice as steady, reactions 40 ms faster, the
  crosshair resting on the hitbox, runs a tenth faster); its threshold is
  set on honest accounts' matches, like the per-match policy's, and its
  measured false-positive rate travels with every alert;
- the explanation lists the features that moved furthest, from what (the
  account's own median) to what, in honest spreads.

Flagged matches are kept out of the history, so a cheater who is caught
does not become its own reference. An account needs :data:`MIN_HISTORY`
matches before it has a baseline; until then only the per-match model
speaks.

Pure: no I/O; the model is saved inside the model bundle (skops, no pickle).
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
from gamebus.events import DEFAULT_TOPICS, HISTORY_TOPIC

__all__ = [
    "BASELINE_FEATURES",
    "HISTORY_MATCHES",
    "HISTORY_MAX_AGE_MS",
    "MIN_HISTORY",
    "AccountHistory",
    "BaselineModel",
    "BaselineRow",
    "fit_baseline",
    "history_before",
    "history_event",
    "judged_vector",
    "records_before",
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
#: A judged match older than this (event time, ms) no longer counts: the
#: history topic's retention, so a worker that has run for months judges an
#: account against the same matches as one restarted today, which can only
#: read back what the topic still holds.
HISTORY_MAX_AGE_MS: Final[int] = next(
    s.retention_ms or 0 for s in DEFAULT_TOPICS if s.name == HISTORY_TOPIC)
#: |z| is capped: one feature that never moved for this account cannot decide alone.
_Z_CAP: Final = 6.0
#: Ratio-scale features are compared as logs; a zero reads as this.
_LOG_FLOOR: Final = 1e-6

Vector = Mapping[str, float]


def _as_read(rows: Sequence[Vector], names: Sequence[str], logged: Sequence[bool]) -> FloatArray:
    """Vectors as the baseline reads them: log of the ratio-scale features (NaN stays NaN)."""
    x = to_matrix(list(rows), names)
    cols = np.asarray(logged, dtype=bool)
    if cols.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            x[:, cols] = np.log(np.maximum(x[:, cols], _LOG_FLOOR))
    return x


def _own_median(history: Sequence[Vector], names: Sequence[str], logged: Sequence[bool]) -> FloatArray:
    hist = _as_read(history, names, logged)
    out = np.full(len(names), math.nan)
    seen = ~np.isnan(hist).all(axis=0)
    if seen.any():
        out[seen] = np.nanmedian(hist[:, seen], axis=0)
    return out


@dataclass(frozen=True, slots=True)
class BaselineModel:
    """How far a match is from its account's own median, and what that says.

    ``logged[j]`` says feature ``j`` is compared as a ratio (its log):
    reaction times, aim errors and jitter scale with the player, so a pro
    whose tracking jitter halves moves as far as a casual player whose does.
    ``scale[j]`` is the feature's match-to-match spread within honest
    accounts; ``classifier`` a gradient-boosted classifier over the capped
    ``z`` (cheats move different features: a speedhack the run speed, an
    aimbot the tracking and the reaction); ``policy`` its threshold on
    honest accounts' matches.
    """

    features: tuple[str, ...]
    logged: tuple[bool, ...]
    scale: tuple[float, ...]
    classifier: Any
    policy: Policy
    metrics: dict[str, Any] = field(default_factory=dict)

    def z(self, history: Sequence[Vector], current: Vector) -> FloatArray:
        """Each feature's move from the account's own median, in its honest spread; 0 if unknown."""
        return self.z_many([history], [current])[0]

    def z_many(self, histories: Sequence[Sequence[Vector]], currents: Sequence[Vector]) -> FloatArray:
        own = np.array([_own_median(h, self.features, self.logged) for h in histories])
        now = _as_read(currents, self.features, self.logged)
        with np.errstate(invalid="ignore"):
            z = (now - own) / np.asarray(self.scale)
        clipped: FloatArray = np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), -_Z_CAP, _Z_CAP)
        return clipped

    def score_many(self, histories: Sequence[Sequence[Vector]], currents: Sequence[Vector]) -> FloatArray:
        """Probability that each current match is a changed player; NaN with too little history."""
        out = np.full(len(currents), math.nan)
        ready = [i for i, h in enumerate(histories) if len(h) >= MIN_HISTORY]
        if ready:
            z = self.z_many([histories[i] for i in ready], [currents[i] for i in ready])
            out[ready] = self.classifier.predict_proba(z)[:, 1]
        return out

    def score(self, history: Sequence[Vector], current: Vector) -> float:
        """Probability that ``current`` is a changed player; NaN with too little history."""
        return float(self.score_many([history], [current])[0])

    def classify(self, history: Sequence[Vector], current: Vector) -> Verdict | None:
        """The policy's verdict, or None when the account has no baseline yet."""
        s = self.score(history, current)
        return None if math.isnan(s) else self.policy.classify(s)

    def explain(self, history: Sequence[Vector], current: Vector, k: int = 5) -> list[dict[str, float | str]]:
        """The ``k`` features that moved furthest from the account's own median.

        Each with its value now, the account's own median of the same
        feature and ``z``, the move in honest match-to-match spreads (a
        ratio's log for :attr:`logged` features). What moved most is what
        an analyst checks first; the classifier reads them all together.
        """
        z = self.z(history, current)
        hist = to_matrix(list(history), self.features)
        out: list[dict[str, float | str]] = []
        for j in np.argsort(-np.abs(z), kind="stable")[:k]:
            if z[j] == 0.0:
                break
            col = hist[:, j][~np.isnan(hist[:, j])]
            out.append({
                "name": self.features[j],
                "value": round(float(current.get(self.features[j], math.nan)), 4),
                "own_median": round(float(np.median(col)), 4) if len(col) else math.nan,
                "z": round(float(z[j]), 2),
            })
        return out

    def to_doc(self) -> dict[str, Any]:
        """The model file's form: plain values and the fitted classifier (saved by skops)."""
        return {
            "features": list(self.features), "logged": [bool(b) for b in self.logged],
            "scale": [float(s) for s in self.scale], "classifier": self.classifier,
            "policy": {"threshold": self.policy.threshold, "fpr": self.policy.fpr,
                       "target_fpr": self.policy.target_fpr},
            "metrics": self.metrics,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BaselineModel:
        pol = doc["policy"]
        return cls(
            features=tuple(str(n) for n in doc["features"]),
            logged=tuple(bool(b) for b in doc["logged"]),
            scale=tuple(float(s) for s in doc["scale"]),
            classifier=doc["classifier"],
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


def _ratio_scale(rows: Sequence[BaselineRow], names: Sequence[str]) -> tuple[bool, ...]:
    """Features positive in 99% of honest matches: compared as ratios (logs)."""
    honest = to_matrix([r.current for r in rows if not r.label], names)
    out = []
    for j in range(len(names)):
        col = honest[:, j][~np.isnan(honest[:, j])]
        out.append(bool(len(col) >= 10 and np.percentile(col, 1) > 0.0))
    return tuple(out)


def _within_scale(rows: Sequence[BaselineRow], names: Sequence[str], logged: Sequence[bool]) -> FloatArray:
    """Spread of (match - own median) among honest accounts, per feature (robust, floored)."""
    honest = [r for r in rows if not r.label]
    if not honest:
        raise ValueError("fitting a baseline needs honest accounts with a history")
    own = np.array([_own_median(r.history, names, logged) for r in honest])
    dev = _as_read([r.current for r in honest], names, logged) - own
    scale = np.full(len(names), 1.0)
    for j in range(len(names)):
        col = dev[:, j][np.isfinite(dev[:, j])]
        if len(col) < 10:
            continue
        mad = 1.4826 * float(np.median(np.abs(col - np.median(col))))
        scale[j] = max(mad, 0.5 * float(np.std(col)), 1e-6)
    return scale


def fit_baseline(
    rows: Sequence[BaselineRow], *, target_fpr: float = 0.01, folds: int = 5, seed: int = 0,
    boosting_rounds: int = 300,
) -> BaselineModel:
    """Fit the reading (ratio features, scales) and the classifier on ``rows``.

    The threshold comes from out-of-fold scores of honest matches, folds
    grouped by account: every honest match is scored by a classifier that
    never saw its account, so an honest account's steady skill cannot make
    the threshold look better than it is, and the final classifier still
    learns from every account.

    Fits on one OpenMP thread, as :func:`anticheat.train.fit` does: on a
    machine shared with other work, scikit-learn's threads wait on each
    other (this fit once ran past two minutes beside a training run).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit_baseline(rows, target_fpr=target_fpr, folds=folds, seed=seed,
                             boosting_rounds=boosting_rounds)


def _fit_baseline(
    rows: Sequence[BaselineRow], *, target_fpr: float, folds: int, seed: int, boosting_rounds: int,
) -> BaselineModel:
    from sklearn.model_selection import GroupKFold

    names = BASELINE_FEATURES
    labels = np.array([r.label for r in rows])
    if set(labels.tolist()) != {0, 1}:
        raise ValueError("fitting a baseline needs honest and cheating matches with a history")
    logged = _ratio_scale(rows, names)
    scale = tuple(float(s) for s in _within_scale(rows, names, logged))
    draft = BaselineModel(names, logged, scale, None, Policy(1.0, math.nan, target_fpr))
    x = draft.z_many([r.history for r in rows], [r.current for r in rows])
    accounts = np.array([r.account for r in rows])
    out_of_fold = np.full(len(rows), math.nan)
    for k, (fit_idx, held_idx) in enumerate(GroupKFold(n_splits=folds).split(x, labels, accounts)):
        if len(set(labels[fit_idx].tolist())) < 2:
            continue
        clf = _classifier(boosting_rounds, seed + k, len(fit_idx)).fit(x[fit_idx], labels[fit_idx])
        out_of_fold[held_idx] = clf.predict_proba(x[held_idx])[:, 1]
    honest = (labels == 0) & ~np.isnan(out_of_fold)
    policy = threshold_for_fpr(out_of_fold[honest], target_fpr)
    return BaselineModel(
        names, logged, scale, _classifier(boosting_rounds, seed, len(rows)).fit(x, labels), policy,
        metrics={"rows": len(rows), "cheating": int(labels.sum()), "honest_scored": int(honest.sum()),
                 "accounts": len(set(accounts.tolist()))},
    )


def _classifier(rounds: int, seed: int, rows: int) -> Any:
    """Boosted trees; leaves of at least 20 rows (scikit-learn's default) once there are 1,000
    rows, fewer on a small season, whose few cheating rows would otherwise never get a leaf."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=rounds, learning_rate=0.05, early_stopping=False, random_state=seed,
        min_samples_leaf=int(np.clip(rows // 50, 5, 20)), max_features=0.5)


@dataclass(slots=True)
class AccountHistory:
    """Each account's recent unflagged matches, as the service remembers them.

    Matches are keyed by match id: a worker adds the matches it judged
    itself and, from the history topic, those every other worker judged, so
    the same match arriving twice counts once. Each match carries its event
    time (``ts``, ms): at most ``keep`` of them count, none older than
    ``max_age_ms`` before the match being judged (0: no limit), and
    :meth:`prune` forgets accounts with nothing that recent, so a
    long-running worker's memory holds only the accounts still playing.
    """

    keep: int = HISTORY_MATCHES
    max_age_ms: int = HISTORY_MAX_AGE_MS
    _matches: dict[str, deque[tuple[str, int, dict[str, float]]]] = field(default_factory=dict)

    def history(self, account: str, now_ts: int | None = None) -> tuple[dict[str, float], ...]:
        """The account's matches, oldest first; with ``now_ts``, only those recent enough then."""
        since = self._since(now_ts)
        return tuple(vec for _, ts, vec in self._matches.get(account, ()) if ts >= since)

    def add(self, account: str, vector: Mapping[str, float], match: str = "", ts: int = 0) -> bool:
        """Remember an unflagged match of ``account`` (the oldest drops out); False if known."""
        seen = self._matches.setdefault(account, deque(maxlen=self.keep))
        if match and any(m == match for m, _, _ in seen):
            return False
        entry = (match, ts, dict(vector))
        if seen and ts < seen[-1][1]:  # a record from the topic older than one already held
            ordered = sorted([*seen, entry], key=lambda e: e[1])
            self._matches[account] = deque(ordered[-self.keep:], maxlen=self.keep)
        else:
            seen.append(entry)
        return True

    def prune(self, now_ts: int) -> int:
        """Forget every account whose newest match is too old at ``now_ts``; how many went."""
        since = self._since(now_ts)
        stale = [a for a, seen in self._matches.items() if not seen or seen[-1][1] < since]
        for a in stale:
            del self._matches[a]
        return len(stale)

    def _since(self, now_ts: int | None) -> float:
        if now_ts is None or self.max_age_ms <= 0:
            return -math.inf
        return now_ts - self.max_age_ms

    def __len__(self) -> int:
        return len(self._matches)


def history_event(match: str, ts: int, player: str, vector: Mapping[str, float],
                  model_version: str | None = None) -> dict[str, Any]:
    """The ``anticheat.history`` record of one judged clean match of ``player``.

    Published keyed by player to the durable history topic, so every
    worker, a restarted one and ``explain`` read the same history back.
    """
    event: dict[str, Any] = {
        "type": "anticheat.history", "match": match, "ts": ts, "player": player,
        "features": {k: round(v, 6) for k, v in vector.items() if not math.isnan(v)},
    }
    if model_version is not None:
        event["model_version"] = model_version
    return event


def _is_judged(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is a well-formed ``anticheat.history`` record (its vector not yet read)."""
    return (event.get("type") == "anticheat.history" and isinstance(event.get("features"), dict)
            and isinstance(event.get("player"), str) and isinstance(event.get("match"), str))


def judged_vector(event: Mapping[str, Any]) -> dict[str, float] | None:
    """The match-long vector of an ``anticheat.history`` record, or None for any other event."""
    if not _is_judged(event):
        return None
    return {str(k): float(v) for k, v in event["features"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def history_before(
    records: Iterable[Mapping[str, Any]], player: str, *, before_ts: int, exclude_match: str = ""
) -> list[dict[str, float]]:
    """``player``'s history as the service kept it, rebuilt from ``anticheat.history`` records.

    The judged clean matches (:func:`judged_vector`) before ``before_ts``,
    kept by an :class:`AccountHistory` as the service keeps them (the last
    :data:`HISTORY_MATCHES`, none older than :data:`HISTORY_MAX_AGE_MS` at
    ``before_ts``), oldest first; ``exclude_match`` (the match being
    explained) never counts.
    """
    memory = AccountHistory()
    for e in records_before(records, before_ts=before_ts, exclude_match=exclude_match):
        vector = judged_vector(e)
        if vector is not None and e["player"] == player:
            memory.add(player, vector, e["match"], int(e.get("ts", 0)))
    return list(memory.history(player, before_ts))


def records_before(
    records: Iterable[Mapping[str, Any]], *, before_ts: int, exclude_match: str = ""
) -> list[Mapping[str, Any]]:
    """The ``anticheat.history`` records judged before ``before_ts``, ``exclude_match`` left out.

    What an account's history held when a match starting at ``before_ts``
    was played: a re-read of that match (``explain``, ``rescore``) must not
    see later matches, nor the match itself if it was judged clean.
    """
    return [e for e in records
            if _is_judged(e) and e["match"] != exclude_match
            and int(e.get("ts", 0)) < before_ts]


def replay_accounts(
    model: BaselineModel, matches: Sequence[tuple[str, int, Vector, bool]]
) -> list[float]:
    """Baseline score of each ``(account, round, vector, flagged)`` match, as the service would.

    Each account's matches are walked in round order with an
    :class:`AccountHistory`: a match is read against the unflagged matches
    before it, and joins the history only if neither ``flagged`` (the
    per-match model or a rule alerted) nor the baseline itself flags it.
    NaN where the account had too little history. A round is scored in one
    batch: within a round an account plays once.
    """
    by_round: dict[int, list[int]] = {}
    for i, (_, rnd, _, _) in enumerate(matches):
        by_round.setdefault(rnd, []).append(i)
    memory = AccountHistory()
    out = [math.nan] * len(matches)
    for rnd in sorted(by_round):
        batch = sorted(by_round[rnd], key=lambda i: matches[i][0])
        if len({matches[i][0] for i in batch}) != len(batch):
            raise ValueError(f"an account plays twice in round {rnd}")
        scores = model.score_many([memory.history(matches[i][0]) for i in batch],
                                  [matches[i][2] for i in batch])
        for i, score in zip(batch, scores, strict=True):
            account, _, vec, flagged = matches[i]
            out[i] = float(score)
            if not flagged and not score > model.policy.threshold:
                memory.add(account, vec, str(i))
    return out
