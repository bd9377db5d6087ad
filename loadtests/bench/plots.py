"""PNG plots for BENCHMARKS.md: HDR-style latency curves and throughput bars.

Latency curves use the HdrHistogram convention: the x axis is
``1 / (1 - percentile)`` on a log scale, so p90, p99, p99.9 and p99.99 are
evenly spaced and the tail, where games feel the stutter, gets as much room
as the median. The y axis is log scale too, because a p50 of 0.3 ms and a
p99.9 of 40 ms must both be readable.

matplotlib runs with the Agg backend: no display on a CI box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["latency_curves", "memory_over_time", "scaling_curve", "throughput_bars"]

_TICKS = (0.5, 0.9, 0.99, 0.999, 0.9999)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _parse_label(key: str) -> float | None:
    """``"p99.9"`` -> 0.999; anything else (``max``, ``n``) -> None."""
    if not key.startswith("p"):
        return None
    try:
        return float(key[1:]) / 100.0
    except ValueError:
        return None


def latency_curves(series: Mapping[str, Mapping[str, float]], out: Path, *,
                   title: str, unit: str = "ms",
                   samples: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Percentile curves, one line per series.

    ``series`` maps a label to ``{"p50": .., "p99": .., ...}``; when raw
    ``samples`` are given for a label, the full curve is drawn from them.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, pcts in series.items():
        xs: list[float] = []
        ys: list[float] = []
        raw = samples.get(label) if samples else None
        if raw:
            data = sorted(raw)
            n = len(data)
            steps = [1 - 10 ** (-k / 20) for k in range(0, 20 * int(math.log10(max(n, 10))) + 1)]
            for q in steps:
                idx = min(int(q * (n - 1)), n - 1)
                xs.append(1 / (1 - q) if q < 1 else float(n))
                ys.append(max(data[idx], 1e-3))
        else:
            for key, value in pcts.items():
                frac = _parse_label(key)
                if frac is None or not (0 < frac < 1) or value != value:
                    continue
                xs.append(1 / (1 - frac))
                ys.append(max(float(value), 1e-3))
            order = sorted(range(len(xs)), key=xs.__getitem__)
            xs, ys = [xs[i] for i in order], [ys[i] for i in order]
        if xs:
            ax.plot(xs, ys, marker="o" if not raw else None, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1 / (1 - q) for q in _TICKS])
    ax.set_xticklabels([f"p{q * 100:g}" for q in _TICKS])
    ax.set_xlim(1.8, 1 / (1 - _TICKS[-1]) * 1.2)
    ax.set_xlabel("percentile")
    ax.set_ylabel(f"latency ({unit}, log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def throughput_bars(values: Mapping[str, float], out: Path, *, title: str,
                    unit: str = "events/s",
                    errors: Mapping[str, tuple[float, float]] | None = None) -> Path:
    """Horizontal bars (labels are long: "gamebus durable acks, batch 100").

    ``errors`` maps a label to its (min, max) over repeats, drawn as whiskers.
    """
    plt = _plt()
    labels = list(values)
    vals = [float(values[k]) for k in labels]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.4), dpi=110)
    xerr = None
    if errors:
        lo = [max(vals[i] - errors.get(k, (vals[i], vals[i]))[0], 0) for i, k in enumerate(labels)]
        hi = [max(errors.get(k, (vals[i], vals[i]))[1] - vals[i], 0) for i, k in enumerate(labels)]
        xerr = [lo, hi]
    ax.barh(labels, vals, xerr=xerr, color="#4c78a8", capsize=3)
    ax.invert_yaxis()
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def memory_over_time(series: Mapping[str, Sequence[tuple[float, float]]], out: Path, *,
                     title: str) -> Path:
    """RSS (MiB) against time (s), one line per component: is it flat?"""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    for label, points in series.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def scaling_curve(xs: Sequence[float], throughput: Sequence[float], p99_ms: Sequence[float],
                  out: Path, *, title: str, xlabel: str, log_x: bool = True) -> Path:
    """Throughput (left axis) and p99 (right axis, log) against one parameter."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    ax.plot(xs, throughput, marker="o", color="#4c78a8", label="events/s delivered")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("events/s", color="#4c78a8")
    if log_x:
        ax.set_xscale("log")
    ax2 = ax.twinx()
    ax2.plot(xs, p99_ms, marker="s", color="#e45756", label="p99 latency")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 (ms, log)", color="#e45756")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
