"""The per-account baseline: an account's match against its own earlier unflagged matches.

Unit tests of the pure parts on hand-made vectors with known answers; the
season run on the real simulator is in ``test_anticheat_training.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anticheat.baseline import (
    BASELINE_FEATURES,
    HISTORY_MATCHES,
    HISTORY_MAX_AGE_MS,
    MIN_HISTORY,
    AccountHistory,
    BaselineModel,
    fit_baseline,
    history_event,
    replay_accounts,
    season_rows,
)
from anticheat.model import Policy
from gamebus.events import HISTORY_TOPIC, topic_for, validate_event

JITTER = "track_jitter_median_deg_s"
REACTION = "reaction_net_median_ms"


def _vec(**values: float) -> dict[str, float]:
    return dict(values)


def test_only_play_features_are_read_against_the_history():
    assert JITTER in BASELINE_FEATURES and REACTION in BASELINE_FEATURES
    assert "ping_ms" not in BASELINE_FEATURES and "alive_s" not in BASELINE_FEATURES


def test_rows_read_each_match_against_the_clean_matches_before_it():
    matches = [("a", r, _vec(**{JITTER: 10.0 + r}), int(r >= 3), "g") for r in (4, 0, 2, 1, 3)]
    rows = season_rows(matches)
    # Rounds 0 and 1 have fewer than MIN_HISTORY clean matches before them.
    assert MIN_HISTORY == 2
    assert [(len(r.history), r.label) for r in rows] == [(2, 0), (3, 1), (3, 1)]
    # The cheating match of round 3 is not part of round 4's history.
    assert [h[JITTER] for h in rows[2].history] == [10.0, 11.0, 12.0]


def test_the_history_keeps_the_most_recent_matches():
    matches = [("a", r, _vec(**{JITTER: float(r)}), 0, "clean") for r in range(HISTORY_MATCHES + 4)]
    last = season_rows(matches)[-1]
    assert len(last.history) == HISTORY_MATCHES
    assert last.history[-1][JITTER] == HISTORY_MATCHES + 2


def _model(scale: float = 2.0, logged: tuple[bool, bool] = (False, False)) -> BaselineModel:
    from sklearn.linear_model import LogisticRegression

    # A real classifier, fitted on toy moves: lower jitter and faster reactions read as a change.
    z = np.array([[0, 0], [-1, 0], [0, -1], [1, 1], [-4, -3], [-3, -4], [-5, -5], [-4, -4]], float)
    clf = LogisticRegression().fit(z, [0, 0, 0, 0, 1, 1, 1, 1])
    return BaselineModel((JITTER, REACTION), logged, (scale, 10.0), clf, Policy(0.5, 0.01, 0.01))


def test_z_is_the_move_from_the_own_median_in_honest_spreads():
    m = _model()
    history = [_vec(**{JITTER: 10.0, REACTION: 200.0}), _vec(**{JITTER: 12.0, REACTION: 220.0}),
               _vec(**{JITTER: 14.0, REACTION: math.nan})]
    z = m.z(history, _vec(**{JITTER: 6.0, REACTION: 170.0}))
    assert z.tolist() == pytest.approx([(6.0 - 12.0) / 2.0, (170.0 - 210.0) / 10.0])
    # Unknown now or never seen before: no evidence either way.
    assert m.z(history, _vec(**{JITTER: 6.0})).tolist()[1] == 0.0
    assert m.z([_vec(**{REACTION: 1.0})] * 2, _vec(**{JITTER: 1.0, REACTION: 1.0}))[0] == 0.0
    # One feature that never moved cannot decide alone: |z| is capped.
    assert abs(m.z(history, _vec(**{JITTER: -1e9}))[0]) == 6.0


def test_a_ratio_scale_feature_moves_by_its_log():
    m = _model(scale=0.25, logged=(True, False))
    history = [_vec(**{JITTER: 10.0}), _vec(**{JITTER: 12.0}), _vec(**{JITTER: 14.0})]
    assert m.z(history, _vec(**{JITTER: 6.0}))[0] == pytest.approx(math.log(6.0 / 12.0) / 0.25)
    # Half the jitter is the same move for a pro as for a casual player.
    pro = [_vec(**{JITTER: 3.0})] * 3
    assert m.z(pro, _vec(**{JITTER: 1.5}))[0] == pytest.approx(m.z(history, _vec(**{JITTER: 6.0}))[0])


def test_no_score_without_enough_history_and_the_explanation_names_what_moved():
    m = _model()
    history = [_vec(**{JITTER: 12.0, REACTION: 210.0})] * 3
    assert math.isnan(m.score(history[:1], history[0]))
    assert m.classify(history[:1], history[0]) is None
    same = m.score(history, history[0])
    changed = _vec(**{JITTER: 4.0, REACTION: 180.0})
    assert m.score(history, changed) > 0.9 > 0.5 > same
    verdict = m.classify(history, changed)
    assert verdict is not None and verdict.flagged and verdict.fpr == 0.01
    assert m.score_many([history, history[:1]], [changed, changed])[1] != m.score(history, changed)
    top = m.explain(history, changed)
    assert [f["name"] for f in top] == [JITTER, REACTION]
    assert top[0] == {"name": JITTER, "value": 4.0, "own_median": 12.0, "z": -4.0}
    # Nothing moved, nothing to explain.
    assert m.explain(history, history[0]) == []


def test_the_model_survives_its_document_form():
    m = _model()
    again = BaselineModel.from_doc(m.to_doc())
    assert again == m


def _season(rng: np.random.Generator, accounts: int, cheat_share: float, shift_sd: float):
    """Honest accounts wobble around their own level; cheaters' jitter drops by ``shift_sd`` sds."""
    out = []
    for a in range(accounts):
        level = {name: rng.normal(50.0, 10.0) for name in BASELINE_FEATURES}
        cheat_from = 3 if a < cheat_share * accounts else 99
        for rnd in range(6):
            vec = {name: level[name] + rng.normal(0.0, 1.0) for name in BASELINE_FEATURES}
            label = int(rnd >= cheat_from)
            if label:
                vec[JITTER] -= shift_sd
            out.append((f"a{a:03d}", rnd, vec, label, "cheat" if label else "clean"))
    return out


