"""Can one core keep up? Replay simulated matches through the scoring path.

``python -m anticheat.bench --model models/anticheat.skops`` simulates N
concurrent matches (default 10 x 20 players x 20 Hz, 60 s each), interleaves
them by ``ts`` as the bus would deliver them, encodes every event, then times
decode + :meth:`ScoringCore.feed` (features, rules, periodic model scoring,
alert building) for all of them on this one process. It reports events/s,
the real-time factor (match seconds scored per wall second) and the longest
single ``feed`` call, which bounds the extra lag a scoring burst can add on
top of the reorder delay.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from anticheat.service import ScoringCore
from gamebus.events import EVENTS_TOPIC, POSITIONS_TOPIC, decode_event, encode_event

__all__ = ["main", "replay_throughput"]


def replay_throughput(bundle: Any, *, matches: int = 10, players: int = 20, tick_hz: int = 20,
                      duration_s: float = 60.0, seed: int = 4242) -> dict[str, float]:
    from gamebus.sim import simulate_match

    streams = []
    for k in range(matches):
        rec = simulate_match(seed=seed + k, match_id=f"bench-{k}", players=players, cheaters=0.1,
                             tick_hz=tick_hz, duration_s=duration_s)
        streams.extend(rec.events)
    streams.sort(key=lambda e: e["ts"])
    offsets = {POSITIONS_TOPIC: 0, EVENTS_TOPIC: 0}
    encoded = []
    for ev in streams:
        topic = POSITIONS_TOPIC if ev["type"] == "pos" else EVENTS_TOPIC
        encoded.append((encode_event(ev), topic, offsets[topic]))
        offsets[topic] += 1
    core = ScoringCore(bundle)
    worst = 0.0
    t0 = time.perf_counter()
    for raw, topic, offset in encoded:
        t = time.perf_counter()
        core.feed(decode_event(raw), (topic, 0, offset))
        worst = max(worst, time.perf_counter() - t)
    core.flush()
    elapsed = time.perf_counter() - t0
    span_s = (streams[-1]["ts"] - streams[0]["ts"]) / 1000.0
    return {
        "events": float(len(encoded)),
        "seconds": elapsed,
        "events_per_s": len(encoded) / elapsed,
        "needed_events_per_s": len(encoded) / span_s,
        "realtime_factor": span_s / elapsed,
        "worst_feed_ms": worst * 1000.0,
        "scored": float(core.counters.scored),
        "alerts": float(core.counters.alerts),
    }


def main(argv: list[str] | None = None) -> int:
    from anticheat import model

    p = argparse.ArgumentParser(prog="python -m anticheat.bench")
    p.add_argument("--model", type=Path, default=Path("models/anticheat.skops"))
    p.add_argument("--matches", type=int, default=10)
    p.add_argument("--players", type=int, default=20)
    p.add_argument("--tick-hz", type=int, default=20)
    args = p.parse_args(argv)
    bundle = model.load(args.model)
    r = replay_throughput(bundle, matches=args.matches, players=args.players, tick_hz=args.tick_hz)
    print(f"{int(r['events'])} events in {r['seconds']:.2f}s: {r['events_per_s']:.0f} events/s "
          f"(real time needs {r['needed_events_per_s']:.0f}/s; {r['realtime_factor']:.1f}x real time); "
          f"worst single feed {r['worst_feed_ms']:.1f} ms; {int(r['scored'])} player scorings, "
          f"{int(r['alerts'])} alerts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
