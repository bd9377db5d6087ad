"""Consumer groups on JetStream: heartbeats that expire on the server's clock.

State lives in two plain streams (not the KV API, whose nats-py client sends
2.10+ settings):

- ``GAMEBUS_MEMBERS_<group>`` (subjects ``gamebus-members.<group>.<member>``,
  one message per subject, ``max_age`` = the session timeout). A member's
  heartbeat is a message on its subject; a member that stops heartbeating
  simply disappears when its last message ages out, so liveness never
  depends on client clocks agreeing. Leaving purges the subject at once.
- ``GAMEBUS_GROUPS`` (one message per subject): ``gamebus-groups.<group>.gen``
  holds ``{"generation", "members": {member: [topics]}}`` and
  ``gamebus-groups.<group>.commit.<topic>.<partition>`` a committed
  ``{"epoch", "offset"}``.

The lowest live member id is the leader. When the live set differs from the
recorded generation, the leader writes the next generation with a
compare-and-set (``Nats-Expected-Last-Subject-Sequence``), so two would-be
leaders cannot both win. Every member reads the generation record and
derives its assignment from it with the same pure range assignment
(:func:`assign`), so members that see the same generation agree on who owns
what. During the session timeout after a crash the dead member's partitions
are unowned, and two members can briefly both read a partition around a
rebalance: groups are at-least-once, and commits say where to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from nats.js import api

from gamebus.engines.base import Position
from gamebus.engines.jetstream import naming
from gamebus.engines.jetstream.translate import is_retriable, to_gamebus
from gamebus.errors import GamebusError

if TYPE_CHECKING:
    from gamebus.engines.jetstream.bus import JetStreamBus

__all__ = ["JetStreamMembership", "assign", "commit", "committed", "join"]

log = logging.getLogger(__name__)

_WRONG_LAST_SEQUENCE = 10071
_INSUFFICIENT_RESOURCES = 10074
_STREAM_NAME_IN_USE = 10058


def assign(
    members: dict[str, list[str]], partitions: dict[str, int], member: str
) -> list[tuple[str, int]]:
    """``member``'s share: per topic, contiguous ranges over the members reading it.

    Partition ``p`` of a topic read by ``M`` members (sorted by id) goes to
    member ``p * M // P``: contiguous, sizes differ by at most one, and the
    same inputs give every member the same answer.
    """
    out: list[tuple[str, int]] = []
    for topic in sorted({t for ts in members.values() for t in ts}):
        readers = sorted(m for m, ts in members.items() if topic in ts)
        count = partitions.get(topic, 0)
        if member not in readers or count == 0:
            continue
        k = readers.index(member)
        out.extend((topic, p) for p in range(count) if p * len(readers) // count == k)
    return out


async def _ensure_stream(bus: JetStreamBus, config: api.StreamConfig) -> None:
    """Create a bookkeeping stream, R=3 when the cluster has the peers, else R=1."""
    wanted = bus.options.group_replicas
    for replicas in [wanted] if wanted else [3, 1]:
        try:
            await bus.js.add_stream(config, num_replicas=replicas)
            return
        except nats.js.errors.APIError as e:
            if e.err_code == _STREAM_NAME_IN_USE:
                return  # created by another member with other settings: use it
            if e.err_code == _INSUFFICIENT_RESOURCES and replicas > 1 and not wanted:
                continue
            raise to_gamebus(e, f"create stream {config.name}") from e
        except Exception as e:
            raise to_gamebus(e, f"create stream {config.name}") from e


async def _ensure_groups_stream(bus: JetStreamBus) -> None:
    if bus.groups_ready:
        return
    await _ensure_stream(
        bus,
        api.StreamConfig(
            name=naming.GROUPS_STREAM,
            description="gamebus consumer-group generations and committed offsets",
            subjects=[f"{naming.GROUPS_SUBJECT_PREFIX}.>"],
            max_msgs_per_subject=1,
            storage=api.StorageType.FILE,
            duplicate_window=60,
        ),
    )
    bus.groups_ready = True


async def _publish(bus: JetStreamBus, subject: str, payload: bytes, **headers: str) -> int:
    """A bookkeeping publish, retried through leader elections like a produce."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bus.options.produce_timeout_ms / 1000
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()} or None
    while True:
        try:
            ack = await bus.js.publish(
                subject, payload, timeout=bus.options.ack_timeout_ms / 1000, headers=hdrs
            )
            return ack.seq
        except Exception as e:
            if not is_retriable(e) or loop.time() >= deadline:
                raise to_gamebus(e, f"publish {subject}") from e
            await asyncio.sleep(0.1)