def test_a_fitted_baseline_finds_accounts_that_changed_and_keeps_its_false_positive_rate():
    rng = np.random.default_rng(7)
    model = fit_baseline(season_rows(_season(rng, 400, 0.2, shift_sd=6.0)), target_fpr=0.02,
                         boosting_rounds=60)
    j = BASELINE_FEATURES.index(JITTER)
    # Levels near 50 with a spread of 1 between matches: a ratio scale, about 2% per match.
    assert model.logged[j] and 0.015 < model.scale[j] < 0.04
    held_out = season_rows(_season(np.random.default_rng(8), 400, 0.2, shift_sd=6.0))
    scores = model.score_many([r.history for r in held_out], [r.current for r in held_out])
    labels = np.array([r.label for r in held_out])
    assert np.mean(scores[labels == 1] > model.policy.threshold) > 0.9
    assert np.mean(scores[labels == 0] > model.policy.threshold) < 0.05
    first = next(r for r in held_out if r.label)
    assert model.explain(first.history, first.current)[0]["name"] == JITTER


def test_fitting_needs_both_honest_and_changed_accounts():
    rows = season_rows(_season(np.random.default_rng(1), 30, 0.0, shift_sd=4.0))
    with pytest.raises(ValueError, match="honest and cheating"):
        fit_baseline(rows)


def test_a_flagged_match_never_becomes_part_of_the_accounts_own_reference():
    m = _model()
    steady = _vec(**{JITTER: 12.0, REACTION: 210.0})
    cheat = _vec(**{JITTER: 4.0, REACTION: 180.0})
    # Two clean matches, then a cheating match flagged elsewhere, then another.
    scores = replay_accounts(m, [("a", 0, steady, False), ("a", 1, steady, False),
                                 ("a", 2, cheat, True), ("a", 3, cheat, False)])
    assert math.isnan(scores[0]) and math.isnan(scores[1])
    assert scores[2] > 0.9 and scores[3] > 0.9  # still read against the clean self
    # Had the first cheating match slipped into the history, the second would look less changed.
    leaky = replay_accounts(_model(), [("a", 0, steady, False), ("a", 1, steady, False),
                                       ("a", 2, cheat, False), ("a", 3, cheat, False)])
    assert leaky[2] > 0.9  # the baseline itself flags it, so it still stays out
    assert leaky[3] == scores[3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), min_size=1, max_size=30))
def test_the_live_history_holds_only_unflagged_matches_of_each_account(plays):
    memory = AccountHistory(keep=4)
    kept: dict[str, list[float]] = {}
    for i, (account, flagged) in enumerate(plays):
        if not flagged:
            memory.add(account, {JITTER: float(i)})
            kept.setdefault(account, []).append(float(i))
    for account in "abc":
        assert [v[JITTER] for v in memory.history(account)] == kept.get(account, [])[-4:]


def test_a_match_heard_twice_counts_once_in_the_history():
    memory = AccountHistory()
    assert memory.add("a", {JITTER: 1.0}, "m1")
    assert not memory.add("a", {JITTER: 9.0}, "m1")  # the same match back from the history topic
    assert memory.add("a", {JITTER: 2.0}, "m2")
    assert [v[JITTER] for v in memory.history("a")] == [1.0, 2.0]


