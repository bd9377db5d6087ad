"""``gamebus anticheat ...``: train, evaluate, run, explain, review, accounts, rescore.

Handlers import scikit-learn, matplotlib and the bus lazily so that
``gamebus --help`` stays fast; each returns an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from anticheat.review import review_queue
from gamebus.errors import ConfigError

__all__ = ["register"]

DEFAULT_MODEL = "models/anticheat.skops"
#: Seconds per simulated match for training and evaluation: two minutes give
#: a closet cheater's toggled-on stretch, and a subtle aimbot, enough shots
#: to be told from a good player at a 1% false-positive rate (60 s did not).
MATCH_S = 120.0
_MODEL_HELP = "a model saved by 'gamebus anticheat train' (default: %(default)s)"
_BUS_HELP = "gamebus://host:port or nats://host:port"


def register(subparsers: Any) -> None:
    ac = subparsers.add_parser("anticheat", help="anti-cheat: train, evaluate, pool, run, explain, review, accounts, rescore")
    sub = ac.add_subparsers(dest="anticheat_command", metavar="ACTION")
    ac.set_defaults(func=lambda _a: (ac.print_help(), 2)[1])

    p = sub.add_parser("train", help="train a model on simulated matches")
    _simulation_options(p, matches=1000, matches_help="matches to simulate; the last quarter sets the threshold",
                        seed=1, seed_help="simulation seed; evaluate on another one")
    p.add_argument("--out", type=Path, default=Path("models"),
                   help="directory for the versioned .skops model and anticheat.skops (default: %(default)s)")
    p.add_argument("--target-fpr", type=float, default=0.01,
                   help="false-positive rate the alert threshold is chosen for, on clean held-out "
                        "players (default: %(default)s)")
    p.add_argument("--season-accounts", type=int, default=1000,
                   help="also fit the per-account baseline on a season of this many accounts "
                        "(5 matches each; a multiple of --players; 0: no baseline)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate a model on held-out simulated matches")
    p.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL), help=_MODEL_HELP)
    _simulation_options(p, matches=300, matches_help="held-out matches to simulate",
                        seed=99, seed_help="simulation seed, other than the training one")
    p.add_argument("--out", type=Path, default=Path("models/report"),
                   help="directory for report.md, roc.png, recall_by_kind.png and players.csv "
                        "(default: %(default)s)")
    p.add_argument("--accounts", type=int, default=0,
                   help="play a season of this many persistent accounts (a multiple of --players) "
                        "instead of a fresh lobby per match, and report accounts across matches")
    p.add_argument("--kinds", type=_kinds, default=None,
                   help="comma list of cheat kinds to play (default: all), e.g. humanised_aimbot")
    p.add_argument("--turn-share", type=float, default=0.0,
                   help="with --accounts: share of cheating accounts that play 2-4 clean matches "
                        "before their cheat goes on; reports the per-account baseline too")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("pool", help="read several evaluations' players.csv as one held-out set, "
                                    "with 95%% intervals from resampled matches")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="evaluate --out directories (or their players.csv files)")
    p.add_argument("--fpr", type=float, default=0.01,
                   help="false-positive rate recall is read at (default: %(default)s)")
    p.add_argument("--resamples", type=int, default=200,
                   help="bootstrap resamplings of whole matches (default: %(default)s)")
    p.set_defaults(func=_pool)

    p = sub.add_parser("run", help="score the bus live as a member of a consumer group")
    p.add_argument("--bus", required=True, help=_BUS_HELP)
    p.add_argument("--group", default="anticheat",
                   help="consumer group; workers in one group share the partitions (default: %(default)s)")
    p.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL), help=_MODEL_HELP)
    p.add_argument("--token", default=None, help="token for the bus, when it asks for one")
    p.add_argument("--score-interval-ms", type=int, default=None,
                   help="match time between scores (default: 15000, the cadence the model's "
                        "cut-offs were chosen on)")
    p.add_argument("--start", choices=("earliest", "latest"), default="latest",
                   help="where to start a partition the group never committed")
    p.set_defaults(func=_run)

    p = sub.add_parser("explain", help="why a player was scored: features vs population, timeline PNG")
    p.add_argument("--match", required=True, help="match id, as in the alert")
    p.add_argument("--player", required=True, help="player id, as in the alert")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bus", help="read the match from the bus's history")
    src.add_argument("--events", type=Path, help="read the match from a msgpack events file")
    p.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL), help=_MODEL_HELP)
    p.add_argument("--out", type=Path, default=Path("reports/explain"),
                   help="directory for the timeline PNG (default: %(default)s)")
    p.set_defaults(func=_explain)

    p = sub.add_parser("review", help="ranked queue of flagged players from the alerts topic")
    p.add_argument("--bus", required=True, help=_BUS_HELP)
    p.add_argument("--limit", type=int, default=25, help="players in the queue (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_review)

    p = sub.add_parser("accounts", help="players ranked by their evidence across matches, "
                                          "from the scores topic")
    p.add_argument("--bus", required=True, help=_BUS_HELP)
    p.add_argument("--limit", type=int, default=25, help="players listed (default: %(default)s)")
    p.add_argument("--min-matches", type=int, default=1, help="only players with this many scored matches")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_accounts)

    p = sub.add_parser("rescore", help="re-read a past match from the bus and score it again")
    p.add_argument("--bus", required=True, help=_BUS_HELP)
    p.add_argument("--match", required=True, help="match id to read again from the bus's history")
    p.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL), help=_MODEL_HELP)
    p.add_argument("--publish", action="store_true", help="publish the new scores and alerts")
    p.set_defaults(func=_rescore)


def _simulation_options(p: argparse.ArgumentParser, *, matches: int, matches_help: str, seed: int,
                        seed_help: str) -> None:
    """The simulated matches train and evaluate both play: how many, from which seed, of what."""
    p.add_argument("--matches", type=int, default=matches, help=f"{matches_help} (default: %(default)s)")
    p.add_argument("--seed", type=int, default=seed, help=f"{seed_help} (default: %(default)s)")
    p.add_argument("--players", type=int, default=20, help="players per match (default: %(default)s)")
    p.add_argument("--cheaters", type=float, default=0.2,
                   help="share of cheaters per match (default: %(default)s)")
    p.add_argument("--duration", type=float, default=MATCH_S,
                   help="seconds per simulated match (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2,
                   help="processes simulating and replaying matches (default: %(default)s)")


def _kinds(text: str) -> list[str]:
    from gamebus.sim.cli import parse_kinds

    return parse_kinds(text)


def _progress(label: str) -> Any:
    t0 = time.monotonic()

    step = [0]

    def report(done: int, total: int) -> None:
        if done == total or done * 20 // max(total, 1) > step[0]:
            step[0] = done * 20 // max(total, 1)
            print(f"  {label}: {done}/{total} matches ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr, flush=True)

    return report


def _train(args: argparse.Namespace) -> int:
    from anticheat import model, train

    t0 = time.monotonic()
    bundle, records = train.fit_bundle(
        matches=args.matches, seed=args.seed, players=args.players, cheaters=args.cheaters,
        target_fpr=args.target_fpr, workers=args.workers, progress=_progress("simulate"),
        duration_s=args.duration, season_accounts=args.season_accounts,
    )
    out = Path(args.out)
    versioned = model.save(bundle, out / f"anticheat-{bundle.version}.skops")
    model.save(bundle, out / "anticheat.skops")
    print(f"model {bundle.version}: {len(records)} player-matches, threshold "
          f"{bundle.policy.threshold:.4f} at measured FPR {bundle.policy.fpr:.2%} "
          f"({time.monotonic() - t0:.0f}s)")
    print(f"saved {versioned} and {out / 'anticheat.skops'}")
    return 0


def _season(args: argparse.Namespace) -> tuple[list[Any], int]:
    """Rosters of ``args.accounts`` accounts for ``args.matches`` matches, and the rounds."""
    from gamebus.sim.accounts import sample_accounts, season_rosters

    slots = args.matches * args.players
    if args.accounts % args.players or slots % args.accounts:
        raise ConfigError(
            f"--accounts {args.accounts} must be a multiple of --players {args.players} and "
            f"divide --matches x --players ({slots}), so that every account plays every round")
    rounds = slots // args.accounts
    pool = sample_accounts(seed=args.seed, n=args.accounts, cheaters=args.cheaters,
                           turn_share=args.turn_share, cheat_kinds=args.kinds)
    return season_rosters(seed=args.seed + 1, accounts=pool, players=args.players,
                          rounds=rounds), rounds


def _evaluate(args: argparse.Namespace) -> int:
    from anticheat import evaluate, model
    from anticheat.dataset import build_records, reshrink

    rosters, rounds = _season(args) if args.accounts else (None, 0)
    bundle = model.load(args.model)
    base = args.seed * 100_000
    records = build_records(range(base, base + args.matches), players=args.players,
                            cheaters=args.cheaters, workers=args.workers,
                            progress=_progress("simulate"), duration_s=args.duration,
                            rosters=rosters, cheat_kinds=args.kinds)
    if bundle.priors:
        reshrink(records, bundle.priors)
    report, scores = evaluate.evaluate_records(bundle, records)
    flags = ["--model", str(args.model), "--matches", str(args.matches),
             "--seed", str(args.seed), "--duration", f"{args.duration:g}"]
    accounts_md = ""
    if args.kinds:
        flags += ["--kinds", ",".join(args.kinds)]
    if rosters is not None:
        flags += ["--accounts", str(args.accounts)]
        steps = sorted({k for k in (1, 2, 3, 5, 10, rounds) if k <= rounds})
        honest, rows = evaluate.evaluate_accounts(records, scores, steps=steps)
        accounts_md = evaluate.account_markdown(honest, rows)
        if args.turn_share:
            flags += ["--turn-share", f"{args.turn_share:g}"]
            baseline = evaluate.evaluate_baseline(bundle, records, scores,
                                                  lobbies=args.accounts // args.players)
            accounts_md += "\n" + evaluate.baseline_markdown(baseline)
    command = "gamebus anticheat evaluate " + " ".join(shlex.quote(a) for a in flags)
    path = evaluate.write_report(report, records, scores, args.out, command=command,
                                 appendix=accounts_md)
    print(evaluate.markdown(report, command=command))
    if accounts_md:
        print(accounts_md)
    print(f"report: {path}  plots: {args.out / 'roc.png'}, {args.out / 'recall_by_kind.png'}"
          f"  players: {args.out / 'players.csv'}")
    return 0


def _pool(args: argparse.Namespace) -> int:
    from anticheat.pool import pool, pool_markdown, read_players

    runs = [read_players(path) for path in args.runs]
    result = pool(runs, fpr=args.fpr, resamples=args.resamples)
    honest = sum(r.group == "clean" for rows in runs for r in rows)
    matches = sum(len({r.match for r in rows}) for rows in runs)
    names = [path.name if path.is_dir() else path.parent.name for path in args.runs]
    print(pool_markdown(result, names, honest=honest, matches=matches, fpr=args.fpr,
                        resamples=args.resamples), end="")
    return 0


def _run(args: argparse.Namespace) -> int:
    import logging
    import signal

    from anticheat import model
    from anticheat.consumer import AnticheatService
    from anticheat.service import CoreConfig
    from gamebus.engines import connect

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bundle = model.load(args.model)

    async def main() -> None:
        bus = await connect(args.bus, token=args.token) if args.token else await connect(args.bus)
        service = AnticheatService(bus, bundle, group=args.group, start=args.start,
                                   config=CoreConfig() if args.score_interval_ms is None
                                   else CoreConfig(score_interval_ms=args.score_interval_ms))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop)
        print(f"anticheat: model {bundle.version} (threshold {bundle.policy.threshold:.4f}, "
              f"FPR {bundle.policy.fpr:.2%}) on {args.bus} group {args.group}", flush=True)
        try:
            await service.run()
        finally:
            print(f"anticheat: stopped; counters {service.counters}", flush=True)
            await bus.close()

    asyncio.run(main())
    return 0


async def _load_match(args: argparse.Namespace) -> list[tuple[dict[str, Any], Any]]:
    from anticheat.history import read_events_file, read_match

    if getattr(args, "events", None):
        return read_events_file(args.events, args.match)
    from gamebus.engines import connect

    bus = await connect(args.bus)
    try:
        return await read_match(bus, args.match)
    finally:
        await bus.close()


def _score_match(bundle: Any, events: list[tuple[dict[str, Any], Any]],
                 history: Iterable[Mapping[str, Any]] = ()) -> tuple[Any, list[dict[str, Any]]]:
    """Score one match's events; ``history`` records (``anticheat.history``) seed the accounts' baseline."""
    from anticheat.service import ScoringCore
    from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC

    core = ScoringCore(bundle)
    for record in history:
        core.remember(record)
    out: list[dict[str, Any]] = []
    for event, ref in events:
        # Bus offsets are evidence; positions in a file are not (and are no source to order by).
        on_bus = isinstance(ref, tuple) and len(ref) == 3 and ref[0] in (POSITIONS_TOPIC, EVENTS_TOPIC)
        out += core.feed(event, ref if on_bus else None)
    out += core.flush()
    return core, out


def _rescore(args: argparse.Namespace) -> int:
    from anticheat import model

    bundle = model.load(args.model)
    events = asyncio.run(_load_match(args))
    if not events:
        print(f"no events of match {args.match} in the bus's history", file=sys.stderr)
        return 1
    history = _history_records_before(args.bus, events, args.match) if bundle.baseline is not None else []
    core, out = _score_match(bundle, events, history)
    best = core.best_scores(args.match)
    print(f"match {args.match}: {len(events)} events re-scored with {bundle.version} "
          f"(threshold {bundle.policy.threshold:.4f}, FPR {bundle.policy.fpr:.2%})")
    for player, score in sorted(best.items(), key=lambda kv: -kv[1]):
        verdict = bundle.policy.classify(score)
        print(f"  {player:12s} {score:.4f}{'  FLAGGED' if verdict.flagged else ''}")
    alerts = [e for e in out if e["type"] == "anticheat.alert"]
    for a in alerts:
        print(f"  alert {a['player']} {a['kind']}: {a.get('reason', '')}")
    if args.publish:
        from anticheat.consumer import publish
        from gamebus.engines import connect

        # The live service already decided whether this match joined its
        # accounts' history: only scores and alerts go back to the bus.
        out = [e for e in out if e["type"] != "anticheat.history"]

        async def send() -> int:
            bus = await connect(args.bus)
            try:
                return await publish(bus, out)
            finally:
                await bus.close()

        print(f"published {asyncio.run(send())} events")
    return 0


def _history_records_before(url: str, events: list[tuple[dict[str, Any], Any]],
                            match: str) -> list[Mapping[str, Any]]:
    """The match's players' ``anticheat.history`` records from before it (:func:`records_before`)."""
    from anticheat.baseline import records_before
    from anticheat.history import read_history

    players = sorted({e["player"] for e, _ in events
                      if e.get("type") in ("join", "spawn", "pos") and isinstance(e.get("player"), str)})
    start = min(int(e["ts"]) for e, _ in events)

    async def load(bus: Any) -> list[tuple[dict[str, Any], Any]]:
        out: list[tuple[dict[str, Any], Any]] = []
        for player in players:
            out += await read_history(bus, player)
        return out

    return records_before(_read_history(url, load), before_ts=start, exclude_match=match)


def _read_history(url: str, reader: Callable[[Any], Awaitable[list[tuple[dict[str, Any], Any]]]]) -> list[dict[str, Any]]:
    """The events one of :mod:`anticheat.history`'s readers finds on the bus at ``url``."""
    from gamebus.engines import connect

    async def load() -> list[tuple[dict[str, Any], Any]]:
        bus = await connect(url)
        try:
            return await reader(bus)
        finally:
            await bus.close()

    return [e for e, _ in asyncio.run(load())]