class JetStreamMembership:
    """One member of a group; heartbeats and rebalances in a background task."""

    def __init__(
        self,
        bus: JetStreamBus,
        group: str,
        topics: list[str],
        member: str,
        session_timeout_ms: int,
    ) -> None:
        self.group = naming.validate_group(group)
        self.member = naming.validate_member(member)
        self.topics = sorted(set(topics))
        self.generation = 0
        self.assignment: list[tuple[str, int]] = []
        self.session_timeout_ms = session_timeout_ms
        self._bus = bus
        self._changed = asyncio.Event()
        self._members: dict[str, list[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stream = naming.members_stream(group)
        self._subject = naming.member_subject(group, member)
        self._gen_subject = naming.generation_subject(group)

    @property
    def tick_s(self) -> float:
        return min(1.0, max(0.05, self.session_timeout_ms / 4000))

    async def start(self) -> None:
        ttl = self.session_timeout_ms / 1000
        await _ensure_groups_stream(self._bus)
        await _ensure_stream(
            self._bus,
            api.StreamConfig(
                name=self._stream,
                description=f"gamebus group {self.group} member heartbeats",
                subjects=[f"{naming.MEMBERS_SUBJECT_PREFIX}.{self.group}.*"],
                max_msgs_per_subject=1,
                max_age=ttl,
                duplicate_window=min(ttl, 60.0),
                storage=api.StorageType.MEMORY,
            ),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(5.0, 2 * ttl)
        while True:
            await self._tick()
            if self.generation and self.member in self._members:
                break
            if loop.time() >= deadline:
                log.warning(
                    "group %s: %s joined without an assignment yet", self.group, self.member
                )
                break
            await asyncio.sleep(min(0.1, self.tick_s))
        self._changed.clear()
        self._task = asyncio.create_task(self._run(), name=f"gamebus-group-{self.group}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a failover: keep heartbeating, the next tick may work
                log.info("group %s member %s: heartbeat failed: %r", self.group, self.member, e)

    async def _read_gen(self) -> tuple[int, dict[str, Any]]:
        try:
            msg = await self._bus.js.get_last_msg(naming.GROUPS_STREAM, self._gen_subject)
        except nats.js.errors.NotFoundError:
            return 0, {"generation": 0, "members": {}}
        return int(msg.seq or 0), json.loads(msg.data or b"{}")

    async def _member_topics(self, member: str) -> list[str]:
        subject = naming.member_subject(self.group, member)
        try:
            msg = await self._bus.js.get_last_msg(self._stream, subject)
        except nats.js.errors.NotFoundError:
            return []
        return list(json.loads(msg.data or b"{}").get("topics", []))

    async def _tick(self) -> None:
        js = self._bus.js
        timeout = self._bus.options.ack_timeout_ms / 1000
        await js.publish(
            self._subject, json.dumps({"topics": self.topics}).encode(), timeout=timeout
        )
        info = await js.stream_info(self._stream, subjects_filter=">")
        live = sorted(s.rsplit(".", 1)[1] for s in (info.state.subjects or {}))
        seq, gen = await self._read_gen()
        recorded: dict[str, list[str]] = gen.get("members", {})
        if live and live[0] == self.member and sorted(recorded) != live:
            members = {
                m: self.topics
                if m == self.member
                else recorded[m]
                if m in recorded
                else await self._member_topics(m)
                for m in live
            }
            new = {"generation": int(gen.get("generation", 0)) + 1, "members": members}
            try:
                ack = await js.publish(
                    self._gen_subject,
                    json.dumps(new).encode(),
                    timeout=timeout,
                    headers={"Nats-Expected-Last-Subject-Sequence": str(seq)},
                )
                seq, gen = ack.seq, new
            except nats.js.errors.APIError as e:
                if e.err_code != _WRONG_LAST_SEQUENCE:
                    raise
                seq, gen = await self._read_gen()  # someone else won the race
        if int(gen.get("generation", 0)) != self.generation:
            await self._apply(gen)

    async def _apply(self, gen: dict[str, Any]) -> None:
        members: dict[str, list[str]] = gen.get("members", {})
        partitions: dict[str, int] = {}
        for topic in {t for ts in members.values() for t in ts}:
            with contextlib.suppress(GamebusError):
                partitions[topic] = await self._bus.partitions(topic)
        self._members = members
        self.assignment = assign(members, partitions, self.member)
        self.generation = int(gen.get("generation", 0))
        log.info(
            "group %s gen %d: %s owns %s", self.group, self.generation, self.member, self.assignment
        )
        self._changed.set()

    async def wait_for_change(self) -> None:
        """Return after the next rebalance (a new generation) reaches this member."""
        await self._changed.wait()
        self._changed.clear()

    async def halt(self) -> None:
        """Stop heartbeating without leaving: what a crashed member looks like."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._bus.forget(self)

    async def stop(self) -> None:
        await self.leave()

    async def leave(self) -> None:
        """Leave now: purge this member's heartbeat so the leader rebalances at once."""
        await self.halt()
        with contextlib.suppress(Exception):
            await self._bus.js.purge_stream(self._stream, subject=self._subject)
        self.assignment = []


def _default_member() -> str:
    host = "".join(c if c.isalnum() or c in "_-" else "-" for c in socket.gethostname())
    return f"{host[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


async def join(
    bus: JetStreamBus,
    group: str,
    topics: list[str],
    *,
    member: str | None = None,
    session_timeout_ms: int = 10_000,
) -> JetStreamMembership:
    for topic in topics:
        await bus.partitions(topic)  # UnknownTopic early, not in the background
    membership = JetStreamMembership(
        bus, group, topics, member or _default_member(), session_timeout_ms
    )
    try:
        await membership.start()
    except GamebusError:
        raise
    except Exception as e:
        raise to_gamebus(e, f"join group {group}") from e
    return membership


async def commit(bus: JetStreamBus, group: str, offsets: dict[tuple[str, int], Position]) -> None:
    """Store each position on its own subject; all of them, or raise."""
    naming.validate_group(group)
    await _ensure_groups_stream(bus)
    await asyncio.gather(
        *(
            _publish(
                bus,
                naming.commit_subject(group, topic, partition),
                json.dumps({"epoch": pos.epoch, "offset": pos.offset}).encode(),
            )
            for (topic, partition), pos in offsets.items()
        )
    )


async def committed(bus: JetStreamBus, group: str, topic: str, partition: int) -> Position | None:
    naming.validate_group(group)
    subject = naming.commit_subject(group, topic, partition)
    try:
        msg = await bus.js.get_last_msg(naming.GROUPS_STREAM, subject)
    except nats.js.errors.NotFoundError:
        return None
    except Exception as e:
        raise to_gamebus(e, f"read commit {subject}") from e
    data = json.loads(msg.data or b"{}")
    return Position(int(data["epoch"]), int(data["offset"]))
