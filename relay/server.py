"""The relay node: the asyncio edge between the bus and WebSocket clients.

Data path, per bus batch (:meth:`Relay._on_batch`): decode every record
once, split by match into :class:`~relay.channels.Part` s, and for each
watched match let the channel encode one frame per distinct
``(interest, format)``; each frame goes to its clients through
:meth:`~relay.connection.ClientConnection.offer`, which never awaits. So a
frame reaches every fast client in the same loop iteration the batch
arrived in, and a slow client only ever delays itself.

Control path, per client (:meth:`Relay._serve_client`): messages are
handled one at a time in arrival order; a subscription with a resume
position awaits its replay from the bus while the channel parks the live
parts for it (see :mod:`relay.channels`).

One WebSocket server (``websockets``' asyncio API) and one aiohttp app for
``/healthz`` and ``/metrics`` share the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import socket
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gamebus.engines import connect
from gamebus.engines.base import Batch, Bus
from gamebus.events import ALERTS_TOPIC, POSITIONS_TOPIC
from relay.backpressure import Frame
from relay.channels import (
    Channel,
    Part,
    ResumePlan,
    Subscriber,
    TopicState,
    plan_resume,
    replay_frames,
    snapshot_message,
)
from relay.config import RelayConfig
from relay.connection import ClientConnection
from relay.feed import Feed
from relay.history import ReplayGap, fetch_range
from relay.interest import Interest
from relay.limits import ConnectionCounter, TokenBucket
from relay.metrics import RelayMetrics
from relay.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMIT,
    CLOSE_TOO_MANY_SUBSCRIPTIONS,
    JSON,
    MSGPACK,
    SUBPROTOCOLS,
    ClientMessage,
    ClientMessageError,
    Ping,
    SetInterest,
    Subscribe,
    SubscribeAlerts,
    Unsubscribe,
    encode_message,
    parse_client_message,
    wire_frame,
)
from relay.records import Record, decode_record
from relay.tokens import TokenError, token_from_request, verify_token

__all__ = ["Relay", "run_relay"]

log = logging.getLogger("relay.server")

_SERVER_SUBPROTOCOLS = [Subprotocol(name) for name in SUBPROTOCOLS]


def _select_subprotocol(_conn: ServerConnection, offered: Iterable[Subprotocol]) -> Subprotocol | None:
    """Prefer what the server lists first; no subprotocol at all means msgpack."""
    offered = list(offered)
    for name in _SERVER_SUBPROTOCOLS:
        if name in offered:
            return name
    return None


class Relay:
    """A relay node. ``await start()``, then ``port`` / ``http_port``; ``await close()``."""

    def __init__(self, config: RelayConfig, *, bus: Bus | None = None) -> None:
        self.config = config
        self.metrics = RelayMetrics()
        self.bus: Bus | None = bus
        self._own_bus = bus is None
        self.channels: dict[str, Channel] = {}
        self._channel_starts: dict[str, asyncio.Future[Channel]] = {}
        self.feeds: dict[tuple[str, int], Feed] = {}
        self.clients: dict[int, ClientConnection] = {}
        self._alert_clients: set[int] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing_feeds: set[asyncio.Task[None]] = set()
        self._dirty: list[ClientConnection] = []
        self._ids = itertools.count(1)
        self._connections = ConnectionCounter(
            max_total=config.max_connections, max_per_peer=config.max_connections_per_peer
        )
        self._server: Server | None = None
        self._http: web.AppRunner | None = None
        self.port = config.port
        self.http_port = config.http_port

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> Relay:
        if self.bus is None:
            self.bus = await connect(self.config.bus_url)
        cfg = self.config
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            subprotocols=_SERVER_SUBPROTOCOLS,
            select_subprotocol=_select_subprotocol,
            max_size=cfg.max_message_bytes,
            ping_interval=cfg.ping_interval_s,
            ping_timeout=cfg.ping_timeout_s,
            close_timeout=cfg.close_timeout_s,
            write_limit=cfg.queue.high_water_bytes,
            max_queue=16,
            compression=None,  # per-client deflate would cost a compression per client per frame
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        if cfg.http_port is not None:
            app = web.Application()
            app.router.add_get("/healthz", self._healthz)
            app.router.add_get("/metrics", self._metrics)
            self._http = web.AppRunner(app, access_log=None)
            await self._http.setup()
            site = web.TCPSite(self._http, cfg.host, cfg.http_port)
            await site.start()
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.http_port = int(server.sockets[0].getsockname()[1])
        log.info("relay on ws://%s:%d (http %s), bus %s", cfg.host, self.port, self.http_port, cfg.bus_url)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), self.config.close_timeout_s + 1)
        for timer in self._timers.values():
            timer.cancel()
        for feed in list(self.feeds.values()):
            await feed.close()
        self.feeds.clear()
        for task in list(self._closing_feeds):
            with contextlib.suppress(Exception):
                await task
        if self._http is not None:
            await self._http.cleanup()
        if self._own_bus and self.bus is not None:
            await self.bus.close()

    async def __aenter__(self) -> Relay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- HTTP ----------------------------------------------------------------

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "clients": len(self.clients), "matches": len(self.channels), "feeds": len(self.feeds)}
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- connections ---------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        peer = str(ws.remote_address[0]) if ws.remote_address else "?"
        if not self._connections.try_open(peer):
            await ws.close(CLOSE_RATE_LIMIT, "too many connections")
            return
        client: ClientConnection | None = None
        self._bound_kernel_buffer(ws)
        try:
            request = ws.request
            assert request is not None
            token = token_from_request(urlsplit(request.path).query, request.headers.get("Authorization"))
            try:
                claims = verify_token(token, key=self.config.jwt_key, algorithms=self.config.jwt_algorithms)
            except TokenError as exc:
                self.metrics.closes.labels(str(exc.close_code)).inc()
                await ws.close(exc.close_code, exc.reason)
                return
            client = ClientConnection(
                next(self._ids),
                ws,
                fmt=SUBPROTOCOLS.get(ws.subprotocol or "", MSGPACK),
                claims=claims,
                queue=self.config.queue,
                bucket=TokenBucket(
                    rate_per_s=self.config.message_rate_per_s, burst=self.config.message_burst, now=time.monotonic()
                ),
                metrics=self.metrics,
                close_timeout_s=self.config.close_timeout_s,
                on_slow=self._drop_client,
                schedule_flush=self._schedule_flush,
            )
            self.clients[client.id] = client
            self.metrics.clients.inc()
            await self._serve_client(client)
        finally:
            if client is not None:
                self._drop_client(client)
                if self.clients.pop(client.id, None) is not None:
                    self.metrics.clients.dec()
            self._connections.close(peer)

    def _schedule_flush(self, client: ClientConnection) -> None:
        """Have ``client`` flushed at the end of this loop iteration (see ClientConnection.offer)."""
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._flush_dirty)
        self._dirty.append(client)

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            client.flush()

    def _bound_kernel_buffer(self, ws: ServerConnection) -> None:
        size = self.config.socket_send_buffer_bytes
        sock = ws.transport.get_extra_info("socket")
        if size is not None and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    async def _serve_client(self, client: ClientConnection) -> None:
        ws = client.ws
        while not client.closing:
            idle = None if client.matches or client.alerts else self.config.idle_timeout_s
            try:
                async with asyncio.timeout(idle):
                    data = await ws.recv()
            except TimeoutError:
                client.close(1000, "idle")
                break
            except ConnectionClosed:
                break
            if not client.take_message_token():
                client.close(CLOSE_RATE_LIMIT, "message rate")
                break
            try:
                message = self._parse(data, client)
            except ClientMessageError as exc:
                self._error(client, exc.id, exc.code, str(exc))
                continue
            try:
                await self._dispatch(client, message)
            except ClientMessageError as exc:
                self._error(client, exc.id, exc.code, str(exc))
            except Exception as exc:  # a bus failure must not end the connection
                log.exception("client %d: %s failed", client.id, type(message).__name__)
                self._error(client, getattr(message, "id", None), "unavailable", f"{type(exc).__name__}: {exc}")
        if client._closer is not None:
            with contextlib.suppress(Exception):
                await client._closer

    @staticmethod
    def _parse(data: str | bytes, client: ClientConnection) -> ClientMessage:
        return parse_client_message(data, client.fmt)

    def _error(self, client: ClientConnection, request_id: int | None, code: str, message: str) -> None:
        self.metrics.client_errors.labels(code).inc()
        client.send_message({"op": "error", "id": request_id, "code": code, "message": message})

    async def _dispatch(self, client: ClientConnection, message: ClientMessage) -> None:
        if isinstance(message, Subscribe):
            await self._subscribe(client, message)
        elif isinstance(message, Unsubscribe):
            self._unsubscribe(client, message.match)
            client.send_message({"op": "unsubscribed", "id": message.id, "match": message.match})
        elif isinstance(message, SetInterest):
            channel = self.channels.get(message.match)
            sub = channel.subscriber(client.id) if channel is not None else None
            if sub is None:
                raise ClientMessageError("not_subscribed", f"not subscribed to {message.match!r}", field="match")
            sub.interest = Interest(message.area, message.follow)
            if message.id is not None:
                client.send_message({"op": "area", "id": message.id, "match": message.match})
        elif isinstance(message, SubscribeAlerts):
            await self._subscribe_alerts(client, message)
        elif isinstance(message, Ping):
            client.send_message({"op": "pong", "id": message.id, "ts": int(time.time() * 1000)})

    # -- channels and feeds --------------------------------------------------

    async def _feed(self, topic: str, partition: int, user: str) -> Feed:
        key = (topic, partition)
        feed = self.feeds.get(key)
        if feed is None:
            assert self.bus is not None
            feed = self.feeds[key] = Feed(self.bus, topic, partition, self._on_batch)
            feed.users.add(user)
            self.metrics.bus_subscriptions.set(len(self.feeds))
            try:
                await feed.start()
            except BaseException:
                if self.feeds.get(key) is feed:
                    del self.feeds[key]
                self.metrics.bus_subscriptions.set(len(self.feeds))
                raise
            return feed
        feed.users.add(user)
        await asyncio.shield(feed.ready)
        return feed

    def _release_feed(self, topic: str, partition: int, user: str) -> None:
        """Drop ``user`` from a feed; the last one out closes it.

        The bookkeeping is synchronous so that a subscription arriving right
        after cannot pick up a feed that is about to close; only the closing
        itself runs in the background.
        """
        feed = self.feeds.get((topic, partition))
        if feed is None:
            return
        feed.users.discard(user)
        if not feed.users:
            del self.feeds[(topic, partition)]
            self.metrics.bus_subscriptions.set(len(self.feeds))
            task = asyncio.get_running_loop().create_task(feed.close())
            self._closing_feeds.add(task)
            task.add_done_callback(self._closing_feeds.discard)

    async def _channel(self, match: str) -> Channel:
        """The channel for ``match``, starting its feeds on first use."""
        while True:
            channel = self.channels.get(match)
            if channel is not None:
                return channel
            starting = self._channel_starts.get(match)
            if starting is not None:
                await asyncio.shield(starting)
                continue
            future: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()
            self._channel_starts[match] = future
            try:
                assert self.bus is not None
                topics = {t: await self.bus.partition_for(t, match) for t in self.config.match_topics}
                for topic, partition in topics.items():
                    await self._feed(topic, partition, match)
                channel = Channel(match, topics, delay_ms=self.config.spectator_delay_ms)
                self.channels[match] = channel
                future.set_result(channel)
                return channel
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()
                for topic in self.config.match_topics:
                    with contextlib.suppress(Exception):
                        assert self.bus is not None
                        partition = await self.bus.partition_for(topic, match)
                        self._release_feed(topic, partition, match)
                raise
            finally:
                self._channel_starts.pop(match, None)

    def _live_state(self, channel: Channel) -> dict[str, TopicState]:
        out = {}
        for topic, partition in channel.topics.items():
            feed = self.feeds[(topic, partition)]
            out[topic] = TopicState(partition, feed.epoch, feed.next_offset, feed.log_start)
        return out

    # -- subscribe -----------------------------------------------------------

    async def _subscribe(self, client: ClientConnection, msg: Subscribe) -> None:
        if not client.claims.may_watch(msg.match):
            client.close(CLOSE_FORBIDDEN, f"match {msg.match[:64]!r} not in token")
            return
        if msg.match in client.matches:
            self._unsubscribe(client, msg.match)
        if len(client.matches) >= self.config.max_subscriptions:
            client.close(CLOSE_TOO_MANY_SUBSCRIPTIONS, f"at most {self.config.max_subscriptions} subscriptions")
            return
        client.matches.add(msg.match)
        self.metrics.subscriptions.inc()
        try:
            channel = await self._channel(msg.match)
        except BaseException:
            client.matches.discard(msg.match)
            self.metrics.subscriptions.dec()
            raise
        if client.closing or msg.match not in client.matches or self.channels.get(msg.match) is not channel:
            self._unsubscribe(client, msg.match)
            return
        delayed = client.claims.role == "spectator" and self.config.spectator_delay_ms > 0
        point = channel.attach_point(self._live_state(channel), delayed=delayed)
        plan = plan_resume(msg.resume, point)
        sub = Subscriber(client.id, client.fmt, Interest(msg.area, msg.follow), delayed)
        channel.attach(sub, plan, point)
        try:
            frames, replayed, gaps = await self._replay(channel, sub, plan, point, msg)
        except BaseException:
            # Leave nothing parked: live parts would pile up for nobody.
            if channel.subscriber(client.id) is sub:
                self._unsubscribe(client, msg.match)
            raise
        if channel.subscriber(client.id) is not sub or client.closing:
            return  # unsubscribed or gone while the history was read
        latest = channel.latest_delayed if delayed else channel.latest
        client.send_message(
            {
                "op": "subscribed",
                "id": msg.id,
                "match": msg.match,
                "position": sub.position(),
                "replayed": replayed,
                "gap": bool(gaps),
                "gaps": gaps,
                "delay_ms": self.config.spectator_delay_ms if delayed else 0,
            }
        )
        resumed_positions = POSITIONS_TOPIC in plan.replay and POSITIONS_TOPIC not in gaps
        if not resumed_positions:
            reason = next(iter(gaps.values()), None)
            client.send_bytes(snapshot_message(msg.match, latest, sub.interest, client.fmt, reason=reason))
        for frame in frames:
            client.offer(frame)
        self.metrics.replayed.inc(replayed)
        entry = channel.go_live(client.id)
        if entry is not None:
            _, parked = entry
            for part in parked:
                self._deliver(channel, part, [sub], delayed=delayed)

    async def _replay(
        self, channel: Channel, sub: Subscriber, plan: ResumePlan, point: dict[str, TopicState], msg: Subscribe
    ) -> tuple[list[Frame], int, dict[str, str]]:
        gaps = dict(plan.gaps)
        frames: list[Frame] = []
        replayed = 0
        latest = channel.latest_delayed if sub.delayed else channel.latest
        for topic, (start, end) in plan.replay.items():
            state = point[topic]
            try:
                assert self.bus is not None
                records = await fetch_range(
                    self.bus, topic, state.partition, epoch=state.epoch, start=start, end=end,
                    match=channel.match, max_records=self.config.replay_max_records, decode=self._decode,
                )  # fmt: skip
            except ReplayGap as gap:
                gaps[topic] = gap.reason
                sub.delivered[topic] = end
                continue
            part = Part(channel.match, topic, state.epoch, start, end, records)
            conflate = topic == POSITIONS_TOPIC and (msg.resume is None or msg.resume.positions == "latest")
            built = replay_frames(part, sub, latest, conflate=conflate)
            frames.extend(built)
            replayed += sum(len(f.positions) if f.positions is not None else f.events for f in built)
            sub.delivered[topic] = end
        return frames, replayed, gaps

    def _unsubscribe(self, client: ClientConnection, match: str) -> None:
        if match not in client.matches:
            return
        client.matches.discard(match)
        self.metrics.subscriptions.dec()
        client.queue.drop_match(match)
        channel = self.channels.get(match)
        if channel is None:
            return
        channel.detach(client.id)
        if len(channel) == 0:
            del self.channels[match]
            timer = self._timers.pop(match, None)
            if timer is not None:
                timer.cancel()
            for topic, partition in channel.topics.items():
                self._release_feed(topic, partition, match)

    def _drop_client(self, client: ClientConnection) -> None:
        for match in list(client.matches):
            self._unsubscribe(client, match)
        if client.alerts:
            client.alerts = False
            self._alert_clients.discard(client.id)
            if not self._alert_clients:
                self._release_alert_feeds()

    # -- alerts --------------------------------------------------------------

    async def _subscribe_alerts(self, client: ClientConnection, msg: SubscribeAlerts) -> None:
        if not client.claims.may_read_alerts:
            client.close(CLOSE_FORBIDDEN, "alerts are for analysts")
            return
        assert self.bus is not None
        client.alerts = True
        self._alert_clients.add(client.id)
        for partition in range(await self.bus.partitions(ALERTS_TOPIC)):
            await self._feed(ALERTS_TOPIC, partition, "*alerts*")
        client.send_message({"op": "subscribed", "id": msg.id, "alerts": True})

    def _release_alert_feeds(self) -> None:
        for topic, partition in [k for k in self.feeds if k[0] == ALERTS_TOPIC]:
            self._release_feed(topic, partition, "*alerts*")

    # -- data path -----------------------------------------------------------

    def _decode(self, offset: int, raw: bytes) -> Record | None:
        rec = decode_record(offset, raw)
        if rec is None:
            self.metrics.malformed_events.inc()
        return rec

    def _on_batch(self, feed: Feed, batch: Batch, first: int) -> None:
        now_ms = time.time() * 1000
        self.metrics.bus_batches.inc()
        if batch.max_ts:
            self.metrics.bus_lag.set(max(0.0, now_ms - batch.max_ts) / 1000)
        by_match: dict[str, list[Record]] = {}
        for i in range(first - batch.base_offset, len(batch.records)):
            rec = self._decode(batch.base_offset + i, batch.records[i])
            if rec is not None:
                by_match.setdefault(rec.event["match"], []).append(rec)
        if feed.topic == ALERTS_TOPIC:
            self._on_alerts([rec for recs in by_match.values() for rec in recs])
            return
        if feed.new_epoch:
            feed.new_epoch = False
            self._announce_epoch(feed)
        for match, records in by_match.items():
            channel = self.channels.get(match)
            if channel is None or channel.topics.get(feed.topic) != feed.partition:
                continue
            part = Part(match, feed.topic, batch.epoch, first, batch.next_offset, records, now_ms)
            channel.apply(part)
            if channel.live:
                self._deliver(channel, part, channel.live.values(), delayed=False)
            if len(channel.delay_line) and match not in self._timers:
                self._arm_timer(channel)

    def _announce_epoch(self, feed: Feed) -> None:
        """The partition's tail may have changed under the subscribers: tell them.

        Each gets a snapshot with ``reason: "epoch"`` before the first frame
        of the new epoch; frames of the new epoch carry its number, so a
        client's saved position moves to it.
        """
        for channel in self.channels.values():
            if channel.topics.get(feed.topic) != feed.partition:
                continue
            for sub in [*channel.live.values(), *channel.delayed.values()]:
                client = self.clients.get(sub.client)
                if client is not None:
                    latest = channel.latest_delayed if sub.delayed else channel.latest
                    client.send_bytes(snapshot_message(channel.match, latest, sub.interest, client.fmt, reason="epoch"))

    def _deliver(self, channel: Channel, part: Part, subs: Iterable[Subscriber], *, delayed: bool) -> None:
        now_s = time.time()
        clients = self.clients
        for frame, members in channel.fanout(part, subs, delayed=delayed):
            self.metrics.frames_encoded.inc()
            wire = wire_frame(frame.data, text=members[0].fmt == JSON)
            sent = 0
            for sub in members:
                client = clients.get(sub.client)
                if client is not None:
                    client.offer(frame, wire)
                    sent += 1
            self.metrics.frames_out.inc(sent)
            self.metrics.bytes_out.inc(sent * len(frame.data))
            if frame.first_ts and sent:
                self.metrics.latency.observe(max(0.0, now_s - frame.first_ts / 1000))

    def _arm_timer(self, channel: Channel) -> None:
        due = channel.delay_line.next_due_ms()
        if due is None:
            return
        delay_s = max(0.0, (due - time.time() * 1000) / 1000)
        self._timers[channel.match] = asyncio.get_running_loop().call_later(delay_s, self._release, channel)

    def _release(self, channel: Channel) -> None:
        self._timers.pop(channel.match, None)
        if self.channels.get(channel.match) is not channel:
            return
        for part in channel.release(now_ms=time.time() * 1000):
            if channel.delayed:
                self._deliver(channel, part, channel.delayed.values(), delayed=True)
        if len(channel.delay_line):
            self._arm_timer(channel)

    def _on_alerts(self, records: list[Record]) -> None:
        if not self._alert_clients or not records:
            return
        encoded: dict[tuple[int, str], bytes] = {}
        for client_id in list(self._alert_clients):
            client = self.clients.get(client_id)
            if client is None:
                continue
            for i, rec in enumerate(records):
                if not client.claims.may_watch(str(rec.event.get("match"))):
                    continue
                key = (i, client.fmt)
                data = encoded.get(key)
                if data is None:
                    data = encoded[key] = encode_message({"op": "alert", "alert": rec.event}, client.fmt)
                client.send_bytes(data)


async def run_relay(config: RelayConfig) -> None:
    """Run a relay until SIGINT or SIGTERM."""
    relay = Relay(config)
    await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(f"gamebus relay: ws://{config.host}:{relay.port} http://{config.host}:{relay.http_port}", flush=True)
    try:
        await stop.wait()
    finally:
        await relay.close()
