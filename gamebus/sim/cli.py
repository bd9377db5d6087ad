"""``gamebus sim``: simulated matches to a file or onto the bus.

Examples::

    gamebus sim --matches 1000 --seed 1 --out train.msgpack --labels train.labels.jsonl
    gamebus sim --matches 10 --bus gamebus://127.0.0.1:7400 --labels labels.jsonl
    gamebus sim --matches 4 --bus gamebus://127.0.0.1:7400 --loop        # the demo

With ``--out`` nothing touches the network and matches are made as fast as
the CPU allows (``--jobs`` processes); with ``--bus`` they are published in
real time at the tick rate, ``--matches`` at once, unless ``--fast``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gamebus.errors import ConfigError
from gamebus.sim.cheats import CHEAT_KINDS, INTENSITIES

if TYPE_CHECKING:
    from gamebus.sim.match import MatchRecording, MatchSimulator

#: Same as gamebus.sim.match.DEFAULT_DURATION_S (pinned by a test), kept here
#: so that `gamebus --help` does not import the simulator.
DEFAULT_DURATION_S = 60.0

__all__ = ["DEFAULT_DURATION_S", "register", "run"]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _cheaters(text: str) -> float | int:
    """``3`` is a count, ``0.1`` a share of the players."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count or a fraction: {text!r}") from None


