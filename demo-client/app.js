// The gamebus demo page: wires two relay connections (a spectator one for
// the chosen match, an analyst one for anti-cheat alerts) to the map, the
// kill feed, the alerts panel and the live figures.

import { MatchStream, RelayConnection } from "./connection.js";
import { MapView } from "./map.js";
import { KillFeed } from "./feed.js";
import { AlertsPanel, shortName } from "./alerts.js";
import { Stats, showState } from "./stats.js";

const $ = (id) => document.getElementById(id);

async function main() {
  const config = await (await fetch("config.json", { cache: "no-store" })).json();
  const matches = new Map(); // id -> {id, map, live, players, ...} from the demo server's lobby
  const mapCache = new Map();
  const names = new Map();
  const nameOf = (id) => names.get(id) ?? id;

  const stats = new Stats({
    rate: $("stat-rate"),
    p50: $("stat-p50"),
    p99: $("stat-p99"),
    reconnects: $("stat-reconnects"),
  });
  const feed = new KillFeed($("kill-feed"), { nameOf });
  const view = new MapView($("map"), { onPick: (player) => follow(player) });
  const alerts = new AlertsPanel($("alerts"), $("alert-count"), {
    onPick: (match, player) => {
      if (match !== stream.match) choose(match);
      if (match !== stream.match) return; // that match is over and gone
      follow(player);
    },
  });
  const banner = new Banner($("banner"));
  const followRadius = config.follow_radius ?? 25;

  const token = (role) => async () => {
    const res = await fetch(`token?role=${role}`, { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()).token;
  };

  const spectator = new RelayConnection({
    name: "stream",
    url: config.relay_url,
    token: token("spectator"),
    onOpen: (_conn, connects) => {
      if (connects > 1) stats.reconnected();
      stream.subscribe();
    },
    onMessage: (msg) => {
      if (!stream.handle(msg) && msg.op === "error") banner.show(`Relay: ${msg.message ?? msg.code}`, "warn", 6000);
    },
    onState: (state, detail) => {
      showState($("conn-spectator"), state, detail);
      document.body.dataset.stream = state;
      if (state === "reconnecting") banner.show(`Relay connection lost (${detail}). Reconnecting…`, "warn");
      else if (state === "live") banner.hide("warn"); // the resume note, if any, follows
    },
  });

  const stream = new MatchStream({
    conn: spectator,
    onEvents: (events, live) => {
      for (const ev of events) {
        if (ev.type === "join" && ev.name) names.set(ev.player, ev.name);
        if ((ev.type === "round_start" || ev.type === "match_end") && ev.map) loadMap(ev.map);
        view.apply(ev);
        feed.apply(ev);
        if (ev.type === "round_start") $("round-info").textContent = `round ${ev.round}${ev.map ? ` · ${ev.map}` : ""}`;
        if (ev.type === "match_end" && live) {
          const info = matches.get(stream.match);
          if (info) info.live = false;
          pollMatches();
        }
      }
      if (live) stats.received(events);
      $("stat-position").textContent = fmtPosition(stream.position);
    },
    onSnapshot: (players) => view.snapshot(players),
    onResumed: ({ from, replayed, gap, gaps }) => {
      const at = from.offsets?.["game.events"];
      const where = at !== undefined ? `game.events @ ${at}` : "last position";
      const stat = gap ? `${where} · gap: ${JSON.stringify(gaps ?? {})}` : `${where} · replayed ${replayed} · no gap`;
      $("stat-resume").textContent = stat;
      $("stat-resume").title = stat;
      $("stat-resume").dataset.gap = String(gap);
      document.body.dataset.resumed = gap ? "gap" : "clean";
      banner.show(
        gap
          ? "Reconnected, but the relay no longer had all the history: some events are missing"
          : `Resumed after reconnecting: ${replayed} missed events replayed, no gap`,
        gap ? "warn" : "ok",
        8000,
      );
    },
    onError: (msg) => banner.show(`Cannot watch this match: ${msg.message ?? msg.code}`, "warn", 8000),
  });

  const analyst = new RelayConnection({
    name: "alerts",
    url: config.relay_url,
    token: token("analyst"),
    onOpen: (conn, connects) => {
      conn.send({ op: "sub_alerts" });
      // The feed is live only: fill in what was raised while we were away.
      if (connects > 1) earlierAlerts();
    },
    onMessage: (msg) => {
      if (msg.op === "alert") showAlert(msg.alert);
    },
    onState: (state, detail) => showState($("conn-analyst"), state, detail),
  });

  function showAlert(raw) {
    const alert = alerts.add(raw);
    if (!alert) return;
    bumpAlerts(alert.match);
    if (alert.match === stream.match) view.flag(alert.player, alert);
  }

  // The relay's alert feed is live only: alerts raised before this page
  // opened come from the demo server's memory of them.
  async function earlierAlerts() {
    try {
      const res = await fetch("alerts.json", { cache: "no-store" });
      if (res.ok) for (const a of (await res.json()).alerts ?? []) showAlert(a);
    } catch {
      // Not essential: live alerts still arrive.
    }
  }

  // --- match picker -------------------------------------------------------
  // Matches come and go (the simulator starts a new one, with a new id, when
  // one ends), so the picker follows the demo server's lobby.

  const picker = $("match-picker");
  const buttons = new Map();
  let switchTimer = null;

  function updateMatches(list) {
    const listed = new Set();
    for (const info of list) {
      listed.add(info.id);
      matches.set(info.id, { ...matches.get(info.id), ...info });
      let b = buttons.get(info.id);
      if (!b) {
        b = document.createElement("button");
        b.type = "button";
        b.className = "match";
        b.dataset.match = info.id;
        b.title = info.id;
        b.innerHTML = `<span class="mname"></span><span class="mmap"></span><span class="badge" hidden>0</span>`;
        b.querySelector(".mname").textContent = shortName(info.id);
        b.addEventListener("click", () => choose(info.id));
        buttons.set(info.id, b);
        if (alerts.forMatch(info.id).length) bumpAlerts(info.id);
      }
      b.querySelector(".mmap").textContent = info.map ?? "";
      b.classList.toggle("ended", !info.live);
      picker.append(b); // keeps the lobby's order
      if (info.id === stream.match && info.map) loadMap(info.map);
    }
    for (const [id, b] of buttons) {
      if (!listed.has(id) && id !== stream.match) {
        b.remove();
        buttons.delete(id);
      }
    }
    const live = list.filter((m) => m.live);
    if (!stream.match) {
      const wanted = decodeURIComponent(location.hash.slice(1));
      const first = live.find((m) => m.id === wanted) ?? live[0];
      if (first) choose(first.id);
    } else if (matches.get(stream.match)?.live === false) {
      moveOn(live);
    }
  }

  /** The watched match ended: go to the newest live one after a moment. */
  function moveOn(live) {
    const next = live.filter((m) => m.id !== stream.match).at(-1);
    if (!next || switchTimer) return;
    banner.show(`Match over. Switching to ${shortName(next.id)}${next.map ? ` on ${next.map}` : ""}…`, "ok", 4000);
    switchTimer = setTimeout(() => {
      switchTimer = null;
      choose(next.id);
    }, 4000);
  }

  function bumpAlerts(match) {
    const badge = buttons.get(match)?.querySelector(".badge");
    if (!badge) return;
    badge.hidden = false;
    badge.textContent = String(alerts.forMatch(match).length);
  }

  function choose(match) {
    if (!matches.has(match) || match === stream.match) return;
    clearTimeout(switchTimer);
    switchTimer = null;
    for (const [id, b] of buttons) b.classList.toggle("active", id === match);
    view.reset();
    feed.clear();
    names.clear();
    $("round-info").textContent = "";
    const info = matches.get(match);
    $("match-title").textContent = `${shortName(match)[0].toUpperCase()}${shortName(match).slice(1)}`;
    $("match-title").title = match;
    follow(null, { send: false });
    if (info.map) loadMap(info.map);
    for (const a of alerts.forMatch(match)) view.flag(a.player, a);
    stream.select(match, info.from);
    history.replaceState(null, "", `#${encodeURIComponent(match)}`);
  }

  async function pollMatches() {
    try {
      const res = await fetch("matches.json", { cache: "no-store" });
      if (res.ok) updateMatches((await res.json()).matches ?? []);
    } catch {
      // The demo server is going away or restarting; try again next tick.
    }
  }

  async function loadMap(name) {
    if (!config.maps_url) return;
    let spec = mapCache.get(name);
    if (spec === undefined) {
      mapCache.set(name, null);
      try {
        const res = await fetch(`${config.maps_url}${encodeURIComponent(name)}.json`);
        spec = res.ok ? await res.json() : null;
      } catch {
        spec = null;
      }
      mapCache.set(name, spec);
    }
    if (spec) view.setMap(spec);
  }

  // --- area of interest ---------------------------------------------------

  function follow(player, { send = true } = {}) {
    if (player === (stream.follow?.player ?? stream.follow) && send) return;
    view.setFollow(player, followRadius);
    if (send) stream.setFollow(player, followRadius);
    const bar = $("follow-bar");
    bar.hidden = !player;
    if (player) {
      const r = followRadius ? ` within ${followRadius} m` : " nearby";
      $("follow-text").textContent = `Following ${nameOf(player)}: the relay streams only the players${r}.`;
    }
  }
  $("follow-stop").addEventListener("click", () => follow(null));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") follow(null);
  });

  // --- go -------------------------------------------------------------------

  spectator.start();
  analyst.start();
  updateMatches(config.matches ?? []);
  setInterval(pollMatches, 2000);
  earlierAlerts();

  const frame = () => {
    view.draw();
    stats.painted();
    const count = Object.keys(view.summary()).length;
    const pc = $("players-count");
    if (pc.dataset.count !== String(count)) {
      pc.dataset.count = String(count);
      pc.textContent = `${count} player${count === 1 ? "" : "s"}`;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  // For the browser tests and for curious people with a console open.
  window.gamebus = {
    players: () => view.summary(),
    screenOf: (id) => view.screenOf(id),
    stats: () => stats.snapshot(),
    stream,
    follow,
    choose,
  };
}

class Banner {
  constructor(el) {
    this.el = el;
    this.timer = null;
  }

  /** Hide the banner if it shows a message of `tone`. */
  hide(tone) {
    if (this.el.dataset.tone === tone) {
      clearTimeout(this.timer);
      this.el.hidden = true;
    }
  }

  show(text, tone = "ok", ms = 0) {
    clearTimeout(this.timer);
    this.el.textContent = text;
    this.el.dataset.tone = tone;
    this.el.hidden = false;
    if (ms) this.timer = setTimeout(() => (this.el.hidden = true), ms);
  }
}

function fmtPosition(p) {
  if (!p) return "–";
  return Object.entries(p.offsets)
    .map(([t, o]) => `${t.replace("game.", "")} ${p.epochs[t]}:${o}`)
    .join(" · ");
}

main().catch((err) => {
  console.error(err);
  document.body.dataset.failed = "true";
  const b = document.getElementById("banner");
  b.textContent = `The demo page could not start: ${err.message}`;
  b.dataset.tone = "warn";
  b.hidden = false;
});
