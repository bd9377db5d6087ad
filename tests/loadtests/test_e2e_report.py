"""The end-to-end report: goals, memory after warm-up and the knee, from made-up runs."""

from __future__ import annotations

from typing import Any

from loadtests.bench.bench_e2e import _after_warmup
from loadtests.bench.e2e_report import knee, report


def _pct(p50: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p90": p99 / 2, "p99": p99, "p99.9": p99 * 2, "max": p99 * 3, "n": 10.0}


def _run(p99: float, broker_growth: float) -> dict[str, Any]:
    comp = {"cpu_mean_pct": 30.0, "cpu_max_pct": 60.0, "rss_first_mib": 50.0,
            "rss_warm_mib": 60.0, "rss_late_mib": 60.0, "rss_tail_slope_mib_per_min": 0.0}
    return {
        "connected": 1000, "events_in_per_s": 3500.0, "ticks_per_s": 20.0,
        "events_out_per_s": 350_000.0, "frames_out_per_s": 28_000.0,
        "latency_ms": _pct(3.0, p99), "bus_latency_ms": _pct(1.0, 5.0),
        "tick_lag_ms": _pct(1.0, 4.0), "durable_ack_ms": _pct(5.0, 40.0),
        "alerts": 3, "gaps": 0, "duplicates": 0, "client_errors": 0, "conflated": 0.0,
        "loadavg": (0.5, 1.5), "notes": [], "problems": [],
        "components": {"broker": dict(comp, rss_warm_growth_pct=broker_growth),
                       "relay": dict(comp, rss_warm_growth_pct=1.0)},
        "memory_series": {"broker": [(1.0, 50.0)]},
    }


def test_goals_take_the_median_p99_and_every_run_s_memory() -> None:
    runs = [_run(8.0, 2.0), _run(12.0, 3.0), _run(9.0, 12.0)]
    res = report(runs, duration=300.0, n_clients=1000, client_procs=2, window_bytes=262_144,
                 profiled=None, niced=None, curve=None, ingest=[], loadavg_start=0.2)
    goals = {g["key"]: g for g in res["goals"]}
    assert goals["e2e_p99"]["met"] is True and goals["e2e_p99"]["measured"].startswith("9.00 ms")
    assert goals["flat_memory"]["met"] is False  # one run grew 12%
    assert "| **publish-to-client p99 ms** | 9.00 | 8.00-12.00 |" in res["table"]


def test_memory_growth_compares_the_last_minute_with_the_second() -> None:
    series = [(float(t), 10.0, 100 * 2**20 if t < 60 else 120 * 2**20) for t in range(300)]
    out = _after_warmup(series)
    assert (out["rss_warm_mib"], out["rss_late_mib"], out["rss_warm_growth_pct"]) == (120, 120, 0)
    assert _after_warmup(series[:100]) == {}


def test_knee_is_where_p99_leaves_the_goal_and_says_what_ran_out() -> None:
    def point(n: int, p99: float, relay: float) -> dict[str, Any]:
        return {"clients": n, "events_out_per_s": 350.0 * n, "offered_out_per_s": 350.0 * n,
                "p99_ms": p99, "relay_cpu": relay, "clients_cpu": 10.0, "cpu_total": 60.0}

    text = knee([point(100, 8.0, 10.0), point(1000, 80.0, 90.0)])
    assert text.startswith("Knee: between 100 and 1,000 clients")
    assert "relay is CPU-bound (90%" in text


def test_numpy_percentiles_agree_with_the_suite_s_definition() -> None:
    import random

    from loadtests.bench.bench_e2e import _percentiles_np
    from loadtests.bench.common import percentiles

    rng = random.Random(5)
    samples = [rng.expovariate(0.1) for _ in range(2_001)]
    fast, slow = _percentiles_np(samples), percentiles(samples)
    assert fast.keys() == slow.keys()
    assert all(abs(fast[k] - slow[k]) < 1e-9 for k in slow)
