"""The demo's HTTP server: the page, its msgpack module, tokens and config.

The page is plain ES modules with no build step, so this server hands out
the files of ``demo-client/`` as they are, plus the ES module build of the
``@msgpack/msgpack`` npm package from ``demo-client/node_modules`` (the page
imports it through an import map).

It also plays the part a game backend plays in production: it signs relay
tokens. ``GET /token?role=spectator`` or ``?role=analyst`` returns a short-
lived HS256 JWT signed with the secret the relay was started with; the page
fetches a fresh one before every (re)connect, so expiry never strands it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from gamebus.demo.lobby import Lobby
from gamebus.errors import ConfigError
from gamebus.events import now_ms

__all__ = ["DemoSite", "find_client_dir", "make_app"]

#: Roles the page may ask for. Players get their tokens from the game, not here.
PAGE_ROLES: Final = ("spectator", "analyst")
TOKEN_TTL_S: Final = 600
_CLIENT_FILE = re.compile(r"^[a-z][a-z0-9_-]*\.(?:html|js|css)$")
_MSGPACK_ESM = Path("node_modules/@msgpack/msgpack/dist.esm")


@dataclass(slots=True)
class DemoSite:
    """What the page needs to know, filled in as the demo starts."""

    client_dir: Path
    jwt_secret: str
    relay_port: int
    relay_path: str = "/"
    lobby: Lobby = field(default_factory=Lobby)
    follow_radius_m: float = 25.0
    status: Callable[[], list[dict[str, Any]]] = field(default=list)
    session: str = field(default_factory=lambda: secrets.token_hex(4))


SITE: Final = web.AppKey("site", DemoSite)


def find_client_dir() -> Path:
    """``demo-client/`` of the source tree, checked for its npm dependency."""
    root = Path(__file__).resolve().parents[2] / "demo-client"
    if not (root / "index.html").is_file():
        raise ConfigError(f"the demo page is missing: no {root / 'index.html'}")
    if not (root / _MSGPACK_ESM / "index.mjs").is_file():
        raise ConfigError(f"{root / _MSGPACK_ESM} is missing: run `make npm-deps` (npm install in demo-client)")
    return root


def make_app(site: DemoSite) -> web.Application:
    """The aiohttp application: the pages, ``/token``, ``/config.json``, ``/matches.json``,
    ``/alerts.json``, ``/review.json`` and ``/maps/``."""
    app = web.Application()
    app[SITE] = site
    app.router.add_get("/", _index)
    app.router.add_get("/config.json", _config)
    app.router.add_get("/token", _token)
    app.router.add_get("/matches.json", _matches)
    app.router.add_get("/alerts.json", _alerts)
    app.router.add_get("/review.json", _review)
    app.router.add_get("/status.json", _status)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/maps/{name}.json", _map)
    app.router.add_get("/vendor/msgpack/{path:.+}", _msgpack)
    app.router.add_get("/{name}", _client_file)
    return app


def _no_cache(response: web.StreamResponse) -> web.StreamResponse:
    # The demo is a development server: always serve the current files.
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _index(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    return _no_cache(web.FileResponse(site.client_dir / "index.html"))


async def _client_file(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    name = request.match_info["name"]
    path = site.client_dir / name
    if not _CLIENT_FILE.match(name) or not path.is_file():
        raise web.HTTPNotFound()
    return _no_cache(_typed(web.FileResponse(path), name))


async def _msgpack(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    base = (site.client_dir / _MSGPACK_ESM).resolve()
    path = (base / request.match_info["path"]).resolve()
    if not path.is_relative_to(base) or path.suffix != ".mjs" or not path.is_file():
        raise web.HTTPNotFound()
    return _no_cache(_typed(web.FileResponse(path), path.name))


def _typed(response: web.FileResponse, name: str) -> web.FileResponse:
    # Browsers refuse module scripts without a JavaScript MIME type, and
    # older mimetypes tables do not know ".mjs".
    if name.endswith((".js", ".mjs")):
        response.content_type = "text/javascript"
    return response


async def _config(request: web.Request) -> web.Response:
    site = request.app[SITE]
    # The relay listens on the same host as this server: reuse the host the
    # browser used, so the page also works through a forwarded port.
    host = request.url.host or "127.0.0.1"
    body = {
        "relay_url": f"ws://{host}:{site.relay_port}{site.relay_path}",
        "matches": site.lobby.listing(now_ms()),
        "maps_url": "maps/",
        "follow_radius": site.follow_radius_m,
        "token_url": "token",
        "session": site.session,
    }
    return _no_cache(web.json_response(body))  # type: ignore[return-value]


async def _token(request: web.Request) -> web.Response:
    from relay.tokens import issue_token

    site = request.app[SITE]
    role = request.query.get("role", "spectator")
    if role not in PAGE_ROLES:
        raise web.HTTPBadRequest(text=f"role must be one of {', '.join(PAGE_ROLES)}")
    token = issue_token(key=site.jwt_secret, sub=f"demo-{role}-{site.session}", role=role, matches="*", ttl_s=TOKEN_TTL_S)  # type: ignore[arg-type]
    return web.json_response({"token": token, "role": role, "expires_in": TOKEN_TTL_S}, headers={"Cache-Control": "no-store"})


async def _matches(request: web.Request) -> web.Response:
    site = request.app[SITE]
    return web.json_response({"matches": site.lobby.listing(now_ms())}, headers={"Cache-Control": "no-store"})


async def _alerts(request: web.Request) -> web.Response:
    site = request.app[SITE]
    return web.json_response({"alerts": list(site.lobby.alerts)}, headers={"Cache-Control": "no-store"})


async def _review(request: web.Request) -> web.Response:
    site = request.app[SITE]
    return web.json_response(site.lobby.review(), headers={"Cache-Control": "no-store"})


async def _status(request: web.Request) -> web.Response:
    site = request.app[SITE]
    return web.json_response({"processes": site.status()}, headers={"Cache-Control": "no-store"})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _map(request: web.Request) -> web.Response:
    """A map of :mod:`gamebus.sim.world` as the page draws it: size and wall boxes."""
    from gamebus.sim.world import CRATE_HEIGHT_M, MAPS

    game_map = MAPS.get(request.match_info["name"])
    if game_map is None:
        raise web.HTTPNotFound()
    body = {
        "name": game_map.name,
        "width": game_map.size_x_m,
        "height": game_map.size_y_m,
        "walls": [
            {"x": w.x0, "y": w.y0, "w": w.x1 - w.x0, "h": w.y1 - w.y0, "low": w.z1 <= CRATE_HEIGHT_M}
            for w in game_map.walls
        ],
    }
    return web.json_response(body, dumps=lambda v: json.dumps(v, separators=(",", ":")))
