"""Make sure the demo's cached anti-cheat model exists and fits this version.

Run as a one-shot step of the demo's process group::

    python -m gamebus.demo.model PATH --matches 16 --seed 1 --season-accounts 100 --duration 60

and with no arguments (``make demo-model``, which ``make test`` runs) for
the demo's own cache and recipe, so that the browser tests wait for alerts,
not for a first training.

It loads ``PATH`` the way ``gamebus anticheat run`` will; if the file is
missing, was trained by a version of gamebus with other features or with
features read another way (the loader refuses those), or lacks the
per-account baseline asked for, it trains a new one with ``gamebus
anticheat train`` into ``PATH``'s directory. A cached model that still
fits costs a load, not minutes of training, and a stale one never leaves
the demo without alerts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ensure_model", "main", "why_unusable"]


def why_unusable(path: Path, *, baseline: bool = False) -> str | None:
    """``None`` when ``path`` holds a model this version loads; else why not.

    With ``baseline`` the model must also carry the per-account baseline: a
    model cached by an older demo, trained without one, would never raise a
    ``baseline`` alert.
    """
    if not path.is_file():
        return "no cached model"
    try:
        from anticheat.model import load

        bundle = load(path)
    except Exception as exc:  # the loader's refusal, or a broken file
        return str(exc)
    if baseline and bundle.baseline is None:
        return "the cached model has no per-account baseline"
    return None


def ensure_model(path: Path, *, matches: int, seed: int, season_accounts: int,
                 duration_s: int | None = None) -> int:
    """Train into ``path.parent`` unless ``path`` is usable; returns an exit code.

    ``season_accounts`` > 0 also fits the per-account baseline on a season
    of that many accounts (``gamebus anticheat train --season-accounts``).
    """
    why = why_unusable(path, baseline=season_accounts > 0)
    if why is None:
        print(f"gamebus demo: using the cached model {path}", flush=True)
        return 0
    print(f"gamebus demo: training the anti-cheat model ({why}); this happens once", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Train into a private directory and move the result into place in one
    # step, so two demos starting at once never load a half-written file.
    scratch = Path(tempfile.mkdtemp(prefix=".train-", dir=path.parent))
    try:
        from gamebus.cli import main as gamebus_main

        code = gamebus_main(
            ["anticheat", "train", "--matches", str(matches), "--seed", str(seed), "--out", str(scratch),
             "--season-accounts", str(season_accounts),
             *(["--duration", str(duration_s)] if duration_s is not None else [])]
        )
        if code == 0:
            for stale in path.parent.glob("anticheat-*.skops"):  # versioned copies of older models
                stale.unlink(missing_ok=True)
            for trained in scratch.glob("anticheat-*.skops"):
                os.replace(trained, path.parent / trained.name)
            os.replace(scratch / "anticheat.skops", path)
        return code
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    from gamebus.demo.run import (
        TRAIN_DURATION_S,
        TRAIN_MATCHES,
        TRAIN_SEASON_ACCOUNTS,
        TRAIN_SEED,
        default_model_path,
    )

    parser = argparse.ArgumentParser(prog="python -m gamebus.demo.model", description=__doc__)
    parser.add_argument("path", type=Path, nargs="?", default=None,
                        help="model file (default: the demo's cache, ~/.cache/gamebus/models/...)")
    parser.add_argument("--matches", type=int, default=TRAIN_MATCHES)
    parser.add_argument("--seed", type=int, default=TRAIN_SEED)
    parser.add_argument("--season-accounts", type=int, default=TRAIN_SEASON_ACCOUNTS,
                        help="accounts in the per-account baseline's training season (0: no baseline)")
    parser.add_argument("--duration", type=int, default=TRAIN_DURATION_S,
                        help="seconds per simulated training match")
    args = parser.parse_args(argv)
    path = args.path if args.path is not None else default_model_path()
    return ensure_model(path, matches=args.matches, seed=args.seed, season_accounts=args.season_accounts,
                        duration_s=args.duration)


if __name__ == "__main__":
    sys.exit(main())
