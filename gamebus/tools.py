"""Command-line tools around a broker: ``topics``, ``produce``, ``consume``.

    gamebus topics create NAME --partitions 8 [--config retention_ms=60000]
    gamebus topics list
    gamebus topics describe NAME
    gamebus produce TOPIC [--acks durable] < events.jsonl       # one JSON event per line
    gamebus consume TOPIC [TOPIC...] [--from earliest|latest|[TOPIC/]PARTITION:EPOCH:OFFSET ...]
                          [--group G] [--max N] [--idle-timeout S] [--meta]  # JSON lines

``--url`` defaults to ``$GAMEBUS_URL`` or ``gamebus://127.0.0.1:7400`` and
``--token`` to ``$GAMEBUS_TOKEN``. Errors are one line on stderr and exit
code 1 (see :mod:`gamebus.cli`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from typing import Any

from gamebus.errors import ConfigError, InvalidEvent, LimitExceeded

__all__ = ["register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("GAMEBUS_URL", "gamebus://127.0.0.1:7400"),
                   help="bus URL, gamebus:// or nats:// (default: $GAMEBUS_URL or %(default)s)")
    p.add_argument("--token", default=os.environ.get("GAMEBUS_TOKEN"),
                   help="token for the bus (default: $GAMEBUS_TOKEN)")


def register(subparsers: Any) -> None:
    topics = subparsers.add_parser("topics", help="create, list and describe topics")
    tsub = topics.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = tsub.add_parser("create", help="create a topic")
    create.add_argument("name")
    create.add_argument("--partitions", type=int, default=8, help="partitions (default: %(default)s)")
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="topic setting, e.g. retention_ms=60000 (repeatable)")
    list_ = tsub.add_parser("list", help="list topics with partition counts")
    describe = tsub.add_parser("describe", help="partitions, offsets and epochs of a topic")
    describe.add_argument("name")
    for p in (create, list_, describe):
        _common(p)
        p.set_defaults(func=_topics)

    produce = subparsers.add_parser("produce", help="publish JSON lines from stdin")
    produce.add_argument("topic")
    produce.add_argument("--acks", choices=("none", "memory", "durable"), default=None,
                         help="wait for nothing, the broker's memory, or the disk "
                              "(default: durable for match events, alerts and history, memory for the rest)")
    produce.add_argument("--key", default=None, help="key for every event (default: its match)")
    produce.add_argument("--no-validate", action="store_true", help="send events unchecked")
    _common(produce)
    produce.set_defaults(func=_produce)

    consume = subparsers.add_parser("consume", help="print events as JSON lines")
    consume.add_argument("topics", nargs="+")
    consume.add_argument("--from", dest="start", action="append", default=None,
                         metavar="POSITION",
                         help="earliest, latest (the default), or [TOPIC/]PARTITION:EPOCH:OFFSET "
                              "(repeatable, one per partition; unlisted partitions start at "
                              "latest; EPOCH:OFFSET alone means partition 0)")
    consume.add_argument("--group", default=None, help="consume as a member of this group")
    consume.add_argument("--max", type=int, default=None, help="stop after N events")
    consume.add_argument("--idle-timeout", type=float, default=None,
                         help="stop after S seconds without an event")
    consume.add_argument("--meta", action="store_true",
                         help="wrap each event with topic, partition, offset and epoch")
    _common(consume)
    consume.set_defaults(func=_consume)


def _run(coro: Any) -> int:
    return int(asyncio.run(coro) or 0)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _topics(args: argparse.Namespace) -> int:
    return _run(_topics_async(args))


async def _topics_async(args: argparse.Namespace) -> int:
    from gamebus.client import connect

    bus = await connect(args.url, args.token)
    try:
        if args.topics_command == "create":
            config: dict[str, Any] = {}
            for item in args.config:
                key, sep, value = item.partition("=")
                if not sep:
                    raise ConfigError(f"--config expects KEY=VALUE, got {item!r}")
                config[key] = _parse_value(value)
            await bus.create_topic(args.name, partitions=args.partitions, **config)
            print(json.dumps({"created": args.name, "partitions": args.partitions}))
        elif args.topics_command == "list":
            counts: dict[str, int] = {}
            for info in await bus.metadata():
                counts[info.topic] = counts.get(info.topic, 0) + 1
            for name in sorted(counts):
                print(json.dumps({"topic": name, "partitions": counts[name]}))
        else:
            for info in await bus.metadata(args.name):
                print(json.dumps({
                    "topic": info.topic, "partition": info.partition, "epoch": info.epoch,
                    "log_start": info.log_start, "log_end": info.log_end,
                    "durable_end": info.durable_end, **info.extra,
                }))  # fmt: skip
    finally:
        await bus.close()
    return 0


def _produce(args: argparse.Namespace) -> int:
    return _run(_produce_async(args))


async def _produce_async(args: argparse.Namespace) -> int:
    from gamebus.client import Producer

    count = 0
    async with Producer(args.url, token=args.token, validate=not args.no_validate) as producer:
        for lineno, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidEvent(f"line {lineno}", f"not JSON: {exc.msg}") from None
            if not isinstance(event, dict):
                raise InvalidEvent(f"line {lineno}", "expected a JSON object")
            try:
                try:
                    producer.send_nowait(args.topic, event, key=args.key, acks=args.acks)
                except LimitExceeded:  # buffer full: wait for the broker, then go on
                    await producer.flush()
                    producer.send_nowait(args.topic, event, key=args.key, acks=args.acks)
            except InvalidEvent as exc:
                raise InvalidEvent(f"line {lineno}: {exc.field}", exc.reason) from None
            count += 1
    print(f"produced {count} events to {args.topic}", file=sys.stderr)
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def parse_start(texts: list[str] | None, topics: list[str]) -> Any:
    """Turn the ``--from`` values into a :class:`~gamebus.client.Consumer` start.

    ``--meta`` prints each event's partition, epoch and offset, so an analyst
    can resume exactly where a previous run stopped, partition by partition:
    ``--from 3:2:1041 --from 5:2:998``. A position without a topic applies to
    every topic consumed; ``EPOCH:OFFSET`` alone is partition 0, for
    single-partition topics.

    >>> parse_start(["game.events/3:2:1041"], ["game.events"])
    {('game.events', 3): Position(epoch=2, offset=1041)}
    """
    from gamebus.engines.base import Position

    texts = texts or ["latest"]
    if len(texts) == 1 and texts[0] in ("earliest", "latest"):
        return texts[0]
    start: dict[tuple[str, int], Position] = {}
    for text in texts:
        topic, slash, rest = text.rpartition("/")
        fields = rest.split(":")
        if len(fields) == 2:
            fields.insert(0, "0")
        if (len(fields) != 3 or not all(f.isdigit() for f in fields)
                or (slash and topic not in topics)):  # fmt: skip
            raise ConfigError(
                f"--from expects earliest, latest or [TOPIC/]PARTITION:EPOCH:OFFSET with a "
                f"consumed topic, not {text!r}"
            )
        partition, epoch, offset = (int(f) for f in fields)
        for t in [topic] if slash else topics:
            if (t, partition) in start:
                raise ConfigError(f"--from names {t}/{partition} twice")
            start[(t, partition)] = Position(epoch, offset)
    return start


def _consume(args: argparse.Namespace) -> int:
    return _run(_consume_async(args))


async def _consume_async(args: argparse.Namespace) -> int:
    from gamebus.client import Consumer, Message
    from gamebus.errors import GamebusError

    start = parse_start(args.start, args.topics)
    seen = 0
    async with Consumer(args.url, args.topics, token=args.token, group=args.group,
                        start=start) as consumer:  # fmt: skip
        iterator = consumer.__aiter__()
        while args.max is None or seen < args.max:
            try:
                message: Message = await asyncio.wait_for(iterator.__anext__(), args.idle_timeout)
            except (TimeoutError, StopAsyncIteration):
                break
            try:
                event: Any = message.event()
            except GamebusError as exc:
                print(f"skipping malformed event at {message.topic}/{message.partition}"
                      f"@{message.offset}: {exc}", file=sys.stderr)  # fmt: skip
                continue
            if args.meta:
                event = {"topic": message.topic, "partition": message.partition,
                         "offset": message.offset, "epoch": message.epoch, "event": event}  # fmt: skip
            sys.stdout.write(json.dumps(_jsonable(event)) + "\n")
            sys.stdout.flush()
            seen += 1
    return 0
