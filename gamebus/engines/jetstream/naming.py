"""How gamebus names map onto JetStream names: pure functions, no I/O.

A topic is a stream, a partition is one subject of it, a record is one
message whose stream sequence is its offset::

    topic "game.positions", 8 partitions
      stream    GAMEBUS_game_positions
      subjects  gamebus.game.positions.0 ... gamebus.game.positions.7
      description  "gamebus topic=game.positions partitions=8"

The description carries the topic name and partition count so that any
client can rebuild the topic from the stream alone (``partitions()`` is one
STREAM.INFO away); the stream name is only a readable handle, and two
topics whose names collide after ``.`` -> ``_`` are refused at creation.

Consumer groups keep their state in two plain streams: one per group for
membership heartbeats (``max_age`` = session timeout, so a silent member's
subject expires on the server's clock, never a client's) and one shared
stream for generations and committed offsets (one message per subject,
compare-and-set through ``Nats-Expected-Last-Subject-Sequence``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gamebus.errors import ConfigError

__all__ = [
    "GROUPS_STREAM",
    "GROUPS_SUBJECT_PREFIX",
    "MEMBERS_SUBJECT_PREFIX",
    "STREAM_PREFIX",
    "SUBJECT_PREFIX",
    "AckInfo",
    "commit_subject",
    "describe_topic",
    "epoch_from_created",
    "generation_subject",
    "member_subject",
    "members_stream",
    "msg_id",
    "parse_ack_reply",
    "parse_description",
    "partition_subject",
    "stream_name",
    "validate_group",
    "validate_member",
    "validate_topic",
]

STREAM_PREFIX = "GAMEBUS_"
SUBJECT_PREFIX = "gamebus"
GROUPS_STREAM = "GAMEBUS_GROUPS"
GROUPS_SUBJECT_PREFIX = "gamebus-groups"
MEMBERS_SUBJECT_PREFIX = "gamebus-members"

# Dot-separated tokens of safe characters: a topic's dots become subject
# tokens, so wildcards, spaces and empty tokens must never get through.
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_DESCRIPTION_RE = re.compile(r"^gamebus topic=(?P<topic>\S+) partitions=(?P<partitions>\d+)$")


def validate_topic(topic: str) -> str:
    if not _TOPIC_RE.match(topic) or len(topic) > 200:
        raise ConfigError(
            f"topic {topic!r} is not usable on JetStream: use letters, digits, '_', '-' "
            "and single dots between them"
        )
    return topic


def validate_group(group: str) -> str:
    if not _TOKEN_RE.match(group) or len(group) > 100:
        raise ConfigError(f"group {group!r}: use letters, digits, '_' and '-' only")
    return group


def validate_member(member: str) -> str:
    if not _TOKEN_RE.match(member) or len(member) > 100:
        raise ConfigError(f"member {member!r}: use letters, digits, '_' and '-' only")
    return member


def stream_name(topic: str) -> str:
    """``game.positions`` -> ``GAMEBUS_game_positions`` (stream names cannot hold dots)."""
    return STREAM_PREFIX + validate_topic(topic).replace(".", "_")


def partition_subject(topic: str, partition: int) -> str:
    return f"{SUBJECT_PREFIX}.{topic}.{partition}"


def describe_topic(topic: str, partitions: int) -> str:
    return f"gamebus topic={topic} partitions={partitions}"


def parse_description(description: str | None) -> tuple[str, int] | None:
    """``(topic, partitions)`` from a stream description, or None if not ours."""
    m = _DESCRIPTION_RE.match(description or "")
    if m is None:
        return None
    return m.group("topic"), int(m.group("partitions"))


def msg_id(producer_id: int | str, partition: int, sequence: int, index: int) -> str:
    """The ``Nats-Msg-Id`` of record ``index`` of the batch with ``sequence``.

    Stable across retries of the same produce: JetStream drops a message
    whose id it has seen within the stream's duplicate window and acks it
    with the original sequence, which is what makes a retried produce
    idempotent. The index is a separate field because the SDK numbers
    *batches* (sequence + 1 per batch), so ``sequence + index`` would give
    two different records the same id.
    """
    return f"{producer_id}:{partition}:{sequence}:{index}"


def epoch_from_created(created: datetime | None) -> int:
    """A stream's creation time in microseconds since 1970: the topic's epoch.

    A deleted and recreated stream restarts its sequences, so every old
    position is meaningless; its new creation time makes that visible as a
    new epoch. Microseconds stay below 2**53, so JavaScript clients can hold
    the number exactly.
    """
    if created is None:
        return 0
    return int(created.timestamp() * 1_000_000)


def members_stream(group: str) -> str:
    return f"GAMEBUS_MEMBERS_{validate_group(group)}"


def member_subject(group: str, member: str) -> str:
    return f"{MEMBERS_SUBJECT_PREFIX}.{group}.{member}"


def generation_subject(group: str) -> str:
    return f"{GROUPS_SUBJECT_PREFIX}.{group}.gen"


def commit_subject(group: str, topic: str, partition: int) -> str:
    return f"{GROUPS_SUBJECT_PREFIX}.{group}.commit.{topic}.{partition}"


@dataclass(frozen=True, slots=True)
class AckInfo:
    """What a JetStream delivery's reply subject says about the message."""

    stream_seq: int
    consumer_seq: int
    timestamp_ms: int
    pending: int


def parse_ack_reply(reply: str) -> AckInfo | None:
    """Parse ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts_ns>.<pending>``.

    Servers from 2.9 on may send the longer v2 form with a domain and an
    account hash in front and a random token behind; both are handled. Returns
    None for anything that is not a JetStream delivery.
    """
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    base = 4 if len(tokens) == 9 else 6  # index of <delivered>
    try:
        return AckInfo(
            stream_seq=int(tokens[base + 1]),
            consumer_seq=int(tokens[base + 2]),
            timestamp_ms=int(tokens[base + 3]) // 1_000_000,
            pending=int(tokens[base + 4]),
        )
    except (IndexError, ValueError):
        return None
