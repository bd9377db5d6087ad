"""The relay's pure cores: channels and resume, interest, backpressure, tokens, delay, limits."""

from __future__ import annotations

import msgpack
import pytest

from gamebus.events import decode_event, encode_event, match_event, position
from relay.backpressure import Frame, PositionsFlush, QueueConfig, SendQueue, TooSlow
from relay.channels import Channel, Part, Subscriber, TopicState, plan_resume, replay_frames
from relay.delay import DelayLine
from relay.interest import EVERYTHING, Interest, filter_records
from relay.limits import ConnectionCounter, TokenBucket
from relay.protocol import Area, Follow, Resume
from relay.records import Record
from relay.tokens import TokenError, issue_token, token_from_request, verify_token

EV, POS = "game.events", "game.positions"


def rec(offset: int, event: dict) -> Record:  # type: ignore[type-arg]
    raw = encode_event(event)
    return Record(offset, raw, decode_event(raw))


def p(offset: int, player: str, x: float, y: float) -> Record:
    return rec(offset, position(match="m", player=player, x=x, y=y, z=0, yaw=0, pitch=0, ts=offset))


def k(offset: int) -> Record:
    return rec(offset, match_event("kill", match="m", ts=offset, player="a", target="b", weapon="w", headshot=False))


# -- resume planning ----------------------------------------------------------

ATTACH = {EV: TopicState(3, epoch=2, next_offset=100, log_start=10), POS: TopicState(1, epoch=2, next_offset=500)}


def resume(ev: int, pos: int | None = None, epoch: int = 2) -> Resume:
    offsets = ((EV, ev),) if pos is None else ((EV, ev), (POS, pos))
    return Resume(offsets, tuple((t, epoch) for t, _ in offsets))


def test_no_resume_starts_live_with_nothing_to_replay() -> None:
    plan = plan_resume(None, ATTACH)
    assert (plan.replay, plan.start, plan.gaps) == ({}, {EV: 100, POS: 500}, {})


def test_resume_replays_exactly_up_to_the_live_point() -> None:
    plan = plan_resume(resume(40, 450), ATTACH)
    assert plan.replay == {EV: (40, 100), POS: (450, 500)} and plan.gaps == {}


def test_resume_in_another_epoch_or_before_the_log_start_is_a_gap() -> None:
    assert plan_resume(resume(40, epoch=1), ATTACH).gaps == {EV: "epoch"}
    plan = plan_resume(resume(5), ATTACH)
    assert plan.gaps == {EV: "history"} and plan.start[EV] == 100 and EV not in plan.replay


def test_resume_ahead_of_this_relay_starts_there_and_replays_nothing() -> None:
    plan = plan_resume(resume(130), ATTACH)
    assert plan.replay == {} and plan.start[EV] == 130


# -- fan-out ------------------------------------------------------------------


def part(topic: str, base: int, records: list[Record], end: int | None = None) -> Part:
    return Part("m", topic, 2, base, end if end is not None else base + len(records), records)


def test_fanout_encodes_one_frame_per_distinct_filter_and_format() -> None:
    ch = Channel("m", {EV: 3, POS: 1})
    area = Interest(Area(0, 0, 5))
    subs = [Subscriber(i, "msgpack") for i in range(3)] + [Subscriber(3, "json"), Subscriber(4, "msgpack", area), Subscriber(5, "msgpack", area)]
    for s in subs:
        s.delivered, s.epochs = {POS: 0}, {POS: 2}
    pt = part(POS, 0, [p(0, "a", 1, 1), p(1, "b", 50, 50)])
    ch.apply(pt)
    out = ch.fanout(pt, subs)
    assert sorted(len(members) for _, members in out) == [1, 2, 3]
    framed = {tuple(s.client for s in members): msgpack.unpackb(f.data) if members[0].fmt == "msgpack" else None for f, members in out}
    assert [e["player"] for e in framed[(4, 5)]["events"]] == ["a"]
    assert [e["player"] for e in framed[(0, 1, 2)]["events"]] == ["a", "b"]
    assert all(s.delivered[POS] == 2 for s in subs)