def parse_kinds(text: str) -> list[str]:
    """``--kinds a,b``: cheat kinds, each one the simulator knows."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    for k in kinds:
        if k not in CHEAT_KINDS:
            raise argparse.ArgumentTypeError(f"unknown cheat kind {k!r}; known: {', '.join(CHEAT_KINDS)}")
    return kinds


def register(subparsers: Any) -> None:
    """Add the ``sim`` subcommand to the ``gamebus`` parser."""
    p = subparsers.add_parser(
        "sim",
        help="simulate matches with labelled cheaters, to a file or onto the bus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--matches", type=int, default=10, help="matches to play (with --loop: at once)")
    p.add_argument("--players", type=int, default=20, help="players per match (default: %(default)s)")
    p.add_argument("--cheaters", type=_cheaters, default=0.1, help="a count (3) or a share (0.1)")
    p.add_argument("--seed", type=int, default=7,
                   help="the same seed plays the same matches (default: %(default)s)")
    p.add_argument("--tick-hz", type=int, default=20,
                   help="position updates per player per second (default: %(default)s)")
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds per match")
    p.add_argument("--kinds", type=parse_kinds, default=None, help=f"comma list of {','.join(CHEAT_KINDS)}")
    p.add_argument("--intensity", choices=INTENSITIES, default=None, help="default: either")
    p.add_argument("--map", dest="map_name", default=None, help="default: one drawn per match")
    p.add_argument("--accounts", type=int, default=0,
                   help="a pool of this many persistent accounts (a multiple of --players) plays "
                        "round after round; --cheaters, --kinds, --intensity then describe the pool "
                        "(default 0: new players every match)")
    p.add_argument("--turn-share", type=float, default=0.0,
                   help="with --accounts: the share (0..1) of cheating accounts that play their "
                        "first 2 to 4 rounds clean and only then start cheating (default 0.0: "
                        "every cheater cheats from its first match)")
    p.add_argument("--bus", default=None, help="publish to this bus, e.g. gamebus://127.0.0.1:7400")
    p.add_argument("--token", default=None, help="producer token for the bus")
    p.add_argument("--out", default=None, help="write events to this msgpack stream file")
    p.add_argument("--labels", default=None, help="write the labels (JSON lines) to this side file")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                      help="pace ticks on the wall clock (default with --bus)")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="as fast as possible (default with --out)")
    p.add_argument("--loop", action="store_true", help="with --bus: restart matches forever")
    p.add_argument("--jobs", type=int, default=1, help="processes for --out --fast (0: one per CPU)")
    p.set_defaults(func=run)


def _sim_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"tick_hz": args.tick_hz, "duration_s": args.duration,
                              "map_name": args.map_name}
    if args.accounts:
        kwargs["league"] = _league(args)
    elif args.turn_share:
        raise ConfigError("--turn-share describes accounts: it needs --accounts N")
    else:
        kwargs.update(players=args.players, cheaters=args.cheaters, cheat_kinds=args.kinds,
                      intensity=args.intensity)
    return kwargs


def _league(args: argparse.Namespace) -> Any:
    from gamebus.sim.accounts import League, sample_accounts

    share = args.cheaters / args.accounts if isinstance(args.cheaters, int) else args.cheaters
    pool = sample_accounts(seed=args.seed, n=args.accounts, cheaters=min(share, 1.0),
                           cheat_kinds=args.kinds, intensity=args.intensity,
                           turn_share=args.turn_share)
    return League(args.seed, tuple(pool), args.players)


def run(args: argparse.Namespace) -> int:
    if args.bus is None and args.out is None:
        raise ConfigError("give --out FILE (no network) or --bus URL (publish)")
    if args.loop and args.bus is None:
        raise ConfigError("--loop needs --bus")
    if args.matches < 1:
        raise ConfigError("--matches must be at least 1")
    if args.bus is not None:
        return asyncio.run(_publish(args))
    return _to_file(args)


def _to_file(args: argparse.Namespace) -> int:
    from gamebus.sim.batch import simulate_encoded
    from gamebus.sim.io import EventWriter, LabelWriter

    kwargs = _sim_kwargs(args)
    labels = LabelWriter(args.labels) if args.labels else None
    t0 = time.perf_counter()
    n_events = 0
    try:
        with EventWriter(args.out) as out:
            if args.realtime:
                for rec in _paced(args, kwargs):
                    out.write(rec.events)
                    n_events += len(rec.events)
                    if labels is not None:
                        labels.write(rec.side_record())
            else:
                for record, data, count in simulate_encoded(args.seed, args.matches,
                                                            workers=args.jobs, **kwargs):
                    out.write_encoded(data, count)
                    n_events += count
                    if labels is not None:
                        labels.write(record)
    finally:
        if labels is not None:
            labels.close()
    dt = time.perf_counter() - t0
    print(
        f"gamebus sim: {args.matches} matches, {n_events} events to {args.out} in {dt:.1f}s "
        f"({args.matches / dt:.2f} matches/s)",
        file=sys.stderr,
    )
    return 0


def _paced(args: argparse.Namespace, kwargs: dict[str, Any]) -> Iterator[MatchRecording]:
    """--out --realtime: each match in turn, written tick by tick at wall-clock pace."""
    from gamebus.sim.batch import match_id_for, match_simulator

    for i in range(args.matches):
        start = int(time.time() * 1000)
        sim = match_simulator(args.seed, i, kwargs, match_id=match_id_for(args.seed, i), start_ts_ms=start)
        events: list[dict[str, Any]] = []
        for ts, evs in sim.ticks():
            delay = (ts - start) / 1000.0 - (time.time() - start / 1000.0)
            if delay > 0:
                time.sleep(delay)
            events.extend(evs)
        yield sim.recording(events)


async def _publish(args: argparse.Namespace) -> int:
    from gamebus.client import Producer  # the SDK is only needed to publish
    from gamebus.sim.batch import match_id_for, match_simulator
    from gamebus.sim.io import LabelWriter
    from gamebus.sim.publish import publish_matches

    kwargs = _sim_kwargs(args)
    realtime = True if args.realtime is None else args.realtime
    labels = LabelWriter(args.labels, append=args.loop) if args.labels else None

    # Ids on a live bus must not repeat across runs (a broker keeps history,
    # and consumers key state by match id): the run's start time goes in.
    run = _base36(int(time.time()))

    def factory(index: int, start_ts_ms: int) -> MatchSimulator:
        # In a loop every restart gets a new seed and id, so matches never repeat.
        return match_simulator(args.seed, index, kwargs, start_ts_ms=start_ts_ms,
                               match_id=match_id_for(args.seed, index, prefix=f"m{run}-"))

    def on_start(sim: MatchSimulator) -> None:
        print(f"gamebus sim: match {sim.match_id} on {sim.map_name}, "
              f"{len(sim.labels)} cheaters", file=sys.stderr)
        if labels is not None:
            labels.write(sim.side_record())

    t0 = time.perf_counter()
    try:
        async with Producer(args.bus, token=args.token) as producer:
            stats = await publish_matches(
                producer, factory, concurrent=args.matches,
                total=None if args.loop else args.matches, realtime=realtime, on_start=on_start,
                # A league's next round waits for the last match of this one.
                round_size=kwargs["league"].lobbies if "league" in kwargs else None,
            )
    finally:
        if labels is not None:
            labels.close()
    print(
        f"gamebus sim: {stats.matches} matches, {stats.positions} positions and "
        f"{stats.match_events} match events in {time.perf_counter() - t0:.1f}s "
        f"(worst tick lag {stats.max_lag_ms:.0f} ms)",
        file=sys.stderr,
    )
    return 0
