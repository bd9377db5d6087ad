"""Evaluate a model and the rules on held-out simulated matches.

The unit is a player in a match (the score combines the best of the
player's match-long snapshots and the best of its sliding windows, as the
service aggregates it; see :class:`anticheat.model.Combiner`).
For each cheat kind and intensity the cheaters of that group are ranked
against *all* clean players:
ROC-AUC, and recall at 1% and 0.1% false-positive rate read off that ROC.
The model's own policy (threshold chosen on training-side clean players) is
reported too, with the false-positive rate it actually gets on these
held-out players, since that is the number an alert quotes.

Rules are evaluated per player: the share of cheaters of a group with at
least one rule fired, and the number of clean players with any.

Besides the summary, every player's row goes to ``players.csv`` (truth,
the two best scores the combined one is made of, the rules fired), so an
analyst can re-slice the run without simulating it again.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anticheat.accounts import AccountEvidence, account_evidence
from anticheat.dataset import PlayerRecord
from anticheat.model import ModelBundle
from anticheat.stats import rate_interval
from anticheat.train import best_by_kind, combine_best, snapshot_matrix

__all__ = [
    "AccountRow",
    "BaselineReport",
    "BaselineResult",
    "GroupResult",
    "PlayerRow",
    "Report",
    "account_markdown",
    "auc",
    "auc_text",
    "baseline_markdown",
    "evaluate_accounts",
    "evaluate_baseline",
    "evaluate_records",
    "pct_text",
    "recall_at_fpr",
    "write_report",
]

RULE_KINDS = ("speedhack", "teleport", "fly")


@dataclass(slots=True)
class GroupResult:
    group: str
    n: int
    auc: float
    recall_1pct: float
    recall_01pct: float
    policy_recall: float
    rule_recall: float
    flagged_recall: float
    #: Cheaters whose cheat never acted while on (see ``dataset.cheat_shows``).
    not_shown: int = 0
    #: ``rule_recall`` among the others: what a rule could have seen.
    rule_recall_shown: float = math.nan


@dataclass(frozen=True, slots=True)
class PlayerRow:
    """One held-out player in one match, as ``players.csv`` lists it.

    ``best_match`` and ``best_window`` are the model's best match-long and
    best window probabilities (NaN where there was none); ``score`` is what
    the service would publish for them (:class:`anticheat.model.Combiner`).
    """

    match: str
    player: str
    group: str  # "clean" or "<kind>/<intensity>"
    closet: bool
    skill: str
    ping_ms: float
    cheat_shown: bool
    best_match: float
    best_window: float
    score: float
    rules: tuple[str, ...]

    CSV_FIELDS = ("match", "player", "group", "closet", "skill", "ping_ms", "cheat_shown",
                  "best_match", "best_window", "score", "rules")

    def csv_row(self) -> list[str]:
        def num(x: float) -> str:
            return "" if math.isnan(x) else f"{x:.6g}"

        return [self.match, self.player, self.group, str(int(self.closet)), self.skill,
                num(self.ping_ms), str(int(self.cheat_shown)), num(self.best_match),
                num(self.best_window), num(self.score), " ".join(self.rules)]


@dataclass(slots=True)
class Report:
    matches: int
    clean: int
    cheaters: int
    overall: GroupResult
    groups: list[GroupResult]
    policy_threshold: float
    policy_fpr_train: float
    policy_fpr_heldout: float
    rule_false_positives: int
    flagged_fpr: float
    model_version: str
    by_closet: list[GroupResult] = field(default_factory=list)
    players: list[PlayerRow] = field(default_factory=list)
    #: Clean players the policy's training-side rate was measured on (0: the model does not say).
    policy_train_clean: int = 0


def recall_at_fpr(clean: np.ndarray, cheat: np.ndarray, fpr: float) -> float:
    """Share of ``cheat`` scores strictly above the clean scores' ``1 - fpr`` cut."""
    if len(cheat) == 0 or len(clean) == 0:
        return math.nan
    s = np.sort(clean)[::-1]
    k = math.floor(fpr * len(s))
    cut = s[min(k, len(s) - 1)]
    return float(np.mean(cheat > cut))