def test_fanout_trims_what_a_subscriber_already_has_and_skips_what_it_has_all_of() -> None:
    ch = Channel("m", {EV: 3})
    fresh, seam, ahead = Subscriber(1, "msgpack"), Subscriber(2, "msgpack"), Subscriber(3, "msgpack")
    fresh.delivered, seam.delivered, ahead.delivered = {EV: 10}, {EV: 12}, {EV: 20}
    for s in (fresh, seam, ahead):
        s.epochs = {EV: 2}
    pt = part(EV, 10, [k(10), k(11), k(12), k(13)])
    out = ch.fanout(pt, [fresh, seam, ahead])
    by_client = {members[0].client: f for f, members in out}
    assert set(by_client) == {1, 2}
    assert [e["ts"] for e in msgpack.unpackb(by_client[2].data)["events"]] == [12, 13]
    assert (fresh.delivered[EV], seam.delivered[EV], ahead.delivered[EV]) == (14, 14, 20)


def test_a_new_epoch_resets_what_subscribers_were_handed() -> None:
    ch = Channel("m", {EV: 3})
    sub = Subscriber(1, "msgpack", delivered={EV: 50}, epochs={EV: 1})
    out = ch.fanout(part(EV, 0, [k(0)]), [sub])
    assert len(out) == 1 and sub.delivered[EV] == 1 and sub.epochs[EV] == 2


def test_parked_subscribers_collect_live_parts_until_they_go_live() -> None:
    ch = Channel("m", {EV: 3})
    sub = Subscriber(7, "msgpack")
    plan = plan_resume(resume(5), {EV: TopicState(3, 2, 8)})
    ch.attach(sub, plan, {EV: TopicState(3, 2, 8)})
    pt = part(EV, 8, [k(8)])
    ch.apply(pt)
    assert ch.fanout(pt, ch.live.values()) == []
    live = ch.go_live(7)
    assert live is not None and live[1] == [pt] and 7 in ch.live


def test_replay_conflates_positions_to_the_latest_per_player() -> None:
    sub = Subscriber(1, "msgpack")
    pt = part(POS, 0, [p(0, "a", 0, 0), p(1, "b", 0, 0), p(2, "a", 1, 1)])
    frames = replay_frames(pt, sub, {}, conflate=True)
    assert len(frames) == 1 and frames[0].next_offset == 3
    assert [(e["player"], e["x"]) for e in msgpack.unpackb(frames[0].data)["events"]] == [("b", 0), ("a", 1)]
    assert len(replay_frames(pt, sub, {}, conflate=False)[0].positions or []) == 3


def test_spectators_attach_at_the_head_of_the_delay_line() -> None:
    ch = Channel("m", {EV: 3}, delay_ms=1000)
    ch.delayed[9] = Subscriber(9, "msgpack", delayed=True)
    ch.apply(Part("m", EV, 2, 40, 42, [k(40), k(41)], received_ms=0))
    point = ch.attach_point({EV: TopicState(3, 2, 42)}, delayed=True)
    assert point[EV].next_offset == 40
    assert ch.release(now_ms=999) == [] and len(ch.release(now_ms=1000)) == 1


# -- interest -----------------------------------------------------------------


def test_area_and_follow_filter_positions_only() -> None:
    records = [p(0, "a", 3, 4), p(1, "b", 3.1, 4), k(2), p(3, "c", 100, 100)]
    latest = {"c": records[3]}
    assert filter_records(EVERYTHING, records, latest) is records
    assert [r.offset for r in filter_records(Interest(Area(0, 0, 5)), records, latest)] == [0, 2]
    assert [r.offset for r in filter_records(Interest(follow=Follow("c")), records, latest)] == [2, 3]
    assert [r.offset for r in filter_records(Interest(follow=Follow("c", r=200)), records, latest)] == [0, 1, 2, 3]


