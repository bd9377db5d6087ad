"""The end-to-end benchmark's WebSocket clients, cut to the bone.

The end-to-end run must measure the relay, not its load generator. With the
``websockets`` client library (one task wake-up and one full frame parse per
message per connection) and a whole-frame msgpack decode, 1,000 clients cost
two thirds of a core for ~28,000 frames/s on the 2-core bench machine and
fell behind by seconds: the benchmark measured its own clients (py-spy:
``Frame.parse``, ``Assembler.get``, the msgpack decode on top). Here instead:

- one :class:`asyncio.Protocol` per connection: the handshake by hand, then
  every frame of a ``data_received`` call parsed in place (server frames
  are unmasked, the relay never fragments), pings answered at once so the
  relay's keepalive never times a busy client out;
- :func:`read_head`: only the frame's head (``op``, ``match``, ``topic``,
  ``position``) and the events' array header are decoded, about 3 us per
  frame against 25 us for the whole frame (20 positions of 15 fields);
- the latency stamp ``lt`` is the first key of every event (the publisher
  puts it there), so the oldest event's stamp is read from fixed bytes
  (:func:`first_stamp`), with a real msgpack decode as the fallback;
- match-event frames (few, and never dropped) are decoded whole and checked
  event by event for gaps and duplicates, as before.

Latency is still one sample per frame per client, for every frame received
while measuring: nothing is sampled away. Receive time is taken once per
``data_received`` call, which is when those bytes left the kernel.
"""

from __future__ import annotations

import array
import asyncio
import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from loadtests.bench.common import StreamChecker
from loadtests.bench.wsframes import BINARY, CLOSE, PING, PONG, client_frame, split_frames

__all__ = ["ClientStats", "FrameHead", "RawClient", "first_stamp", "read_head"]

POSITIONS = "game.positions"
_LT_KEY = b"\xa2lt"


@dataclass(slots=True)
class FrameHead:
    """What a client needs of one relay frame without decoding its events."""

    op: Any
    fields: dict[str, Any]
    count: int = 0
    #: Offset in the payload where the first event's bytes start.
    events_at: int = -1


def read_head(payload: bytes) -> FrameHead:
    """Decode the frame's map up to the ``events`` array header.

    The relay encodes ``op, match, topic, position`` before ``events``
    (:func:`relay.protocol.encode_events`); a frame in another order still
    parses, just decoding more.
    """
    u = msgpack.Unpacker(raw=False)
    u.feed(payload)
    fields: dict[str, Any] = {}
    head = FrameHead(None, fields)
    for _ in range(u.read_map_header()):
        key = u.unpack()
        if key == "events":
            head.count = u.read_array_header()
            head.events_at = u.tell()
            break
        fields[key] = u.unpack()
    head.op = fields.get("op")
    return head


def first_stamp(payload: bytes, at: int) -> int | None:
    """The first event's ``lt`` (us), read from its bytes when it is the first key.

    A msgpack map of up to 15 keys has a one-byte header, a bigger one three;
    ``lt`` is a uint64 (``0xcf``) at today's clock. Anything else falls back
    to decoding the event.
    """
    b = payload[at]
    q = at + 1 if 0x80 <= b <= 0x8F else at + 3 if b == 0xDE else -1
    if q > 0 and payload[q:q + 3] == _LT_KEY and payload[q + 3] == 0xCF:
        return int.from_bytes(payload[q + 4:q + 12], "big")
    u = msgpack.Unpacker(raw=False)
    u.feed(payload[at:])
    ev = u.unpack()
    lt = ev.get("lt") if isinstance(ev, dict) else None
    return lt if isinstance(lt, int) else None


@dataclass
class ClientStats:
    """Shared by all connections of one client process."""

    latency_ms: array.array[float] = field(default_factory=lambda: array.array("d"))
    counts: dict[str, int] = field(default_factory=lambda: {
        "frames": 0, "events": 0, "gaps": 0, "duplicates": 0, "errors": 0, "closed": 0,
        "connect_failed": 0, "skipped": 0, "pings": 0})
    problems: list[str] = field(default_factory=list)
    measuring: bool = False
    stopping: bool = False
    subscribed: int = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text[:200])


