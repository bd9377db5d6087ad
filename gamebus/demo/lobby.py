"""The demo's lobby: which matches are being played, and the recent alerts.

The relay streams matches by id but does not list them (a real game has a
matchmaker for that), and ``gamebus sim --loop`` gives every new match a new
id. So the demo server reads the match events topic itself and keeps a small
table of matches: when each started, on which map, how many players joined,
whether it ended. The page polls it (``GET /matches.json``) to fill its match
picker and to move on when the watched match ends. It also keeps the latest
anti-cheat alerts (``GET /alerts.json``): the relay's ``sub_alerts`` is live
only, and a page opened (or reloaded) after a cheater was flagged should
still ring them. With the latest score of every player in every match, it
serves the analysts' review page (``GET /review.json``): flagged players
ranked, and players ranked by their evidence across matches.

:class:`Lobby` is pure (events and the time go in); :func:`watch_matches` is
the bus edge that feeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gamebus.events import ALERTS_TOPIC, EVENTS_TOPIC, SCORES_TOPIC, decode_event

__all__ = ["Lobby", "MatchInfo", "watch_matches"]

_log = logging.getLogger(__name__)

#: A match with no event for this long is presumed over (its server died).
QUIET_MS = 30_000
#: Ended matches listed after the live ones, newest first.
KEEP_ENDED = 2
#: Alerts kept for pages that open late.
KEEP_ALERTS = 100
#: Latest anti-cheat score per (match, player) kept for the review page's accounts.
KEEP_SCORES = 5_000


@dataclass(slots=True)
class MatchInfo:
    id: str
    started_ms: int
    last_ms: int
    map: str | None = None
    round: int = 0
    players: set[str] = field(default_factory=set)
    kills: int = 0
    ended_ms: int | None = None
    #: Where the match's first event sits in the match events topic, so a
    #: page can subscribe from there and get the whole match so far.
    first: tuple[int, int] | None = None

    def live(self, now_ms: int) -> bool:
        return self.ended_ms is None and now_ms - self.last_ms < QUIET_MS

    def to_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "map": self.map,
            "round": self.round,
            "players": len(self.players),
            "kills": self.kills,
            "started_ms": self.started_ms,
            "live": self.live(now_ms),
            "from": None if self.first is None else {
                "epochs": {EVENTS_TOPIC: self.first[0]}, "offsets": {EVENTS_TOPIC: self.first[1]},
            },
        }  # fmt: skip


class Lobby:
    """The table of matches, built from match events."""

    def __init__(self) -> None:
        self.matches: dict[str, MatchInfo] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=KEEP_ALERTS)
        #: The latest ``anticheat.score`` of each (match, player), oldest first.
        self.scores: dict[tuple[str, str], dict[str, Any]] = {}

    def apply(self, event: Mapping[str, Any], *, epoch: int | None = None, offset: int | None = None) -> None:
        """Take one event; ``epoch``/``offset`` say where it is in the match events topic."""
        if event.get("type") == "anticheat.alert":
            self.alerts.append(dict(event))
            return
        if event.get("type") == "anticheat.score":
            self._score(event)
            return
        match, ts, kind = event.get("match"), event.get("ts"), event.get("type")
        if not isinstance(match, str) or not isinstance(ts, int):
            return
        info = self.matches.get(match)
        if info is None:
            info = self.matches[match] = MatchInfo(match, ts, ts)
            if epoch is not None and offset is not None:
                info.first = (epoch, offset)
        info.last_ms = max(info.last_ms, ts)
        player = event.get("player")
        if kind in ("join", "spawn") and isinstance(player, str):
            info.players.add(player)
        elif kind == "leave" and isinstance(player, str):
            info.players.discard(player)
        elif kind == "kill":
            info.kills += 1
        elif kind == "round_start":
            info.round = int(event.get("round") or 0)
            if isinstance(event.get("map"), str):
                info.map = event["map"]
        elif kind == "match_end":
            info.ended_ms = ts
            if isinstance(event.get("map"), str):
                info.map = event["map"]

    def _score(self, event: Mapping[str, Any]) -> None:
        match, player = event.get("match"), event.get("player")
        if not isinstance(match, str) or not isinstance(player, str):
            return
        key = (match, player)
        self.scores.pop(key, None)  # re-insert: the dict stays oldest first
        self.scores[key] = {k: event.get(k) for k in ("match", "player", "ts", "score")}
        while len(self.scores) > KEEP_SCORES:
            del self.scores[next(iter(self.scores))]

    def review(self, limit: int = 25) -> dict[str, Any]:
        """The analyst's view: flagged players ranked, and players by their evidence across matches."""
        from anticheat.accounts import account_queue
        from anticheat.review import review_queue

        return {
            "flagged": review_queue(list(self.alerts))[:limit],
            "accounts": account_queue(self.scores.values())[:limit],
        }

    def listing(self, now_ms: int) -> list[dict[str, Any]]:
        """Live matches oldest first (stable picker order), then a few ended ones."""
        live = sorted((m for m in self.matches.values() if m.live(now_ms)), key=lambda m: (m.started_ms, m.id))
        ended = sorted((m for m in self.matches.values() if not m.live(now_ms)), key=lambda m: -m.last_ms)
        for old in ended[KEEP_ENDED * 4 :]:
            # Bounded memory on a demo left running for days.
            del self.matches[old.id]
        return [m.to_json(now_ms) for m in [*live, *ended[:KEEP_ENDED]]]


async def watch_matches(bus_url: str, lobby: Lobby, *, retry_s: float = 1.0) -> None:
    """Feed ``lobby`` from the match events, alerts and scores topics, forever.

    Reads from the earliest offset, so matches and alerts from before the
    demo server looked are listed too. Each topic retries on its own while
    it does not exist yet (the simulator and the anti-cheat service create
    them with their first event) or the broker restarts; a retry reads the
    topic again from the start into a cleared table, so nothing counts twice.
    """
    await asyncio.gather(
        _watch_topic(bus_url, EVENTS_TOPIC, lobby, lobby.matches.clear, retry_s),
        _watch_topic(bus_url, ALERTS_TOPIC, lobby, lobby.alerts.clear, retry_s),
        _watch_topic(bus_url, SCORES_TOPIC, lobby, lobby.scores.clear, retry_s),
    )


async def _watch_topic(
    bus_url: str, topic: str, lobby: Lobby, reset: Callable[[], None], retry_s: float
) -> None:
    from gamebus.engines import connect

    while True:
        try:
            bus = await connect(bus_url)
        except Exception as exc:  # any failure to connect: wait and retry
            _log.debug("lobby: cannot connect to %s: %s", bus_url, exc)
            await asyncio.sleep(retry_s)
            continue
        try:
            count = await bus.partitions(topic)
            reset()
            readers = [asyncio.create_task(_read(bus, topic, p, lobby)) for p in range(count)]
            try:
                await asyncio.gather(*readers)
            finally:
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # topic missing yet, broker restarting: retry
            _log.debug("lobby: %s: %s; retrying", topic, exc)
            await asyncio.sleep(retry_s)
        finally:
            with contextlib.suppress(Exception):
                await bus.close()


async def _read(bus: Any, topic: str, partition: int, lobby: Lobby) -> None:
    sub = await bus.subscribe(topic, partition, "earliest")
    try:
        async for batch in sub:
            for i, record in enumerate(batch.records):
                try:
                    lobby.apply(decode_event(record, validate=False), epoch=batch.epoch, offset=batch.base_offset + i)
                except Exception:  # one bad record never stops the lobby
                    continue
    finally:
        await sub.close()