def auc(clean: np.ndarray, cheat: np.ndarray) -> float:
    """ROC-AUC of ``cheat`` over ``clean``, ties counted half (as ``roc_auc_score``), in O(n log n).

    ``anticheat pool`` reads every group a few hundred times over tens of
    thousands of honest players; one sort of the honest scores and two
    binary searches per cheater keep that in seconds.
    """
    if len(clean) == 0 or len(cheat) == 0:
        return math.nan
    ranked = np.sort(clean)
    below = np.searchsorted(ranked, cheat, side="left")
    at_or_below = np.searchsorted(ranked, cheat, side="right")
    return float(np.mean(below + 0.5 * (at_or_below - below)) / len(ranked))


def score_parts(bundle: ModelBundle, records: Sequence[PlayerRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per player per match: best match-long, best window and combined score.

    The combined score is the service's (:func:`anticheat.train.combine_best`);
    a player never scored gets 0 there and NaN in the other two.
    """
    x = snapshot_matrix(records)
    per_snapshot = bundle.scorer.score_many(x) if len(x) else np.zeros(0)
    best_match, best_window = best_by_kind(records, per_snapshot)
    return best_match, best_window, np.nan_to_num(combine_best(best_match, best_window, bundle.combiner), nan=0.0)


def evaluate_records(bundle: ModelBundle, records: Sequence[PlayerRecord]) -> tuple[Report, np.ndarray]:
    """Compute the report for ``records``; also return the aggregate scores."""
    best_match, best_window, scores = score_parts(bundle, records)
    labels = np.array([r.label for r in records])
    ruled = np.array([bool(r.rules) for r in records])
    shown = np.array([r.cheat_shown for r in records])
    thr = bundle.policy.threshold
    clean = scores[labels == 0]
    flagged = (scores > thr) | ruled

    def group(name: str, mask: np.ndarray) -> GroupResult:
        cheat = scores[mask]
        return GroupResult(
            group=name, n=int(mask.sum()), auc=auc(clean, cheat),
            recall_1pct=recall_at_fpr(clean, cheat, 0.01),
            recall_01pct=recall_at_fpr(clean, cheat, 0.001),
            policy_recall=float(np.mean(cheat > thr)) if len(cheat) else math.nan,
            rule_recall=float(np.mean(ruled[mask])) if mask.any() else math.nan,
            flagged_recall=float(np.mean(flagged[mask])) if mask.any() else math.nan,
            not_shown=int((mask & ~shown).sum()),
            rule_recall_shown=float(np.mean(ruled[mask & shown])) if (mask & shown).any() else math.nan,
        )

    names = sorted({r.group for r in records if r.label})
    groups = [group(n, np.array([r.group == n for r in records])) for n in names]
    # Full-time and closet cheaters apart: a toggled-on stretch is far less evidence.
    by_closet = []
    for n in names:
        for closet in (False, True):
            mask = np.array([r.group == n and r.closet == closet for r in records])
            if mask.any():
                by_closet.append(group(f"{n} ({'closet' if closet else 'full-time'})", mask))
    matches = len({r.match for r in records})
    report = Report(
        matches=matches, clean=int((labels == 0).sum()), cheaters=int(labels.sum()),
        overall=group("all cheaters", labels == 1), groups=groups,
        policy_threshold=thr, policy_fpr_train=bundle.policy.fpr,
        policy_train_clean=int(bundle.metrics.get("calib_clean_players", 0)),
        policy_fpr_heldout=float(np.mean(clean > thr)) if len(clean) else math.nan,
        rule_false_positives=int(ruled[labels == 0].sum()),
        flagged_fpr=float(np.mean(flagged[labels == 0])) if len(clean) else math.nan,
        model_version=bundle.version,
        by_closet=by_closet,
        players=[
            PlayerRow(match=r.match, player=r.player, group=r.group if r.label else "clean",
                      closet=r.closet, skill=r.skill, ping_ms=r.ping_ms, cheat_shown=r.cheat_shown,
                      best_match=float(m), best_window=float(w), score=float(s), rules=tuple(r.rules))
            for r, m, w, s in zip(records, best_match, best_window, scores, strict=True)
        ],
    )
    return report, scores


@dataclass(slots=True)
class AccountRow:
    """One cheat group's accounts against all honest accounts after 1, 2, ... matches.

    ``by_matches[k]`` is ``(ROC-AUC, recall at 1% FPR)`` over each account's
    first ``k`` matches (:mod:`anticheat.accounts`).
    """

    group: str
    accounts: int
    by_matches: dict[int, tuple[float, float]]


def evaluate_accounts(
    records: Sequence[PlayerRecord], scores: np.ndarray, *, steps: Sequence[int]
) -> tuple[int, list[AccountRow]]:
    """Account-level results when ``records`` come from a season of accounts.

    Returns the number of honest accounts and one row per cheat group, plus
    full-time and closet apart, and one for all cheating accounts.
    """
    per_k = {
        k: account_evidence(
            [r.player for r in records], [r.match_index for r in records], scores,
            labels=[r.label for r in records], groups=[r.group for r in records],
            closets=[r.closet for r in records], first=k)
        for k in steps
    }
    any_k = per_k[steps[0]]
    honest = sum(1 for a in any_k if not a.label)
    names = sorted({a.group for a in any_k if a.label})
    # (row name, cheat group or None for all, closet or None for both)
    selections: list[tuple[str, str | None, bool | None]] = [(n, n, None) for n in names]
    selections += [(f"{n} ({'closet' if c else 'full-time'})", n, c)
                   for n in names for c in (False, True)]
    selections.append(("all cheaters", None, None))

    def picked(a: AccountEvidence, group: str | None, closet: bool | None) -> bool:
        return bool(a.label) and group in (None, a.group) and closet in (None, a.closet)

    rows = []
    for name, group, closet in selections:
        count = sum(1 for a in any_k if picked(a, group, closet))
        if not count:
            continue
        result = {}
        for k, evidence in per_k.items():
            clean = np.array([a.score for a in evidence if not a.label])
            cheat = np.array([a.score for a in evidence if picked(a, group, closet)])
            result[k] = (auc(clean, cheat), recall_at_fpr(clean, cheat, 0.01))
        rows.append(AccountRow(name, count, result))
    return honest, rows


@dataclass(slots=True)
class BaselineResult:
    """One cheat group's matches read against the account's own clean history.

    ``model`` and ``baseline`` are ``(ROC-AUC, recall at 1% FPR)`` against
    honest account-matches that also had a history; ``either`` is the share
    flagged by the per-match policy, a rule or the baseline's policy.
    """

    group: str
    matches: int
    model: tuple[float, float]
    baseline: tuple[float, float]
    either: float


@dataclass(slots=True)
class BaselineReport:
    """The baseline table and its reference: ``honest`` account-matches with a history,
    and the share of them the baseline's policy, and either policy, flag."""

    honest: int
    baseline_fpr: float
    either_fpr: float
    rows: list[BaselineResult]


def evaluate_baseline(
    bundle: ModelBundle, records: Sequence[PlayerRecord], scores: np.ndarray, *, lobbies: int,
    first_only: bool = True,
) -> BaselineReport:
    """Per-account baseline results on a season whose cheaters played clean first.

    The history follows the service's rule (:func:`anticheat.baseline.replay_accounts`):
    a match joins it unless something flagged it. With ``first_only`` a
    cheating account counts at its first cheating match only: the moment
    the baseline is for. One row per cheat group plus one for all.
    """
    from anticheat.baseline import replay_accounts

    model = bundle.baseline
    if model is None:
        return BaselineReport(0, math.nan, math.nan, [])
    policy_flag = (scores > bundle.policy.threshold) | np.array([bool(r.rules) for r in records])
    idx, matches = [], []
    for i, r in enumerate(records):
        vector = r.final_vector
        if vector is not None:
            idx.append(i)
            matches.append((r.player, r.match_index // lobbies, vector, bool(policy_flag[i])))
    base = np.array(replay_accounts(model, matches))
    recs = [records[i] for i in idx]
    model_s, flag = scores[idx], policy_flag[idx]
    known = ~np.isnan(base)
    base_flag = np.nan_to_num(base, nan=0.0) > model.policy.threshold
    either = flag | base_flag
    first_round: dict[str, int] = {}
    for r in recs:
        if r.label:
            rnd = r.match_index // lobbies
            first_round[r.player] = min(first_round.get(r.player, rnd), rnd)
    honest = known & np.array([not r.label for r in recs])
    chosen = known & np.array([bool(r.label) and (not first_only or
                                                  r.match_index // lobbies == first_round[r.player])
                               for r in recs])

    def result(name: str, mask: np.ndarray) -> BaselineResult:
        def pair(s: np.ndarray) -> tuple[float, float]:
            return auc(s[honest], s[mask]), recall_at_fpr(s[honest], s[mask], 0.01)

        return BaselineResult(name, int(mask.sum()), pair(model_s), pair(np.nan_to_num(base)),
                              float(np.mean(either[mask])) if mask.any() else math.nan)

    groups = np.array([r.group for r in recs])
    rows = [result(g, chosen & (groups == g)) for g in sorted(set(groups[chosen].tolist()))]
    rows.append(result("all cheaters", chosen))
    if not honest.any():
        return BaselineReport(0, math.nan, math.nan, rows)
    return BaselineReport(int(honest.sum()), float(np.mean(base_flag[honest])),
                          float(np.mean(either[honest])), rows)


def baseline_markdown(report: BaselineReport) -> str:
    """The baseline table: per-match model against the account's own history."""
    honest, either_fpr, rows = report.honest, report.either_fpr, report.rows
    if not rows:
        return ""
    lines = [
        "## Accounts against their own history",
        "",
        "Cheating accounts played clean matches before their cheat went on. Each match is read "
        "against the account's earlier unflagged matches (`anticheat.baseline`); a cheating "
        "account counts at its first cheating match. Cells are ROC-AUC / recall at 1% FPR "
        f"against {honest} honest account-matches that also had a history. The baseline's "
        f"policy flags {pct_text(report.baseline_fpr)} of those honest matches; *either* is the "
        f"share flagged by the per-match policy, a rule or the baseline policy, which flag "
        f"{pct_text(either_fpr)} of them.",
        "",
        "| cheat / intensity | matches | per-match model | baseline | either |",
        "|---|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.group} | {r.matches} | {auc_text(r.model[0])} / {pct_text(r.model[1])} | "
                     f"{auc_text(r.baseline[0])} / {pct_text(r.baseline[1])} | {pct_text(r.either)} |")
    return "\n".join(lines) + "\n"


def account_markdown(honest: int, rows: Sequence[AccountRow]) -> str:
    """The account table: ROC-AUC / recall at 1% FPR after each number of matches."""
    if not rows:
        return ""
    steps = list(rows[0].by_matches)
    head = " | ".join(f"after {k} match{'es' if k > 1 else ''}" for k in steps)
    lines = [
        "## Accounts across matches",
        "",
        f"The same accounts play match after match ({honest} honest accounts). An account's "
        "score combines its per-match tails by Fisher's method (`anticheat.accounts`); each "
        "cell is ROC-AUC / recall at 1% FPR against all honest accounts, over the account's "
        "first matches.",
        "",
        f"| cheat / intensity | accounts | {head} |",
        "|---|---:|" + "---|" * len(steps),
    ]
    for r in rows:
        cells = " | ".join(f"{auc_text(a)} / {pct_text(rc)}" for a, rc in r.by_matches.values())
        lines.append(f"| {r.group} | {r.accounts} | {cells} |")
    return "\n".join(lines) + "\n"


def pct_text(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _rate(rate: float, n: int) -> str:
    """``1.4% (1.1-1.8%)``: a rate measured on ``n`` players with its 95% interval."""
    if math.isnan(rate) or n <= 0:
        return pct_text(rate)
    lo, hi = rate_interval(round(rate * n), n)
    return f"{pct_text(rate)} ({100 * lo:.1f}-{100 * hi:.1f}%)"


def _count(n: int) -> str:
    return f"{n:,} " if n > 0 else ""


def auc_text(x: float) -> str:
    """A ROC-AUC to four places: at three, 0.98957 reads 0.990 and passes for a 0.99 target it misses."""
    return "-" if math.isnan(x) else f"{x:.4f}"


def markdown(report: Report, *, command: str = "") -> str:
    lines = [
        f"# Anti-cheat evaluation: model `{report.model_version}`",
        "",
        f"Held-out matches: {report.matches}; clean players: {report.clean}; "
        f"cheating players: {report.cheaters}. Unit: one player in one match, scored with the "
        "rarer of its best match-long and its best window score among honest players "
        "(as the service does).",
        "",
    ]
    if command:
        lines += ["Reproduce with:", "", "```", command, "```", ""]
    lines += [
        "| cheat / intensity | players | ROC-AUC | recall @1% FPR | recall @0.1% FPR "
        "| recall at policy threshold | caught by rules | flagged (rules or model) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in [*report.groups, report.overall]:
        lines.append(
            f"| {g.group} | {g.n} | {auc_text(g.auc)} | {pct_text(g.recall_1pct)} | {pct_text(g.recall_01pct)} "
            f"| {pct_text(g.policy_recall)} | {pct_text(g.rule_recall)} | {pct_text(g.flagged_recall)} |"
        )
    if report.by_closet:
        lines += ["", "Full-time and closet cheaters apart:", "",
                  "| cheat / intensity (who) | players | ROC-AUC | recall @1% FPR | caught by rules |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {g.group} | {g.n} | {auc_text(g.auc)} | {pct_text(g.recall_1pct)} | {pct_text(g.rule_recall)} |"
                  for g in report.by_closet]
    lines += [
        "",
        f"- Policy threshold {report.policy_threshold:.4f}: false-positive rate "
        f"{_rate(report.policy_fpr_train, report.policy_train_clean)} on the "
        f"{_count(report.policy_train_clean)}training-side clean players it was chosen on, "
        f"{_rate(report.policy_fpr_heldout, report.clean)} on these {report.clean:,} held-out clean players"
        " (95% intervals: each rate is measured on a finite set of players).",
        f"- Rules fired on {report.rule_false_positives} of {report.clean:,} clean players"
        + (f": {_rate(report.rule_false_positives / report.clean, report.clean)}." if report.clean else "."),
        f"- Flagged by rules or model: {pct_text(report.flagged_fpr)} of clean players.",
    ]
    ruled = [g for g in report.groups if g.group.split("/")[0] in RULE_KINDS]
    if ruled:
        lines.append(
            "- Caught by rules among the cheaters whose cheat acted while it was on (fly: off the "
            "ground; speedhack: moving; teleport: any position): "
            + "; ".join(f"{g.group} {pct_text(g.rule_recall_shown)} of {g.n - g.not_shown}"
                        + (f" ({g.not_shown} never acted)" if g.not_shown else "") for g in ruled)
            + "."
        )
    lines.append("")
    return "\n".join(lines)


def write_report(
    report: Report,
    records: Sequence[PlayerRecord],
    scores: np.ndarray,
    out_dir: str | Path,
    *,
    command: str = "",
    appendix: str = "",
) -> Path:
    """Write ``report.md``, ``roc.png``, ``recall_by_kind.png`` and ``players.csv`` into ``out_dir``.

    ``appendix`` (Markdown, such as the account table) goes after the plots.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = np.array([r.label for r in records])
    clean_mask = labels == 0
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for g in report.groups:
        mask = clean_mask | np.array([r.group == g.group for r in records])
        if not (labels[mask] == 1).any():
            continue
        fpr, tpr, _ = roc_curve(labels[mask], scores[mask])
        ax.plot(fpr, tpr, label=f"{g.group} (AUC {g.auc:.3f})")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.axvline(0.01, color="grey", ls=":", lw=1)
    ax.axvline(0.001, color="grey", ls=":", lw=1)
    ax.set_xlabel("false-positive rate (clean players, log scale)")
    ax.set_ylabel("recall")
    ax.set_title("ROC per cheat kind (held-out matches)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = [g.group for g in report.groups]
    xs = np.arange(len(names))
    w = 0.27
    ax.bar(xs - w, [g.recall_1pct for g in report.groups], w, label="model @1% FPR")
    ax.bar(xs, [g.recall_01pct for g in report.groups], w, label="model @0.1% FPR")
    ax.bar(xs + w, [g.flagged_recall for g in report.groups], w, label="rules or policy")
    ax.set_xticks(xs, names, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall")
    ax.set_title("Recall per cheat kind and intensity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "recall_by_kind.png", dpi=110)
    plt.close(fig)

    with (out / "players.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PlayerRow.CSV_FIELDS)
        writer.writerows(p.csv_row() for p in report.players)

    path = out / "report.md"
    path.write_text(markdown(report, command=command)
                    + "\n![ROC](roc.png)\n\n![recall by kind](recall_by_kind.png)\n"
                    + ("\n" + appendix if appendix else ""))
    return path
