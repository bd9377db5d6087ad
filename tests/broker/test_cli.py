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


def test_cli_consume_resumes_each_partition_from_its_own_position(broker: BrokerProcess) -> None:
    created = gamebus_cli(broker, "topics", "create", "cli.resume", "--partitions", "2")
    assert created.returncode == 0, created.stderr
    events = [
        {"type": "round_start", "match": f"m{i % 5}", "ts": i, "round": i} for i in range(30)
    ]
    produced = gamebus_cli(
        broker, "produce", "cli.resume", "--acks", "durable",
        stdin="".join(json.dumps(e) + "\n" for e in events),
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    first = gamebus_cli(
        broker, "consume", "cli.resume", "--from", "earliest", "--meta", "--max", "30",
        "--idle-timeout", "5",
    )  # fmt: skip
    metas = [json.loads(line) for line in first.stdout.splitlines()]
    by_partition = {p: [m for m in metas if m["partition"] == p] for p in (0, 1)}
    assert all(len(rows) >= 3 for rows in by_partition.values()), "both partitions hold events"
    # Resume partition 0 after its second event and partition 1 after its first.
    p0, p1 = by_partition[0][1], by_partition[1][0]
    resumed = gamebus_cli(
        broker, "consume", "cli.resume", "--meta", "--max", "30", "--idle-timeout", "3",
        "--from", f"0:{p0['epoch']}:{p0['offset'] + 1}",
        "--from", f"cli.resume/1:{p1['epoch']}:{p1['offset'] + 1}",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    got = sorted(json.loads(line)["event"]["ts"] for line in resumed.stdout.splitlines())
    want = sorted(m["event"]["ts"] for m in by_partition[0][2:] + by_partition[1][1:])
    assert got == want
    bad = gamebus_cli(broker, "consume", "cli.resume", "--from", "other/1:1:0")
    assert bad.returncode == 1 and "--from expects" in bad.stderr


def test_parse_start_reads_positions_per_partition() -> None:
    import pytest

    from gamebus.engines.base import Position
    from gamebus.errors import ConfigError
    from gamebus.tools import parse_start

    assert parse_start(None, ["a"]) == "latest"
    assert parse_start(["earliest"], ["a"]) == "earliest"
    assert parse_start(["7:12"], ["a", "b"]) == {("a", 0): Position(7, 12), ("b", 0): Position(7, 12)}
    assert parse_start(["b/3:1:9", "0:2:5"], ["a", "b"]) == {
        ("b", 3): Position(1, 9), ("a", 0): Position(2, 5), ("b", 0): Position(2, 5),
    }  # fmt: skip
    for bad in (["x"], ["1:2:3:4"], ["c/1:1:1"], ["earliest", "1:1:1"], ["1:-1:2"]):
        with pytest.raises(ConfigError, match="--from expects"):
            parse_start(bad, ["a", "b"])
    with pytest.raises(ConfigError, match="twice"):
        parse_start(["1:1:1", "a/1:2:2"], ["a"])
