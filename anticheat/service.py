"""The scoring core of the service: events in, score and alert events out.

Pure and synchronous, so the live consumer (:mod:`anticheat.consumer`), the
offline replay that measures throughput and ``gamebus anticheat rescore``
all run the same code. Time is the events' ``ts``; nothing here reads a
clock or a socket.

Per match it keeps a reorder buffer: positions and match events come from
two topics (two partitions) that a consumer reads at different paces,
especially when catching up from history. Each source partition has a
watermark (the newest ``ts`` it delivered); a match's buffered events are
released up to the lowest watermark of the *active* sources it has seen,
minus ``reorder_ms``. A source that delivered nothing for ``idle_source_ms``
(arrival time, passed in by the edge on a clock that stands still while the
worker is busy scoring) stops holding others back, so a quiet topic cannot
stall scoring. Next come the online features,
the rules, and per player the best model score of its match-long vector
and the best of its complete sliding windows, combined into one score by
the model's :class:`~anticheat.model.Combiner` (the per-player-per-match
aggregate the policy's threshold was chosen on).

The steps stay separate, as in ``STYLE.md``: :meth:`ScoringCore.feed`
updates state; every ``score_interval_ms`` of match time the players'
match-long vectors and the windows completed since are scored in one batch
(``scorer.score_many``) and the :class:`~anticheat.model.Policy`
classifies each aggregate; alerts are built with their explanation. A flagged
player is alerted once per kind and match, so the queue is not flooded.

When a match ends, each player's final match-long vector is also read
against the player's own earlier unflagged matches when the model carries a
per-account baseline (:mod:`anticheat.baseline`): a ``baseline`` alert says
which features moved from the account's own median and by how much. A match
that raised no alert of any kind joins that history.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from anticheat.baseline import AccountHistory, history_event, judged_vector
from anticheat.dataset import MIN_WINDOW_ALIVE_MS, SNAPSHOT_MS
from anticheat.features import FeatureConfig, MatchFeatures
from anticheat.model import MIN_ALIVE_S, ModelBundle, to_matrix
from anticheat.rules import MatchRules, RuleConfig, Violation
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC

__all__ = ["CoreConfig", "Counters", "ScoringCore", "feature_config_for"]

Ref = tuple[str, int, int]  # topic, partition, offset

#: How often (event time) accounts with no recent enough match are forgotten.
PRUNE_EVERY_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """Cadence and buffering of the service (all in event-time milliseconds)."""

    reorder_ms: int = 250
    idle_source_ms: int = 1_000
    topics: tuple[str, ...] = (POSITIONS_TOPIC, EVENTS_TOPIC)
    #: The cadence the model's cut-offs were chosen on (match-long snapshots
    #: every ``SNAPSHOT_MS``). Every 5 s gave each honest player three times
    #: the chances to cross them: on 240 held-out matches 2.47% of clean
    #: players raised some alert at 5 s, 1.93% at 15 s (docs/anticheat.md).
    score_interval_ms: int = SNAPSHOT_MS
    top_features: int = 6
    evidence_events: int = 12
    idle_match_ms: int = 120_000


@dataclass(slots=True)
class Counters:
    """What an operator watches: volume, skipped input, output, scoring work."""

    events: int = 0
    malformed: int = 0
    late: int = 0
    scored: int = 0
    scores: int = 0
    alerts: int = 0
    matches_closed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


def feature_config_for(bundle: ModelBundle | None) -> FeatureConfig:
    """Features shrunk with the priors the model was trained with."""
    if bundle is None or not bundle.priors:
        return FeatureConfig()
    default = FeatureConfig()
    return FeatureConfig(
        accuracy_prior=bundle.priors.get("accuracy", default.accuracy_prior),
        headshot_prior=bundle.priors.get("headshot", default.headshot_prior),
    )


@dataclass(slots=True)
class _PlayerOut:
    best: float = 0.0  # the combined score (ModelBundle.combine)
    best_anomaly: float = -math.inf
    best_match: float = math.nan  # best match-long score
    best_window_score: float = math.nan  # best window score, its vector and span
    window_vec: dict[str, float] = field(default_factory=dict)
    window_span: tuple[int, int] | None = None
    best_window: tuple[int, int] | None = None  # the window's span when it decides the score
    alerted: set[str] = field(default_factory=set)
    refs: deque[Ref] = field(default_factory=lambda: deque(maxlen=12))
    first_pos: Ref | None = None
    last_pos: Ref | None = None


class _Match:
    def __init__(self, match: str, fcfg: FeatureConfig, rcfg: RuleConfig) -> None:
        self.features = MatchFeatures(match, fcfg)
        self.rules = MatchRules(match, rcfg)
        #: (ts, 0 for a match event / 1 for a position, arrival order, event, ref)
        self.heap: list[tuple[int, int, int, dict[str, Any], Ref | None]] = []
        self.sources: set[tuple[str, int]] = set()
        self.released_ts = -1
        self.max_ts = 0
        self.next_score_ts: int | None = None
        self.players: dict[str, _PlayerOut] = {}
        self.ended = False
        self.judged = False  # read against the accounts' own history (once, at the end)

    def out(self, player: str) -> _PlayerOut:
        p = self.players.get(player)
        if p is None:
            p = self.players[player] = _PlayerOut()
        return p


class ScoringCore:
    """Feed decoded events with their bus offsets; collect events to publish."""

    def __init__(
        self,
        bundle: ModelBundle | None,
        *,
        config: CoreConfig | None = None,
        rule_config: RuleConfig | None = None,
    ) -> None:
        self.bundle = bundle
        if bundle is not None:
            _predict_on_one_thread()
        self.config = config or CoreConfig()
        self.rule_config = rule_config or RuleConfig()
        self.feature_config = feature_config_for(bundle)
        self.matches: dict[str, _Match] = {}
        #: Each account's recent unflagged matches, for the baseline.
        self.accounts = AccountHistory()
        self._pruned_ts = -PRUNE_EVERY_MS  # event time of the last AccountHistory.prune
        self.counters = Counters()
        self.max_ts = 0
        self._seq = 0
        # (topic, partition) -> [watermark ts, last arrival ms or None]
        self._sources: dict[tuple[str, int], list[int | None]] = {}

    # --- input --------------------------------------------------------------

    def feed(
        self, event: Mapping[str, Any], ref: Ref | None = None, *, arrival_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Buffer one event; return the score and alert events now due.

        ``ref`` is the record's ``(topic, partition, offset)``; ``arrival_ms``
        the wall-clock time it was received (None for offline replays).
        """
        self.counters.events += 1
        etype = event.get("type")
        if not isinstance(etype, str) or etype.startswith("anticheat."):
            return []
        match = event["match"]
        m = self.matches.get(match)
        if m is None:
            m = self.matches[match] = _Match(match, self.feature_config, self.rule_config)
        ts = int(event["ts"])
        if ref is not None:
            source = (ref[0], ref[1])
            m.sources.add(source)
            mark = self._sources.setdefault(source, [ts, arrival_ms])
            mark[0] = max(int(mark[0] or 0), ts)
            mark[1] = arrival_ms
        if ts < m.released_ts:
            self.counters.late += 1  # behind what was already scored: skip, never rewind
            return []
        self._seq += 1
        # Within one tick a game server's match events come before its
        # positions (a spawn, then the spawned player's first position), but
        # the two topics arrive in any order: sort on that, then on arrival.
        heapq.heappush(m.heap, (ts, int(etype == "pos"), self._seq, dict(event), ref))
        m.max_ts = max(m.max_ts, ts)
        self.max_ts = max(self.max_ts, ts)
        out: list[dict[str, Any]] = []
        self._drain(m, self._release_ts(m, arrival_ms), out)
        return out

    def poll(self, arrival_ms: int | None = None) -> list[dict[str, Any]]:
        """Release what the watermarks now allow in every match (call it periodically)."""
        out: list[dict[str, Any]] = []
        for m in self.matches.values():
            self._drain(m, self._release_ts(m, arrival_ms), out)
        return out

    def _release_ts(self, m: _Match, now: int | None) -> float:
        if not m.sources:
            return m.max_ts - self.config.reorder_ms  # offline replay without offsets
        marks = []
        seen_topics = {t for t, _ in m.sources}
        missing = any(t not in seen_topics for t in self.config.topics)
        for source in m.sources:
            wm, seen = self._sources[source]
            if now is None or seen is None or now - seen <= self.config.idle_source_ms:
                marks.append(int(wm or 0))
        if not marks:
            return math.inf  # every source went quiet: nothing is coming to wait for
        if missing:
            return -math.inf  # the other topic of this match has not been read yet
        return min(min(marks), m.max_ts) - self.config.reorder_ms

    def malformed(self) -> None:
        """Count an input that could not be decoded (the edge skips it)."""
        self.counters.malformed += 1

    def flush(self) -> list[dict[str, Any]]:
        """Release every buffered event and score everyone now (shutdown, end of replay)."""
        out: list[dict[str, Any]] = []
        for m in self.matches.values():
            ended = m.ended and not m.heap  # scored for good at its end already
            self._drain(m, math.inf, out)
            if not ended:
                self._score(m, out, final=True)
        return out

    def close_idle(self, now_ts: int | None = None, *, arrival_ms: int | None = None) -> int:
        """Forget matches that nothing more will come for; returns how many.

        A match is idle once the partitions it lives on have delivered
        events ``idle_match_ms`` newer than its newest one: judged by its
        own sources, not the newest event anywhere, because a worker catching
        up reads partitions at different paces and a small topic runs far
        ahead of a busy one. A match whose sources all went quiet (no
        delivery for ``idle_source_ms`` by ``arrival_ms``) is idle once
        ``now_ts`` (default: the newest event seen anywhere) is that far
        ahead, so a partition that falls silent does not keep its matches
        forever. Offline replays without offsets close on ``now_ts`` alone.
        """
        newest = self.max_ts if now_ts is None else now_ts
        limit = self.config.idle_match_ms
        idle = []
        for k, m in self.matches.items():
            if not m.sources:
                if newest - m.max_ts > limit:
                    idle.append(k)
                continue
            marks = [self._sources[s] for s in m.sources]
            moved_on = min(int(wm or 0) for wm, _ in marks) - m.max_ts > limit
            quiet = arrival_ms is not None and all(
                seen is not None and arrival_ms - seen > self.config.idle_source_ms for _, seen in marks)
            if moved_on or (quiet and newest - m.max_ts > limit):
                idle.append(k)
        for k in idle:
            del self.matches[k]
        self.counters.matches_closed += len(idle)
        return len(idle)

    def _drain(self, m: _Match, until: float, out: list[dict[str, Any]]) -> None:
        while m.heap and m.heap[0][0] <= until:
            ts, _, _, event, ref = heapq.heappop(m.heap)
            m.released_ts = ts
            self._apply(m, event, ref, out)
            if event.get("type") == "match_end":
                m.ended = True
                self._score(m, out, final=True)
                continue
            if m.next_score_ts is None:
                m.next_score_ts = ts + self.config.score_interval_ms
            elif ts >= m.next_score_ts:
                self._score(m, out, final=False)
                m.next_score_ts = ts + self.config.score_interval_ms

    def _apply(self, m: _Match, event: dict[str, Any], ref: Ref | None, out: list[dict[str, Any]]) -> None:
        try:
            m.features.update(event)
            violations = m.rules.update(event, ref)
        except (KeyError, TypeError, ValueError, OverflowError):
            self.counters.malformed += 1  # valid by schema but unusable: skip, never crash
            return
        player = event.get("player")
        if isinstance(player, str) and ref is not None:
            p = m.out(player)
            if event.get("type") == "pos":
                p.first_pos = p.first_pos or ref
                p.last_pos = ref
            elif event.get("type") in ("shot", "hit", "kill"):
                p.refs.append(ref)
        for v in violations:
            out.append(self._rule_alert(m, v, int(event["ts"])))

    # --- scoring and alerts -------------------------------------------------

    def _score(self, m: _Match, out: list[dict[str, Any]], *, final: bool) -> None:
        if self.bundle is None:
            return
        feats = m.features
        step = feats.median_step_ms()
        ready = [(name, st) for name, st in feats.players.items()
                 if st.alive_ms >= MIN_ALIVE_S * 1000]
        # Complete windows are scored once, beside the match-long vectors.
        windows = [(name, vec, (w.start, w.end)) for w in feats.take_windows()
                   for name, vec in feats.window_vectors(w, min_alive_ms=MIN_WINDOW_ALIVE_MS).items()]
        if not ready and not windows:
            return
        vectors = [st.vector(median_step_ms=step) for _, st in ready]
        x = to_matrix(vectors + [vec for _, vec, _ in windows], self.bundle.feature_names)
        scores = self.bundle.scorer.score_many(x)
        anomalies = self.bundle.scorer.anomaly_many(x)
        self.counters.scored += len(x)
        for (name, vec, span), s in zip(windows, scores[len(ready):], strict=True):
            p = m.out(name)
            if not float(s) <= p.best_window_score:  # NaN: the first window
                p.best_window_score, p.window_span, p.window_vec = float(s), span, vec
        ts = feats.last_ts
        n = len(ready)
        finals: dict[str, dict[str, Any]] = {}
        for (name, st), vec, s, a in zip(ready, vectors, scores[:n], anomalies[:n], strict=True):
            p = m.out(name)
            if not float(s) <= p.best_match:
                p.best_match = float(s)
            # The score and its explanation come from whichever evidence is
            # rarer among honest players: the whole match or one window.
            p.best = self.bundle.combine(p.best_match, p.best_window_score)
            by_window = self.bundle.window_decides(p.best_match, p.best_window_score)
            p.best_window = p.window_span if by_window else None
            vec = p.window_vec if by_window else vec
            p.best_anomaly = max(p.best_anomaly, float(a))
            finals[name] = {
                "type": "anticheat.score", "match": m.features.match, "ts": ts, "player": name,
                "score": round(p.best, 6), "model_version": self.bundle.version,
                "window": {"alive_s": round(st.alive_ms / 1000.0, 1), "final": final,
                           "current": round(float(s), 6)},
            }
            out.append(finals[name])
            self.counters.scores += 1
            verdict = self.bundle.policy.classify(p.best)
            if verdict.flagged and "model" not in p.alerted:
                out.append(self._model_alert(m, name, vec, p, "model"))
            elif a > self.bundle.scorer.iso_cutoff and "anomaly" not in p.alerted:
                out.append(self._model_alert(m, name, vec, p, "anomaly"))
        # Only a match that ended is read against, and joins, its accounts'
        # history: a worker stopping mid-match scores what it saw, but the
        # worker that takes the partition over judges the whole match.
        if final and m.ended and not m.judged:
            m.judged = True
            self._judge_accounts(m, [(name, v) for (name, _), v in zip(ready, vectors, strict=True)],
                                 finals, out)

    def _judge_accounts(self, m: _Match, final: list[tuple[str, dict[str, float]]],
                        finals: dict[str, dict[str, Any]], out: list[dict[str, Any]]) -> None:
        """Read each player's whole match against its own history; remember the unflagged.

        A match that raised no alert joins its account's history here and is
        published as an ``anticheat.history`` record (durable, keyed by
        player), so every worker, and a restarted one, rebuilds each
        account's history from that topic (:meth:`remember`).
        """
        assert self.bundle is not None
        base = self.bundle.baseline
        if base is None:
            return
        now = m.features.last_ts
        if now - self._pruned_ts >= PRUNE_EVERY_MS:
            self._pruned_ts = now
            self.accounts.prune(now)
        histories = [self.accounts.history(name, now) for name, _ in final]
        scores = base.score_many(histories, [vec for _, vec in final])
        for (name, vec), history, score in zip(final, histories, scores, strict=True):
            p = m.out(name)
            verdict = None if math.isnan(score) else base.policy.classify(float(score))
            if verdict is not None and verdict.flagged and "baseline" not in p.alerted:
                p.alerted.add("baseline")
                self.counters.alerts += 1
                alert = self._base(m, name, m.features.last_ts, verdict.score, "baseline",
                                   verdict.threshold, verdict.fpr)
                moved = base.explain(history, vec, self.config.top_features)
                alert["features"] = moved
                alert["evidence"] = self._evidence(m, name)
                alert["history_matches"] = len(history)
                named = ", ".join(f"{f['name']} {f['value']:.3g} vs own {f['own_median']:.3g}"
                                  for f in moved[:2])
                alert["reason"] = _short(
                    f"baseline {verdict.score:.3f} > {verdict.threshold:.3f} (FPR {verdict.fpr:.1%}) "
                    f"over {len(history)} own matches; {named}")
                out.append(alert)
            final_score = finals.get(name)
            if final_score is not None:
                final_score["window"]["history"] = not p.alerted
            if not p.alerted:
                self.accounts.add(name, vec, m.features.match, now)
                out.append(history_event(m.features.match, m.features.last_ts, name, vec,
                                         self.bundle.version))

    def remember(self, event: Mapping[str, Any]) -> bool:
        """Take a judged clean match from the history topic into its account's history.

        Any worker's ``anticheat.history`` record counts; a match already
        known (this worker judged it) is not counted twice. Returns whether
        it was new.
        """
        vector = judged_vector(event)
        if vector is None:
            return False
        ts = event.get("ts")
        return self.accounts.add(event["player"], vector, event["match"],
                                 ts if isinstance(ts, int) and not isinstance(ts, bool) else 0)

    def _evidence(self, m: _Match, player: str, extra: tuple[Any, ...] = ()) -> dict[str, Any]:
        p = m.out(player)
        refs = [list(r) for r in p.refs]
        refs += [list(r) for r in extra if isinstance(r, tuple)]
        ev: dict[str, Any] = {"events": refs}
        if p.best_window is not None:
            ev["window"] = list(p.best_window)  # the stretch of match time that scored highest
        climbs = self.climbs(m.features.match, player)
        if climbs:
            ev["climbs"] = climbs
        if p.first_pos is not None and p.last_pos is not None:
            ev["positions"] = [p.first_pos[0], p.first_pos[1], p.first_pos[2], p.last_pos[2]]
        return ev

    def _ping(self, m: _Match, player: str) -> float | None:
        ping = m.features.player(player).ping_ms
        return None if math.isnan(ping) else ping

    def _base(self, m: _Match, player: str, ts: int, score: float, kind: str,
              threshold: float, fpr: float | None) -> dict[str, Any]:
        """The fields every alert has: ``score`` crossed ``threshold``, whose measured FPR is ``fpr``.

        Each kind of alert quotes its own cut-off and false-positive rate
        (the policy's, the isolation forest's, a rule's firing level), so an
        analyst can read ``score > threshold`` on the alert itself. ``fpr``
        is left out when the model does not carry it (models trained before
        it was measured).
        """
        b = self.bundle
        alert: dict[str, Any] = {"type": "anticheat.alert", "match": m.features.match, "ts": ts,
                                 "player": player, "score": round(score, 6), "kind": kind,
                                 "threshold": threshold}
        if fpr is not None and not math.isnan(fpr):
            alert["fpr"] = fpr
        if b is not None:
            alert["model_version"] = b.version
        ping = self._ping(m, player)
        if ping is not None:
            alert["ping"] = ping
        alert["rules"] = [v.to_dict() for v in m.rules.fired(player)]
        return alert

    def _model_alert(self, m: _Match, player: str, vec: dict[str, float], p: _PlayerOut,
                     kind: str) -> dict[str, Any]:
        assert self.bundle is not None
        p.alerted.add(kind)
        self.counters.alerts += 1
        b = self.bundle
        if kind == "model":
            alert = self._base(m, player, m.features.last_ts, p.best, kind, b.policy.threshold, b.policy.fpr)
        else:
            # The isolation forest's own score and cut-off; the model's
            # combined score rides along for the ranking an analyst knows.
            alert = self._base(m, player, m.features.last_ts, p.best_anomaly, kind,
                               b.scorer.iso_cutoff, _metric(b.metrics, "iso_fpr"))
            alert["model_score"] = round(p.best, 6)
        top = self.bundle.top_features(vec, self.config.top_features)
        alert["features"] = top
        alert["evidence"] = self._evidence(m, player)
        named = ", ".join(f"{f['name']} p{f['percentile']:.0f}" for f in top[:2])
        if kind == "model":
            reason = (f"score {p.best:.3f} > {self.bundle.policy.threshold:.3f} "
                      f"(FPR {self.bundle.policy.fpr:.1%}); {named}")
        else:
            reason = f"anomaly {p.best_anomaly:.3f} > {self.bundle.scorer.iso_cutoff:.3f}; {named}"
        alert["reason"] = _short(reason)
        return alert

    def _rule_alert(self, m: _Match, v: Violation, ts: int) -> dict[str, Any]:
        p = m.out(v.player)
        p.alerted.add(f"rule:{v.rule}")
        self.counters.alerts += 1
        fpr = _metric(self.bundle.metrics, "rule_fpr") if self.bundle is not None else None
        alert = self._base(m, v.player, ts, v.level, f"rule:{v.rule}", m.rules.config.fire_level, fpr)
        vec = m.features.vector(v.player)
        alert["features"] = (self.bundle.top_features(vec, self.config.top_features)
                             if self.bundle is not None else [])
        alert["evidence"] = self._evidence(m, v.player, v.evidence)
        alert["reason"] = _short(v.reason())
        return alert

    def player_vectors(self, match: str) -> dict[str, dict[str, float]]:
        m = self.matches.get(match)
        return m.features.vectors() if m else {}

    def climbs(self, match: str, player: str) -> dict[str, dict[str, float]]:
        """Each CUSUM's highest climb of ``player``: the ticks of the shots where it
        left zero (``from``) and peaked (``to``), and its ``height`` (a sum of
        per-shot log-likelihood ratios). Where in the match a closet cheater
        had it on, for the alert's evidence and ``anticheat explain``.
        """
        m = self.matches.get(match)
        st = m.features.players.get(player) if m else None
        if st is None:
            return {}
        return {name: {"from": a, "to": b, "height": round(st.cusum[name], 3)}
                for name, (a, b) in sorted(st.climbs.items())}

    def best_scores(self, match: str) -> dict[str, float]:
        m = self.matches.get(match)
        return {k: p.best for k, p in m.players.items()} if m else {}


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    """A measured rate from the model's metrics; None when the model does not carry it."""
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _predict_on_one_thread() -> None:
    """Model predictions in this process run on one OpenMP thread.

    The service is sized for one core. scikit-learn's tree predictions fan a
    batch out over every core; on a machine shared with other work those
    threads wait for each other, and a 60-row batch that takes 10 ms on one
    thread was measured at 170-440 ms. Process-wide, set once.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


def _short(text: str, limit: int = 128) -> str:
    """Reasons are schema strings (at most 128 characters); details live in ``features``."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
