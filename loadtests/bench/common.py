"""Helpers every benchmark module of the suite may use (none is required).

Why a shared module: the suite puts our numbers beside NATS and Redis measured
in one run on one machine, and that comparison is only fair when every module
names the machine the same way, summarises repeats the same way (median and
spread, never a best run), computes percentiles the same way and starts its
peer servers the same way (loopback, free port, stopped by PID, never by name:
the machine is shared).

What is here:

- :func:`machine_info`: cores, CPU model, Python version, for the table headers.
- :func:`median_spread`, :func:`fmt_spread`: the summary of repeated runs.
- :func:`percentile`, :func:`percentiles`: from raw samples, linear interpolation.
- :func:`free_port`, :func:`wait_for_port`: loopback plumbing.
- :class:`PeerServer` with :func:`nats_server` and :func:`redis_server`: a peer
  started on a free loopback port in a temporary directory, stopped by PID.
- :class:`ProcessSampler`: CPU and RSS of given PIDs over time (psutil).
- :class:`StreamChecker`: gap and duplicate checks of a relay client's frames.
- :func:`markdown_table`: the tables the modules print and BENCHMARKS.md holds.

The result a module's ``run(repeats) -> dict`` returns is free-form; the suite
runner understands these optional keys and ignores the rest:

``title`` (str), ``table`` (Markdown str), ``goals`` (list of
``{"goal", "target", "measured", "met": bool | None, "note"}``),
``throughput`` (``{label: events_per_s}``, drawn as bars), ``latency_ms``
(``{label: {"p50": .., "p90": .., "p99": .., "p99.9": ..}}``, drawn as
HDR-style percentile curves), ``notes`` (list of str).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PERCENTILES",
    "PeerServer",
    "ProcessSampler",
    "StreamChecker",
    "fmt_num",
    "fmt_spread",
    "free_port",
    "machine_info",
    "markdown_table",
    "match_ids",
    "median_spread",
    "nats_server",
    "owned_partitions",
    "percentile",
    "percentiles",
    "redis_server",
    "wait_for_port",
]

#: The percentiles every latency table reports, as fractions.
DEFAULT_PERCENTILES: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge a number: cores, CPU model, Python, OS.

    Also the load average at the time of the call, because this machine is
    shared and a number measured under a load of 6 means something else than
    one measured on an idle box.
    """
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_bytes = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_bytes = int(line.split()[1]) * 1024
                break
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count() or 0,
        "usable_cores": affinity,
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "memory_gib": round(mem_bytes / 2**30, 1),
        "loadavg_1m": round(load[0], 2),
    }


def median_spread(values: Iterable[float]) -> dict[str, float]:
    """Median of repeated runs with their spread (min, max, n).

    The median, not the best run: on a shared machine the best run is luck.
    """
    vals = sorted(float(v) for v in values)
    if not vals:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "n": len(vals)}


