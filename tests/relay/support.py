"""Helpers for relay tests: tokens, WebSocket clients that decode frames, events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

from gamebus.events import encode_event, match_event, position
from relay.tokens import issue_token

__all__ = ["SECRET", "Client", "RelayProcess", "kill", "pos", "token"]

SECRET = "test-secret-for-relay-tests-0123456789"


def token(role: str = "player", matches: Any = "*", **kw: Any) -> str:
    return issue_token(key=SECRET, sub=f"{role}-1", role=role, matches=matches, **kw)  # type: ignore[arg-type]


def pos(match: str, player: str, x: float, y: float, ts: int, **extra: Any) -> bytes:
    return encode_event(position(match=match, player=player, x=x, y=y, z=0.0, yaw=0.0, pitch=0.0, ts=ts, **extra))


def kill(match: str, n: int, ts: int) -> bytes:
    return encode_event(
        match_event("kill", match=match, ts=ts, player=f"p{n % 7}", target=f"p{(n + 1) % 7}", weapon="rifle",
                    headshot=False, seq=n)
    )


class Client:
    """A real WebSocket client that decodes relay frames by subprotocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.json = ws.subprotocol == "gamebus.v1.json"
        self._next_id = 0

    @classmethod
    async def open(cls, url: str, tok: str | None = None, *, fmt: str = "msgpack", **kw: Any) -> Client:
        query = f"?token={tok}" if tok else ""
        ws = await connect(url + "/" + query, subprotocols=[f"gamebus.v1.{fmt}"], **kw)  # type: ignore[list-item]
        return cls(ws)

    async def send(self, message: dict[str, Any]) -> int:
        if "id" not in message and message.get("op") != "area":
            self._next_id += 1
            message = {**message, "id": self._next_id}
        if self.json:
            await self.ws.send(json.dumps(message))
        else:
            await self.ws.send(msgpack.packb(message))
        return int(message.get("id", 0))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(data, str):
            assert self.json, "text frame on a msgpack connection"
            return dict(json.loads(data))
        assert not self.json, "binary frame on a JSON connection"
        return dict(msgpack.unpackb(data, raw=False))

    async def until(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if pred(msg):
                    return msg

    async def subscribe(self, match: str, **fields: Any) -> dict[str, Any]:
        rid = await self.send({"op": "sub", "match": match, **fields})
        return await self.until(lambda m: m.get("id") == rid and m["op"] in ("subscribed", "error"))

    async def events(self, n: int, *, topic: str | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next ``n`` events (of ``topic``), with their frames' positions checked in order."""
        out: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while len(out) < n:
                msg = await self.recv(timeout)
                if msg["op"] == "events" and (topic is None or msg["topic"] == topic):
                    out.extend(msg["events"])
        return out

    async def read_seqs(
        self, seen: list[int], count: int, *, topic: str | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Append each event's ``seq`` to ``seen`` until it holds ``count``.

        Returns the resume position after the last frame read, in the shape a
        ``sub`` message's ``resume`` takes: ``{"offsets": ..., "epochs": ...}``.
        """
        offsets: dict[str, int] = {}
        epochs: dict[str, int] = {}
        while len(seen) < count:
            msg = await self.recv(timeout)
            if msg["op"] == "events" and (topic is None or msg["topic"] == topic):
                seen += [e["seq"] for e in msg["events"]]
                offsets.update(msg["position"]["offsets"])
                epochs.update({t: msg["position"]["epoch"] for t in msg["position"]["offsets"]})
        return {"offsets": offsets, "epochs": epochs}

    async def close(self) -> None:
        await self.ws.close()


class RelayProcess:
    """``python -m gamebus relay`` on free loopback ports, like tests.support.broker."""

    def __init__(self, bus_url: str, log_dir: Any, *extra: str) -> None:
        from tests.support.broker import free_port

        self.bus_url, self.extra = bus_url, extra
        self.port, self.http_port = free_port(), free_port()
        self.log_path = log_dir / f"relay-{self.port}.log"
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> RelayProcess:
        import os
        import subprocess
        import sys
        import time
        import urllib.request
        from pathlib import Path

        repo = Path(__file__).resolve().parents[2]
        env = {**os.environ, "GAMEBUS_TEST_RELAY_SECRET": SECRET}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "gamebus", "relay", "--bus", self.bus_url, "--port", str(self.port),
               "--http-port", str(self.http_port), "--jwt-secret-env", "GAMEBUS_TEST_RELAY_SECRET",
               "--log-level", "INFO", *self.extra]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=repo)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=0.5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("relay not healthy in 20 s")

    def stop(self) -> None:
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=2) as r:
            return str(r.read().decode())