class RawClient(asyncio.Protocol):
    """One spectator connection: handshake, subscribe, check and time every frame."""

    def __init__(self, *, host: str, path: str, match: str, strict: bool, stats: ClientStats,
                 ready: asyncio.Future[None]) -> None:
        self.host, self.path, self.match, self.strict = host, path, match, strict
        self.stats, self.ready = stats, ready
        self.checker = StreamChecker()
        self.buf = bytearray()
        self.open = False
        self.transport: Any = None  # uvloop's transport is no asyncio.Transport subclass

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: gamebus.v1.msgpack\r\n\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stats.stopping:
            self.stats.counts["closed"] += 1
            self.stats.problem(f"closed: {self.match}: {exc!r}")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the handshake"))

    def _send(self, opcode: int, payload: bytes) -> None:
        self.transport.write(client_frame(opcode, payload))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open and not self._handshake(buf):
            return
        now_us = time.time_ns() // 1000
        frames, consumed = split_frames(buf)
        for opcode, start, end in frames:
            if opcode == BINARY:
                self._frame(bytes(buf[start:end]), now_us)
            elif opcode == PING:
                self.stats.counts["pings"] += 1
                self._send(PONG, bytes(buf[start:end]))
            elif opcode == CLOSE:
                code = int.from_bytes(buf[start:start + 2], "big") if end - start >= 2 else 1005
                if not self.stats.stopping:
                    self.stats.problem(f"close {code} {bytes(buf[start + 2:end])!r}")
        del buf[:consumed]

    def _handshake(self, buf: bytearray) -> bool:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        if not buf.startswith(b"HTTP/1.1 101"):
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(bytes(buf[:200]).decode(errors="replace")))
            self.transport.close()
            return False
        del buf[:end + 4]
        self.open = True
        self._send(BINARY, msgpack.packb({"op": "sub", "id": 1, "match": self.match}))
        return True

    def _frame(self, payload: bytes, now_us: int) -> None:
        stats = self.stats
        head = read_head(payload)
        if head.op != "events":
            if head.op == "subscribed":
                stats.subscribed += 1
                if not self.ready.done():
                    self.ready.set_result(None)
            elif head.op == "error":
                stats.counts["errors"] += 1
                stats.problem(str(head.fields))
            return
        n = head.count
        if not n or not stats.measuring:
            return
        f = head.fields
        topic = f.get("topic", "")
        if topic == POSITIONS:
            oldest = first_stamp(payload, head.events_at)
            checked: list[dict[str, Any]] = []
        else:
            checked = msgpack.unpackb(payload, raw=False)["events"]
            stamps = [ev.get("lt") or ev.get("ts", 0) * 1000 for ev in checked]
            oldest = min(stamps) if stamps else None
        counts = stats.counts
        if oldest is not None:
            stats.latency_ms.append((now_us - oldest) / 1000)
        counts["frames"] += 1
        counts["events"] += n
        for kind, detail in self.checker.frame(f.get("match", ""), topic,
                                               f.get("position") or {}, checked, self.strict,
                                               count=n):
            if kind == "skipped":
                counts["skipped"] += int(detail)
            else:
                counts[kind + "s"] += 1
                stats.problem(f"{kind}: {detail}")


async def open_clients(*, host: str, port: int, path: str, matches: list[str], first: int,
                       count: int, owned: set[str], stats: ClientStats, source_ip: str,
                       concurrency: int = 50,
                       factory: Callable[..., RawClient] = RawClient) -> list[Any]:
    """Connect ``count`` clients (``concurrency`` at a time); return their transports."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency)
    transports: list[Any] = []

    async def one(index: int) -> None:
        match = matches[(first + index) % len(matches)]
        ready: asyncio.Future[None] = loop.create_future()
        client = factory(host=f"{host}:{port}", path=path, match=match, strict=match in owned,
                         stats=stats, ready=ready)
        async with sem:
            try:
                transport, _ = await loop.create_connection(lambda: client, host, port,
                                                            local_addr=(source_ip, 0))
                transports.append(transport)
                await asyncio.wait_for(ready, 60)
            except Exception as exc:
                stats.counts["connect_failed"] += 1
                stats.problem(f"connect: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(i) for i in range(count)))
    return transports
