"""Real ``nats-server`` processes on loopback ports, for the JetStream tests.

Each server gets its own store directory and config file under a temporary
directory, binds to ``127.0.0.1`` only, and is stopped by its PID (never by
name: other people's nats-servers run on the same machine). A cluster keeps
every node's ports and store directory across :meth:`NatsCluster.kill` and
:meth:`NatsCluster.restart`, so a restarted node rejoins with its data, as a
crashed machine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats

__all__ = ["NATS_SERVER", "NatsCluster", "NatsServer", "free_port", "nats_server_available"]

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


def nats_server_available() -> bool:
    return os.access(NATS_SERVER, os.X_OK)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NatsServer:
    """One nats-server with JetStream; optionally a node of a cluster."""

    root: Path
    name: str = "n1"
    port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    cluster_name: str = "gamebus-test"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.root / self.name / "store"

    @property
    def log_file(self) -> Path:
        return self.root / self.name / "server.log"

    def _config(self) -> str:
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "127.0.0.1:{self.port}"',
            # Small limits: the tests share a 2-core machine with other work.
            f'jetstream {{ store_dir: "{self.store_dir}", max_mem: 256MB, max_file: 1GB }}',
        ]
        if self.cluster_port is not None:
            routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in self.routes)
            lines.append(
                f'cluster {{ name: "{self.cluster_name}", listen: "127.0.0.1:{self.cluster_port}", '
                f"routes: [{routes}] }}"
            )
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start the process and wait until its client port accepts connections."""
        (self.root / self.name).mkdir(parents=True, exist_ok=True)
        conf = self.root / self.name / "server.conf"
        conf.write_text(self._config())
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER, "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited: {self.log_file.read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} did not listen on {self.port}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash case, nothing flushed, no goodbye to the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop by PID: SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


async def wait_for_jetstream(urls: list[str], *, timeout_s: float = 20.0) -> None:
    """Return once the JetStream API answers (a cluster needs a meta leader first)."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(servers=urls, connect_timeout=1, max_reconnect_attempts=0)
            try:
                await nc.jetstream(timeout=1).account_info()
                return
            finally:
                await nc.close()
        except Exception as e:  # not ready yet: no meta leader, no listener
            last = e
            await asyncio.sleep(0.2)
    raise RuntimeError(f"JetStream not ready at {urls}: {last!r}")


@dataclass
class NatsCluster:
    """Three (or more) JetStream nodes routed to each other on loopback."""

    root: Path
    size: int = 3
    nodes: list[NatsServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        cluster_ports = [free_port() for _ in range(self.size)]
        name = f"gb-{os.getpid()}-{cluster_ports[0]}"
        for i in range(self.size):
            self.nodes.append(
                NatsServer(
                    self.root,
                    name=f"n{i + 1}",
                    cluster_port=cluster_ports[i],
                    routes=[p for j, p in enumerate(cluster_ports) if j != i],
                    cluster_name=name,
                )
            )

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        """One ``nats://`` URL naming every node, as gamebus.connect() takes it."""
        return "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
