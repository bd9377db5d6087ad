"""The demo's process group as `gamebus demo` builds it, without starting it.

The demo shows the per-account baseline ("vs own" alerts) only if its
league has accounts that turn and its model carries a baseline; these tests
read both off the command lines the demo would run.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from gamebus.cli import build_parser
from gamebus.demo import model as demo_model
from gamebus.demo.run import (
    TRAIN_DURATION_S,
    TRAIN_MATCHES,
    TRAIN_SEASON_ACCOUNTS,
    TRAIN_SEED,
    DemoConfig,
    build_specs,
    default_model_path,
)
from gamebus.errors import ConfigError
from gamebus.sim.accounts import sample_accounts

PORTS = {"broker_port": 7401, "broker_admin_port": 7402, "relay_port": 7403, "relay_http_port": 7404}


def _argv(cfg: DemoConfig, name: str, tmp_path: Path) -> list[str]:
    specs = build_specs(cfg, data_dir=tmp_path, secret="s" * 32, model=tmp_path / "m" / "anticheat.skops",
                        train=True)
    return next(s.argv for s in specs if s.name == name)


def _gamebus_args(argv: list[str]) -> argparse.Namespace:
    assert argv[:3] == [sys.executable, "-m", "gamebus"]
    return build_parser().parse_args(argv[3:])


def test_demo_league_has_cheating_accounts_that_play_clean_rounds_first(tmp_path: Path) -> None:
    cfg = DemoConfig(seed=19, **PORTS)
    args = _gamebus_args(_argv(cfg, "sim", tmp_path))
    assert (args.accounts, args.cheaters, args.turn_share, args.loop) == (40, 8, 0.5, True)
    # The pool gamebus sim deals from these arguments: half its cheaters turn after 2-4 clean rounds.
    pool = sample_accounts(seed=19, n=40, cheaters=8 / 40, turn_share=0.5)
    starts = sorted(a.cheat_from for a in pool if a.cheat is not None)
    assert starts[:4] == [0, 0, 0, 0] and all(2 <= k <= 4 for k in starts[4:]) and len(starts) == 8


def test_demo_turn_share_is_a_flag_and_must_be_a_share(tmp_path: Path) -> None:
    demo = build_parser().parse_args(["demo", "--turn-share", "0"])
    cfg = DemoConfig.from_args(demo)
    assert cfg.turn_share == 0.0
    sim = _gamebus_args(_argv(replace(cfg, seed=1, **PORTS), "sim", tmp_path))
    assert sim.turn_share == 0.0
    with pytest.raises(ConfigError, match="--turn-share"):
        DemoConfig(turn_share=1.5).validate()


def test_demo_model_step_trains_a_per_account_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = _argv(DemoConfig(seed=1, **PORTS), "anticheat-model", tmp_path)
    assert argv[:3] == [sys.executable, "-m", "gamebus.demo.model"]
    assert argv[4:] == ["--matches", str(TRAIN_MATCHES), "--seed", str(TRAIN_SEED),
                        "--season-accounts", str(TRAIN_SEASON_ACCOUNTS),
                        "--duration", str(TRAIN_DURATION_S)]  # fmt: skip
    assert TRAIN_SEASON_ACCOUNTS > 0 and TRAIN_SEASON_ACCOUNTS % 20 == 0  # a season of 20-player lobbies
    trained: list[list[str]] = []

    def train(cmd: list[str]) -> int:
        trained.append(cmd)
        return 1  # nothing written: the cached path stays as it was

    monkeypatch.setattr("gamebus.cli.main", train)
    assert demo_model.main(argv[3:]) == 1
    assert trained == [["anticheat", "train", "--matches", str(TRAIN_MATCHES), "--seed", str(TRAIN_SEED),
                        "--out", trained[0][7], "--season-accounts", str(TRAIN_SEASON_ACCOUNTS),
                        "--duration", str(TRAIN_DURATION_S)]]  # fmt: skip


def test_demo_model_step_without_arguments_fills_the_demos_own_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `make demo-model` (which `make test` runs) must train exactly what the demo loads.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    trained: list[list[str]] = []

    def train(cmd: list[str]) -> int:
        trained.append(cmd)
        return 1

    monkeypatch.setattr("gamebus.cli.main", train)
    assert demo_model.main([]) == 1
    out = Path(trained[0][7])
    assert out.parent == default_model_path().parent
    assert trained[0][:7] == ["anticheat", "train", "--matches", str(TRAIN_MATCHES), "--seed", str(TRAIN_SEED),
                              "--out"]  # fmt: skip


def test_demo_caches_its_model_under_a_name_that_says_the_season(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = default_model_path()
    recipe = f"demo-m{TRAIN_MATCHES}-s{TRAIN_SEED}-a{TRAIN_SEASON_ACCOUNTS}-d{TRAIN_DURATION_S}"
    assert path == tmp_path / "gamebus" / "models" / recipe / "anticheat.skops"


def test_demo_retrains_a_cached_model_without_a_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "anticheat.skops"
    path.write_bytes(b"a model")
    monkeypatch.setattr("anticheat.model.load", lambda _p: SimpleNamespace(baseline=None))
    assert demo_model.why_unusable(path) is None
    assert demo_model.why_unusable(path, baseline=True) == "the cached model has no per-account baseline"
    monkeypatch.setattr("anticheat.model.load", lambda _p: SimpleNamespace(baseline=object()))
    assert demo_model.why_unusable(path, baseline=True) is None


def test_demo_scores_the_rounds_played_while_its_model_trained(tmp_path: Path) -> None:
    args = _gamebus_args(_argv(DemoConfig(seed=1, **PORTS), "anticheat", tmp_path))
    assert (args.start, args.group) == ("earliest", "anticheat")
