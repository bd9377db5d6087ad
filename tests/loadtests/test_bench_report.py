"""The suite runner keeps other engineers' BENCHMARKS.md sections verbatim."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.bench import cli
from loadtests.bench.common import markdown_table, median_spread, percentile

OTHERS = """## Log engine (bench_log)

| a | b |
|---|---|
| 1 | 2 |

```
## not a heading inside code
```

## Ingest (bench_ingest)

hand-written text
"""


def _results() -> dict:
    return {
        "machine": {"cores": 2, "usable_cores": 2, "cpu_model": "X", "memory_gib": 1.0,
                    "os": "Linux", "python": "3.11", "implementation": "CPython",
                    "loadavg_1m": 0.1},
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
        "repeats": 1, "quick": True,
        "modules": {
            "bench_log": {"status": "skipped", "seconds": 0.0, "note": "missing"},
            "bench_e2e": {"status": "ok", "seconds": 3.0, "result": {
                "title": "e2e", "table": "| x |\n|---|\n| 1 |",
                "goals": [{"key": "e2e_p99", "target": "< 10 ms", "measured": "12 ms",
                           "met": False, "note": "relay encode"}],
                "latency_ms": {"e2e": {"p50": 1.0, "p99": 12.0, "p99.9": 30.0}},
                "throughput": {"in": 8000.0, "out": 160000.0},
            }},
        },
    }


def test_report_keeps_others_sections_and_marks_missed_goals(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# old header\n\n## Goals\n\nold goals\n\n" + OTHERS)
    cli.write_report(_results(), command="gamebus bench --quick", output=out,
                     json_output=tmp_path / "b.json", plots_dir=tmp_path / "plots")
    text = out.read_text()
    assert OTHERS.strip() in text
    assert "old goals" not in text and "# old header" not in text
    assert "| p99 publish-to-client, 10 matches x 20 players x 20 Hz | < 10 ms | 12 ms | **missed** |" in text
    assert "**not measured**" in text
    assert (tmp_path / "plots" / "e2e-latency.png").stat().st_size > 1000
    assert json.loads((tmp_path / "b.json").read_text())["command"] == "gamebus bench --quick"


def test_report_fills_in_only_missing_sections_from_the_owners_renderer(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(OTHERS)
    results = _results()
    for name, heading in (("bench_log", "Log engine (bench_log)"),
                          ("bench_fanout", "Fan-out (bench_fanout)")):
        results["modules"][name] = {
            "status": "ok", "seconds": 1.0, "result": {"title": name},
            "section": f"## {heading}\n\nfresh numbers of {name}\n"}
    cli.write_report(results, command="gamebus bench", output=out,
                     json_output=tmp_path / "b.json", plots_dir=tmp_path / "plots")
    text = out.read_text()
    assert "fresh numbers of bench_log" not in text and "| 1 | 2 |" in text
    assert "fresh numbers of bench_fanout" in text
    assert "## Ingest (bench_ingest)\n\nhand-written text" in text
    assert text.index("## End to end") < text.index("## Log engine") < text.index("## Ingest")


def test_percentile_interpolates_like_numpy_linear() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    assert median_spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_markdown_table_right_aligns_numbers() -> None:
    assert markdown_table(["k", "v"], [["a", 1]]) == "| k | v |\n|---|---:|\n| a | 1 |"
