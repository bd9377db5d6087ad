// The WebSocket link to a gamebus relay: msgpack frames, a fresh token per
// attempt, reconnect with capped exponential backoff and jitter, and (in
// MatchStream) resume from the last position the page saw, so a relay
// restart costs a short pause and no missing events.

import { decode, encode } from "@msgpack/msgpack";

export const SUBPROTOCOL = "gamebus.v1.msgpack";

const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;
const PING_EVERY_MS = 5000;
// A relay that says nothing for this long is presumed gone (a half-open TCP
// connection never fires `close` on its own).
const SILENCE_LIMIT_MS = 15000;

// Close codes of the relay protocol, for the status line.
const CLOSE_REASONS = {
  1000: "closed",
  1001: "relay going away",
  1006: "connection lost",
  1009: "message too big",
  1011: "relay error",
  1012: "relay restarting",
  4001: "token invalid",
  4002: "token expired",
  4003: "forbidden",
  4008: "rate limited",
  4009: "too slow",
  4010: "too many subscriptions",
};

/**
 * One self-healing relay connection.
 *
 * `token()` is awaited before every attempt, so an expired token is simply
 * replaced. `onOpen(conn, attempt)` runs on every (re)connect and is where
 * subscriptions are (re)made; `onMessage(msg)` gets each decoded message;
 * `onState(state, detail)` drives the status pills.
 */
export class RelayConnection {
  constructor({ name, url, token, onOpen, onMessage, onState }) {
    Object.assign(this, { name, url, token, onOpen, onMessage, onState });
    this.ws = null;
    this.attempt = 0;        // consecutive failed attempts, for the backoff
    this.connects = 0;       // successful opens; > 1 means we reconnected
    this.nextId = 1;
    this.stopped = false;
    this.lastHeard = 0;
    this.timer = null;
    this.pinger = null;
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.ws?.close(1000);
  }

  /** Send one protocol message; returns its id (or null when offline). */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = msg.id ?? this.nextId++;
    const out = msg.op === "area" ? msg : { ...msg, id };
    this.ws.send(encode(out));
    return id;
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  async #connect() {
    this.#state("connecting", this.attempt ? `attempt ${this.attempt + 1}` : "");
    let token;
    try {
      token = await this.token();
    } catch (err) {
      this.#retry(`token: ${err.message}`);
      return;
    }
    if (this.stopped) return;
    const url = new URL(this.url, location.href);
    url.searchParams.set("token", token);
    let ws;
    try {
      ws = new WebSocket(url, SUBPROTOCOL);
    } catch (err) {
      this.#retry(err.message);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.connects += 1;
      this.lastHeard = performance.now();
      this.#state("live", ws.protocol);
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.#heartbeat(), PING_EVERY_MS);
      this.onOpen?.(this, this.connects);
    };
    ws.onmessage = (ev) => {
      this.lastHeard = performance.now();
      let msg;
      try {
        msg = typeof ev.data === "string" ? JSON.parse(ev.data) : decode(new Uint8Array(ev.data));
      } catch (err) {
        console.warn(`${this.name}: undecodable frame`, err);
        return;
      }
      if (msg && typeof msg === "object") this.onMessage?.(msg, this);
    };
    ws.onclose = (ev) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) {
        this.#state("closed", "");
        return;
      }
      const why = CLOSE_REASONS[ev.code] ?? `code ${ev.code}`;
      // An expired token is routine: fetch a new one and go straight back.
      if (ev.code === 4002) this.attempt = 0;
      this.#retry(ev.reason ? `${why}: ${ev.reason}` : why, ev.code);
    };
    ws.onerror = () => {}; // `close` follows with the code; nothing to add here.
  }

  #heartbeat() {
    if (!this.isOpen) return;
    if (performance.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      this.ws.close(4000, "relay silent");
      return;
    }
    this.send({ op: "ping" });
  }

  #retry(why, code) {
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = code === 4002 ? 0 : Math.round(base * (0.5 + Math.random() * 0.5));
    this.attempt += 1;
    this.#state("reconnecting", `${why} · retry in ${(delay / 1000).toFixed(1)} s`, code);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.#connect(), delay);
  }

  #state(state, detail, code) {
    this.onState?.(state, detail, code);
  }
}

/**
 * The page's subscription to one match, with the bookkeeping that makes
 * resume exact: the latest `position` the relay reported per topic is sent
 * back as `resume` on reconnect; the relay replays what was missed and says
 * in `subscribed` whether anything could not be replayed (`gap`).
 */
export class MatchStream {
  static EVENTS_TOPIC = "game.events";

