"""Run the demo: pick ports, build the process group, serve the page, wait for Ctrl-C.

The command lines below are the same ones an operator types (``gamebus
broker ...``, ``gamebus relay ...``); the demo adds no private entry points,
so what the page shows is what a deployment does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import webbrowser
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

from gamebus.demo.lobby import watch_matches
from gamebus.demo.supervisor import ProcessFailed, ProcessSpec, Supervisor, http_ok
from gamebus.demo.web import DemoSite, find_client_dir, make_app
from gamebus.errors import ConfigError

__all__ = ["DemoConfig", "build_specs", "bus_url", "default_model_path", "main", "run"]

#: Matches the cached model is trained on: enough for every cheat kind.
TRAIN_MATCHES = 16
TRAIN_SEED = 1
#: Accounts in the season the model's per-account baseline is fitted on (5
#: rounds of 20-player lobbies; each cheater turns after 2-4 clean rounds).
#: Small, so that the first start trains in about a minute on an idle
#: two-core machine (docs/demo.md); `gamebus anticheat train`'s default of
#: 1,000 reads the subtle cheats better.
TRAIN_SEASON_ACCOUNTS = 100
#: Seconds of each simulated training match. The demo's model has to know
#: blatant cheats and the accounts' own form, not the subtle cheats the
#: evaluated models are measured on, and 60 s matches train in about a
#: minute where 120 s ones took 2.5 (61 s against 156 s, idle 2-core box,
#: 2026-11-27).
TRAIN_DURATION_S = 60
#: The broker is internal to the demo (and runs without tokens, which it only
#: allows on loopback); --host applies to the page and the relay.
BROKER_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Everything ``gamebus demo`` takes; ports of 0 are picked free at start."""

    matches: int = 4
    players: int = 10
    cheaters: int = 2
    data_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    broker_port: int = 0
    broker_admin_port: int = 0
    relay_port: int = 0
    relay_http_port: int = 0
    seed: int | None = None
    match_s: float = 180.0
    model: Path | None = None
    turn_share: float = 0.5
    open_browser: bool = False
    python: str = sys.executable

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoConfig:
        return cls(
            matches=args.matches,
            players=args.players,
            cheaters=args.cheaters,
            data_dir=args.data,
            host=args.host,
            port=args.port,
            broker_port=args.broker_port,
            broker_admin_port=args.broker_admin_port,
            relay_port=args.relay_port,
            relay_http_port=args.relay_http_port,
            seed=args.seed,
            match_s=args.match_seconds,
            model=args.model,
            turn_share=args.turn_share,
            open_browser=args.open,
        )

    def validate(self) -> None:
        if not 1 <= self.matches <= 64:
            raise ConfigError("--matches must be between 1 and 64")
        if not 2 <= self.players <= 64:
            raise ConfigError("--players must be between 2 and 64")
        if not 0 <= self.cheaters <= self.players:
            raise ConfigError("--cheaters must be between 0 and --players")
        if self.match_s < 10:
            raise ConfigError("--match-seconds must be at least 10")
        if not 0.0 <= self.turn_share <= 1.0:
            raise ConfigError("--turn-share must be between 0 and 1")


