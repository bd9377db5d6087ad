// The live map: walls, players with their facing, interpolated smoothly
// between position updates, kill tracers, cheaters ringed once flagged and
// the area-of-interest circle around a followed player.
//
// Interpolation: each player keeps a short history of (ts, x, y, yaw). We
// draw at "now minus a small delay" on the game server's clock, so there is
// almost always an update on each side of the drawn instant; the delay is
// the price of motion without jitter at 20-64 Hz.

const INTERP_DELAY_MS = 100;
const HISTORY = 24;
const STALE_MS = 1500;     // no update for this long: outside the interest area, drawn faded
const TRACER_MS = 900;
const TEAM_COLORS = ["#38bdf8", "#fb923c", "#a3e635", "#e879f9"];
// Players whose team we have not seen (we joined mid-match) still get a
// stable colour of their own, so the eye can track them.
const PLAYER_COLORS = ["#60a5fa", "#f472b6", "#34d399", "#fbbf24", "#a78bfa", "#22d3ee", "#fb7185", "#a3e635", "#f97316", "#2dd4bf"];
const FLAG_COLOR = "#f43f5e";

export class MapView {
  constructor(canvas, { onPick } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onPick = onPick;
    this.players = new Map();  // id -> {samples, team, name, alive, flagged}
    this.teams = new Map();    // team name -> color
    this.tracers = [];
    this.map = null;           // {width, height, walls}
    this.bounds = null;        // fitted from positions until a map arrives
    this.follow = null;
    this.followRadius = null;
    this.clockLag = null;      // smoothed (receive time - event ts), ms
    this.view = { scale: 1, ox: 0, oy: 0 };
    new ResizeObserver(() => this.#resize()).observe(canvas);
    canvas.addEventListener("click", (ev) => this.#click(ev));
    this.#resize();
  }

  reset() {
    this.players.clear();
    this.teams.clear();
    this.tracers = [];
    this.map = null;
    this.bounds = null;
    this.follow = null;
    this.clockLag = null;
  }

  setMap(spec) {
    this.map = spec && Number.isFinite(spec.width) ? spec : null;
  }

  setFollow(player, radius) {
    this.follow = player;
    this.followRadius = radius ?? null;
  }

  /** Apply one event from the match stream. */
  apply(ev) {
    switch (ev.type) {
      case "pos":
        this.#sample(ev);
        break;
      case "join": {
        const p = this.#player(ev.player);
        if (ev.team) p.team = ev.team;
        if (ev.name) p.name = ev.name;
        break;
      }
      case "spawn": {
        const p = this.#player(ev.player);
        p.alive = true;
        if (ev.team) p.team = ev.team;
        this.#sample(ev);
        break;
      }
      case "leave":
        this.players.delete(ev.player);
        break;
      case "kill": {
        const victim = this.players.get(ev.target);
        if (victim) victim.alive = false;
        const a = this.#latest(ev.player);
        const b = this.#latest(ev.target);
        // Replayed (old) kills update the state but draw no tracer.
        const fresh = Date.now() - Number(ev.ts) - (this.clockLag ?? 0) < 1000;
        if (a && b && fresh) this.tracers.push({ a, b, t: performance.now(), headshot: ev.headshot });
        break;
      }
      default:
        break;
    }
  }

  /** Positions after a resync: replace what we hold for each player. */
  snapshot(players) {
    for (const ev of Object.values(players)) {
      const p = this.#player(ev.player);
      p.samples = [];
      this.#sample(ev);
    }
  }

  flag(player, alert) {
    const p = this.#player(player);
    p.flagged = { kind: alert.kind.replace(/^rule:/, ""), score: alert.score };
  }

  /** Ids and positions as last drawn, for the status line and the tests. */
  summary() {
    const out = {};
    for (const [id, p] of this.players) {
      const s = p.samples.at(-1);
      if (s) out[id] = { x: s.x, y: s.y, yaw: s.yaw, flagged: Boolean(p.flagged), stale: p.stale, alive: p.alive };
    }
    return out;
  }

  /** Where `id` was last drawn, in CSS pixels of the canvas (null if not drawn). */
  screenOf(id) {
    const d = this.drawn?.find((e) => e.id === id);
    if (!d) return null;
    const [x, y] = this.#px(d.s.x, d.s.y);
    return { x, y };
  }

  draw() {
    const { ctx, canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    ctx.clearRect(0, 0, w, h);
    this.#fit(w, h);
    this.#drawFloor();
    this.#drawWalls();
    const at = Date.now() - (this.clockLag ?? 0) - INTERP_DELAY_MS;
    const now = Date.now();
    const drawn = [];
    for (const [id, p] of this.players) {
      const s = interpolate(p.samples, at);
      if (!s) continue;
      p.stale = now - p.lastSeen > STALE_MS;
      drawn.push({ id, p, s });
    }
    this.#drawFollowArea(drawn);
    this.#drawTracers();
    // Flagged players last, so their rings are never hidden under others.
    drawn.sort((a, b) => Number(Boolean(a.p.flagged)) - Number(Boolean(b.p.flagged)));
    for (const d of drawn) this.#drawPlayer(d.id, d.p, d.s);
    this.drawn = drawn;
  }

  // --- internals --------------------------------------------------------

  #player(id) {
    let p = this.players.get(id);
    if (!p) {
      p = { samples: [], team: null, name: null, alive: true, flagged: null, lastSeen: 0, stale: false };
      this.players.set(id, p);
    }
    return p;
  }

  #sample(ev) {
    if (!Number.isFinite(ev.x) || !Number.isFinite(ev.y)) return;
    const p = this.#player(ev.player);
    const ts = Number(ev.ts);
    const prev = p.samples.at(-1);
    const yaw = Number.isFinite(ev.yaw) ? ev.yaw : prev?.yaw ?? 0;
    if (prev && ts < prev.ts) return; // a late duplicate after a replay: keep time monotonic
    p.samples.push({ ts, x: ev.x, y: ev.y, yaw });
    if (p.samples.length > HISTORY) p.samples.splice(0, p.samples.length - HISTORY);
    p.lastSeen = Date.now();
    if (ev.type === "pos") p.alive = true;
    const lag = Date.now() - ts;
    // Follow the lag down at once, up slowly: the lower envelope is network
    // time plus clock offset, the spikes are just late frames.
    this.clockLag = this.clockLag === null ? lag : lag < this.clockLag ? lag : this.clockLag * 0.98 + lag * 0.02;
    if (!this.map) this.#grow(ev.x, ev.y);
  }

  #latest(id) {
    const s = this.players.get(id)?.samples.at(-1);
    return s ? { x: s.x, y: s.y } : null;
  }

