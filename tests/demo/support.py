"""Helpers shared by the demo's browser tests: `gamebus demo` as a child process.

The whole system runs as `gamebus demo` does for a user; only the ports are
free ones. `make test` trains the demo's anti-cheat model first (`make
demo-model`, cached in ~/.cache/gamebus/models); without it the first demo
on a machine trains it, about a minute on an idle two-core box.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: With this seed the demo's pool of 20 accounts holds two blatant cheaters
#: who cheat from the first tick (a speedhacker and a flyer), a blatant snap
#: aimbot who turns in round 5 and a closet teleporter who turns in round 3
#: (the demo's --turn-share 0.5); the labels file the demo writes beside the
#: bus says which players cheat in each match.
SEED = 19
URL_LINE = re.compile(r"gamebus demo: open (http://\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoProcess:
    """`gamebus demo` as a child process, its output collected for failure messages."""

    def __init__(self, port: int, data: Path) -> None:
        self.port = port
        self.data = data
        self.lines: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        argv = [
            sys.executable, "-m", "gamebus", "demo", "--port", str(port), "--data", str(data),
            "--matches", "2", "--players", "10", "--cheaters", "2", "--seed", str(SEED),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            m = URL_LINE.search(line)
            if m:
                self.url = m.group(1)
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float) -> str:
        self._ready.wait(timeout_s)
        assert self.url, f"gamebus demo printed no URL: {self.output()}"
        return self.url

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def blatant_cheaters(self) -> set[tuple[str, str]]:
        """(match, player) of every cheater labelled blatant who cheats from the start."""
        return {(c["match"], c["player"]) for c in self._cheaters()
                if c["intensity"] == "blatant" and not c["closet"]}

    def cheaters(self) -> set[tuple[str, str]]:
        """(match, player) of every labelled cheater."""
        return {(c["match"], c["player"]) for c in self._cheaters()}

    def _cheaters(self) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in (self.data / "labels.jsonl").read_text().splitlines()]
        return [c for record in records for c in record["cheaters"]]

    def status(self) -> dict[str, dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}status.json", timeout=5) as r:
            return {p["name"]: p for p in json.load(r)["processes"]}

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the demo must stop its children."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                return -9
        return int(self.proc.returncode)


@contextmanager
def running_demo(data: Path) -> Iterator[DemoProcess]:
    """`gamebus demo` on a free port; on the way out it must stop cleanly, children and all."""
    proc = DemoProcess(free_port(), data)
    try:
        yield proc
    finally:
        pids = [p["pid"] for p in proc.status().values() if p["pid"]] if proc.url and proc.proc.poll() is None else []
        code = proc.stop()
        assert code == 0, f"gamebus demo exited with {code} on SIGTERM:\n{proc.output()}"
        for pid in pids:  # every child is gone too
            assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"child {pid} survived the demo"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
