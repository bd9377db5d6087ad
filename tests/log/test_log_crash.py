"""SIGKILL at random moments never loses a durable offset nor stores one twice.

``GAMEBUS_CRASH_KILLS`` sets how many kills (default 25 to keep the suite
fast; the acceptance run uses 200). The writer is :mod:`crash_writer`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from crash_writer import CONFIG, check_records

from gamebus.log import Partition

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = int(os.environ.get("GAMEBUS_CRASH_KILLS", "25"))


def run_once(directory: Path, seed: int, rng: random.Random) -> list[str]:
    """Start the writer, SIGKILL it at a random moment, return what it printed."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(WRITER.parent),
    )
    assert proc.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def collect() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode().strip()
            lines.append(line)
            if line.startswith(("ready", "defect")):
                ready.set()

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    if rng.random() < 0.15:
        time.sleep(rng.uniform(0.0, 0.25))  # sometimes during start-up and recovery
    else:
        assert ready.wait(30), "the writer never became ready"
        time.sleep(rng.uniform(0.0, 0.12))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    reader.join(10)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert not any(line.startswith("defect") for line in lines), lines[-1:]
    assert proc.returncode == -signal.SIGKILL, err
    return lines


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_durable_offset(tmp_path: Path):
    rng = random.Random(int(os.environ.get("GAMEBUS_CRASH_SEED", "20261125")))
    directory = tmp_path / "part"
    promised = 0
    epochs: list[int] = []
    torn = 0  # restarts whose recovery had to cut a torn tail
    for kill in range(KILLS):
        lines = run_once(directory, kill, rng)
        for line in lines:
            if line.startswith("ready"):
                _, epoch, next_offset, cut_bytes = line.split()
                epochs.append(int(epoch))
                torn += int(cut_bytes) > 0
                assert int(next_offset) >= promised, (
                    f"kill {kill}: lost offsets {next_offset}..{promised}"
                )
            elif line.startswith("durable"):
                promised = max(promised, int(line.split()[1]))
    part = Partition.open(str(directory), CONFIG)
    assert check_records(part) == part.next_offset >= promised
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)
    assert promised > 0
    part.close()
    print(
        f"{KILLS} kills, {len(epochs)} recoveries, {torn} cut a torn tail, last durable {promised}"
    )
