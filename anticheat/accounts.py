"""An account's evidence across its matches: one verdict from many small ones.

The service scores a player per match: ``score = 1 - tail``, where ``tail``
is the share of honest held-out players whose evidence was at least as
rare (:class:`anticheat.model.Combiner`). A careful cheater leaves little
evidence in any one match, but the same cheat leaves it in every match the
account plays, while an honest player's luck does not repeat. Fisher's
method adds the evidence up: ``-2 * sum(ln tail)`` over ``k`` matches,
read against the chi-square distribution with ``2k`` degrees of freedom,
gives a combined tail comparable between accounts with different numbers
of matches.

The chi-square reading assumes the tails of an honest account are
independent across matches. They are not quite: a skilled honest player is
skilled every match, and its tails are low every match. So the combined
tail orders accounts; it is not itself a false-positive rate. A threshold
on it must be set on honest accounts, as the per-match policy is.

Pure: no I/O. Example::

    >>> round(combined_tail([0.5]), 3)
    0.5
    >>> combined_tail([0.05, 0.05, 0.05]) < 0.05      # three rare matches: rarer still
    True
    >>> combined_tail([0.05, 0.9, 0.8]) > 0.05        # one rare match among ordinary ones
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AccountEvidence", "account_evidence", "account_queue", "combined_tail"]

#: A tail of exactly 0 would end the sum; scores are shares of a finite reference.
_MIN_TAIL = 1e-6


def combined_tail(tails: Sequence[float]) -> float:
    """Fisher's combination of per-match tails (each in (0, 1])."""
    if not tails:
        return 1.0
    from scipy.stats import chi2

    stat = -2.0 * sum(math.log(min(max(t, _MIN_TAIL), 1.0)) for t in tails)
    return float(chi2.sf(stat, 2 * len(tails)))


@dataclass(frozen=True, slots=True)
class AccountEvidence:
    """One account over its first ``matches`` matches; ``score`` is ``1 - combined tail``."""

    account: str
    matches: int
    score: float
    label: int
    group: str
    closet: bool


def account_evidence(
    accounts: Sequence[str],
    order: Sequence[int],
    match_scores: Sequence[float] | np.ndarray,
    *,
    labels: Sequence[int],
    groups: Sequence[str],
    closets: Sequence[bool],
    first: int | None = None,
) -> list[AccountEvidence]:
    """Combine per-match scores (``1 - tail``) by account.

    The i-th entry of every sequence describes one player in one match;
    ``order`` sorts an account's matches (its match index), and ``first``
    keeps only each account's first ``first`` matches, so that evidence can
    be read after 1, 2, ... matches. A score of 0 (never scored) counts as
    an ordinary match, tail 1.
    """
    by_account: dict[str, list[tuple[int, float]]] = {}
    meta: dict[str, tuple[int, str, bool]] = {}
    for i, name in enumerate(accounts):
        by_account.setdefault(name, []).append((int(order[i]), float(match_scores[i])))
        label = int(labels[i])
        old = meta.get(name)
        if old is None or label > old[0]:
            meta[name] = (label, str(groups[i]), bool(closets[i]))
    out = []
    for name, rows in by_account.items():
        rows.sort()
        if first is not None:
            rows = rows[:first]
        tails = [1.0 - s for _, s in rows]
        label, group, closet = meta[name]
        out.append(AccountEvidence(name, len(rows), 1.0 - combined_tail(tails), label, group, closet))
    out.sort(key=lambda a: a.account)
    return out


def account_queue(scores: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Players ranked by their evidence across matches, from ``anticheat.score`` events.

    A player's score in a match is its latest one (the service's score only
    rises as the match goes on); the player's matches combine by
    :func:`combined_tail`. Rarest first; each row names the match that
    weighs most.
    """
    latest: dict[tuple[str, str], tuple[int, float]] = {}
    for ev in scores:
        player, match = ev.get("player"), ev.get("match")
        score, ts = ev.get("score"), ev.get("ts", 0)
        if not isinstance(player, str) or not isinstance(match, str):
            continue
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            continue
        key = (player, match)
        here = (int(ts) if isinstance(ts, (int, float)) else 0, float(score))
        if key not in latest or here >= latest[key]:
            latest[key] = here
    per_player: dict[str, list[tuple[str, float]]] = {}
    for (player, match), (_, score) in latest.items():
        per_player.setdefault(player, []).append((match, score))
    ranked = []
    for player, matches in per_player.items():
        matches.sort(key=lambda ms: (-ms[1], ms[0]))
        tail = combined_tail([1.0 - s for _, s in matches])
        ranked.append((tail, -len(matches), player, matches))
    ranked.sort()
    return [{"player": player, "matches": -neg, "tail": tail, "score": 1.0 - tail,
             "top_match": matches[0][0], "top_score": matches[0][1], "scores": dict(matches)}
            for tail, neg, player, matches in ranked]
