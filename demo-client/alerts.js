// The anti-cheat alerts panel: one card per flagged (match, player, kind),
// updated in place when the service raises the same alert again, with the
// score, the cheat kind and the features that drove the score.

import { clock } from "./feed.js";

const MAX_CARDS = 30;
const TOP_FEATURES = 3;

export class AlertsPanel {
  constructor(list, counter, { onPick } = {}) {
    this.list = list;
    this.counter = counter;
    this.onPick = onPick;
    this.cards = new Map(); // "match/player/kind" -> li
    this.flagged = new Map(); // "match/player" -> alert
  }

  /** Add or refresh an alert; returns it normalised, or null when malformed. */
  add(raw) {
    const alert = normalise(raw);
    if (!alert) return null;
    const key = `${alert.match}/${alert.player}/${alert.kind}`;
    this.flagged.set(`${alert.match}/${alert.player}`, alert);
    let li = this.cards.get(key);
    if (li && li.dataset.ts === String(alert.ts)) return alert; // seen already (a re-fetch)
    if (!li) {
      li = document.createElement("li");
      li.className = "alert fresh";
      li.addEventListener("click", () => this.onPick?.(alert.match, alert.player));
      this.cards.set(key, li);
      this.list.querySelector(".empty")?.remove();
    }
    li.replaceChildren(...render(alert));
    li.dataset.player = alert.player;
    li.dataset.kind = alert.kind;
    li.dataset.match = alert.match;
    li.dataset.ts = String(alert.ts);
    this.list.prepend(li);
    li.classList.remove("fresh");
    void li.offsetWidth; // restart the highlight animation
    li.classList.add("fresh");
    while (this.list.children.length > MAX_CARDS) {
      const old = this.list.lastElementChild;
      this.cards.delete(`${old.dataset.match}/${old.dataset.player}/${old.dataset.kind}`);
      old.remove();
    }
    this.counter.textContent = String(this.cards.size);
    return alert;
  }

  /** Alerts already known for `match`, to ring its cheaters after a switch. */
  forMatch(match) {
    return [...this.flagged.values()].filter((a) => a.match === match);
  }
}

function normalise(raw) {
  if (!raw || typeof raw !== "object" || typeof raw.player !== "string") return null;
  return {
    match: String(raw.match ?? "?"),
    player: raw.player,
    kind: String(raw.kind ?? "suspicious"),
    score: Number(raw.score ?? 0),
    threshold: Number.isFinite(raw.threshold) ? raw.threshold : null,
    reason: typeof raw.reason === "string" ? raw.reason : "",
    rules: raw.rules,
    features: topFeatures(raw.features),
    ts: raw.ts,
    model: raw.model_version ?? "",
  };
}

/**
 * The anti-cheat service sends its features ranked, as [{name, value,
 * percentile}, ...] (percentile against the clean population); keep its
 * order. A map {name: value} is ranked here by magnitude.
 */
export function topFeatures(features) {
  if (!features || typeof features !== "object") return [];
  if (Array.isArray(features)) {
    return features
      .map((f) => (Array.isArray(f) ? { name: f[0], value: f[1] } : f))
      .filter((f) => f && f.name !== undefined)
      .slice(0, TOP_FEATURES);
  }
  return Object.entries(features)
    .map(([name, v]) => (v && typeof v === "object" ? { name, ...v } : { name, value: v }))
    .sort((a, b) => Math.abs(Number(b.value) || 0) - Math.abs(Number(a.value) || 0))
    .slice(0, TOP_FEATURES);
}

/** "m7-00003" -> "match 4": the simulator numbers matches from 0 after the seed. */
export function shortName(id) {
  const m = /-(\d+)$/.exec(id);
  return m ? `match ${Number(m[1]) + 1}` : id;
}

/** "rule:speed" -> "speed rule"; "model" and "anomaly" as they are. */
export function kindLabel(kind) {
  return kind.startsWith("rule:") ? `${kind.slice(5)} rule` : kind;
}

function render(a) {
  const head = el("div", "alert-head");
  head.append(el("span", "player", a.player), el("span", `kind kind-${slug(a.kind)}`, kindLabel(a.kind)), el("span", "amatch", shortName(a.match)));
  const bar = el("div", "score");
  const fill = el("i");
  fill.style.width = `${Math.round(Math.max(0, Math.min(1, a.score)) * 100)}%`;
  bar.append(fill, el("b", "", a.score.toFixed(2)));
  const parts = [head, bar];
  if (a.features.length) {
    const ul = el("ul", "features");
    for (const f of a.features) {
      const li = el("li");
      li.append(el("span", "fname", String(f.name).replaceAll("_", " ")), el("span", "fval", fmt(f)));
      ul.append(li);
    }
    parts.push(ul);
  }
  const foot = el("div", "alert-foot", [a.reason, clock(a.ts)].filter(Boolean).join(" · "));
  parts.push(foot);
  return parts;
}

function num(v) {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(3);
}

function fmt(f) {
  const v = Number(f.value);
  const val = Number.isFinite(v) ? num(v) : String(f.value ?? "");
  if (Number.isFinite(f.percentile)) return `${val} · p${Math.round(f.percentile)}`;
  // A baseline alert: the value against the player's own earlier matches.
  if (Number.isFinite(f.own_median)) return `${val} vs own ${num(Number(f.own_median))} (z ${Number(f.z).toFixed(1)})`;
  if (Number.isFinite(f.z)) return `${val} (z ${Number(f.z).toFixed(1)})`;
  if (Number.isFinite(f.contribution)) return `${val} (+${Number(f.contribution).toFixed(2)})`;
  return val;
}

function el(tag, cls = "", text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function slug(s) {
  return String(s).toLowerCase().replace(/[^a-z0-9]+/g, "-");
}
