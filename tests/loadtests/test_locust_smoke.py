"""A short headless locust run is part of ``make test``.

It starts a real broker and relay (``loadtests/run.py``), runs the locust
scenarios for 15 seconds at a small scale and fails on any error, gap or
duplicate: the same checks a full ``make loadtest`` applies, on every change.
About 20-25 s on a 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_short_locust_run_has_no_errors_gaps_or_duplicates(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests.run", "--duration", "15", "--users", "8",
         "--matches", "3", "--players", "10", "--spawn-rate", "20", "--check",
         "--prefix", "smoke", "--json", str(summary)],
        cwd=ROOT, capture_output=True, text=True, timeout=140, check=False,
    )
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert summary.exists(), output
    result = json.loads(summary.read_text())
    assert result["gaps"] == 0, output
    assert result["duplicates"] == 0, output
    assert result["errors"] == 0, output
    assert result["events_in"] > 3 * 10 * 20 * 5, output      # at least 5 s of positions
    assert result["events_out"] > 0, output
    assert all(result["services_alive"].values()), output
    assert proc.returncode == 0, output
