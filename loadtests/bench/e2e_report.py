"""The end-to-end benchmark's report: tables, knee, goals, out of summarised runs.

Pure: takes the dicts :func:`loadtests.bench.bench_e2e.summarize` returns and
builds the Markdown and the suite's result dict; nothing here runs anything.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any

from loadtests.bench.common import fmt_num, markdown_table, median_spread

__all__ = ["FLAT_GROWTH_PCT", "P99_GOAL_MS", "knee", "report"]

P99_GOAL_MS = 10.0
FLAT_GROWTH_PCT = 10.0
MATCHES, PLAYERS, TICK_HZ = 10, 20, 20


def _spread(values: Sequence[float], fmt: Callable[[float], str]) -> tuple[str, str]:
    s = median_spread(values)
    if not s["n"]:
        return "n/a", ""
    return fmt(s["median"]), (f"{fmt(s['min'])}-{fmt(s['max'])}" if s["n"] > 1 else "")


def _ms(v: float) -> str:
    return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"


def share(point: dict[str, Any]) -> float:
    """Events delivered as a share of what the clients should have received."""
    offered = point.get("offered_out_per_s") or 0.0
    return 100.0 * point["events_out_per_s"] / offered if offered else float("nan")


def knee(points: list[dict[str, Any]]) -> str:
    """Where the clients curve bends: delivery falls behind or p99 leaves the goal."""
    if not points:
        return ""
    first = points[0]
    if share(first) < 95.0 or first["p99_ms"] > P99_GOAL_MS:
        return (f"Knee: at or below {first['clients']:,} clients on this machine "
                f"(delivered {share(first):.0f}% of the offered events, p99 "
                f"{first['p99_ms']:.1f} ms). " + why(first))
    for prev, point in itertools.pairwise(points):
        if share(point) < 95.0 or point["p99_ms"] > max(P99_GOAL_MS, 3 * prev["p99_ms"]):
            return (f"Knee: between {prev['clients']:,} and {point['clients']:,} clients "
                    f"(delivered {share(prev):.0f}% -> {share(point):.0f}% of the offered "
                    f"events, p99 {prev['p99_ms']:.1f} -> {point['p99_ms']:.1f} ms). "
                    + why(point))
    return "No knee within the measured range."


def why(point: dict[str, Any]) -> str:
    """Which resource ran out at a curve point, from the CPU figures."""
    cores = os.cpu_count() or 1
    relay = point.get("relay_cpu") or 0.0
    clients = point.get("clients_cpu") or 0.0
    total = point.get("cpu_total") or 0.0
    if relay >= 85.0:
        return (f"There the relay is CPU-bound ({relay:.0f}% of its one core: one event loop "
                f"writes every frame to every socket), the whole pipeline uses {total:.0f}% of "
                f"{100 * cores}%.")
    if total >= 70.0 * cores:
        return (f"There the machine is: the pipeline's processes use {total:.0f}% of "
                f"{100 * cores}% ({cores} cores; relay {relay:.0f}%, clients {clients:.0f}%), "
                "so every process waits for a core in turn and the relay, one event loop, "
                "is time-shared with its own load generator.")
    return (f"No process is saturated (relay {relay:.0f}%, clients {clients:.0f}%, all "
            f"{total:.0f}% of {100 * cores}%); the relay's share of the cores is the limit: "
            "it writes each frame to every client socket in turn, and it is preempted while "
            "doing so (perf sched in the diagnostics above).")


def curve_point(n: int, s: dict[str, Any]) -> dict[str, Any]:
    """One point of the clients curve out of a summarised run."""
    comps = s["components"]
    return {"clients": n, "connected": s["connected"],
            "events_out_per_s": s["events_out_per_s"],
            "offered_out_per_s": s["events_in_per_s"] / MATCHES * n,
            "p50_ms": s["latency_ms"]["p50"], "p99_ms": s["latency_ms"]["p99"],
            "bus_p99_ms": s["bus_latency_ms"]["p99"],
            "relay_cpu": comps.get("relay", {}).get("cpu_mean_pct"),
            "clients_cpu": comps.get("clients", {}).get("cpu_mean_pct"),
            "cpu_total": sum(c.get("cpu_mean_pct", 0.0) for c in comps.values()),
            "gaps": s["gaps"], "duplicates": s["duplicates"],
            "client_errors": s["client_errors"], "conflated": s.get("conflated", 0.0),
            "loadavg": s["loadavg"][1]}


def _main_table(runs: list[dict[str, Any]], n_clients: int) -> str:
    def row(label: str, values: Sequence[float], fmt: Callable[[float], str]) -> list[str]:
        med, spread = _spread(values, fmt)
        return [label, med, spread, " / ".join(fmt(v) for v in values)]

    def lat(key: str, q: str) -> list[float]:
        return [r[key][q] for r in runs]

    rows = [
        row("clients connected", [r["connected"] for r in runs], lambda v: f"{v:,.0f}"),
        row("events in/s (simulator -> broker)", [r["events_in_per_s"] for r in runs], fmt_num),
        row("simulator ticks/s per match (goal 20)", [r.get("ticks_per_s", 0.0) for r in runs],
            lambda v: f"{v:.2f}"),
        row("events out/s (relay -> clients)", [r["events_out_per_s"] for r in runs], fmt_num),
        row("frames out/s", [r["frames_out_per_s"] for r in runs], fmt_num),
        row("**publish-to-client p50 ms**", lat("latency_ms", "p50"), _ms),
        row("**publish-to-client p99 ms**", lat("latency_ms", "p99"), _ms),
        row("**publish-to-client p99.9 ms**", lat("latency_ms", "p99.9"), _ms),
        row("publish-to-client max ms", lat("latency_ms", "max"), _ms),
        row("publish-to-broker-subscriber p50 ms (probe)", lat("bus_latency_ms", "p50"), _ms),
        row("publish-to-broker-subscriber p99 ms (probe)", lat("bus_latency_ms", "p99"), _ms),
        row("simulator tick lag p99 ms", lat("tick_lag_ms", "p99"), _ms),
        row("durable ack (game.events) p99 ms", lat("durable_ack_ms", "p99"), _ms),
        row("alerts delivered to the analyst", [r["alerts"] for r in runs], lambda v: f"{v:.0f}"),
        row("gaps / duplicates", [r["gaps"] + r["duplicates"] for r in runs],
            lambda v: f"{v:.0f}"),
        row("client errors (closed, error frames, failed connects)",
            [r["client_errors"] for r in runs], lambda v: f"{v:.0f}"),
        row("positions conflated by the relay (slow clients)", [r["conflated"] for r in runs],
            lambda v: f"{v:,.0f}"),
        row("load average (1 min) at the end", [r["loadavg"][1] for r in runs],
            lambda v: f"{v:.1f}"),
    ]
    return markdown_table(["measure", "median", "min-max", "runs"], rows, align="lrrr")


def _component_table(runs: list[dict[str, Any]]) -> str:
    names = list(runs[0]["components"])
    rows = []
    for name in names:
        cs = [r["components"][name] for r in runs if name in r["components"]]

        def col(key: str, fmt: Callable[[float], str], cs: list[dict[str, Any]] = cs) -> str:
            med, spread = _spread([c[key] for c in cs if key in c], fmt)
            return med + (f" ({spread})" if spread else "")

        rows.append([name, col("cpu_mean_pct", lambda v: f"{v:.0f}%"),
                     col("cpu_max_pct", lambda v: f"{v:.0f}%"),
                     col("rss_first_mib", lambda v: f"{v:.0f}"),
                     col("rss_warm_mib", lambda v: f"{v:.0f}"),
                     col("rss_late_mib", lambda v: f"{v:.0f}"),
                     col("rss_warm_growth_pct", lambda v: f"{v:+.1f}%"),
                     col("rss_tail_slope_mib_per_min", lambda v: f"{v:+.2f}")])
    return markdown_table(["component", "CPU mean", "CPU max (1 s)", "RSS at start MiB",
                           "RSS minute 2 MiB", "RSS last minute MiB",
                           "RSS growth, last minute vs minute 2", "RSS slope, last third MiB/min"],
                          rows, align="lrrrrrrr")


def _sched_text(sched: dict[str, Any]) -> str:
    if not sched:
        return "perf sched was not available."
    parts = []
    for name in ("relay", "broker", "clients", "simulator", "anticheat"):
        e = sched.get(name)
        if not e:
            continue
        by = sorted(e["per_s"].items(), key=lambda kv: -kv[1])[:3]
        parts.append(f"{name} {e['preempted_per_s']:,}/s preempted (by "
                     + ", ".join(f"{k} {v:,}/s" for k, v in by) + f"), {e['slept_per_s']:,}/s "
                     "went to sleep")
    return "; ".join(parts) + "."


def _curve_table(curve: dict[str, Any]) -> str:
    rows = [[p["clients"], f"{p['connected']:,}", fmt_num(p["events_out_per_s"]),
             f"{share(p):.0f}%", _ms(p["p50_ms"]), _ms(p["p99_ms"]), _ms(p["bus_p99_ms"]),
             f"{(p['relay_cpu'] or 0):.0f}%", f"{(p['clients_cpu'] or 0):.0f}%",
             f"{p['cpu_total']:.0f}%", f"{p['gaps']}/{p['duplicates']}", str(p["client_errors"]),
             f"{p['conflated']:,.0f}", f"{p['loadavg']:.1f}"]
            for p in curve["points"]]
    return markdown_table(["clients", "connected", "events out/s", "delivered of offered",
                           "p50 ms", "p99 ms", "probe p99 ms", "relay CPU", "clients CPU",
                           "all CPU", "gaps/dups", "client errors", "conflated", "load end"],
                          rows)


def findings(runs: list[dict[str, Any]], profiled: dict[str, Any] | None,
             niced: dict[str, Any] | None) -> list[str]:
    """What the numbers say, as sentences computed from them (so a new run rewrites them)."""
    out: list[str] = []
    p99 = median_spread([r["latency_ms"]["p99"] for r in runs])["median"]
    probe = median_spread([r["bus_latency_ms"]["p99"] for r in runs])["median"]
    cpu = median_spread([sum(c["cpu_mean_pct"] for c in r["components"].values())
                         for r in runs])["median"]
    relay = median_spread([r["components"].get("relay", {}).get("cpu_mean_pct", 0.0)
                           for r in runs])["median"]
    frames = median_spread([r["frames_out_per_s"] for r in runs])["median"]
    cores = os.cpu_count() or 1
    out.append(f"Latency split (medians of the runs): publish -> broker -> a plain subscriber "
               f"(probe) has p99 {_ms(probe)} ms of the {_ms(p99)} ms publish -> relay -> client; "
               "the rest is the relay's fan-out and the clients' turn on a core"
               + (f". The probe alone is over the {P99_GOAL_MS:g} ms goal at p99: on this box "
                  "the publish side (simulator tick + SDK + broker) already spends it"
                  if probe > P99_GOAL_MS else "") + ".")
    hot = (profiled or {}).get("profile", {}).get("relay") or []
    flush = next((pct for f, pct in hot if f.startswith("ClientConnection.flush")), None)
    sched = ((profiled or {}).get("sched") or {}).get("relay") or {}
    by = sorted((sched.get("per_s") or {}).items(), key=lambda kv: -kv[1])[:3]
    broker_sleeps = (((profiled or {}).get("sched") or {}).get("broker") or {}).get(
        "slept_per_s", 0)
    out.append(
        f"Bottleneck (py-spy, perf sched): CPU. The pipeline's processes use {cpu:.0f}% of "
        f"{100 * cores}% on average and more in bursts; the relay, one event loop, spends "
        f"{relay:.0f}% of a core"
        + (f", {flush:.0f}% of it in ClientConnection.flush, i.e. the socket writes of "
           f"{frames:,.0f} frames/s to 1,000 clients (the kernel's loopback TCP send and "
           "receive path runs inside those calls)" if flush is not None else "")
        + (f", and it is preempted {sched.get('preempted_per_s', 0):,} times a second ("
           + ", ".join(f"{k} {v:,}/s" for k, v in by) + "): every frame waits for the fan-out "
           "of the frames before it and for the relay's next turn on a core" if sched else "")
        + ". The broker preempts the others often but briefly: it goes to sleep "
        f"{broker_sleeps:,} times a second, its flusher handing each write and fsync of the "
        "durable match events to a worker thread (py-spy: Segment.fsync, _worker).")
    if niced:
        better = niced["latency_ms"]["p99"] < p99
        out.append(f"Priorities do not buy the goal: with everything but broker and relay at "
                   f"nice 10, p99 was {_ms(niced['latency_ms']['p99'])} ms ("
                   + ("better" if better else "no better") + f" than {_ms(p99)} ms), because "
                   "the niced processes still need their share: the clients that time the "
                   "frames wait longer for a core, and the total work is the same.")
    growth = [r["components"].get("broker", {}).get("rss_tail_slope_mib_per_min", 0.0)
              for r in runs]
    window = [r.get("window_end_mib") or 0.0 for r in runs]
    out.append(f"Memory: the broker's windows end at {max(window):.1f} MiB; after them its RSS "
               f"still rises about {median_spread(growth)['median']:.1f} MiB/min. Part of it is "
               "the in-memory sparse offset index of the segments (gamebus/log/index.py: one "
               "16-byte entry per 4 KiB of log, 0.4% of the bytes written, in packed arrays "
               "since tracemalloc showed Python ints costing 1.6%), which grows with the log "
               "on disk and shrinks with retention (10 minutes for positions): bounded, not a "
               "leak; the rest was allocator slack in that tracemalloc run. The relay is flat; the "
               "clients grow by the latency samples they keep (8 bytes per frame).")
    return out


def report(runs: list[dict[str, Any]], *, duration: float, n_clients: int, client_procs: int,
           window_bytes: int | None, profiled: dict[str, Any] | None,
           niced: dict[str, Any] | None, curve: dict[str, Any] | None,
           ingest: list[dict[str, Any]], loadavg_start: float) -> dict[str, Any]:
    """The suite's result dict (``table``, ``goals``, plots' data, ``notes``)."""
    order = sorted(range(len(runs)), key=lambda i: runs[i]["latency_ms"]["p99"])
    main_run = runs[order[len(order) // 2]]
    p99 = median_spread([r["latency_ms"]["p99"] for r in runs])
    cores = os.cpu_count() or 1
    cpu_all = median_spread([sum(c["cpu_mean_pct"] for c in r["components"].values())
                             for r in runs])
    text = (f"{MATCHES} matches x {PLAYERS} players x {TICK_HZ} Hz, {n_clients:,} WebSocket "
            f"clients in {client_procs} processes (process i pinned to core i mod {cores}, "
            f"SCHED_BATCH), {duration:.0f} s per run, **{len(runs)} runs: median (min-max)**; "
            f"load average {loadavg_start:.1f} before the first run. The broker's memory "
            f"windows are {(window_bytes or 8 * 2**20) // 1024:,} KiB per partition (24 "
            "partitions) so that they are full within the first minute; memory is judged "
            "on the last minute against the second.\n\n" + _main_table(runs, n_clients)
            + "\n\nCPU (100% = one core; all components together: median "
            f"{cpu_all['median']:.0f}% of {100 * cores}%) and memory per component:\n\n"
            + _component_table(runs))
    text += "\n\n" + "\n\n".join(findings(runs, profiled, niced))
    if profiled:
        hot = profiled.get("profile") or {}
        text += ("\n\nDiagnostics, a separate "
                 f"{profiled['duration_s']:.0f} s run with the same load (not in the medians: "
                 "profilers cost CPU). Where each process spends its busy time (py-spy, "
                 "50 Hz, self time):\n\n" + markdown_table(
                     ["process", "top self-time functions"],
                     [[name, "; ".join(f"{f} {pct:.0f}%" for f, pct in funcs)]
                      for name, funcs in hot.items()], align="ll")
                 + "\n\nWho takes the CPU from whom (perf sched, 3 s): "
                 + _sched_text(profiled.get("sched") or {})
                 + f" That run: p50 {_ms(profiled['latency_ms']['p50'])} ms, p99 "
                 f"{_ms(profiled['latency_ms']['p99'])} ms; probe p99 "
                 f"{_ms(profiled['bus_latency_ms']['p99'])} ms.")
    if niced:
        text += ("\n\nThe same load with the load generators (simulator, clients, probe) and "
                 f"the anti-cheat scorer at nice 10, {niced['duration_s']:.0f} s, so that broker "
                 "and relay get a core first: p50 "
                 f"{_ms(niced['latency_ms']['p50'])} ms, p99 {_ms(niced['latency_ms']['p99'])} "
                 f"ms, p99.9 {_ms(niced['latency_ms']['p99.9'])} ms, probe p99 "
                 f"{_ms(niced['bus_latency_ms']['p99'])} ms, simulator tick lag p99 "
                 f"{_ms(niced['tick_lag_ms']['p99'])} ms, events in "
                 f"{fmt_num(niced['events_in_per_s'])}/s.")
    if curve:
        text += ("\n\nScaling with the number of clients (same publish load, no anti-cheat, "
                 f"{curve['seconds']:.0f} s per point, one run per point):\n\n"
                 + _curve_table(curve) + "\n\n" + knee(curve["points"]))
    for c in ingest:
        rows_i = [[p[c["param"]], fmt_num(p["events_per_s"]), f"{p['mb_per_s']:.1f}",
                   f"{p['p50_ms']:.1f}", f"{p['p99_ms']:.1f}"] for p in c["points"]]
        text += (f"\n\nIngest path (SDK -> broker -> subscriber, one process, flat out, "
                 f"{c['seconds']:.0f} s per point) against {c['param']}:\n\n"
                 + markdown_table([c["param"], "events/s", "MB/s", "p50 ms", "p99 ms"], rows_i))
    growth = {n: [r["components"][n]["rss_warm_growth_pct"] for r in runs
                  if "rss_warm_growth_pct" in r["components"].get(n, {})]
              for n in ("broker", "relay")}
    growth = {n: gs for n, gs in growth.items() if len(gs) == len(runs)}
    flat = bool(growth) and all(abs(g) < FLAT_GROWTH_PCT for gs in growth.values() for g in gs)
    mem = ", ".join(f"{n} {median_spread(gs)['median']:+.1f}% "
                    f"({min(gs):+.1f} to {max(gs):+.1f}%)" for n, gs in growth.items()) \
        or "n/a (runs shorter than 2 minutes)"
    goals = [
        {"key": "e2e_p99", "target": f"< {P99_GOAL_MS:g} ms",
         "measured": f"{_ms(p99['median'])} ms ({_ms(p99['min'])}-{_ms(p99['max'])}), median of "
                     f"{len(runs)} run(s) at {main_run['connected']:,} clients",
         "met": bool(p99["median"] < P99_GOAL_MS),
         "note": "bottleneck: the 2 cores; see the diagnostics in the End to end section"},
        {"key": "flat_memory", "target": f"flat (< {FLAT_GROWTH_PCT:g}% growth)",
         "measured": f"{mem}, last minute vs minute 2 of {duration:.0f} s",
         "met": flat if growth else None,
         "note": "median (range) of the runs; broker memory windows sized to fill in the "
                 "first minute"},
        {"key": "e2e_no_gaps", "goal": "End to end: no gaps, no duplicates", "target": "0 / 0",
         "measured": f"{sum(r['gaps'] for r in runs)} / {sum(r['duplicates'] for r in runs)}",
         "met": all(r["gaps"] == 0 and r["duplicates"] == 0 for r in runs), "note": ""},
    ]
    notes = ["events in: the simulator emits about 356 events/s per match (positions only of "
             "living players, 17 of 20 on average, plus match events), i.e. about 3,560/s for "
             "10 matches at 20 Hz; the ticks/s row shows it kept its rate",
             "broker memory windows: positions fill theirs within seconds, match events within "
             "a minute; the anti-cheat topics (4+4 partitions, about 1 KB/s) fill theirs over "
             "minutes, at most 2 MiB more in all"]
    notes += list(main_run["notes"]) + [f"problem: {p}" for r in runs for p in r["problems"][:3]]
    return {
        "title": f"simulator -> broker -> relay -> {n_clients:,} clients -> anti-cheat",
        "table": text, "goals": goals,
        "latency_ms": {f"publish-to-client, {n_clients} clients (median run)":
                       main_run["latency_ms"],
                       "publish-to-broker subscriber (probe)": main_run["bus_latency_ms"],
                       "durable ack": main_run["durable_ack_ms"]},
        "throughput": {"events in (simulator)": main_run["events_in_per_s"],
                       "events out (to clients)": main_run["events_out_per_s"]},
        "memory_series": main_run["memory_series"],
        "scaling": ([curve] if curve else []) + list(ingest),
        "notes": notes[:12],
        "runs": [{k: v for k, v in r.items() if k != "memory_series"} for r in runs],
        "diagnostics": {"profiled": profiled and {k: v for k, v in profiled.items()
                                                  if k != "memory_series"},
                        "niced": niced and {k: v for k, v in niced.items()
                                            if k != "memory_series"}},
    }
