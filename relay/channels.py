"""Channel state per match: subscribers, latest positions, positions, resume. Pure.

A *channel* is one match as a relay serves it. The edge decodes each bus
batch once, splits it into :class:`Part` s (one per match in the batch) and
hands each part to :meth:`Channel.fanout`, which groups the match's
subscribers by ``(interest, format)`` and encodes one frame per group. The
edge then writes the same bytes to every client of the group without
awaiting any of them.

Positions (where a client is) are per topic: ``(epoch, next offset)`` of the
topic's partition for this match. Every events frame carries its topic's
position; a client keeps the latest per topic and presents them to resume.

Resume, with no gap and no duplicate (:func:`plan_resume`): at the moment a
subscriber attaches (synchronously, no await in between) the channel's live
point per topic is ``L``. The edge replays ``[resume offset, L)`` from the
bus history and, meanwhile, the channel parks every live part for the
subscriber (:meth:`Channel.attach` / :meth:`Channel.go_live`). Each
subscriber remembers the next offset it was handed per topic (``delivered``);
any part, live or replayed, is trimmed against it, so the seam between
history and live, and a client that comes from a relay further ahead, never
see a record twice.

Spectators may be held ``delay_ms`` behind live: parts go through a
:class:`~relay.delay.DelayLine` and delayed subscribers attach to the line's
oldest part instead of the live point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from relay.backpressure import Frame
from relay.delay import DelayLine
from relay.interest import EVERYTHING, Interest, filter_records, passes
from relay.protocol import Format, Resume, encode_events, encode_message
from relay.records import Record

__all__ = [
    "REPLAY_FRAME_RECORDS",
    "Channel",
    "Part",
    "ResumePlan",
    "Subscriber",
    "TopicState",
    "plan_resume",
    "replay_frames",
    "snapshot_message",
]

#: Records per replay frame: big enough to be cheap, small enough to interleave.
REPLAY_FRAME_RECORDS: Final = 512


@dataclass(frozen=True, slots=True)
class Part:
    """The records of one match in one bus batch, with the batch's offset range.

    ``records`` holds only this match's well-formed records; ``base_offset``
    and ``next_offset`` span the whole batch so that positions advance past
    records of other matches and malformed ones alike.
    """

    match: str
    topic: str
    epoch: int
    base_offset: int
    next_offset: int
    records: Sequence[Record]
    received_ms: float = 0.0

    def after(self, offset: int) -> Part:
        """This part without the records below ``offset`` (the seam dedupe)."""
        if offset <= self.base_offset:
            return self
        kept = [rec for rec in self.records if rec.offset >= offset]
        return Part(self.match, self.topic, self.epoch, offset, self.next_offset, kept, self.received_ms)


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic's partition for a match, as the relay's live feed sees it."""

    partition: int
    epoch: int
    next_offset: int
    log_start: int = 0


@dataclass(slots=True)
class Subscriber:
    """One client's subscription to one match."""

    client: int
    fmt: Format
    interest: Interest = EVERYTHING
    delayed: bool = False
    #: topic -> the next offset handed to this client (dedupe and resume).
    delivered: dict[str, int] = field(default_factory=dict)
    #: topic -> epoch of ``delivered``.
    epochs: dict[str, int] = field(default_factory=dict)

    def position(self) -> dict[str, Any]:
        return position_vector(self.epochs, self.delivered)


def position_vector(epochs: Mapping[str, int], offsets: Mapping[str, int]) -> dict[str, Any]:
    """A resume position as sent to clients (see docs/relay-protocol.md)."""
    vector: dict[str, Any] = {"offsets": dict(offsets), "epochs": dict(epochs)}
    distinct = set(epochs.values())
    if len(distinct) == 1:
        vector["epoch"] = distinct.pop()
    return vector


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """What to replay per topic, where the subscriber starts, and any gaps."""

    replay: dict[str, tuple[int, int]]  # topic -> [from, to)
    start: dict[str, int]  # topic -> delivered before replay
    gaps: dict[str, str]  # topic -> "epoch" | "history"


