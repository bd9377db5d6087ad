"""``make loadtest``: a headless locust run against a local broker and relay.

    python -m loadtests.run [--duration 60] [--users N] [--check]
                            [--shape launch|night] [--processes K]
                            [--bus-url URL --relay-url URL --relay-secret KEY]

Starts ``python -m gamebus broker`` and ``python -m gamebus relay`` on free
loopback ports (a fresh data directory, a JWT secret made for this run),
runs ``locust -f loadtests/locustfile.py --headless`` for ``--duration``
seconds, writes locust's CSV and HTML reports into ``loadtests/reports/``,
stops what it started (by PID) and prints a summary: events/s in and out,
latency percentiles, errors, gaps and duplicates.

Exit code: 1 when any gap or duplicate was seen (they must be zero), or with
``--check`` also when any request failed, nothing was received, or the
broker or relay died. ``--bus-url``/``--relay-url`` skip starting services
and test an existing deployment instead (then the exact offset check is off,
because other traffic may share the partitions).

Latency percentiles in the summary come from raw samples the locustfile
writes per process (locust itself rounds times under 100 ms to whole ms).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loadtests.bench.common import (  # noqa: E402
    ProcessSampler,
    free_port,
    percentiles,
    wait_for_port,
)

__all__ = ["LoadTestResult", "Services", "main", "run_loadtest", "summarize"]

REPORTS = ROOT / "loadtests" / "reports"
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


@dataclass
class Services:
    """A broker and a relay this run started (or URLs of existing ones)."""

    bus_url: str
    relay_url: str
    secret: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workdir: Path | None = None
    logs: dict[str, Path] = field(default_factory=dict)

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM each process we started (relay first), SIGKILL if it lingers."""
        for name in ("relay", "broker"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(200 <= resp.status < 300)
    except OSError:
        return False


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float, name: str,
               log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        if _http_ok(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} not healthy at {url} after {timeout_s} s")


@contextlib.contextmanager
def local_services(*, broker_args: Sequence[str] = (), relay_args: Sequence[str] = (),
                   timeout_s: float = 30.0) -> Iterator[Services]:
    """Start a broker and a relay on free loopback ports; stop them on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="gamebus-loadtest-"))
    secret = secrets.token_hex(32)
    bport, aport, rport, hport = free_port(), free_port(), free_port(), free_port()
    services = Services(bus_url=f"gamebus://127.0.0.1:{bport}",
                        relay_url=f"ws://127.0.0.1:{rport}/", secret=secret, workdir=workdir)
    env = _env()
    env["GAMEBUS_JWT_SECRET"] = secret
    env.setdefault("GAMEBUS_LOG_LEVEL", "WARNING")
    try:
        blog = services.logs["broker"] = workdir / "broker.log"
        with blog.open("wb") as out:
            services.procs["broker"] = subprocess.Popen(
                [sys.executable, "-m", "gamebus", "broker", "--data", str(workdir / "data"),
                 "--host", "127.0.0.1", "--port", str(bport), "--admin-port", str(aport),
                 *broker_args],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _wait_http(f"http://127.0.0.1:{aport}/healthz", services.procs["broker"], timeout_s,
                   "broker", blog)
        wait_for_port(bport, proc=services.procs["broker"], timeout_s=timeout_s)
        rlog = services.logs["relay"] = workdir / "relay.log"
        with rlog.open("wb") as out:
            services.procs["relay"] = subprocess.Popen(
                [sys.executable, "-m", "gamebus", "relay", "--bus", services.bus_url,
                 "--host", "127.0.0.1", "--port", str(rport), "--http-port", str(hport),
                 "--jwt-secret-env", "GAMEBUS_JWT_SECRET", *relay_args],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _wait_http(f"http://127.0.0.1:{hport}/healthz", services.procs["relay"], timeout_s,
                   "relay", rlog)
        wait_for_port(rport, proc=services.procs["relay"], timeout_s=timeout_s)
        yield services
    finally:
        services.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class LoadTestResult:
    """What the summary says, as data (the smoke test asserts on it)."""

    duration_s: float
    events_in: int
    events_out: int
    frames_out: int
    latency_ms: dict[str, float]
    produce_ms: dict[str, dict[str, float]]
    tick_lag_ms: dict[str, float]
    errors: int
    gaps: int
    duplicates: int
    skipped_positions: int
    conflated_positions: int
    failures: list[tuple[str, str, int]]
    components: dict[str, dict[str, Any]]
    services_alive: dict[str, bool]
    reports: dict[str, str]
    locust_rc: int
    command: list[str]

    @property
    def events_in_per_s(self) -> float:
        return self.events_in / self.duration_s if self.duration_s else 0.0

    @property
    def events_out_per_s(self) -> float:
        return self.events_out / self.duration_s if self.duration_s else 0.0


def _merge_samples(directory: Path) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("samples-*.json")):
        with contextlib.suppress(ValueError, OSError):
            for name, entry in json.loads(path.read_text()).items():
                m = merged.setdefault(name, {"n": 0, "failures": 0, "length": 0, "samples": []})
                m["n"] += entry["n"]
                m["failures"] += entry["failures"]
                m["length"] += entry["length"]
                m["samples"].extend(entry["samples"])
    return merged


def _failures(csv_path: Path) -> list[tuple[str, str, int]]:
    """(name, error, occurrences) from locust's ``_failures.csv``."""
    out: list[tuple[str, str, int]] = []
    if not csv_path.exists():
        return out
    with csv_path.open() as f:
        for row in csv.DictReader(f):
            out.append((f"{row.get('Method', '')} {row.get('Name', '')}".strip(),
                        row.get("Error", ""), int(row.get("Occurrences", "0") or 0)))
    return out


def run_loadtest(*, duration_s: float, users: int, spawn_rate: float, matches: int,
                 players: int, tick_hz: float, events_per_s: float, shape: str | None,
                 processes: int, prefix: str, services: Services, strict_offsets: bool,
                 extra_locust_args: Sequence[str] = ()) -> LoadTestResult:
    """Run headless locust once and collect everything the summary needs."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    samples_dir = Path(tempfile.mkdtemp(prefix="gamebus-lt-samples-"))
    csv_prefix = REPORTS / prefix
    html = REPORTS / f"{prefix}.html"
    fixed = matches + 1  # GameServer per match, one Analyst
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "-u", str(users + fixed), "-r", str(spawn_rate), "-t", f"{int(duration_s)}s",
           "--csv", str(csv_prefix), "--html", str(html), "--only-summary",
           "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING",
           "--bus-url", services.bus_url, "--relay-url", services.relay_url,
           "--matches", str(matches), "--players", str(players), "--tick-hz", str(tick_hz),
           "--events-per-s", str(events_per_s), "--samples-dir", str(samples_dir),
           "--run-id", f"lt{secrets.token_hex(3)}",
           "--peak-users", str(users), "--shape-seconds", str(duration_s)]
    if strict_offsets:
        cmd.append("--strict-offsets")
    if processes > 1:
        cmd += ["--processes", str(processes)]
    cmd += list(extra_locust_args)
    env = _env()
    env["GAMEBUS_LT_RELAY_SECRET"] = services.secret  # not on the command line (ps)
    env["GAMEBUS_RELAY_SECRET"] = services.secret
    if shape:
        env["GAMEBUS_SHAPE"] = shape
    sampler = ProcessSampler({name: p.pid for name, p in services.procs.items()},
                             interval_s=1.0).start()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    elapsed = time.monotonic() - t0
    components = sampler.stop()
    merged = _merge_samples(samples_dir)
    shutil.rmtree(samples_dir, ignore_errors=True)
    return summarize(merged, duration_s=min(duration_s, elapsed),
                     failures=_failures(Path(f"{csv_prefix}_failures.csv")),
                     components=components, services_alive=services.alive(),
                     reports={"html": str(html), "csv": f"{csv_prefix}_stats.csv"},
                     locust_rc=proc.returncode,
                     command=[c if c != services.secret else "***" for c in cmd])


def summarize(merged: Mapping[str, Mapping[str, Any]], *, duration_s: float,
              failures: list[tuple[str, str, int]], components: dict[str, dict[str, Any]],
              services_alive: dict[str, bool], reports: dict[str, str], locust_rc: int,
              command: list[str]) -> LoadTestResult:
    def entry(name: str) -> Mapping[str, Any]:
        return merged.get(name, {"n": 0, "failures": 0, "length": 0, "samples": []})

    events_in = sum(int(v["length"]) for k, v in merged.items()
                    if k.startswith("PRODUCE game."))
    recv = [v for k, v in merged.items() if k.startswith("RECV ")]
    events_out = sum(int(v["length"]) for v in recv)
    frames_out = sum(int(v["n"]) for v in recv)
    lat_samples: list[float] = []
    for v in recv:
        lat_samples.extend(v["samples"])
    produce = {k.removeprefix("PRODUCE "): percentiles(v["samples"])
               for k, v in merged.items() if k.startswith("PRODUCE game.")}
    gaps = sum(int(v["failures"]) for k, v in merged.items() if k.startswith("CHECK gap"))
    dups = sum(int(v["failures"]) for k, v in merged.items() if k.startswith("CHECK duplicate"))
    errors = sum(int(v["failures"]) for k, v in merged.items()
                 if not k.startswith(("CHECK gap", "CHECK duplicate")))
    skipped = int(entry("CHECK pos skipped (area)")["length"])
    conflated = int(entry("CHECK pos skipped (no area: conflated)")["length"])
    return LoadTestResult(
        duration_s=duration_s, events_in=events_in, events_out=events_out,
        frames_out=frames_out, latency_ms=percentiles(lat_samples),
        produce_ms=produce, tick_lag_ms=percentiles(entry("TICK tick lag")["samples"]),
        errors=errors, gaps=gaps, duplicates=dups, skipped_positions=skipped,
        conflated_positions=conflated,
        failures=failures, components=components, services_alive=services_alive,
        reports=reports, locust_rc=locust_rc, command=command)


def _ms(p: Mapping[str, float], key: str) -> str:
    v = p.get(key, float("nan"))
    return "n/a" if v != v else f"{v:.2f}"


def format_summary(r: LoadTestResult, *, title: str) -> str:
    lat = r.latency_ms
    lines = [
        f"== {title}",
        f"events in:   {r.events_in_per_s:,.0f}/s ({r.events_in:,} in {r.duration_s:.0f} s)",
        f"events out:  {r.events_out_per_s:,.0f}/s ({r.events_out:,} events in "
        f"{r.frames_out:,} frames)",
        "publish-to-client latency (ms, oldest event of each frame): "
        f"p50 {_ms(lat, 'p50')}  p90 {_ms(lat, 'p90')}  p99 {_ms(lat, 'p99')}  "
        f"p99.9 {_ms(lat, 'p99.9')}  max {_ms(lat, 'max')}",
    ]
    for name, p in sorted(r.produce_ms.items()):
        lines.append(f"produce {name} (ms): p50 {_ms(p, 'p50')}  p99 {_ms(p, 'p99')}  "
                     f"max {_ms(p, 'max')}")
    lines.append(f"publisher tick lag (ms; the asyncio thread keeping time under gevent): "
                 f"p50 {_ms(r.tick_lag_ms, 'p50')}  p99 {_ms(r.tick_lag_ms, 'p99')}  "
                 f"max {_ms(r.tick_lag_ms, 'max')}")
    for name, c in r.components.items():
        lines.append(f"{name}: cpu mean {c['cpu_mean_pct']:.0f}% (max {c['cpu_max_pct']:.0f}%),"
                     f" rss {c['rss_first_mib']:.0f} -> {c['rss_last_mib']:.0f} MiB")
    lines.append(f"errors: {r.errors}   gaps: {r.gaps}   duplicates: {r.duplicates}   "
                 f"positions outside an area: {r.skipped_positions:,}   "
                 f"positions conflated: {r.conflated_positions:,}")
    for name, err, n in r.failures[:10]:
        lines.append(f"  failure x{n}: {name}: {err[:200]}")
    dead = [n for n, ok in r.services_alive.items() if not ok]
    if dead:
        lines.append(f"DIED during the run: {', '.join(dead)}")
    lines.append(f"reports: {r.reports['html']}, {r.reports['csv']}")
    return "\n".join(lines)


def verdict(r: LoadTestResult, *, check: bool) -> list[str]:
    """Reasons the run failed; empty when it passed."""
    bad = []
    if r.gaps:
        bad.append(f"{r.gaps} gaps")
    if r.duplicates:
        bad.append(f"{r.duplicates} duplicates")
    if r.locust_rc not in (0, 1):
        bad.append(f"locust exited with {r.locust_rc}")
    if check:
        if r.errors:
            bad.append(f"{r.errors} failed requests")
        if r.events_in == 0:
            bad.append("nothing was published")
        if r.events_out == 0:
            bad.append("nothing was received")
        dead = [n for n, ok in r.services_alive.items() if not ok]
        if dead:
            bad.append(f"{', '.join(dead)} died")
    return bad


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--users", type=int, default=50,
                   help="watching clients (spectators, players); game servers and the "
                        "analyst come on top")
    p.add_argument("--spawn-rate", type=float, default=20.0)
    p.add_argument("--matches", type=int, default=4)
    p.add_argument("--players", type=int, default=20)
    p.add_argument("--tick-hz", type=float, default=20.0)
    p.add_argument("--events-per-s", type=float, default=4.0,
                   help="match events per match per second")
    p.add_argument("--shape", choices=("launch", "night"), default=None,
                   help="a LoadTestShape instead of a flat --users")
    p.add_argument("--processes", type=int, default=1,
                   help="locust worker processes on this machine (locust --processes)")
    p.add_argument("--check", action="store_true",
                   help="also fail on any error, on silence, or if a service died")
    p.add_argument("--prefix", default=None, help="report file prefix in loadtests/reports/")
    p.add_argument("--bus-url", default=None, help="use this bus instead of starting one")
    p.add_argument("--relay-url", default=None, help="use this relay instead of starting one")
    p.add_argument("--relay-secret", default=os.environ.get("GAMEBUS_JWT_SECRET", ""),
                   help="JWT key of an existing relay (default $GAMEBUS_JWT_SECRET)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary as JSON")
    args = p.parse_args(argv)
    prefix = args.prefix or dt.datetime.now(dt.UTC).strftime("loadtest-%Y%m%d-%H%M%S")
    common: dict[str, Any] = dict(
        duration_s=args.duration, users=args.users, spawn_rate=args.spawn_rate,
        matches=args.matches, players=args.players, tick_hz=args.tick_hz,
        events_per_s=args.events_per_s, shape=args.shape, processes=args.processes,
        prefix=prefix)
    title = (f"gamebus load test: {args.duration:.0f} s, {args.matches} matches x "
             f"{args.players} players x {args.tick_hz:g} Hz, {args.users} clients"
             + (f", shape {args.shape}" if args.shape else "")
             + (f", {args.processes} locust processes" if args.processes > 1 else ""))
    if args.bus_url or args.relay_url:
        if not (args.bus_url and args.relay_url):
            p.error("--bus-url and --relay-url go together")
        services = Services(bus_url=args.bus_url, relay_url=args.relay_url,
                            secret=args.relay_secret)
        result = run_loadtest(**common, services=services, strict_offsets=False)
    else:
        with local_services() as services:
            result = run_loadtest(**common, services=services, strict_offsets=True)
            dead = [n for n, ok in services.alive().items() if not ok]
            for name in dead:
                print(f"--- {name} log tail:\n{services.log_tail(name)}", file=sys.stderr)
    print(format_summary(result, title=title))
    if args.json:
        doc = {k: v for k, v in vars(result).items()}
        doc["events_in_per_s"] = result.events_in_per_s
        doc["events_out_per_s"] = result.events_out_per_s
        for c in doc["components"].values():
            c.pop("series", None)
        args.json.write_text(json.dumps(doc, indent=1, default=str))
    bad = verdict(result, check=args.check)
    if bad:
        print("FAILED: " + "; ".join(bad))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