def fmt_num(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits and thousands separators."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:,.{digits}g}"


def fmt_spread(summary: Mapping[str, float], unit: str = "", digits: int = 3) -> str:
    """``median (min-max)`` for a :func:`median_spread` result."""
    if not summary.get("n"):
        return "n/a"
    med = fmt_num(summary["median"], digits)
    if summary["n"] == 1:
        return f"{med}{unit}"
    return f"{med}{unit} ({fmt_num(summary['min'], digits)}-{fmt_num(summary['max'], digits)})"


def percentile(samples: Sequence[float], q: float, *, presorted: bool = False) -> float:
    """The ``q`` quantile (0..1) of ``samples`` by linear interpolation.

    The same definition as ``numpy.percentile(..., method="linear")`` so that
    modules using numpy and modules that don't agree.
    """
    if not samples:
        return float("nan")
    data = samples if presorted else sorted(samples)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * min(max(q, 0.0), 1.0)
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def percentiles(
    samples: Sequence[float], qs: Sequence[float] = DEFAULT_PERCENTILES
) -> dict[str, float]:
    """``{"p50": .., "p99": .., "p99.9": .., "max": .., "n": ..}`` from raw samples."""
    data = sorted(samples)
    out: dict[str, float] = {}
    for q in qs:
        label = f"p{q * 100:.10g}"
        out[label] = percentile(data, q, presorted=True)
    out["max"] = float(data[-1]) if data else float("nan")
    out["n"] = float(len(data))
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout_s: float = 15.0,
                  proc: subprocess.Popen[Any] | None = None) -> None:
    """Block until ``host:port`` accepts a connection.

    Raises ``RuntimeError`` when ``proc`` exits first (its stderr usually says
    why) or the timeout passes, rather than letting a benchmark hang.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout_s} s")


@dataclass
class PeerServer:
    """A server process this run started; stopped by its PID only.

    ``url`` is what a client connects to; ``workdir`` is removed on stop.
    """

    name: str
    port: int
    url: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; only this PID."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=timeout_s)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PeerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _start(name: str, argv: list[str], port: int, url: str, workdir: Path,
           timeout_s: float) -> PeerServer:
    log = (workdir / f"{name}.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            start_new_session=True)
    log.close()
    server = PeerServer(name=name, port=port, url=url, proc=proc, workdir=workdir)
    try:
        wait_for_port(port, proc=proc, timeout_s=timeout_s)
    except RuntimeError:
        tail = (workdir / f"{name}.log").read_text(errors="replace")[-2000:]
        server.stop()
        raise RuntimeError(f"{name} did not start: {tail}") from None
    return server


def nats_server(*, jetstream: bool = False, binary: str = "nats-server",
                timeout_s: float = 15.0) -> PeerServer:
    """Start ``nats-server`` (optionally with JetStream) on a free loopback port."""
    exe = shutil.which(binary) or f"/usr/bin/{binary}"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="gamebus-bench-nats-"))
    argv = [exe, "-a", "127.0.0.1", "-p", str(port)]
    if jetstream:
        argv += ["-js", "-sd", str(workdir / "js")]
    return _start("nats-server", argv, port, f"nats://127.0.0.1:{port}", workdir, timeout_s)


def redis_server(*, binary: str = "redis-server", timeout_s: float = 15.0,
                 appendonly: bool = False) -> PeerServer:
    """Start ``redis-server`` on a free loopback port, no RDB snapshots."""
    exe = shutil.which(binary) or f"/usr/bin/{binary}"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="gamebus-bench-redis-"))
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if appendonly else "no", "--dir", str(workdir),
            "--protected-mode", "no"]
    return _start("redis-server", argv, port, f"redis://127.0.0.1:{port}", workdir, timeout_s)


class ProcessSampler:
    """Samples CPU % and RSS of named processes every ``interval_s`` in a thread.

    ``cpu_percent`` is per process, 100 = one core busy, so on a 2-core box
    the sum over components can reach 200. A process that exits is sampled
    no further (its last values stay).
    """

    def __init__(self, pids: Mapping[str, int], *, interval_s: float = 1.0,
                 include_children: bool = False) -> None:
        import psutil

        self.interval_s = interval_s
        self.include_children = include_children
        self._procs: dict[str, list[psutil.Process]] = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self._procs[name] = [psutil.Process(pid)]
        self.samples: dict[str, list[tuple[float, float, int]]] = {n: [] for n in self._procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)
        self._t0 = time.monotonic()

    def add(self, name: str, pid: int) -> None:
        """Add one more process to a (possibly existing) component."""
        import psutil

        with contextlib.suppress(psutil.Error):
            self._procs.setdefault(name, []).append(psutil.Process(pid))
            self.samples.setdefault(name, [])

    def _tick(self, prime: bool = False) -> None:
        import psutil

        now = time.monotonic() - self._t0
        for name, procs in list(self._procs.items()):
            cpu, rss, seen = 0.0, 0, False
            for p in procs:
                targets = [p]
                if self.include_children:
                    with contextlib.suppress(psutil.Error):
                        targets += p.children(recursive=True)
                for t in targets:
                    with contextlib.suppress(psutil.Error):
                        cpu += t.cpu_percent(None)
                        rss += t.memory_info().rss
                        seen = True
            if not prime and seen:
                self.samples[name].append((now, cpu, rss))

    def _run(self) -> None:
        self._tick(prime=True)
        while not self._stop.wait(self.interval_s):
            self._tick()

    def start(self) -> ProcessSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, Any]]:
        """Stop sampling; per component: mean CPU %, RSS first/last/max, growth."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return self.summary()

    def summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, rows in self.samples.items():
            if not rows:
                continue
            cpus = [c for _, c, _ in rows]
            rss = [r for _, _, r in rows]
            # Memory growth is judged on the second half against the first so
            # that warm-up (buffers, caches filling) does not count as a leak.
            half = len(rss) // 2 or 1
            first_half = statistics.median(rss[:half])
            second_half = statistics.median(rss[half:]) if rss[half:] else first_half
            # And the slope over the last third, in MiB per minute: a bounded
            # cache that is still filling and a leak both grow in the second
            # half; only a leak keeps growing at the end of a long run.
            tail = rows[len(rows) * 2 // 3:]
            slope = 0.0
            if len(tail) >= 3:
                ts = [t for t, _, _ in tail]
                ms = [r / 2**20 for _, _, r in tail]
                tm, mm = statistics.fmean(ts), statistics.fmean(ms)
                var = sum((t - tm) ** 2 for t in ts)
                if var:
                    slope = sum((t - tm) * (m - mm) for t, m in zip(ts, ms, strict=True)) / var * 60
            out[name] = {
                "rss_tail_slope_mib_per_min": slope,
                "cpu_mean_pct": statistics.fmean(cpus),
                "cpu_max_pct": max(cpus),
                "rss_first_mib": rss[0] / 2**20,
                "rss_last_mib": rss[-1] / 2**20,
                "rss_max_mib": max(rss) / 2**20,
                "rss_growth_pct": (second_half - first_half) / first_half * 100 if first_half else 0.0,
                "series": [(round(t, 2), round(c, 1), r) for t, c, r in rows],
            }
        return out

    def __enter__(self) -> ProcessSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                   *, align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one char per column (``l``/``r``/``c``).

    Numbers are right-aligned by default so that columns of figures read.
    """
    body = [[_cell(v) for v in row] for row in rows]
    if align is None:
        align = "".join(
            "r" if body and all(i < len(r) and _looks_numeric(r[i]) for r in body) else "l"
            for i in range(len(headers))
        )
    seps = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(seps.get(a, "---") for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    t = text.replace(",", "").replace("%", "").strip()
    if not t:
        return False
    try:
        float(t.split(" ")[0])
    except ValueError:
        return False
    return True


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return fmt_num(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


class StreamChecker:
    """Gap and duplicate bookkeeping of one relay client, per match.

    Feed it every ``events`` frame. Two independent checks:

    - the relay's ``position``: per (match, topic) the frame's next offset
      must grow (else: duplicate); with ``strict`` (the match owns its
      partition and nothing else writes to it), a ``game.events`` frame must
      start exactly where the previous one ended (else: gap or duplicate);
    - the publisher's ``src``/``seq`` fields, when present: match events are
      consecutive per ``src`` (a jump is a gap, a repeat a duplicate);
      positions may be skipped on purpose (conflation, area of interest),
      so for them only a repeat counts, and skips come back as
      ``("skipped", count)``.
    """

    def __init__(self) -> None:
        self.next_offset: dict[tuple[str, str], tuple[int, int]] = {}
        self.seq: dict[tuple[str, str, str], int] = {}

    def frame(self, match: str, topic: str, position: dict[str, Any],
              evs: list[dict[str, Any]], strict: bool,
              count: int | None = None) -> list[tuple[str, str]]:
        """Check one events frame; return [(kind, detail)] of gaps and duplicates.

        ``count`` is the number of events in the frame when ``evs`` holds
        only some of them (a client that decodes positions lazily); the
        sequence checks then apply to ``evs`` only.
        """
        problems: list[tuple[str, str]] = []
        n = len(evs) if count is None else count
        offsets = position.get("offsets") or {}
        epochs = position.get("epochs") or {}
        epoch = int(epochs.get(topic, position.get("epoch", 0)) or 0)
        end = offsets.get(topic)
        if isinstance(end, int):
            prev = self.next_offset.get((match, topic))
            if prev is not None and prev[0] == epoch:
                if end <= prev[1]:
                    problems.append(("duplicate", f"{match} {topic} offset {end} <= {prev[1]}"))
                elif strict and topic == "game.events" and end - n != prev[1]:
                    kind = "gap" if end - n > prev[1] else "duplicate"
                    problems.append((kind, f"{match} {topic} frame starts at "
                                           f"{end - n}, expected {prev[1]}"))
            self.next_offset[(match, topic)] = (epoch, end)
        for ev in evs:
            src, seq = ev.get("src"), ev.get("seq")
            if not isinstance(src, str) or not isinstance(seq, int):
                continue
            kind = "pos" if ev.get("type") == "pos" else "event"
            key = (match, src, kind)
            last = self.seq.get(key)
            self.seq[key] = max(seq, last or 0)
            if last is None:
                continue
            if seq <= last:
                problems.append(("duplicate", f"{match} {kind} seq {seq} after {last}"))
            elif seq != last + 1 and kind == "event":
                problems.append(("gap", f"{match} match events {last + 1}..{seq - 1} missing"))
            elif seq != last + 1:
                problems.append(("skipped", str(seq - last - 1)))
        return problems


def match_ids(prefix: str, count: int, partitions: int) -> list[str]:
    """``count`` match ids, each in its own partition while that is possible.

    Deterministic (master and workers of a distributed run agree). A match
    that owns its partition lets a client check offsets exactly: each
    ``game.events`` frame starts where the previous one ended.
    """
    from gamebus.partitioning import partition_for_key

    ids: list[str] = []
    used: set[int] = set()
    k = 0
    while len(ids) < count:
        candidate = f"{prefix}-m{k}"
        k += 1
        part = partition_for_key(candidate, partitions)
        if part in used and len(used) < partitions and k < 1000 * (count + 1):
            continue
        used.add(part)
        ids.append(candidate)
    return ids


def owned_partitions(ids: Sequence[str], partitions: int) -> set[str]:
    """The ids among ``ids`` whose partition no other id shares."""
    from collections import Counter

    from gamebus.partitioning import partition_for_key

    parts = Counter(partition_for_key(m, partitions) for m in ids)
    return {m for m in ids if parts[partition_for_key(m, partitions)] == 1}


@contextlib.contextmanager
def started(*servers: PeerServer) -> Iterator[tuple[PeerServer, ...]]:
    """Stop the given servers on exit, whatever happens in between."""
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()
