"""What an analyst sees: features against the population, and the timeline.

:func:`explain_player` lists every feature of a player with the population
median and the player's percentile among clean training players, ordered by
how unusual it is. :func:`timeline_png` draws the player's speed and aim
angular speed over the match with shots, kills and each flag marked, so a
reviewer can see *what happened* around the moment the service raised it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from anticheat.model import ModelBundle
from anticheat.physics import Limits, wrap_deg
from anticheat.rules import MatchRules, RuleConfig
from anticheat.service import ScoringCore

__all__ = ["explain_player", "speed_trace", "timeline_png"]


def explain_player(
    bundle: ModelBundle, core: ScoringCore, match: str, player: str
) -> tuple[list[dict[str, Any]], float]:
    """Rows ``{name, value, median, percentile}`` most unusual first, and the player's score."""
    vec = core.player_vectors(match).get(player, {})
    rows: list[dict[str, Any]] = []
    for name in bundle.feature_names:
        value = float(vec.get(name, math.nan))
        pop = bundle.population.get(name, [])
        median = float(pop[50]) if len(pop) == 101 else math.nan
        pct = bundle.percentile(name, value)
        rows.append({"name": name, "value": value, "median": median, "percentile": pct})
    rows.sort(key=lambda r: -1.0 if math.isnan(r["percentile"]) else abs(r["percentile"] - 50.0),
              reverse=True)
    return rows, core.best_scores(match).get(player, 0.0)


def speed_trace(
    events: Sequence[dict[str, Any]], player: str, config: RuleConfig | None = None,
) -> list[tuple[int, float, float]]:
    """``(ts, speed, limit)``: what the speed rule saw at each position of ``player``.

    One tick's distance swings with the server's command jitter; the rule
    judges the distance over its window (0.5 s by default) against the fastest cap of
    the weapons in hand over it, or the knife's speed when positions name
    no weapon. The events go through the rule itself, so the trace skips
    what it skips (the grace after a spawn or round start, gaps).

    >>> run = [{"type": "pos", "player": "p1", "ts": i * 100, "x": 0.6 * i, "y": 0.0, "z": 0.0,
    ...         "weapon": "sniper"} for i in range(8)]
    >>> [(t, round(v, 2), round(lim, 2)) for t, v, lim in speed_trace(run, "p1")][-1]
    (700, 6.0, 5.28)
    """
    rules = MatchRules("explain", config)
    out: list[tuple[int, float, float]] = []
    for e in events:
        rules.update(e)
        if e.get("type") == "pos" and e.get("player") == player:
            state = rules.player(player)
            if not math.isnan(state.window_speed):
                out.append((int(e["ts"]), state.window_speed, state.speed_limit()))
    return out


def timeline_png(
    events: Sequence[dict[str, Any]],
    player: str,
    flags: Sequence[dict[str, Any]],
    path: str | Path,
    config: RuleConfig | None = None,
    climbs: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Speed and aim traces of ``player`` with shots, kills and flags, as a PNG.

    ``climbs`` (:meth:`anticheat.service.ScoringCore.climbs`) shades the
    stretch of shots behind each CUSUM's highest climb on the aim trace.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = [e for e in events if e.get("type") == "pos" and e.get("player") == player]
    t0 = min((e["ts"] for e in events), default=0)
    ts, speed, aim = [], [], []
    for a, b in itertools.pairwise(pos):
        dt = (b["ts"] - a["ts"]) / 1000.0
        if dt <= 0 or dt > 0.5:
            continue
        ts.append((b["ts"] - t0) / 1000.0)
        speed.append(math.hypot(b["x"] - a["x"], b["y"] - a["y"]) / dt)
        dyaw = wrap_deg(b["yaw"] - a["yaw"])
        aim.append(math.hypot(dyaw, b["pitch"] - a["pitch"]) / dt)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    ax1.plot(ts, speed, lw=0.5, color="tab:blue", alpha=0.4, label="per tick")
    config = config or RuleConfig()
    trace = speed_trace(events, player, config)
    if trace:
        # A NaN after each gap (death, respawn) so no line bridges it.
        tt: list[float] = []
        vs: list[float] = []
        limits: list[float] = []
        for k, (t, v, limit) in enumerate(trace):
            if k and t - trace[k - 1][0] > 1000:
                tt.append(tt[-1])
                vs.append(math.nan)
                limits.append(math.nan)
            tt.append((t - t0) / 1000.0)
            vs.append(v)
            limits.append(limit)
        ax1.plot(tt, vs, lw=1.0, color="tab:blue",
                 label=f"over {config.speed_window_ms / 1000:g} s (what the speed rule judges)")
        ax1.step(tt, limits, where="post", lw=0.9, color="tab:green",
                 label="the speed rule's limit (weapon in hand)")
    ax1.axhline(Limits().max_speed_mps, color="grey", ls="--", lw=0.8, label="top legal speed")
    # Linear, with room above the top legal speed: the story is in 4-8 m/s
    # (a slow weapon's cap, the knife's speed, a hack's margin over them).
    # A one-tick teleport's spike goes off the top; its flag marks it.
    top = max((v for _, v, _ in trace), default=0.0)
    ax1.set_ylim(0.0, min(max(8.0, 1.1 * top), 60.0))
    ax1.set_ylabel("speed (m/s)")
    ax1.legend(fontsize=7, loc="upper right")
    ax2.plot(ts, aim, lw=0.8, color="tab:purple")
    ax2.set_yscale("symlog", linthresh=50)
    ax2.set_ylabel("aim speed (deg/s)")
    ax2.set_xlabel("match time (s)")
    for e in events:
        if e.get("player") != player:
            continue
        x = (e["ts"] - t0) / 1000.0
        if e.get("type") == "shot":
            ax2.axvline(x, color="tab:orange", lw=0.4, alpha=0.6)
        elif e.get("type") == "kill":
            ax2.axvline(x, color="tab:red", lw=1.0)
    for k, (name, climb) in enumerate(sorted((climbs or {}).items())):
        start, end = (climb["from"] - t0) / 1000.0, (climb["to"] - t0) / 1000.0
        color = f"C{k % 10}"
        ax2.axvspan(start, max(end, start + 0.2), color=color, alpha=0.15)
        ax2.annotate(f"{name.removeprefix('cusum_').removesuffix('_max')} {climb['height']:.1f}",
                     (start, 1.0), xycoords=("data", "axes fraction"), fontsize=7, va="top", color=color)
    for f in flags:
        x = (f["ts"] - t0) / 1000.0
        for ax in (ax1, ax2):
            ax.axvline(x, color="black", lw=1.5, ls=":")
        ax1.annotate(str(f.get("kind", "flag")), (x, ax1.get_ylim()[1]), fontsize=7,
                     rotation=90, va="top", ha="right")
    ax1.set_title(f"{player}: speed and aim (orange shots, red kills, dotted flags)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
