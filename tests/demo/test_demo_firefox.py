"""`gamebus demo` in Firefox: Debian's headless firefox-esr driven over WebDriver BiDi.

There is no geckodriver here and Playwright cannot drive a stock Firefox, so
the test speaks WebDriver BiDi itself: Firefox started with
``--remote-debugging-port`` serves it at ws://127.0.0.1:PORT/session, and a
handful of commands (session.new, browsingContext.navigate,
script.evaluate, browsingContext.captureScreenshot) are all it needs.

It checks what a new user sees first: the page connects, players appear
and move, the update rate and latency figures are live, and the page
raises no JavaScript error. The Chromium test (test_demo_browser.py) walks
the rest of the page.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.demo.support import DemoProcess, running_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIREFOX = "/usr/bin/firefox-esr"
#: A fresh profile with these prefs: BiDi only, and nothing that reaches for
#: the network (the machine may have none) or shows a first-run page.
PREFS: dict[str, bool | int | str] = {
    "remote.active-protocols": 1,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.newtabpage.enabled": False,
    "browser.aboutwelcome.enabled": False,
    "trailhead.firstrun.didSeeAboutWelcome": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "toolkit.telemetry.enabled": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "media.gmp-manager.url": "",
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class Firefox:
    """A headless firefox-esr with WebDriver BiDi on a port of its choosing."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True)
        (profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        )
        argv = [
            FIREFOX, "--headless", "--no-remote", "--profile", str(profile),
            "--remote-debugging-port", "0",
        ]  # fmt: skip
        env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"}
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.ws_url: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = LISTENING.search(line)
            if m:
                self.ws_url = m.group(1)
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float) -> str:
        self._ready.wait(timeout_s)
        assert self.ws_url, f"firefox-esr opened no BiDi port: {self.output()}"
        return f"{self.ws_url}/session"

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def stop(self) -> None:
        """SIGTERM by PID (the whole process group: content processes too), then SIGKILL."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:  # content processes left behind in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Bidi:
    """The few WebDriver BiDi commands the test needs, over one WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any], timeout_s: float = 30) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("type") == "event":
                self.events.append(msg)
            elif msg.get("id") == ident:
                assert msg.get("type") == "success", f"{method} failed: {msg}"
                return dict(msg["result"])

    def evaluate(self, context: str, expression: str) -> Any:
        result = self.send("script.evaluate", {
            "expression": f"JSON.stringify({expression})",
            "target": {"context": context},
            "awaitPromise": False,
        })  # fmt: skip
        assert result["type"] == "success", f"{expression} threw: {result}"
        value = result["result"]
        return json.loads(value["value"]) if value["type"] == "string" else None


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    if not Path(FIREFOX).exists():
        pytest.skip(f"needs Debian's firefox-esr at {FIREFOX} (make test installs it)")
    with running_demo(tmp_path / "demo") as proc:
        yield proc


def poll(bidi: Bidi, context: str, expression: str, timeout_s: float) -> Any:
    """Evaluate `expression` until it is truthy; its last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = bidi.evaluate(context, expression)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


@pytest.mark.timeout(180)
def test_demo_page_shows_live_matches_in_firefox(demo: DemoProcess, tmp_path: Path) -> None:
    firefox = Firefox(tmp_path / "firefox-profile")
    try:
        with connect(firefox.wait_ready(timeout_s=30), max_size=None, open_timeout=10) as ws:
            bidi = Bidi(ws)
            session = bidi.send("session.new", {"capabilities": {}})
            assert session["capabilities"]["browserName"] == "firefox"
            bidi.send("session.subscribe", {"events": ["log.entryAdded"]})
            context = bidi.send("browsingContext.getTree", {})["contexts"][0]["context"]
            viewport = {"width": 1440, "height": 900}  # as the Chromium test's
            bidi.send("browsingContext.setViewport", {"context": context, "viewport": viewport})

            url = demo.wait_ready(timeout_s=60)
            bidi.send("browsingContext.navigate", {"context": context, "url": url, "wait": "complete"})

            # Connected, with players on the map.
            state = poll(bidi, context, "document.querySelector('#conn-spectator')?.dataset.state === 'live'", 15)
            assert state, f"the page never went live: {demo.output()}"
            count = poll(bidi, context, "Object.keys(window.gamebus.players()).length >= 6 && Object.keys(window.gamebus.players()).length", 20)
            assert count, f"no players on the map: {bidi.evaluate(context, 'window.gamebus.players()')}"

            # They move: interpolated positions change within a second or two.
            before = bidi.evaluate(context, "window.gamebus.players()")
            time.sleep(1.5)
            after = bidi.evaluate(context, "window.gamebus.players()")
            moved = [p for p in after if p in before and _distance(before[p], after[p]) > 0.3]
            assert len(moved) >= 3, f"players did not move: {before} -> {after}"

            # Live figures: update rate and publish-to-screen latency.
            live = poll(bidi, context, "window.gamebus.stats().p50 !== null && window.gamebus.stats().rate > 0 && window.gamebus.stats()", 10)
            assert live, f"no live figures: {bidi.evaluate(context, 'window.gamebus.stats()')}"
            assert 0 <= live["p50"] < 5_000, f"implausible p50 latency {live['p50']} ms"
            shown = bidi.evaluate(context, "document.querySelector('#stat-p50').textContent")
            assert re.fullmatch(r"\d+(\.\d)? ms", shown), f"p50 shown as {shown!r}"

            shot = bidi.send("browsingContext.captureScreenshot", {"context": context})
            png = tmp_path / "demo-firefox.png"
            png.write_bytes(base64.b64decode(shot["data"]))
            assert png.stat().st_size > 10_000

            # No uncaught error and nothing logged as an error by the page.
            logs = [e["params"] for e in bidi.events if e["method"] == "log.entryAdded"]
            errors = [f"{e['type']}: {e.get('text')}" for e in logs if e["type"] == "javascript" or e["level"] == "error"]
            assert not errors, f"errors on the page: {errors}"
            print(f"firefox {session['capabilities']['browserVersion']}: screenshot {png}, {live}, "
                  f"{len(logs)} console entries: {[e.get('text') for e in logs][:10]}")  # fmt: skip
    finally:
        firefox.stop()


def _distance(a: dict[str, float], b: dict[str, float]) -> float:
    return float(((a["x"] - b["x"]) ** 2 + (a["y"] - b["y"]) ** 2) ** 0.5)
