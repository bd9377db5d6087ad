"""The command-line tools against a real broker: one clear line on errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.broker import BrokerProcess

_REPO = Path(__file__).resolve().parents[2]


def gamebus_cli(broker: BrokerProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GAMEBUS_URL=broker.url, PYTHONPATH=str(_REPO))
    return subprocess.run(
        [sys.executable, "-m", "gamebus", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=30, cwd=_REPO,
    )  # fmt: skip


def test_cli_produce_then_consume_round_trips_json_lines(broker: BrokerProcess) -> None:
    created = gamebus_cli(broker, "topics", "create", "cli.events", "--partitions", "2")
    assert created.returncode == 0, created.stderr
    events = [
        {"type": "kill", "match": f"m{i % 2}", "ts": i, "player": "a", "target": "b",
         "weapon": "w", "headshot": i % 3 == 0}
        for i in range(20)
    ]  # fmt: skip
    lines = "".join(json.dumps(e) + "\n" for e in events)
    produced = gamebus_cli(broker, "produce", "cli.events", "--acks", "durable", stdin=lines)
    assert produced.returncode == 0, produced.stderr
    assert "produced 20 events" in produced.stderr
    consumed = gamebus_cli(
        broker, "consume", "cli.events", "--from", "earliest", "--max", "20", "--idle-timeout", "5"
    )
    assert consumed.returncode == 0, consumed.stderr
    got = [json.loads(line) for line in consumed.stdout.splitlines()]
    assert sorted(got, key=lambda e: e["ts"]) == events
    described = gamebus_cli(broker, "topics", "describe", "cli.events")
    rows = [json.loads(line) for line in described.stdout.splitlines()]
    assert sum(r["log_end"] for r in rows) == 20 and len(rows) == 2
    listed = gamebus_cli(broker, "topics", "list")
    assert {"topic": "cli.events", "partitions": 2} in [json.loads(x) for x in listed.stdout.splitlines()]


def test_cli_errors_are_one_line_and_a_nonzero_exit(broker: BrokerProcess) -> None:
    bad = gamebus_cli(broker, "produce", "cli.bad", stdin='{"type": "kill", "match": "m1"}\n')
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0
    assert "line 1: ts" in bad.stderr
    missing = gamebus_cli(broker, "topics", "describe", "no.such.topic")
    assert missing.returncode == 1 and "unknown topic 'no.such.topic'" in missing.stderr
    assert "Traceback" not in missing.stderr