def default_model_path() -> Path:
    """Where the trained demo model is cached (``$XDG_CACHE_HOME/gamebus/models``).

    ``gamebus anticheat train --out DIR`` writes ``DIR/anticheat.skops`` (and
    a versioned copy); the directory name says how it was trained, so a
    change of recipe trains a new model instead of reusing a stale one.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    recipe = f"demo-m{TRAIN_MATCHES}-s{TRAIN_SEED}-a{TRAIN_SEASON_ACCOUNTS}-d{TRAIN_DURATION_S}"
    return cache / "gamebus" / "models" / recipe / "anticheat.skops"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _with_ports(cfg: DemoConfig) -> DemoConfig:
    return replace(
        cfg,
        broker_port=cfg.broker_port or _free_port(BROKER_HOST),
        broker_admin_port=cfg.broker_admin_port or _free_port(BROKER_HOST),
        relay_port=cfg.relay_port or _free_port(cfg.host),
        relay_http_port=cfg.relay_http_port or _free_port(cfg.host),
    )


def bus_url(cfg: DemoConfig) -> str:
    return f"gamebus://{BROKER_HOST}:{cfg.broker_port}"


def build_specs(cfg: DemoConfig, *, data_dir: Path, secret: str, model: Path, train: bool) -> list[ProcessSpec]:
    """The process group, in start order. ``cfg`` must have its ports chosen."""
    gb = [cfg.python, "-m", "gamebus"]
    bus = bus_url(cfg)
    specs = [
        ProcessSpec(
            "broker",
            [*gb, "broker", "--data", str(data_dir / "broker"), "--host", BROKER_HOST,
             "--port", str(cfg.broker_port), "--admin-port", str(cfg.broker_admin_port)],
            ready=http_ok(f"http://{BROKER_HOST}:{cfg.broker_admin_port}/healthz"),
        ),
        ProcessSpec(
            "relay",
            [*gb, "relay", "--bus", bus, "--host", cfg.host, "--port", str(cfg.relay_port),
             "--http-port", str(cfg.relay_http_port)],
            ready=http_ok(f"http://{cfg.host}:{cfg.relay_http_port}/healthz"),
            # The secret goes through the environment, not argv, so `ps` does not show it.
            env={"GAMEBUS_JWT_SECRET": secret},
        ),
        ProcessSpec(
            "sim",
            # The same accounts play every round (their names recur, as on a real
            # game), so the review page can rank players across matches; the pool
            # holds --cheaters cheating accounts per lobby. A share of them play
            # clean rounds before they cheat, as most real cheaters do, which is
            # what the anti-cheat's per-account baseline ("vs own") catches.
            [*gb, "sim", "--bus", bus, "--matches", str(cfg.matches), "--players", str(cfg.players),
             "--accounts", str(cfg.matches * cfg.players), "--cheaters", str(cfg.cheaters * cfg.matches),
             "--turn-share", str(cfg.turn_share),
             "--duration", str(cfg.match_s), "--seed", str(cfg.seed),
             # Ground truth beside the bus (never on it), to check the alerts against.
             "--labels", str(data_dir / "labels.jsonl"), "--loop"],
        ),
    ]
    if train:
        # Loads the cached model and trains a new one only if it is missing
        # or from another version (see gamebus.demo.model).
        specs.append(ProcessSpec(
            "anticheat-model",
            [cfg.python, "-m", "gamebus.demo.model", str(model), "--matches", str(TRAIN_MATCHES),
             "--seed", str(TRAIN_SEED), "--season-accounts", str(TRAIN_SEASON_ACCOUNTS),
             "--duration", str(TRAIN_DURATION_S)],
            oneshot=True,
        ))
    # From the log start: on a first run the rounds played while the model
    # trained are scored too (catching up in seconds), so they count in the
    # accounts' history. A reused --data directory resumes from the group's
    # committed offsets instead, never from an old run's matches.
    specs.append(ProcessSpec("anticheat", [*gb, "anticheat", "run", "--bus", bus, "--model", str(model),
                                           "--start", "earliest"]))
    return specs


async def run(cfg: DemoConfig, *, ready_line: bool = True) -> int:
    """Run the demo until SIGINT/SIGTERM; returns the exit code."""
    cfg.validate()
    client_dir = find_client_dir()
    cfg = _with_ports(cfg)
    if cfg.seed is None:
        # Match ids derive from the seed: a fresh one per run keeps a reused
        # --data directory from mixing this run's matches with old ones.
        cfg = replace(cfg, seed=secrets.randbelow(1_000_000))
    temp = cfg.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="gamebus-demo-")) if cfg.data_dir is None else cfg.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    model = cfg.model or default_model_path()
    if cfg.model is not None and not model.is_file():
        raise ConfigError(f"no model at {model}: train one with `gamebus anticheat train --out DIR`")
    train = cfg.model is None  # a model of the user's own is used as it is
    secret = secrets.token_urlsafe(32)  # per run: old tokens die with the demo
    specs = build_specs(cfg, data_dir=data_dir, secret=secret, model=model, train=train)
    supervisor = Supervisor(specs, log_dir=data_dir / "logs", on_exit=_report_exit)
    site = DemoSite(
        client_dir=client_dir,
        jwt_secret=secret,
        relay_port=cfg.relay_port,
        status=supervisor.status,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(site), access_log=None)
    await runner.setup()
    code = 0
    lobby_task: asyncio.Task[None] | None = None
    try:
        try:
            await web.TCPSite(runner, cfg.host, cfg.port).start()
        except OSError as exc:
            raise ConfigError(f"cannot serve the page on {cfg.host}:{cfg.port}: {exc.strerror}; try --port") from None
        core = ("broker", "relay", "sim")
        if not await _until_stopped(supervisor.start(core), stop):
            return 0  # asked to stop while starting: a clean stop all the same
        lobby_task = asyncio.create_task(watch_matches(bus_url(cfg), site.lobby))
        shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host  # a wildcard is no address to open
        url = f"http://{shown}:{cfg.port}/"
        if ready_line:
            print(f"gamebus demo: open {url}  ({cfg.matches} matches; logs in {data_dir / 'logs'}; Ctrl-C to stop)", flush=True)
        if cfg.open_browser:
            webbrowser.open(url)
        # The anti-cheat service comes last: the page is already useful while
        # a first run trains its model, and alerts light up once it is done.
        rest = [s.name for s in specs if s.name not in core]
        if not await _until_stopped(supervisor.start(rest), stop):
            return 0
        await stop.wait()
    except ProcessFailed as exc:
        print(f"gamebus demo: {exc}", file=sys.stderr)
        code = 1
    finally:
        if lobby_task is not None:
            lobby_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lobby_task
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        await supervisor.stop()
        if temp:
            shutil.rmtree(data_dir, ignore_errors=True)
    return code


def _report_exit(name: str, code: int) -> None:
    print(f"gamebus demo: {name} exited with code {code}; restarting it", file=sys.stderr, flush=True)


async def _until_stopped(starting: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``starting`` unless ``stop`` is set first; False if stopped."""
    task = asyncio.ensure_future(starting)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        task.result()  # re-raise ProcessFailed
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, ProcessFailed):
        await task
    return False


def main(cfg: DemoConfig) -> int:
    """Entry point of ``gamebus demo``."""
    return asyncio.run(run(cfg))