def plan_resume(resume: Resume | None, attach: Mapping[str, TopicState]) -> ResumePlan:
    """Decide, per topic, what a subscriber attaching at ``attach`` must replay.

    No resume (or a topic it does not name): start live, nothing to replay.
    Another epoch: a gap (the tail may differ), start live. Behind the log
    start: a gap (history gone), start live. Ahead of this relay (it came
    from a relay further along): start at its offset, live parts are trimmed.
    Otherwise replay ``[offset, live point)``.
    """
    replay: dict[str, tuple[int, int]] = {}
    start: dict[str, int] = {}
    gaps: dict[str, str] = {}
    for topic, state in attach.items():
        offset = resume.offset(topic) if resume is not None else None
        if offset is None or resume is None:
            start[topic] = state.next_offset
        elif resume.epoch(topic) != state.epoch:
            gaps[topic] = "epoch"
            start[topic] = state.next_offset
        elif offset < state.log_start:
            gaps[topic] = "history"
            start[topic] = state.next_offset
        elif offset >= state.next_offset:
            start[topic] = offset
        else:
            start[topic] = offset
            replay[topic] = (offset, state.next_offset)
    return ResumePlan(replay, start, gaps)


def _frame_for(part: Part, records: Sequence[Record], fmt: Format, *, op: str = "events") -> Frame:
    position = {"epoch": part.epoch, "offsets": {part.topic: part.next_offset}}
    data = encode_events(
        match=part.match,
        topic=part.topic,
        position=position,
        records=[rec.raw for rec in records],
        events=[rec.event for rec in records],
        fmt=fmt,
        op=op,
    )
    all_positions = bool(records) and all(rec.is_position for rec in records)
    return Frame(
        data,
        match=part.match,
        topic=part.topic,
        epoch=part.epoch,
        next_offset=part.next_offset,
        events=0 if all_positions else max(1, len(records)),
        positions=records if all_positions else None,
        first_ts=min((rec.ts for rec in records), default=0),
        key=(part.match, part.topic),
    )


def replay_frames(part: Part, subscriber: Subscriber, latest: Mapping[str, Record], *, conflate: bool) -> list[Frame]:
    """Frames replaying ``part`` (a history range) for one subscriber.

    ``conflate`` keeps only the latest position per player, which is all a
    client needs of missed positions.
    """
    records = list(filter_records(subscriber.interest, part.records, latest))
    if conflate:
        newest: dict[Any, Record] = {}
        others: list[Record] = []
        for rec in records:
            if rec.is_position:
                newest[rec.event.get("player")] = rec
            else:
                others.append(rec)
        records = sorted([*others, *newest.values()], key=lambda r: r.offset)
    if not records:
        return []
    frames = []
    for i in range(0, len(records), REPLAY_FRAME_RECORDS):
        chunk = records[i : i + REPLAY_FRAME_RECORDS]
        end = part.next_offset if i + REPLAY_FRAME_RECORDS >= len(records) else chunk[-1].offset + 1
        piece = Part(part.match, part.topic, part.epoch, chunk[0].offset, end, chunk, part.received_ms)
        frames.append(_frame_for(piece, chunk, subscriber.fmt))
    return frames


def snapshot_message(
    match: str, latest: Mapping[str, Record], interest: Interest, fmt: Format, *, reason: str | None
) -> bytes:
    players = {
        player: rec.event for player, rec in latest.items() if passes(interest, rec.event, latest)
    }
    message: dict[str, Any] = {"op": "snapshot", "match": match, "players": players}
    if reason is not None:
        message["reason"] = reason
    return encode_message(message, fmt)