def test_the_core_remembers_only_history_records_from_the_history_topic():
    from anticheat.service import ScoringCore

    core = ScoringCore(None)
    judged = history_event("m1", 1, "a", {JITTER: 3.0, "gap": math.nan}, "v1")
    assert validate_event(judged) == judged and "gap" not in judged["features"]
    assert topic_for(judged["type"]) == HISTORY_TOPIC
    assert core.remember({**judged, "features": {**judged["features"], "x": "?"}})
    assert core.accounts.history("a") == ({JITTER: 3.0},)
    assert not core.remember(judged)  # the same match again (this worker judged it)
    score = {"type": "anticheat.score", "match": "m2", "ts": 1, "player": "a", "score": 0.1,
             "window": {"final": True, "history": True}, "features": {JITTER: 3.0}}
    assert not core.remember(score)
    assert not core.remember({**judged, "match": "m3", "features": [1.0]})
    assert len(core.accounts.history("a")) == 1


def test_an_analyst_rebuilds_a_players_history_from_its_history_records():
    from anticheat.baseline import history_before

    def judged(match: str, ts: int, value: float, player: str = "a") -> dict:
        return history_event(match, ts, player, {JITTER: value})

    records = [judged("m3", 300, 3.0), judged("m1", 100, 1.0), judged("m0", 50, 0.5, player="b"),
               judged("m4", 400, 4.0), judged("m5", 500, 5.0),
               {"type": "anticheat.score", "match": "m2", "ts": 200, "player": "a", "features": {JITTER: 2.0}}]
    got = history_before(records, "a", before_ts=450, exclude_match="m4")
    assert [v[JITTER] for v in got] == [1.0, 3.0]  # oldest first; other types, later and this match left out
    many = [judged(f"n{i}", i, float(i)) for i in range(HISTORY_MATCHES + 3)]
    assert len(history_before(many, "a", before_ts=10_000)) == HISTORY_MATCHES
    # A match older than the history topic's retention no longer counts, as in the service.
    aged = [judged("old", 1_000, 1.0), judged("recent", 1_000 + HISTORY_MAX_AGE_MS, 2.0)]
    assert [v[JITTER] for v in history_before(aged, "a", before_ts=2_000 + HISTORY_MAX_AGE_MS)] == [2.0]


DAY_MS = 24 * 3_600_000


def test_the_live_history_counts_only_matches_the_history_topic_still_holds():
    memory = AccountHistory(keep=3)
    start = 1_700_000_000_000
    for k, days in enumerate([0, 30, 60, 95]):
        assert memory.add("a", {JITTER: float(k)}, f"m{k}", start + days * DAY_MS)
    # The 3 most recent are kept (days 30, 60, 95) ...
    assert [v[JITTER] for v in memory.history("a", start + 100 * DAY_MS)] == [1.0, 2.0, 3.0]
    # ... and 125 days in, the one from day 30 is past the topic's 90 days.
    assert [v[JITTER] for v in memory.history("a", start + 125 * DAY_MS)] == [2.0, 3.0]
    assert memory.history("a", start + 200 * DAY_MS) == ()
    assert [v[JITTER] for v in memory.history("a")] == [1.0, 2.0, 3.0]  # no instant: no age limit
    assert HISTORY_MAX_AGE_MS == 90 * DAY_MS


def test_a_late_history_record_keeps_the_most_recent_matches():
    memory = AccountHistory(keep=2)
    memory.add("a", {JITTER: 2.0}, "m2", 2_000)
    memory.add("a", {JITTER: 3.0}, "m3", 3_000)
    memory.add("a", {JITTER: 1.0}, "m1", 1_000)  # another worker's record, read late from the topic
    assert [v[JITTER] for v in memory.history("a")] == [2.0, 3.0]
    memory.add("a", {JITTER: 2.5}, "m25", 2_500)
    assert [v[JITTER] for v in memory.history("a")] == [2.5, 3.0]


def test_accounts_not_seen_within_the_retention_are_forgotten():
    memory = AccountHistory()
    memory.add("gone", {JITTER: 1.0}, "m1", 0)
    memory.add("back", {JITTER: 1.0}, "m2", 0)
    memory.add("back", {JITTER: 2.0}, "m3", 50 * DAY_MS)
    assert memory.prune(100 * DAY_MS) == 1
    assert len(memory) == 1 and memory.history("gone") == ()
    assert [v[JITTER] for v in memory.history("back", 100 * DAY_MS)] == [2.0]
