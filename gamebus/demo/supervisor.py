"""A small process supervisor: start a group in order, keep it up, stop it cleanly.

``gamebus demo`` runs the broker, a relay, the simulator and the anti-cheat
service as separate processes, exactly as an operator would, so the demo
exercises the real command lines. This module knows nothing about them: it
gets a list of :class:`ProcessSpec` and

- starts them in order, each only once the previous one is ready (its
  ``ready`` probe passes, typically a ``GET /healthz``), so a relay never
  races a broker that is still recovering its log;
- restarts a child that dies unexpectedly, with a backoff, so killing the
  relay in the middle of the demo shows clients resuming instead of a dead
  page;
- stops them in reverse order: ``SIGTERM``, a grace period, then ``SIGKILL``.

Children run in their own session so that a Ctrl-C in the terminal reaches
only the supervisor, which then stops them in order; on Linux they also get
``SIGTERM`` from the kernel if the supervisor itself dies (``PR_SET_PDEATHSIG``),
so a crashed or killed demo leaves no orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from gamebus.errors import GamebusError

__all__ = [
    "ProcessFailed",
    "ProcessSpec",
    "ReadyCheck",
    "Supervisor",
    "http_ok",
]

_log = logging.getLogger(__name__)

#: A probe: returns True once the process serves (called repeatedly until then).
ReadyCheck = Callable[[], Awaitable[bool]]

_PR_SET_PDEATHSIG = 1


class ProcessFailed(GamebusError):
    """A child exited or never became ready; the message says which and where its log is."""

    def __init__(self, name: str, why: str, log_path: Path | None) -> None:
        where = f" (log: {log_path})" if log_path else ""
        super().__init__(f"{name} {why}{where}")
        self.name, self.why, self.log_path = name, why, log_path


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One member of the group.

    ``oneshot`` specs (model training, say) must exit 0 before the next spec
    starts and are never restarted; the others are services, restarted when
    they die unless ``restart`` is false.
    """

    name: str
    argv: Sequence[str]
    ready: ReadyCheck | None = None
    oneshot: bool = False
    restart: bool = True
    env: Mapping[str, str] | None = None
    ready_timeout_s: float = 60.0


def http_ok(url: str, *, timeout_s: float = 1.0) -> ReadyCheck:
    """A probe that passes when ``GET url`` answers 2xx."""

    async def probe() -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
                session.get(url) as response,
            ):
                return 200 <= response.status < 300
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    return probe


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux for SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    state: str = "pending"
    restarts: int = 0
    started_at: float = 0.0
    exit_code: int | None = None
    watcher: asyncio.Task[None] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)


class Supervisor:
    """Run ``specs`` as a group; see the module docstring for the policy."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        log_dir: Path,
        grace_s: float = 5.0,
        on_exit: Callable[[str, int], None] | None = None,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique: {names}")
        self.log_dir = log_dir
        self.grace_s = grace_s
        self.on_exit = on_exit
        self._children = [_Child(spec, log_dir / f"{spec.name}.log") for spec in specs]
        self._stopping = False

    # -- public --------------------------------------------------------------

    async def start(self, names: Sequence[str] | None = None) -> None:
        """Start the specs (all, or those named) in order, each once the one before is ready.

        Raises :class:`ProcessFailed` if one exits early or is not ready in
        time; the caller should then :meth:`stop` the rest.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self._children:
            if names is not None and child.spec.name not in names:
                continue
            if child.spec.oneshot:
                await self._run_oneshot(child)
            else:
                await self._spawn(child)
                await self._wait_ready(child)
                child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.spec.name}")

    async def stop(self) -> None:
        """Stop every child, newest first: SIGTERM, ``grace_s``, then SIGKILL."""
        self._stopping = True
        for child in reversed(self._children):
            if child.watcher is not None:
                child.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.watcher
            await self._terminate(child)
            child.state = "stopped"

    def status(self) -> list[dict[str, Any]]:
        """What a status page shows: name, pid, state, restarts, log path."""
        return [
            {
                "name": c.spec.name,
                "pid": c.proc.pid if c.proc is not None and c.proc.returncode is None else None,
                "state": c.state,
                "restarts": c.restarts,
                "exit_code": c.exit_code,
                "log": str(c.log_path),
            }
            for c in self._children
        ]

    # -- internals -------------------------------------------------------------

    async def _spawn(self, child: _Child) -> None:
        spec = child.spec
        if child.log_file is None:
            child.log_file = child.log_path.open("ab", buffering=0)
        child.log_file.write(f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(spec.argv)}\n".encode())
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(spec.env or {})}
        child.proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.state = "starting"
        child.started_at = time.monotonic()
        child.exit_code = None

    async def _wait_ready(self, child: _Child) -> None:
        assert child.proc is not None
        probe = child.spec.ready
        deadline = time.monotonic() + child.spec.ready_timeout_s
        while True:
            if child.proc.returncode is not None:
                child.state = "failed"
                child.exit_code = child.proc.returncode
                raise ProcessFailed(child.spec.name, f"exited with code {child.proc.returncode} while starting", child.log_path)
            if probe is None or await probe():
                child.state = "running"
                return
            if time.monotonic() > deadline:
                child.state = "failed"
                raise ProcessFailed(child.spec.name, f"not ready after {child.spec.ready_timeout_s:.0f} s", child.log_path)
            await asyncio.sleep(0.1)

    async def _run_oneshot(self, child: _Child) -> None:
        await self._spawn(child)
        assert child.proc is not None
        child.state = "running"
        code = await child.proc.wait()
        child.exit_code = code
        child.state = "done" if code == 0 else "failed"
        if code != 0:
            raise ProcessFailed(child.spec.name, f"failed with exit code {code}", child.log_path)

    async def _watch(self, child: _Child) -> None:
        """Restart ``child`` whenever it dies, with a backoff that resets after a healthy run."""
        backoff_s = 0.5
        while not self._stopping:
            assert child.proc is not None
            code = await child.proc.wait()
            child.exit_code = code
            if self._stopping:
                return
            if self.on_exit is not None:
                self.on_exit(child.spec.name, code)
            if not child.spec.restart:
                child.state = "exited"
                return
            if time.monotonic() - child.started_at > 30:
                backoff_s = 0.5
            child.state = "restarting"
            _log.info("%s exited with code %s; restarting in %.1f s", child.spec.name, code, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(10.0, backoff_s * 2)
            child.restarts += 1
            await self._spawn(child)
            try:
                await self._wait_ready(child)
            except ProcessFailed as exc:
                _log.info("%s", exc)

    async def _terminate(self, child: _Child) -> None:
        proc = child.proc
        if proc is not None and proc.returncode is None:
            t0 = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            how = "SIGTERM"
            try:
                await asyncio.wait_for(proc.wait(), self.grace_s)
            except TimeoutError:
                how = f"SIGKILL after {self.grace_s:.0f} s"
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            child.exit_code = proc.returncode
            if child.log_file is not None:
                line = f"--- {time.strftime('%H:%M:%S')} stopped by {how}: exit code {proc.returncode} in {time.monotonic() - t0:.1f} s\n"
                child.log_file.write(line.encode())
        if child.log_file is not None:
            child.log_file.close()
            child.log_file = None