  constructor({ conn, onEvents, onSnapshot, onResumed, onError }) {
    Object.assign(this, { conn, onEvents, onSnapshot, onResumed, onError });
    this.match = null;
    this.position = null;     // {epoch, offsets: {topic: next offset}}
    this.follow = null;
    this.area = null;
    this.history = null;      // where to start a fresh subscription, if not live
    this.pending = new Map(); // sub id -> {match, resumedFrom}
    // Replayed history is drawn but kept out of the latency figures: it is
    // old by design. Frames before `subscribed` or within its `replayed`
    // count are replay.
    this.replaySeen = 0;
    this.replayLeft = 0;
  }

  /**
   * Watch `match` from now on. `from` (a position, optional) asks the relay
   * to replay the match's events from there first: the demo passes where
   * the match began, so the page knows teams, map and kills so far.
   */
  select(match, from = null) {
    if (this.match && this.match !== match) this.conn.send({ op: "unsub", match: this.match });
    this.match = match;
    this.position = null;
    this.history = from ? normalisePosition(from) : null;
    this.follow = null;
    this.area = null;
    this.subscribe();
  }

  /** (Re)subscribe; after a reconnect this carries the resume position. */
  subscribe() {
    if (!this.match || !this.conn.isOpen) return;
    const msg = { op: "sub", match: this.match };
    const from = this.position ?? this.history;
    if (from) msg.resume = { offsets: from.offsets, epochs: from.epochs };
    if (this.follow) msg.follow = this.follow;
    if (this.area) msg.area = this.area;
    const id = this.conn.send(msg);
    this.replaySeen = 0;
    this.replayLeft = 0;
    if (id !== null) {
      this.pending.set(id, { match: this.match, resumedFrom: this.position && clonePosition(this.position) });
    }
  }

  /** Follow a player (area of interest), or everyone again with `null`. */
  setFollow(player, radius) {
    this.follow = player ? (radius ? { player, r: radius } : player) : null;
    this.area = null;
    if (this.match) this.conn.send({ op: "area", match: this.match, area: null, follow: this.follow });
  }

  /** Route one relay message; returns true when it belonged to the stream. */
  handle(msg) {
    switch (msg.op) {
      case "subscribed": {
        const req = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (!req || req.match !== this.match) return true;
        // On a fresh subscription this is where the stream starts; on a
        // resume we already know where we were, and the replay moves us on.
        if (msg.position && !this.position) this.position = normalisePosition(msg.position);
        this.history = null;
        this.replayLeft = Math.max(0, (msg.replayed ?? 0) - this.replaySeen);
        this.replaySeen = 0;
        if (req.resumedFrom) {
          this.onResumed?.({
            from: req.resumedFrom,
            replayed: msg.replayed ?? 0,
            gap: Boolean(msg.gap),
            gaps: msg.gaps,
          });
        }
        return true;
      }
      case "events": {
        if (msg.match !== this.match) return true;
        const events = Array.isArray(msg.events) ? msg.events : [];
        if (msg.position) this.#advance(msg.position);
        let live = true;
        if (this.pending.size) {
          this.replaySeen += events.length;
          live = false;
        } else if (this.replayLeft > 0) {
          this.replayLeft -= events.length;
          live = false;
        }
        this.onEvents?.(events, live, msg);
        return true;
      }
      case "snapshot":
        if (msg.match === this.match) this.onSnapshot?.(msg.players ?? {});
        return true;
      case "error":
        if (this.pending.has(msg.id)) {
          const req = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          // The bus failed the request on the relay's side: ask again shortly.
          if (msg.code === "unavailable" && req.match === this.match) setTimeout(() => this.subscribe(), 1000);
          else this.onError?.(msg);
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  #advance(position) {
    // Offsets are partition offsets, shared with the other matches that
    // hash to the same partition, so they jump; only their order matters.
    this.position = mergePosition(this.position, normalisePosition(position));
  }
}

/** Relay positions come as {epoch, offsets} or {epochs, offsets}; keep per-topic epochs. */
export function normalisePosition(p) {
  const offsets = { ...(p?.offsets ?? {}) };
  const epochs = {};
  for (const topic of Object.keys(offsets)) {
    epochs[topic] = p?.epochs?.[topic] ?? p?.epoch ?? 0;
  }
  return { offsets, epochs };
}

function clonePosition(p) {
  return { offsets: { ...p.offsets }, epochs: { ...p.epochs } };
}

function mergePosition(prev, next) {
  if (!prev) return clonePosition(next);
  const out = clonePosition(prev);
  for (const [topic, off] of Object.entries(next.offsets)) {
    const sameEpoch = out.epochs[topic] === next.epochs[topic];
    out.offsets[topic] = sameEpoch ? Math.max(out.offsets[topic] ?? 0, off) : off;
    out.epochs[topic] = next.epochs[topic];
  }
  return out;
}