def _printed_as_json_or_none(rows: list[dict[str, Any]], as_json: bool, none: str) -> bool:
    """Print ``rows`` as JSON, or ``none`` when there are none; False leaves the table to the caller."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return True
    if not rows:
        print(none)
        return True
    return False


def _review(args: argparse.Namespace) -> int:
    from anticheat.history import read_alerts

    queue = review_queue(_read_history(args.bus, read_alerts))[: args.limit]
    if _printed_as_json_or_none(queue, args.json, "no alerts"):
        return 0
    print(f"{'rank':>4}  {'match':14s} {'player':10s} {'score':>7}  {'kinds':28s} reason")
    for i, q in enumerate(queue, 1):
        print(f"{i:>4}  {q['match'][:14]:14s} {q['player'][:10]:10s} {q['score']:7.4f}  "
              f"{','.join(q['kinds'])[:28]:28s} {q['reason']}")
        ev = q["evidence"]
        if ev:
            print(f"{'':6}evidence: {json.dumps(ev)[:160]}")
    return 0


def _accounts(args: argparse.Namespace) -> int:
    from anticheat.accounts import account_queue
    from anticheat.history import read_scores

    rows = [r for r in account_queue(_read_history(args.bus, read_scores))
            if r["matches"] >= args.min_matches][: args.limit]
    if _printed_as_json_or_none(rows, args.json, "no scores"):
        return 0
    print(f"{'rank':>4}  {'player':12s} {'matches':>7} {'combined tail':>13}  {'top match':14s} {'its score':>9}")
    for i, r in enumerate(rows, 1):
        print(f"{i:>4}  {r['player'][:12]:12s} {r['matches']:>7} {r['tail']:13.3g}  "
              f"{r['top_match'][:14]:14s} {r['top_score']:9.4f}")
    return 0


def _explain_against_history(base: Any, core: Any, events: list[tuple[dict[str, Any], Any]],
                             args: argparse.Namespace) -> None:
    """The player's match against its own earlier unflagged matches, from the history topic."""
    from anticheat.baseline import history_before
    from anticheat.history import read_history

    vector = core.player_vectors(args.match).get(args.player)
    if vector is None:
        return
    records = _read_history(args.bus, functools.partial(read_history, player=args.player))
    history = history_before(records, args.player, before_ts=int(events[0][0]["ts"]),
                             exclude_match=args.match)
    verdict = base.classify(history, vector)
    if verdict is None:
        print(f"against own history: {len(history)} earlier unflagged matches, too few for a baseline")
        return
    print(f"against own history ({len(history)} matches): baseline {verdict.score:.4f} "
          f"(threshold {verdict.threshold:.4f}, FPR {verdict.fpr:.2%})"
          f"{'  FLAGGED' if verdict.flagged else ''}")
    print(f"{'feature (moved most)':28s} {'value':>12} {'own median':>12} {'z':>7}")
    for r in base.explain(history, vector, 8):
        print(f"{r['name']:28s} {r['value']:>12.4g} {r['own_median']:>12.4g} {r['z']:>7.2f}")


