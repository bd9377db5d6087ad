"""The demo's parts without a browser: the lobby, the supervisor, the page server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gamebus.demo.lobby import QUIET_MS, Lobby
from gamebus.demo.supervisor import ProcessFailed, ProcessSpec, Supervisor
from gamebus.demo.web import DemoSite, find_client_dir, make_app
from gamebus.sim.world import MAPS
from relay.tokens import verify_token

# -- lobby -------------------------------------------------------------------


def _ev(type_: str, match: str, ts: int, **fields: object) -> dict[str, object]:
    return {"type": type_, "match": match, "ts": ts, **fields}


def test_lobby_lists_live_matches_oldest_first_with_map_players_and_kills() -> None:
    lobby = Lobby()
    lobby.apply(_ev("round_start", "m1-00001", 2_000, round=1, map="canyon"))
    lobby.apply(_ev("round_start", "m1-00000", 1_000, round=1, map="warehouse"), epoch=2, offset=40)
    for p in ("p1", "p2"):
        lobby.apply(_ev("join", "m1-00000", 1_100, player=p))
    lobby.apply(_ev("kill", "m1-00000", 1_500, player="p1", target="p2", weapon="rifle", headshot=False))
    listing = lobby.listing(now_ms=3_000)
    assert [m["id"] for m in listing] == ["m1-00000", "m1-00001"]
    assert listing[0] == {
        "id": "m1-00000", "map": "warehouse", "round": 1, "players": 2, "kills": 1,
        "started_ms": 1_000, "live": True,
        "from": {"epochs": {"game.events": 2}, "offsets": {"game.events": 40}},
    }  # fmt: skip
    assert listing[1]["from"] is None


def test_lobby_marks_ended_and_silent_matches_not_live() -> None:
    lobby = Lobby()
    lobby.apply(_ev("round_start", "a", 1_000, round=1))
    lobby.apply(_ev("match_end", "a", 5_000))
    lobby.apply(_ev("round_start", "b", 1_000, round=1))
    lobby.apply(_ev("round_start", "c", 1_000 + QUIET_MS, round=1))
    live = {m["id"]: m["live"] for m in lobby.listing(now_ms=2_000 + QUIET_MS)}
    assert live == {"c": True, "a": False, "b": False}


def test_lobby_keeps_recent_alerts_and_skips_events_without_match_or_ts() -> None:
    lobby = Lobby()
    lobby.apply({"type": "kill", "ts": 1})
    lobby.apply({"type": "kill", "match": "m", "ts": "soon"})
    alert = _ev("anticheat.alert", "m", 10, player="p3", score=1.0, kind="rule:fly")
    lobby.apply(alert)
    assert lobby.matches == {}
    assert list(lobby.alerts) == [alert]


def test_lobby_keeps_each_players_latest_score_and_ranks_the_review() -> None:
    lobby = Lobby()
    for match, ts, score in (("m1", 5, 0.5), ("m1", 10, 0.97), ("m2", 10, 0.98), ("m3", 10, 0.96)):
        lobby.apply(_ev("anticheat.score", match, ts, player="steady", score=score))
    for match in ("m1", "m2", "m3"):
        lobby.apply(_ev("anticheat.score", match, 10, player="honest", score=0.4))
    lobby.apply(_ev("anticheat.score", "m1", 10, score=0.9))  # no player: skipped
    lobby.apply(_ev("anticheat.alert", "m2", 11, player="steady", score=0.98, kind="model"))
    lobby.apply(_ev("anticheat.alert", "m1", 12, player="flyer", score=1.0, kind="rule:fly"))
    assert lobby.scores[("m1", "steady")]["score"] == 0.97
    assert len(lobby.scores) == 6
    view = lobby.review()
    assert [(q["match"], q["player"]) for q in view["flagged"]] == [("m1", "flyer"), ("m2", "steady")]
    assert [(a["player"], a["matches"]) for a in view["accounts"]] == [("steady", 3), ("honest", 3)]


def test_lobby_scores_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gamebus.demo import lobby as lobby_module

    monkeypatch.setattr(lobby_module, "KEEP_SCORES", 3)
    lobby = Lobby()
    for k in range(5):
        lobby.apply(_ev("anticheat.score", f"m{k}", k, player="p", score=0.5))
    lobby.apply(_ev("anticheat.score", "m2", 9, player="p", score=0.6))  # refreshed: kept
    assert list(lobby.scores) == [("m3", "p"), ("m4", "p"), ("m2", "p")]


# -- supervisor --------------------------------------------------------------


def _sleeper(name: str, **kw: object) -> ProcessSpec:
    return ProcessSpec(name, [sys.executable, "-c", "import time; time.sleep(60)"], **kw)  # type: ignore[arg-type]


async def test_supervisor_restarts_a_dead_child_and_stops_all(tmp_path: Path) -> None:
    sup = Supervisor([_sleeper("a"), _sleeper("b")], log_dir=tmp_path, grace_s=2)
    await sup.start()
    try:
        before = {p["name"]: p for p in sup.status()}
        assert before["a"]["state"] == before["b"]["state"] == "running"
        proc = sup._children[1].proc
        assert proc is not None
        proc.kill()
        for _ in range(100):
            await asyncio.sleep(0.05)
            b = {p["name"]: p for p in sup.status()}["b"]
            if b["restarts"] == 1 and b["state"] == "running":
                break
        assert b["restarts"] == 1 and b["pid"] not in (None, before["b"]["pid"])
    finally:
        await sup.stop()
    assert all(p["state"] == "stopped" and p["pid"] is None for p in sup.status())
    assert "stopped by SIGTERM" in (tmp_path / "a.log").read_text()


async def test_supervisor_reports_a_child_that_dies_while_starting(tmp_path: Path) -> None:
    spec = ProcessSpec("broken", [sys.executable, "-c", "raise SystemExit(3)"],
                       ready=lambda: asyncio.sleep(0, result=False))  # fmt: skip
    sup = Supervisor([spec], log_dir=tmp_path)
    with pytest.raises(ProcessFailed, match="broken exited with code 3 while starting"):
        await sup.start()
    await sup.stop()


async def test_supervisor_runs_oneshots_to_completion_and_fails_on_error(tmp_path: Path) -> None:
    ok = ProcessSpec("ok", [sys.executable, "-c", "print('done')"], oneshot=True)
    bad = ProcessSpec("bad", [sys.executable, "-c", "raise SystemExit(2)"], oneshot=True)
    sup = Supervisor([ok, bad], log_dir=tmp_path)
    with pytest.raises(ProcessFailed, match="bad failed with exit code 2"):
        await sup.start()
    await sup.stop()
    assert {p["name"]: p["exit_code"] for p in sup.status()} == {"ok": 0, "bad": 2}
    assert "done" in (tmp_path / "ok.log").read_text()


# -- page server ---------------------------------------------------------------


@pytest.fixture
async def client() -> TestClient:  # type: ignore[misc]
    site = DemoSite(client_dir=find_client_dir(), jwt_secret="s" * 32, relay_port=7410)
    site.lobby.apply(_ev("round_start", "m5-00000", 1, round=1, map="canyon"))
    async with TestClient(TestServer(make_app(site))) as c:
        yield c


async def test_page_server_signs_spectator_and_analyst_tokens_the_relay_accepts(client: TestClient) -> None:
    for role in ("spectator", "analyst"):
        r = await client.get(f"/token?role={role}")
        body = await r.json()
        claims = verify_token(body["token"], key="s" * 32)
        assert (claims.role, claims.matches, body["expires_in"]) == (role, None, 600)
    assert (await client.get("/token?role=player")).status == 400


async def test_page_server_config_points_at_the_relay_on_the_browsers_host(client: TestClient) -> None:
    body = await (await client.get("/config.json")).json()
    assert body["relay_url"] == "ws://127.0.0.1:7410/"
    assert body["maps_url"] == "maps/"


async def test_page_server_serves_modules_as_javascript_and_nothing_outside(client: TestClient) -> None:
    for path in ("/app.js", "/vendor/msgpack/index.mjs"):
        r = await client.get(path)
        assert r.status == 200 and r.content_type == "text/javascript", path
    assert (await client.get("/")).content_type == "text/html"
    for path in ("/package.json", "/vendor/msgpack/../package.json", "/vendor/msgpack/%2e%2e/package.json"):
        assert (await client.get(path)).status == 404, path


async def test_page_server_draws_maps_from_the_simulators_world(client: TestClient) -> None:
    body = await (await client.get("/maps/canyon.json")).json()
    canyon = MAPS["canyon"]
    assert (body["width"], body["height"]) == (canyon.size_x_m, canyon.size_y_m)
    assert len(body["walls"]) == len(canyon.walls)
    assert body["walls"] and {"x", "y", "w", "h", "low"} <= set(body["walls"][0])
    assert (await client.get("/maps/atlantis.json")).status == 404


async def test_page_server_serves_the_review_page_and_its_ranked_data() -> None:
    site = DemoSite(client_dir=find_client_dir(), jwt_secret="s" * 32, relay_port=7410)
    site.lobby.apply(_ev("anticheat.alert", "m5-00000", 20, player="p3", score=0.99, kind="model",
                         reason="aim", features=[{"name": "track_jitter_median_deg_s", "value": 2.1,
                                                  "percentile": 0.4}]))
    site.lobby.apply(_ev("anticheat.score", "m5-00000", 20, player="p3", score=0.99))
    async with TestClient(TestServer(make_app(site))) as c:
        page = await c.get("/review.html")
        assert page.status == 200 and "review.js" in await page.text()
        script = await c.get("/review.js")
        assert script.content_type == "text/javascript"
        body = await (await c.get("/review.json")).json()
    assert body["flagged"][0]["player"] == "p3" and body["flagged"][0]["reason"] == "aim"
    assert body["accounts"] == [{"player": "p3", "matches": 1, "tail": pytest.approx(0.01),
                                 "score": pytest.approx(0.99), "top_match": "m5-00000",
                                 "top_score": 0.99, "scores": {"m5-00000": 0.99}}]
