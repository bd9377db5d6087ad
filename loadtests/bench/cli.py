"""``gamebus bench``: run the benchmark suite and write BENCHMARKS.md.

The suite is a list of modules under ``loadtests/bench/`` that each expose
``run(repeats: int) -> dict`` (the dict's optional keys are described in
:mod:`loadtests.bench.common`). Each module runs in its own child process
so that one that crashes, hangs or leaks (event loops, peer servers) cannot
take the others down or skew their numbers; a module that is missing or
fails is reported with a clear note and the rest still run.

After the run, BENCHMARKS.md is rewritten: the header (machine, command,
date), the Goals table, the suite summary and the end-to-end section come
from this run; every other ``## `` section (each owned by the engineer of a
module) is kept verbatim, and only filled in when it does not exist yet
(by the module's ``render_section`` if it has one). The Goals table uses
this run's numbers, so it can differ from an owner's section measured at
another time; BENCHMARKS.json holds every dict this run returned. The file
is read back *after* the modules ran, in case a module writes its section. A JSON file with
every returned dict goes beside it, and PNG plots go to ``docs/bench/``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import inspect
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["GOALS", "SUITE", "main", "register", "run_suite", "write_report"]

ROOT = Path(__file__).resolve().parents[2]

#: Suite modules in the order they run: cheap and isolated first, the
#: end-to-end run (which wants the quietest machine) last.
SUITE: tuple[str, ...] = ("bench_log", "bench_ingest", "bench_fanout", "bench_jetstream",
                          "bench_e2e")

#: The goals of issue 7, the module expected to measure each, and its key in
#: a module's ``goals`` list.
GOALS: tuple[tuple[str, str, str, str], ...] = (
    ("ingest_vs_nats", "Ingest vs nats-py core publish", ">= 2x", "bench_ingest"),
    ("fanout_vs_ceiling", "Fan-out vs bare websockets broadcast", ">= 80% of ceiling",
     "bench_fanout"),
    ("e2e_p99", "p99 publish-to-client, 10 matches x 20 players x 20 Hz", "< 10 ms",
     "bench_e2e"),
    ("durable_vs_jetstream", "Durable-ack ingest vs JetStream ingest", "> JetStream",
     "bench_ingest"),
    ("flat_memory", "Broker and relay memory over the run", "flat (< 10% growth)",
     "bench_e2e"),
)

#: ``## `` sections this runner owns; all others in BENCHMARKS.md are kept.
OWN_SECTIONS = ("Goals", "Suite run", "End to end")

#: The heading each module's owner uses for their section, in page order.
MODULE_SECTIONS: dict[str, str] = {
    "bench_log": "Log engine (bench_log)",
    "bench_ingest": "Ingest (bench_ingest)",
    "bench_fanout": "Fan-out (bench_fanout)",
    "bench_jetstream": "Scale-out on JetStream (bench_jetstream)",
}


def register(subparsers: Any) -> None:
    """Add ``gamebus bench`` to the ``gamebus`` command."""
    p = subparsers.add_parser("bench", help="run the benchmark suite, write BENCHMARKS.md",
                              description=__doc__.split("\n\n")[0] if __doc__ else None)
    _add_options(p)
    p.set_defaults(func=_cmd_bench)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help="one repeat and short durations (about a minute per module)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this module (bench_e2e or e2e); repeatable")
    p.add_argument("--repeats", type=int, default=None,
                   help="runs per measurement (default 3, 1 with --quick)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds before a module is stopped (default 1800, 600 with --quick)")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md",
                   help="the Markdown results, with the machine and command (default: BENCHMARKS.md)")
    p.add_argument("--json-output", type=Path, default=ROOT / "BENCHMARKS.json",
                   help="the same results as JSON (default: BENCHMARKS.json)")
    p.add_argument("--plots-dir", type=Path, default=ROOT / "docs" / "bench",
                   help="directory for the plots (default: docs/bench)")
    p.add_argument("--no-write", action="store_true", help="print, don't touch BENCHMARKS.md")


def _cmd_bench(args: argparse.Namespace) -> int:
    names = _selected(args.only)
    repeats = args.repeats or (1 if args.quick else 3)
    timeout = args.timeout or (600.0 if args.quick else 1800.0)
    results = run_suite(names, repeats=repeats, quick=args.quick, timeout_s=timeout)
    command = "gamebus bench" + "".join(f" {a}" for a in _argv_tail())
    failed = [n for n, r in results["modules"].items() if r["status"] == "failed"]
    if args.only:
        _carry_over(results, args.json_output)
    if not args.no_write:
        write_report(results, command=command, output=args.output,
                     json_output=args.json_output, plots_dir=args.plots_dir)
        print(f"wrote {args.output} and {args.json_output}")
    return 1 if failed else 0


def _carry_over(results: dict[str, Any], json_output: Path) -> None:
    """With ``--only``, keep the other modules' last results (marked as such).

    So that re-running one module does not turn every other goal into "not
    measured"; the suite table says which numbers are from an earlier run.
    """
    try:
        previous = json.loads(json_output.read_text())
    except (OSError, ValueError):
        return
    when = previous.get("started", "an earlier run")
    for name, mod in (previous.get("modules") or {}).items():
        if name in results["modules"] or mod.get("status") != "ok":
            continue
        carried = dict(mod)
        carried["note"] = f"carried over from {mod.get('from', when)}"
        carried["from"] = mod.get("from", when)
        carried["section"] = None  # its section in the page stays as it is
        results["modules"][name] = carried


def _argv_tail() -> list[str]:
    argv = sys.argv[1:]
    if argv and argv[0] == "bench":
        argv = argv[1:]
    return [shlex.quote(a) for a in argv]


def _selected(only: Sequence[str]) -> list[str]:
    if not only:
        return list(SUITE)
    wanted = []
    for item in only:
        for name in item.split(","):
            name = name.strip()
            if name and not name.startswith("bench_"):
                name = f"bench_{name}"
            if name:
                wanted.append(name)
    return wanted


def run_suite(names: Sequence[str], *, repeats: int, quick: bool,
              timeout_s: float) -> dict[str, Any]:
    """Run each module in a child process; collect its dict or why it has none."""
    from loadtests.bench.common import machine_info

    started = dt.datetime.now(dt.UTC)
    modules: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        modules[name] = _run_module(name, repeats=repeats, quick=quick, timeout_s=timeout_s)
        status = modules[name]["status"]
        note = modules[name].get("note", "")
        print(f"=== {name}: {status} in {modules[name]['seconds']:.0f} s {note}", flush=True)
    return {
        "machine": machine_info(),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "quick": quick,
        "modules": modules,
    }


def _run_module(name: str, *, repeats: int, quick: bool, timeout_s: float) -> dict[str, Any]:
    path = ROOT / "loadtests" / "bench" / f"{name}.py"
    if not path.exists():
        return {"status": "skipped", "seconds": 0.0,
                "note": f"loadtests/bench/{name}.py does not exist yet"}
    with tempfile.TemporaryDirectory(prefix="gamebus-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["GAMEBUS_BENCH_QUICK"] = "1" if quick else "0"
        argv = [sys.executable, "-m", "loadtests.bench.cli", "--child", name,
                "--repeats", str(repeats), "--result", str(result_file)]
        if quick:
            argv.append("--quick")
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            return {"status": "failed", "seconds": time.monotonic() - t0,
                    "note": f"stopped after {timeout_s:.0f} s timeout"}
        seconds = time.monotonic() - t0
        if rc != 0 or not result_file.exists():
            err = ""
            if result_file.exists():
                err = json.loads(result_file.read_text()).get("error", "")
            return {"status": "failed", "seconds": seconds,
                    "note": f"exit code {rc}" + (f": {err}" if err else "")}
        data = json.loads(result_file.read_text())
        if "error" in data:
            return {"status": "failed", "seconds": seconds, "note": data["error"]}
        return {"status": "ok", "seconds": seconds, "result": data["result"],
                "section": data.get("section")}


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    """Stop the child and what it started (its own session), by its PID."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _child(name: str, repeats: int, quick: bool, result: Path) -> int:
    """Inside the child: import, run, write the dict (or the error) as JSON."""
    import importlib
    import traceback

    try:
        module = importlib.import_module(f"loadtests.bench.{name}")
        run = module.run
        kwargs: dict[str, Any] = {}
        if "quick" in inspect.signature(run).parameters:
            kwargs["quick"] = quick
        data = run(repeats, **kwargs)
        if not isinstance(data, Mapping):
            raise TypeError(f"run() returned {type(data).__name__}, expected a dict")
        section = None
        render = getattr(module, "render_section", None)
        if callable(render):
            # The owner's own renderer writes the owner's section from this run.
            with contextlib.suppress(Exception):
                section = str(render(data, command=f"gamebus bench --only {name}"))
        result.write_text(json.dumps({"result": data, "section": section}, default=_jsonable))
        return 0
    except BaseException as exc:
        traceback.print_exc()
        result.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 1


