"""``gamebus sim``: files without a network, the bus through the SDK, and batches of matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamebus.cli import main
from gamebus.events import validate_event
from gamebus.sim.batch import match_id_for, match_seed, simulate_matches
from gamebus.sim.io import cheater_labels, read_events, read_labels


def test_sim_out_writes_events_and_a_separate_labels_file(tmp_path: Path):
    out, labels = tmp_path / "ev.msgpack", tmp_path / "labels.jsonl"
    code = main(["sim", "--matches", "2", "--players", "8", "--cheaters", "2", "--seed", "3",
                 "--duration", "3", "--out", str(out), "--labels", str(labels)])
    assert code == 0
    events = list(read_events(out))
    assert {e["match"] for e in events} == {match_id_for(3, 0), match_id_for(3, 1)}
    assert all(validate_event(e) == e for e in events)
    expected = [e for rec in simulate_matches(3, 2, players=8, cheaters=2, duration_s=3)
                for e in rec.events]
    assert events == expected
    records = read_labels(labels)
    assert [r["match"] for r in records] == [match_id_for(3, 0), match_id_for(3, 1)]
    assert all(len(r["players"]) == 8 and len(r["cheaters"]) == 2 for r in records)
    truth = cheater_labels(records)
    assert len(truth) == 4
    assert not any("kind" in e or "intensity" in e for e in events)


def test_sim_accounts_play_round_after_round_with_the_same_cheats(tmp_path: Path):
    out, labels = tmp_path / "ev.msgpack", tmp_path / "labels.jsonl"
    code = main(["sim", "--matches", "6", "--players", "8", "--accounts", "16", "--cheaters", "4",
                 "--seed", "5", "--duration", "3", "--out", str(out), "--labels", str(labels),
                 "--jobs", "2"])
    assert code == 0
    records = read_labels(labels)
    played: dict[str, int] = {}
    for r in records:
        assert len(r["players"]) == 8
        for p in r["players"]:
            played[p["player"]] = played.get(p["player"], 0) + 1
    assert len(played) == 16 and set(played.values()) == {3}  # 6 matches = 3 rounds of 2 lobbies
    cheats: dict[str, set[tuple[str, str]]] = {}
    for r in records:
        for c in r["cheaters"]:
            cheats.setdefault(c["player"], set()).add((c["kind"], c["intensity"]))
    assert len(cheats) == 4 and all(len(k) == 1 for k in cheats.values())
    events = list(read_events(out))
    assert {e["player"] for e in events if e["type"] == "pos"} == set(played)


def test_sim_accounts_must_fill_every_lobby(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    assert main(["sim", "--matches", "2", "--players", "10", "--accounts", "15",
                 "--out", str(tmp_path / "x")]) == 1
    assert "do not fill lobbies of 10" in capsys.readouterr().err


def test_the_cli_default_duration_is_the_simulator_default():
    from gamebus.sim import DEFAULT_DURATION_S
    from gamebus.sim.cli import DEFAULT_DURATION_S as CLI_DEFAULT

    assert CLI_DEFAULT == DEFAULT_DURATION_S


def test_sim_needs_an_output(capsys: pytest.CaptureFixture[str]):
    assert main(["sim", "--matches", "1"]) == 1
    assert "--out" in capsys.readouterr().err


def test_a_match_of_a_batch_does_not_depend_on_the_batch_or_the_workers():
    alone = next(simulate_matches(9, 1, first=2, players=6, duration_s=2))
    batch = list(simulate_matches(9, 3, players=6, duration_s=2, workers=2))
    assert batch[2].events == alone.events
    assert batch[2].seed == match_seed(9, 2)
    assert len({r.seed for r in batch}) == 3
    assert batch[0].end_ts_ms < batch[1].start_ts_ms  # one after the other on the clock


def test_sim_publishes_to_a_real_broker(tmp_path: Path):
    pytest.importorskip("gamebus.client")
    from tests.support.broker import BrokerProcess

    labels = tmp_path / "labels.jsonl"
    with BrokerProcess(tmp_path / "data") as broker:
        code = main(["sim", "--bus", broker.url, "--matches", "2", "--players", "4",
                     "--duration", "1", "--fast", "--labels", str(labels)])
    assert code == 0
    ids = [r["match"] for r in read_labels(labels)]
    assert len(set(ids)) == 2
    # a live run's ids carry the run, so a restarted publisher never reuses one
    assert not set(ids) & {match_id_for(7, 0), match_id_for(7, 1)}
