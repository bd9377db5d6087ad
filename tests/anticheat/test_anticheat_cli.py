"""The analyst CLI: registration and the review queue's ranking."""

from __future__ import annotations

import argparse

import pytest

from anticheat.cli import register
from anticheat.review import review_queue
from gamebus.cli import main


def test_anticheat_registers_its_seven_actions():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    for action in ("train", "evaluate", "pool", "run", "explain", "review", "rescore"):
        args = parser.parse_args(["anticheat", action, *_required(action)])
        assert callable(args.func)


def _required(action: str) -> list[str]:
    return {
        "pool": ["runs/79", "runs/78"],
        "run": ["--bus", "gamebus://127.0.0.1:1"],
        "explain": ["--match", "m", "--player", "p", "--bus", "gamebus://127.0.0.1:1"],
        "review": ["--bus", "gamebus://127.0.0.1:1"],
        "rescore": ["--bus", "gamebus://127.0.0.1:1", "--match", "m"],
    }.get(action, [])


def test_review_queue_puts_rule_hits_first_then_ranks_by_score():
    alerts = [
        {"match": "m1", "player": "a", "score": 0.97, "kind": "model", "reason": "aim"},
        {"match": "m1", "player": "b", "score": 1.0, "kind": "rule:fly", "reason": "fly"},
        {"match": "m2", "player": "c", "score": 0.99, "kind": "model", "reason": "aim"},
        {"match": "m1", "player": "a", "score": 0.91, "kind": "anomaly", "reason": "odd"},
    ]
    queue = review_queue(alerts)
    assert [(q["match"], q["player"]) for q in queue] == [("m1", "b"), ("m2", "c"), ("m1", "a")]
    assert queue[2]["kinds"] == ["model", "anomaly"] and queue[2]["alerts"] == 2
    assert queue[2]["reason"] == "aim"


def test_a_season_that_cannot_fill_its_lobbies_is_refused_before_anything_runs(tmp_path, capsys):
    code = main(["anticheat", "evaluate", "--model", str(tmp_path / "none.skops"),
                 "--matches", "10", "--players", "20", "--accounts", "30"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--accounts 30 must be a multiple of --players 20" in err


def test_evaluate_plays_only_the_cheat_kinds_asked_for_and_names_an_unknown_one(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["anticheat", "evaluate", "--kinds", "humanised_aimbot,triggerbot",
                              "--accounts", "40", "--turn-share", "1"])
    assert args.kinds == ["humanised_aimbot", "triggerbot"] and args.turn_share == 1.0
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["anticheat", "evaluate", "--kinds", "wallhack"])
    assert exit_.value.code == 2
    assert "unknown cheat kind 'wallhack'" in capsys.readouterr().err
