"""A real broker subprocess for tests: start, stop, kill -9, restart.

Usage::

    from tests.support.broker import BrokerProcess

    with BrokerProcess(tmp_path / "data") as broker:
        bus = await gamebus.connect(broker.url)
        ...
        broker.kill()          # SIGKILL, like a crash
        broker.start()         # same data dir, same ports

The interface is stable (other suites import it): ``BrokerProcess(data_dir,
*, port=None, admin_port=None, extra_args=())``, ``start()``, ``stop()``
(SIGTERM, graceful), ``kill()`` (SIGKILL), ``restart()``, ``url``
(``gamebus://127.0.0.1:PORT``), ``admin_url`` (``http://127.0.0.1:PORT``),
``pid``, ``running`` and ``log_text()`` (the broker's stderr so far).
Ports are chosen free on 127.0.0.1 once and kept across restarts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerProcess", "free_port"]

_REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokerProcess:
    """``gamebus broker`` (as ``python -m gamebus.server``) on loopback ports with its own data dir."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        admin_port: int | None = None,
        extra_args: Sequence[str] = (),
        start_timeout_s: float = 20.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        self.extra_args = tuple(extra_args)
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.data_dir.parent / f"broker-{self.port}.log"

    @property
    def url(self) -> str:
        return f"gamebus://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        # ``python -m gamebus.server`` is ``gamebus broker`` without importing
        # every other subcommand: it starts several times faster.
        return [
            sys.executable, "-m", "gamebus.server",
            "--data", str(self.data_dir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--admin-port", str(self.admin_port),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> BrokerProcess:
        """Start the broker and wait until ``/healthz`` answers."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
        log = open(self._log_path, "ab")  # noqa: SIM115 - the child owns it
        try:
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=_REPO
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with {self._proc.returncode}:\n{self.log_text()[-4000:]}"
                )
            if self._healthy():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker not healthy after {self.start_timeout_s}s:\n{self.log_text()[-4000:]}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.admin_url + "/healthz", timeout=0.5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (graceful: flush, fsync, close) and wait; SIGKILL if it hangs."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill(self) -> None:
        """SIGKILL, like a power cut for the process (the page cache survives)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
