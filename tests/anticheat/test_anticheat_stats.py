"""The interval a measured rate is quoted with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anticheat.stats import rate_interval


def test_no_false_positive_in_300_players_still_allows_about_one_percent():
    # The "rule of three": 0 of n bounds the rate near 3/n at 95%.
    lo, hi = rate_interval(0, 300)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 300), rel=1e-6)


def test_one_percent_of_4250_players_is_good_to_about_a_third_of_itself():
    lo, hi = rate_interval(42, 4250)
    assert 0.0070 < lo < 0.0073 and 0.0132 < hi < 0.0135


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_measured_rate_and_narrows_with_more_players(case):
    hits, n = case
    lo, hi = rate_interval(hits, n)
    assert 0.0 <= lo <= hits / n <= hi <= 1.0
    lo4, hi4 = rate_interval(hits * 4, n * 4)
    assert hi4 - lo4 < hi - lo


@pytest.mark.parametrize(("hits", "n"), [(1, 0), (-1, 10), (11, 10)])
def test_an_impossible_count_is_refused_with_both_numbers(hits, n):
    with pytest.raises(ValueError, match=f"hits={hits}, n={n}"):
        rate_interval(hits, n)