# -- backpressure -------------------------------------------------------------


def test_fast_clients_write_directly_and_slow_ones_conflate_then_overflow() -> None:
    q = SendQueue(QueueConfig(high_water_bytes=100, max_queued_events=3, max_queued_bytes=10_000))
    kill_frame = Frame(b"k" * 10, match="m", topic=EV, events=1)
    assert q.admit(kill_frame, buffered_bytes=100) is True and q.empty
    assert q.admit(kill_frame, buffered_bytes=101) is False
    for i in range(5):
        q.admit(Frame(b"p", match="m", topic=POS, next_offset=i + 1, events=0, positions=[p(i, "a", i, 0)]), 0)
    assert q.conflated == 4 and len(q) == 2
    assert q.admit(kill_frame, 0) is False  # queue not empty: order kept
    q.admit(kill_frame, 0)
    with pytest.raises(TooSlow):
        q.admit(kill_frame, 0)
    assert q.pop() == kill_frame
    for _ in range(3):
        q.pop()
    flush = q.pop()
    assert isinstance(flush, PositionsFlush) and flush.next_offset == 5 and flush.latest["a"].event["x"] == 4
    assert q.pop() is None


def test_dropping_a_match_forgets_its_queue() -> None:
    q = SendQueue()
    q.push(Frame(b"x", match="m", topic=EV))
    q.push(Frame(b"y", match="n", topic=EV))
    q.drop_match("m")
    assert len(q) == 1 and q.queued_events == 1


# -- tokens, delay, limits ----------------------------------------------------


def test_tokens_verify_with_the_clock_as_an_argument() -> None:
    tok = issue_token(key="k" * 32, sub="u", role="spectator", matches=["m1"], now=1000, ttl_s=60)
    claims = verify_token(tok, key="k" * 32, now=1059)
    assert claims.may_watch("m1") and not claims.may_watch("m2") and not claims.may_read_alerts
    with pytest.raises(TokenError) as info:
        verify_token(tok, key="k" * 32, now=1060)
    assert info.value.close_code == 4002
    for bad in (None, "", "x.y.z", tok + "x"):
        with pytest.raises(TokenError) as info:
            verify_token(bad, key="k" * 32, now=1000)
        assert info.value.close_code == 4001
    star = issue_token(key="k" * 32, sub="a", role="analyst", matches="*", now=1000)
    assert verify_token(star, key="k" * 32, now=1000).matches is None


def test_unknown_roles_and_bad_match_lists_are_invalid() -> None:
    import jwt

    for claims in ({"sub": "u", "role": "admin", "exp": 2000}, {"sub": "u", "role": "player", "exp": 2000, "matches": 5}):
        with pytest.raises(TokenError) as info:
            verify_token(jwt.encode(claims, "k" * 32), key="k" * 32, now=1000)
        assert info.value.close_code == 4001


def test_token_comes_from_the_bearer_header_or_the_query() -> None:
    assert token_from_request("token=abc&x=1", None) == "abc"
    assert token_from_request("token=abc", "Bearer xyz") == "xyz"
    assert token_from_request("", None) is None


def test_delay_line_releases_in_order_when_due() -> None:
    line: DelayLine[str] = DelayLine(100)
    line.push("a", now_ms=0)
    line.push("b", now_ms=50)
    assert line.due(now_ms=99) == [] and line.next_due_ms() == 100
    assert line.due(now_ms=150) == ["a", "b"] and len(line) == 0


def test_token_bucket_and_connection_counter() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=2, now=0)
    assert [bucket.take(now=0) for _ in range(3)] == [True, True, False]
    assert bucket.take(now=0.5) is True and bucket.take(now=0.5) is False
    counter = ConnectionCounter(max_total=3, max_per_peer=2)
    assert [counter.try_open("a"), counter.try_open("a"), counter.try_open("a"), counter.try_open("b")] == [True, True, False, True]
    assert counter.try_open("c") is False
    counter.close("a")
    assert counter.try_open("c") is True