def _explain(args: argparse.Namespace) -> int:
    from anticheat import model
    from anticheat.explain import explain_player, timeline_png

    bundle = model.load(args.model)
    events = asyncio.run(_load_match(args))
    if not events:
        print(f"no events of match {args.match}", file=sys.stderr)
        return 1
    core, out = _score_match(bundle, events)
    rows, score = explain_player(bundle, core, args.match, args.player)
    verdict = bundle.policy.classify(score)
    print(f"{args.player} in {args.match}: score {score:.4f} (threshold {bundle.policy.threshold:.4f}, "
          f"FPR {bundle.policy.fpr:.2%}){'  FLAGGED' if verdict.flagged else ''}")
    print(f"{'feature':28s} {'value':>12} {'population p50':>15} {'percentile':>10}")
    for r in rows:
        value = "nan" if math.isnan(r["value"]) else f"{r['value']:.4g}"
        median = "nan" if math.isnan(r["median"]) else f"{r['median']:.4g}"
        pct = "-" if math.isnan(r["percentile"]) else f"{r['percentile']:.1f}"
        print(f"{r['name']:28s} {value:>12} {median:>15} {pct:>10}")
    if bundle.baseline is not None and args.bus:
        _explain_against_history(bundle.baseline, core, events, args)
    flags = [e for e in out if e["type"] == "anticheat.alert" and e["player"] == args.player]
    for a in flags:
        print(f"flag at ts {a['ts']}: {a['kind']}: {a.get('reason', '')}")
    climbs = core.climbs(args.match, args.player)
    for name, c in climbs.items():
        print(f"{name} climbed to {c['height']:.2f} over shots from ts {c['from']:.0f} to {c['to']:.0f} "
              f"({(c['to'] - c['from']) / 1000:.1f} s)")
    png = timeline_png([e for e, _ in events], args.player, flags, args.out / f"{args.match}-{args.player}.png",
                       climbs=climbs)
    print(f"timeline: {png}")
    return 0