  #grow(x, y) {
    const b = this.bounds ?? { minX: x, maxX: x, minY: y, maxY: y };
    b.minX = Math.min(b.minX, x);
    b.maxX = Math.max(b.maxX, x);
    b.minY = Math.min(b.minY, y);
    b.maxY = Math.max(b.maxY, y);
    this.bounds = b;
  }

  #fit(w, h) {
    let box;
    if (this.map) {
      box = { minX: this.map.minX ?? 0, minY: this.map.minY ?? 0, maxX: (this.map.minX ?? 0) + this.map.width, maxY: (this.map.minY ?? 0) + this.map.height };
    } else if (this.bounds) {
      const pad = Math.max(5, 0.08 * Math.max(this.bounds.maxX - this.bounds.minX, this.bounds.maxY - this.bounds.minY));
      box = { minX: this.bounds.minX - pad, minY: this.bounds.minY - pad, maxX: this.bounds.maxX + pad, maxY: this.bounds.maxY + pad };
    } else {
      box = { minX: 0, minY: 0, maxX: 100, maxY: 100 };
    }
    const margin = 16;
    const bw = Math.max(1, box.maxX - box.minX);
    const bh = Math.max(1, box.maxY - box.minY);
    const scale = Math.min((w - 2 * margin) / bw, (h - 2 * margin) / bh);
    // y grows upwards in the game, downwards on a canvas: flip it.
    this.view = {
      scale,
      ox: (w - bw * scale) / 2 - box.minX * scale,
      oy: (h + bh * scale) / 2 + box.minY * scale,
      box,
    };
  }

  #px(x, y) {
    const v = this.view;
    return [v.ox + x * v.scale, v.oy - y * v.scale];
  }

  #drawFloor() {
    const { ctx } = this;
    const { box, scale } = this.view;
    const [x0, y0] = this.#px(box.minX, box.maxY);
    const [x1, y1] = this.#px(box.maxX, box.minY);
    ctx.fillStyle = "#0f172a";
    roundRect(ctx, x0, y0, x1 - x0, y1 - y0, 10);
    ctx.fill();
    // A 10 m grid gives a sense of scale and speed.
    const step = 10 * scale >= 24 ? 10 : 25;
    ctx.strokeStyle = "rgba(148,163,184,0.07)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let gx = Math.ceil(box.minX / step) * step; gx <= box.maxX; gx += step) {
      const [px] = this.#px(gx, 0);
      ctx.moveTo(px, y0);
      ctx.lineTo(px, y1);
    }
    for (let gy = Math.ceil(box.minY / step) * step; gy <= box.maxY; gy += step) {
      const [, py] = this.#px(0, gy);
      ctx.moveTo(x0, py);
      ctx.lineTo(x1, py);
    }
    ctx.stroke();
  }

  #drawWalls() {
    const walls = this.map?.walls;
    if (!walls?.length) return;
    const { ctx } = this;
    ctx.fillStyle = "#334155";
    ctx.strokeStyle = "#475569";
    ctx.lineWidth = 1;
    ctx.lineCap = "round";
    for (const wall of walls) {
      if (Array.isArray(wall)) {
        // A segment [x1, y1, x2, y2], drawn as a thick line.
        const [ax, ay] = this.#px(wall[0], wall[1]);
        const [bx, by] = this.#px(wall[2], wall[3]);
        ctx.save();
        ctx.strokeStyle = "#475569";
        ctx.lineWidth = Math.max(3, (this.map.wallWidth ?? 0.8) * this.view.scale);
        ctx.beginPath();
        ctx.moveTo(ax, ay);
        ctx.lineTo(bx, by);
        ctx.stroke();
        ctx.restore();
      } else {
        // Tall walls block sight; low crates (`low`) only block movement.
        const [x0, y0] = this.#px(wall.x, wall.y + wall.h);
        const [x1, y1] = this.#px(wall.x + wall.w, wall.y);
        ctx.fillStyle = wall.low ? "#1f2b45" : "#334155";
        ctx.strokeStyle = wall.low ? "#3b4a6b" : "#475569";
        roundRect(ctx, x0, y0, x1 - x0, y1 - y0, 2);
        ctx.fill();
        ctx.stroke();
      }
    }
  }

  #drawFollowArea(drawn) {
    if (!this.follow) return;
    const me = drawn.find((d) => d.id === this.follow);
    if (!me || !this.followRadius) return;
    const { ctx } = this;
    const [cx, cy] = this.#px(me.s.x, me.s.y);
    const r = this.followRadius * this.view.scale;
    ctx.save();
    ctx.fillStyle = "rgba(250,250,250,0.04)";
    ctx.strokeStyle = "rgba(250,250,250,0.35)";
    ctx.setLineDash([6, 6]);
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, Math.PI * 2);
    ctx.fill();
    ctx.stroke();
    ctx.restore();
  }

  #drawTracers() {
    const { ctx } = this;
    const now = performance.now();
    this.tracers = this.tracers.filter((t) => now - t.t < TRACER_MS);
    for (const t of this.tracers) {
      const fade = 1 - (now - t.t) / TRACER_MS;
      const [ax, ay] = this.#px(t.a.x, t.a.y);
      const [bx, by] = this.#px(t.b.x, t.b.y);
      ctx.strokeStyle = t.headshot ? `rgba(250,204,21,${fade})` : `rgba(248,250,252,${0.8 * fade})`;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.stroke();
    }
  }

  #teamColor(team, id) {
    if (!team) return PLAYER_COLORS[hash(id) % PLAYER_COLORS.length];
    if (!this.teams.has(team)) this.teams.set(team, TEAM_COLORS[this.teams.size % TEAM_COLORS.length]);
    return this.teams.get(team);
  }

  #drawPlayer(id, p, s) {
    const { ctx } = this;
    const [x, y] = this.#px(s.x, s.y);
    const r = Math.max(6, Math.min(11, 1.0 * this.view.scale));
    const color = this.#teamColor(p.team, id);
    const followed = id === this.follow;
    ctx.save();
    const alpha = p.stale ? 0.22 : p.alive ? 1 : 0.35;
    // A flagged player's ring stays bright even while they are dead or far.
    ctx.globalAlpha = Math.max(alpha, 0.7);
    if (p.flagged) {
      const pulse = 0.5 + 0.5 * Math.sin(performance.now() / 220);
      ctx.strokeStyle = FLAG_COLOR;
      ctx.lineWidth = 2.5;
      ctx.shadowColor = FLAG_COLOR;
      ctx.shadowBlur = 8 + 8 * pulse;
      ctx.beginPath();
      ctx.arc(x, y, r + 5 + 2 * pulse, 0, Math.PI * 2);
      ctx.stroke();
      ctx.shadowBlur = 0;
    }
    ctx.globalAlpha = alpha;
    // Facing: a cone in front of the player (yaw in degrees, 0 = +x, counter-clockwise).
    const a = (-s.yaw * Math.PI) / 180;
    ctx.fillStyle = hexAlpha(color, 0.28);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.arc(x, y, r * 3.4, a - 0.38, a + 0.38);
    ctx.closePath();
    ctx.fill();
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, Math.PI * 2);
    ctx.fill();
    ctx.strokeStyle = followed ? "#f8fafc" : "rgba(15,23,42,0.9)";
    ctx.lineWidth = followed ? 2.5 : 1.5;
    ctx.stroke();
    ctx.strokeStyle = "#0f172a";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + Math.cos(a) * r, y + Math.sin(a) * r);
    ctx.stroke();
    ctx.font = "600 11px Inter, system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillStyle = p.flagged ? "#fda4af" : "rgba(226,232,240,0.85)";
    const label = p.flagged ? `${p.name ?? id} · ${p.flagged.kind}` : p.name ?? id;
    ctx.fillText(label, x, y + r + 14);
    ctx.restore();
  }

  #resize() {
    const dpr = window.devicePixelRatio || 1;
    const { clientWidth: w, clientHeight: h } = this.canvas;
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.max(1, Math.round(h * dpr));
  }

  #click(ev) {
    const rect = this.canvas.getBoundingClientRect();
    const mx = ev.clientX - rect.left;
    const my = ev.clientY - rect.top;
    let best = null;
    for (const d of this.drawn ?? []) {
      const [x, y] = this.#px(d.s.x, d.s.y);
      const dist = Math.hypot(x - mx, y - my);
      if (dist < 18 && (!best || dist < best.dist)) best = { id: d.id, dist };
    }
    this.onPick?.(best?.id ?? null);
  }
}

/** The sample at time `at` (ms), linear between neighbours, yaw the short way round. */
export function interpolate(samples, at) {
  if (!samples.length) return null;
  const last = samples[samples.length - 1];
  if (at >= last.ts) return last;
  if (at <= samples[0].ts) return samples[0];
  let i = samples.length - 1;
  while (i > 0 && samples[i - 1].ts > at) i -= 1;
  const a = samples[i - 1];
  const b = samples[i];
  const span = b.ts - a.ts;
  const t = span > 0 ? (at - a.ts) / span : 1;
  let dyaw = ((b.yaw - a.yaw + 540) % 360) - 180;
  if (!Number.isFinite(dyaw)) dyaw = 0;
  return { ts: at, x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t, yaw: a.yaw + dyaw * t };
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect ? ctx.roundRect(x, y, w, h, r) : ctx.rect(x, y, w, h);
}

function hash(s) {
  let h = 0;
  for (const c of String(s)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

function hexAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}
