"""Consumer groups: membership, range assignment, rebalances. Pure: no I/O.

The broker computes assignments itself (no leader member, unlike Kafka):
every join, leave or expired session bumps the group's ``generation`` and
re-deals the partitions of each topic as contiguous ranges over the members
subscribed to it, sorted by member id, so the result is deterministic. The
edge tells members about a new generation with a push and in every
heartbeat answer. Time is an argument (``now_ms``) so tests need no sleep.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from gamebus.errors import InvalidRequest, UnknownMember

__all__ = ["Group", "GroupCoordinator", "Member", "range_assign"]


@dataclass(slots=True)
class Member:
    member: str
    topics: tuple[str, ...]
    session_timeout_ms: int
    last_seen_ms: float
    owner: int  # connection id, so a dropped connection can leave at once


@dataclass(slots=True)
class Group:
    name: str
    generation: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    assignment: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def range_assign(
    members: dict[str, tuple[str, ...]], partitions_of: Callable[[str], int]
) -> dict[str, list[tuple[str, int]]]:
    """Kafka's range assignor: per topic, contiguous partition ranges."""
    out: dict[str, list[tuple[str, int]]] = {m: [] for m in members}
    topics = sorted({t for ts in members.values() for t in ts})
    for topic in topics:
        subscribed = sorted(m for m, ts in members.items() if topic in ts)
        count = partitions_of(topic)
        per, extra = divmod(count, len(subscribed))
        start = 0
        for i, member in enumerate(subscribed):
            n = per + (1 if i < extra else 0)
            out[member].extend((topic, p) for p in range(start, start + n))
            start += n
    return out


class GroupCoordinator:
    def __init__(self, partitions_of: Callable[[str], int]) -> None:
        self._partitions_of = partitions_of
        self.groups: dict[str, Group] = {}

    def _rebalance(self, group: Group) -> None:
        group.generation += 1
        group.assignment = range_assign(
            {m.member: m.topics for m in group.members.values()}, self._partitions_of
        )

    def join(
        self,
        name: str,
        topics: list[str],
        *,
        member: str | None,
        session_timeout_ms: int,
        now_ms: float,
        owner: int,
    ) -> tuple[Group, str]:
        """Add or refresh a member; returns the group and the member's id."""
        if not topics:
            raise InvalidRequest("topics", "a member must subscribe to at least one topic")
        group = self.groups.setdefault(name, Group(name))
        member_id = member or f"m-{uuid.uuid4().hex[:12]}"
        existing = group.members.get(member_id)
        wanted = tuple(sorted(set(topics)))
        group.members[member_id] = Member(member_id, wanted, session_timeout_ms, now_ms, owner)
        if existing is None or existing.topics != wanted:
            self._rebalance(group)
        return group, member_id

    def heartbeat(self, name: str, member: str, *, now_ms: float) -> Group:
        group = self.groups.get(name)
        if group is None or member not in group.members:
            raise UnknownMember(f"member {member!r} is not in group {name!r}; join again")
        group.members[member].last_seen_ms = now_ms
        return group

    def leave(self, name: str, member: str) -> Group | None:
        group = self.groups.get(name)
        if group is None or group.members.pop(member, None) is None:
            return None
        self._rebalance(group)
        return group

    def drop_owner(self, owner: int) -> list[Group]:
        """Remove every member held by connection ``owner``; return changed groups."""
        changed = []
        for group in self.groups.values():
            gone = [m for m, s in group.members.items() if s.owner == owner]
            for m in gone:
                del group.members[m]
            if gone:
                self._rebalance(group)
                changed.append(group)
        return changed

    def expire(self, *, now_ms: float) -> list[Group]:
        """Remove members whose session timed out; return changed groups."""
        changed = []
        for group in self.groups.values():
            dead = [
                m
                for m, s in group.members.items()
                if now_ms - s.last_seen_ms > s.session_timeout_ms
            ]
            for m in dead:
                del group.members[m]
            if dead:
                self._rebalance(group)
                changed.append(group)
        return changed

    def topic_changed(self, topic: str) -> list[Group]:
        """A topic gained partitions (or was created): re-deal groups reading it."""
        changed = []
        for group in self.groups.values():
            if any(topic in m.topics for m in group.members.values()):
                self._rebalance(group)
                changed.append(group)
        return changed