def _jsonable(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return value._asdict()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


# --------------------------------------------------------------------------- report


def write_report(results: Mapping[str, Any], *, command: str, output: Path,
                 json_output: Path, plots_dir: Path) -> None:
    """Write BENCHMARKS.md (keeping others' sections), the JSON file and the plots."""
    plots = _make_plots(results, plots_dir)
    existing = output.read_text() if output.exists() else ""
    modules = results["modules"]
    e2e = modules.get("bench_e2e")
    fresh_e2e = e2e is not None and e2e["status"] == "ok"
    parts = [_header(results, command, plots, output.parent),
             _goals_section(results),
             _suite_section(results)]
    old = _sections(existing)
    if fresh_e2e and e2e is not None:
        parts.append(_e2e_section(e2e["result"], plots, output.parent))
    else:  # not run or failed this time: keep the previous numbers
        parts += [text for title, text in old if title.startswith("End to end")]
    # Module sections belong to their owners and stay verbatim. Only a
    # section never written yet is filled in: by the owner's renderer when
    # the module has one, else from its run() dict.
    by_title = {title: text for title, text in old}
    placed: set[str] = set()
    for name, heading in MODULE_SECTIONS.items():
        mod = modules.get(name)
        fresh = mod.get("section") if mod and mod["status"] == "ok" else None
        if heading in by_title:
            parts.append(by_title[heading])
        elif fresh and fresh.lstrip().startswith("## "):
            parts.append(fresh)
            placed.add(fresh.lstrip().splitlines()[0][3:].strip())
        elif mod and mod["status"] == "ok":
            parts.append(_generated_section(heading, mod["result"]))
        placed.add(heading)
    for title, text in old:
        if not _owned(title) and title not in placed:
            parts.append(text)
    body = "\n\n".join(p.rstrip() for p in parts)
    output.write_text(body + "\n")
    doc = dict(results)
    doc["command"] = command
    doc["plots"] = {k: str(v.relative_to(ROOT)) if v.is_relative_to(ROOT) else str(v)
                    for k, v in plots.items()}
    json_output.write_text(json.dumps(doc, indent=1, default=_jsonable) + "\n")
    reports = ROOT / "loadtests" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench.json").write_text(json_output.read_text())


def _generated_section(heading: str, res: Mapping[str, Any]) -> str:
    """A module section made from its ``run()`` dict, until its owner writes one."""
    text = f"## {heading}\n\n_Generated by the suite from the module's results._\n"
    if res.get("table"):
        text += "\n" + str(res["table"]).rstrip() + "\n"
    for note in res.get("notes", []) or []:
        text += f"\n- {note}"
    return text


def _sections(text: str) -> list[tuple[str, str]]:
    """Split Markdown at ``## `` headings: [(title, text including heading)]."""
    out: list[tuple[str, str]] = []
    current: list[str] | None = None
    title = ""
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            if current is not None:
                out.append((title, "\n".join(current)))
            title, current = line[3:].strip(), [line]
        elif current is not None:
            current.append(line)
    if current is not None:
        out.append((title, "\n".join(current)))
    return out


def _owned(title: str) -> bool:
    return any(title.startswith(prefix) for prefix in OWN_SECTIONS)


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def _header(results: Mapping[str, Any], command: str, plots: Mapping[str, Path],
            base: Path) -> str:
    m = results["machine"]
    lines = [
        "# gamebus benchmarks",
        "",
        "Every number on this page was measured on one machine in one run of the suite,",
        "ours beside the peers (NATS, Redis, a bare `websockets` broadcast) with the same",
        "payloads. Medians of several runs, with the spread as (min-max); a goal that is",
        "missed is marked **missed**. This machine is a shared, noisy 2-core VM: treat the",
        "absolute numbers as a floor and the ratios as the result.",
        "",
        f"- Command: `{command}` (`make bench` runs `python -m loadtests.bench`)",
        f"- Date: {results['started']} to {results['finished']} (UTC)",
        f"- Machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu_model']}, "
        f"{m['memory_gib']} GiB, {m['os']}",
        f"- Python: {m['implementation']} {m['python']}; load average at the start "
        f"{m['loadavg_1m']}",
        f"- Repeats per measurement: {results['repeats']}"
        + (" (quick mode: short runs, one repeat)" if results.get("quick") else ""),
    ]
    if plots:
        lines += ["", "Plots: " + ", ".join(f"[{k}]({_rel(v, base)})" for k, v in plots.items())]
    return "\n".join(lines)


def _goal_rows(results: Mapping[str, Any]) -> list[list[str]]:
    modules = results["modules"]
    rows = []
    for key, label, target, owner in GOALS:
        found: Mapping[str, Any] | None = None
        for name, mod in modules.items():
            if mod["status"] != "ok":
                continue
            for goal in mod["result"].get("goals", []) or []:
                if _goal_key(goal) == key:
                    found = goal
                    owner = name
        if found is None:
            mod = modules.get(owner)
            why = ("not run this time" if mod is None else
                   f"not measured: {owner} {mod['status']}"
                   + (f" ({mod.get('note', '')})" if mod.get("note") else "")
                   if mod["status"] != "ok" else f"not measured: {owner} reported no such goal")
            rows.append([label, target, "-", "**not measured**", why])
            continue
        met = found.get("met")
        verdict = "met" if met is True else "**missed**" if met is False else "unknown"
        rows.append([label, str(found.get("target", target)), str(found.get("measured", "-")),
                     verdict, f"{owner}: {found.get('note', '')}".rstrip(": ")])
    # Goals the modules report beyond the five of the issue.
    known = {g[0] for g in GOALS}
    for name, mod in modules.items():
        if mod["status"] != "ok":
            continue
        for goal in mod["result"].get("goals", []) or []:
            if _goal_key(goal) not in known:
                met = goal.get("met")
                rows.append([str(goal.get("goal", goal.get("key", "?"))),
                             str(goal.get("target", "")), str(goal.get("measured", "-")),
                             "met" if met is True else "**missed**" if met is False else "unknown",
                             f"{name}: {goal.get('note', '')}".rstrip(": ")])
    return rows


def _goal_key(goal: Mapping[str, Any]) -> str:
    """A goal's key: ``key``, or ``goal`` when that is a key-like name."""
    return str(goal.get("key") or goal.get("goal") or "")


def _goals_section(results: Mapping[str, Any]) -> str:
    from loadtests.bench.common import markdown_table

    table = markdown_table(["goal", "target", "measured", "result", "source / note"],
                           _goal_rows(results), align="lllll")
    return "## Goals\n\n" + table


def _suite_section(results: Mapping[str, Any]) -> str:
    from loadtests.bench.common import markdown_table

    rows = []
    for name, mod in results["modules"].items():
        note = mod.get("note", "")
        if mod["status"] == "ok":
            res = mod["result"]
            note = res.get("title", "") or note
        if mod.get("from"):
            note = f"{note} (carried over from {mod['from']})".strip()
        rows.append([name, mod["status"], f"{mod['seconds']:.0f} s", note])
    text = "## Suite run\n\n" + markdown_table(["module", "status", "time", "note"], rows,
                                                align="llrl")
    text += ("\n\nEach module's own section below is written by its author; the tables"
             " returned by this run are in BENCHMARKS.json.")
    return text


def _e2e_section(res: Mapping[str, Any], plots: Mapping[str, Path], base: Path) -> str:
    text = "## End to end (bench_e2e)\n\n"
    if res.get("table"):
        text += str(res["table"]).rstrip() + "\n"
    for note in res.get("notes", []) or []:
        text += f"\n- {note}"
    links = [f"![{k}]({_rel(v, base)})" for k, v in plots.items() if k.startswith("e2e")]
    if links:
        text += "\n\n" + "\n".join(links)
    return text


def _make_plots(results: Mapping[str, Any], plots_dir: Path) -> dict[str, Path]:
    """Per module: latency curves and throughput bars; e2e: memory over time."""
    from loadtests.bench import plots as P

    made: dict[str, Path] = {}
    for name, mod in results["modules"].items():
        if mod["status"] != "ok":
            continue
        res = mod["result"]
        short = name.removeprefix("bench_")
        try:
            if res.get("latency_ms"):
                made[f"{short} latency"] = P.latency_curves(
                    res["latency_ms"], plots_dir / f"{short}-latency.png",
                    title=f"{short}: latency percentiles")
            if res.get("throughput"):
                errors = res.get("throughput_spread")
                made[f"{short} throughput"] = P.throughput_bars(
                    res["throughput"], plots_dir / f"{short}-throughput.png",
                    title=f"{short}: throughput", errors=errors)
            if res.get("memory_series"):
                made[f"{short} memory"] = P.memory_over_time(
                    res["memory_series"], plots_dir / f"{short}-memory.png",
                    title=f"{short}: RSS over the run")
            for i, curve in enumerate(res.get("scaling", []) or []):
                made[f"{short} scaling {curve.get('param', i)}"] = P.scaling_curve(
                    curve["x"], curve["throughput"], curve["p99_ms"],
                    plots_dir / f"{short}-scaling-{curve.get('param', i)}.png",
                    title=f"{short}: scaling with {curve.get('param', '')}",
                    xlabel=str(curve.get("param", "")))
        except Exception as exc:  # a bad plot must not lose the numbers
            print(f"plot for {name} failed: {exc}", file=sys.stderr)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtests.bench`` (what ``make bench`` runs)."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench",
                                     description="Run the gamebus benchmark suite.")
    _add_options(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.repeats or 1, args.quick, args.result)
    return _cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
