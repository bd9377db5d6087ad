"""Evidence across an account's matches (Fisher's method) and its grouping by account."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anticheat.accounts import account_evidence, combined_tail

tails = st.floats(min_value=1e-4, max_value=1.0)


def test_one_match_is_its_own_tail():
    for t in (1e-3, 0.2, 0.5, 1.0):
        assert combined_tail([t]) == pytest.approx(t, rel=1e-9)


def test_repeated_rare_matches_are_rarer_than_any_one_and_ordinary_ones_dilute():
    assert combined_tail([0.02] * 5) < 1e-4
    assert combined_tail([0.02, 0.6, 0.5, 0.7, 0.4]) > 0.02
    assert combined_tail([]) == 1.0


@given(st.lists(tails, min_size=1, max_size=8), tails)
def test_a_rarer_match_never_makes_the_account_less_rare(ts, extra):
    lower = [min(t, extra) for t in ts]
    assert combined_tail(lower) <= combined_tail(ts) + 1e-12


def test_honest_accounts_with_independent_uniform_tails_keep_the_nominal_rate():
    rng = np.random.default_rng(7)
    k, n = 5, 20_000
    combined = np.array([combined_tail(row) for row in rng.uniform(size=(n, k)).tolist()])
    assert np.mean(combined < 0.01) == pytest.approx(0.01, abs=0.003)
    assert np.mean(combined < 0.2) == pytest.approx(0.2, abs=0.015)


def test_evidence_is_grouped_by_account_in_match_order_and_can_stop_after_k_matches():
    accounts = ["a1", "a2", "a1", "a2", "a1", "a3"]
    order = [2, 0, 0, 1, 1, 0]
    scores = [0.99, 0.5, 0.1, 0.2, 0.3, 0.0]  # score = 1 - tail
    kw = {"labels": [1, 0, 1, 0, 1, 0], "groups": ["speedhack/subtle", "clean"] * 3,
          "closets": [True, False] * 3}
    full = {a.account: a for a in account_evidence(accounts, order, scores, **kw)}
    assert {n: a.matches for n, a in full.items()} == {"a1": 3, "a2": 2, "a3": 1}
    assert full["a1"].label == 1 and full["a1"].group == "speedhack/subtle" and full["a1"].closet
    assert full["a1"].score == pytest.approx(1 - combined_tail([0.9, 0.7, 0.01]))
    assert full["a3"].score == pytest.approx(0.0)  # never scored: an ordinary match
    first_two = {a.account: a for a in account_evidence(accounts, order, scores, first=2, **kw)}
    assert first_two["a1"].matches == 2
    assert first_two["a1"].score == pytest.approx(1 - combined_tail([0.9, 0.7]))
    assert not math.isnan(first_two["a2"].score)


def test_the_queue_takes_each_matchs_latest_score_and_ranks_repeated_evidence_first():
    from anticheat.accounts import account_queue

    def score(player, match, ts, s):
        return {"type": "anticheat.score", "player": player, "match": match, "ts": ts, "score": s}

    events = [
        score("steady", "m1", 10, 0.2), score("steady", "m1", 20, 0.96),  # latest wins
        score("steady", "m2", 20, 0.95), score("steady", "m3", 20, 0.97),
        score("lucky", "m1", 20, 0.995), score("lucky", "m2", 20, 0.3), score("lucky", "m3", 20, 0.4),
        score("quiet", "m2", 20, 0.5),
        {"type": "anticheat.score", "player": "bad", "match": "m1", "score": "high"},  # skipped
        score("bad", "m2", 5, 1.5),  # out of range: skipped
    ]
    rows = account_queue(events)
    assert [r["player"] for r in rows] == ["steady", "lucky", "quiet"]
    steady = rows[0]
    assert steady["matches"] == 3 and steady["scores"]["m1"] == 0.96
    assert steady["top_match"] == "m3" and steady["top_score"] == 0.97
    assert steady["tail"] == pytest.approx(combined_tail([0.04, 0.05, 0.03]))
    assert rows[1]["top_match"] == "m1"