class Channel:
    """One match on one relay: its subscribers and what they have been sent."""

    def __init__(self, match: str, topics: Mapping[str, int], *, delay_ms: int = 0) -> None:
        self.match = match
        #: topic -> partition holding this match.
        self.topics = dict(topics)
        #: player -> latest position record, live and as delayed subscribers see it.
        self.latest: dict[str, Record] = {}
        self.latest_delayed: dict[str, Record] = {}
        self.live: dict[int, Subscriber] = {}
        self.delayed: dict[int, Subscriber] = {}
        #: subscribers replaying history; their live parts wait here.
        self.parked: dict[int, tuple[Subscriber, list[Part]]] = {}
        self.delay_line: DelayLine[Part] = DelayLine(delay_ms)

    def __len__(self) -> int:
        return len(self.live) + len(self.delayed) + len(self.parked)

    def subscriber(self, client: int) -> Subscriber | None:
        return self.live.get(client) or self.delayed.get(client) or (
            self.parked[client][0] if client in self.parked else None
        )

    # -- attaching -----------------------------------------------------------

    def attach_point(self, live: Mapping[str, TopicState], *, delayed: bool) -> dict[str, TopicState]:
        """Where a new subscriber joins: the live point, or the delay line's head."""
        if not delayed:
            return dict(live)
        point = dict(live)
        seen: set[str] = set()
        for part in self.delay_line.pending():
            if part.topic not in seen and part.topic in point:
                seen.add(part.topic)
                state = point[part.topic]
                point[part.topic] = TopicState(state.partition, part.epoch, part.base_offset, state.log_start)
        return point

    def attach(self, sub: Subscriber, plan: ResumePlan, attach: Mapping[str, TopicState]) -> None:
        """Park ``sub`` while its history replays; live parts queue for it."""
        sub.delivered = dict(plan.start)
        sub.epochs = {topic: state.epoch for topic, state in attach.items()}
        self.parked[sub.client] = (sub, [])

    def go_live(self, client: int) -> tuple[Subscriber, list[Part]] | None:
        """End the replay: return the parts that arrived meanwhile, and join the fan-out."""
        entry = self.parked.pop(client, None)
        if entry is None:
            return None
        sub, parts = entry
        (self.delayed if sub.delayed else self.live)[client] = sub
        return sub, parts

    def detach(self, client: int) -> Subscriber | None:
        sub = self.live.pop(client, None) or self.delayed.pop(client, None)
        if sub is None and client in self.parked:
            sub = self.parked.pop(client)[0]
        if not self.delayed and not any(s.delayed for s, _ in self.parked.values()):
            self.delay_line.clear()
        return sub

    # -- data path -----------------------------------------------------------

    def apply(self, part: Part) -> None:
        """Take in a live part: update latest positions, park or delay it."""
        for rec in part.records:
            if rec.is_position:
                player = rec.event.get("player")
                if isinstance(player, str):
                    self.latest[player] = rec
        for sub, parts in self.parked.values():
            if not sub.delayed:
                parts.append(part)
        if self.delayed or any(s.delayed for s, _ in self.parked.values()):
            self.delay_line.push(part, now_ms=part.received_ms)

    def release(self, *, now_ms: float) -> list[Part]:
        """Delayed parts now due; they update the delayed view of positions."""
        due = self.delay_line.due(now_ms=now_ms)
        for part in due:
            for rec in part.records:
                if rec.is_position:
                    player = rec.event.get("player")
                    if isinstance(player, str):
                        self.latest_delayed[player] = rec
            for sub, parts in self.parked.values():
                if sub.delayed:
                    parts.append(part)
        return due

    def fanout(self, part: Part, subscribers: Iterable[Subscriber], *, delayed: bool = False) -> list[tuple[Frame, list[Subscriber]]]:
        """Frames for ``part``: one per distinct ``(interest, format)``, with their subscribers.

        Subscribers already past some of ``part`` (the resume seam) get a
        frame of their own for the rest; the others share.
        """
        latest = self.latest_delayed if delayed else self.latest
        groups: dict[tuple[Interest, Format], list[Subscriber]] = {}
        out: list[tuple[Frame, list[Subscriber]]] = []
        for sub in subscribers:
            if sub.epochs.get(part.topic) != part.epoch:
                done = part.base_offset  # a new epoch: offsets start over
            else:
                done = sub.delivered.get(part.topic, part.base_offset)
            if done >= part.next_offset:
                continue
            sub.epochs[part.topic] = part.epoch
            sub.delivered[part.topic] = part.next_offset
            if done > part.base_offset:
                frame = self._frame(part.after(done), sub.interest, sub.fmt, latest)
                if frame is not None:
                    out.append((frame, [sub]))
                continue
            groups.setdefault((sub.interest, sub.fmt), []).append(sub)
        for (interest, fmt), members in groups.items():
            frame = self._frame(part, interest, fmt, latest)
            if frame is not None:
                out.append((frame, members))
        return out

    @staticmethod
    def _frame(part: Part, interest: Interest, fmt: Format, latest: Mapping[str, Record]) -> Frame | None:
        records = filter_records(interest, part.records, latest)
        if not records:
            return None
        return _frame_for(part, records, fmt)
