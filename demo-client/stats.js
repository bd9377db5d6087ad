// Live figures: updates per second, publish-to-screen latency and the
// connection state. Latency is measured from each event's `ts` (set by the
// game server when it published) to the animation frame that first drew
// it, so it covers SDK, broker, relay, network, decode and paint.

const WINDOW_MS = 5000;
const MAX_SAMPLES = 4000;

export class Stats {
  constructor(els) {
    this.els = els;
    this.updates = [];     // receive times (ms) of position updates
    this.latencies = [];   // [time, latency ms]
    this.unpainted = [];   // ts of events received since the last frame
    this.reconnects = 0;
    setInterval(() => this.render(), 500);
  }

  /** Events just received; their latency is taken when they are painted. */
  received(events) {
    const now = performance.now();
    for (const ev of events) {
      if (ev.type === "pos") this.updates.push(now);
      if (Number.isFinite(ev.ts)) this.unpainted.push(ev.ts);
    }
  }

  /** Call from requestAnimationFrame, after drawing. */
  painted() {
    if (!this.unpainted.length) return;
    const wall = Date.now();
    const now = performance.now();
    for (const ts of this.unpainted) this.latencies.push([now, wall - ts]);
    this.unpainted.length = 0;
    if (this.latencies.length > MAX_SAMPLES) this.latencies.splice(0, this.latencies.length - MAX_SAMPLES);
  }

  /** Replayed history would read as seconds of "latency": leave it out. */
  discardUnpainted() {
    this.unpainted.length = 0;
  }

  reconnected() {
    this.reconnects += 1;
  }

  snapshot() {
    const now = performance.now();
    const cut = now - WINDOW_MS;
    while (this.updates.length && this.updates[0] < now - 1000) this.updates.shift();
    while (this.latencies.length && this.latencies[0][0] < cut) this.latencies.shift();
    const sorted = this.latencies.map((l) => l[1]).sort((a, b) => a - b);
    return {
      rate: this.updates.length,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      samples: sorted.length,
      reconnects: this.reconnects,
    };
  }

  render() {
    const s = this.snapshot();
    this.els.rate.textContent = String(s.rate);
    showMs(this.els.p50, s.p50);
    showMs(this.els.p99, s.p99);
    this.els.p50.dataset.ms = s.p50 === null ? "" : String(s.p50);
    this.els.p99.dataset.ms = s.p99 === null ? "" : String(s.p99);
    this.els.reconnects.textContent = String(s.reconnects);
  }
}

/** Show a connection's state on its pill. */
export function showState(pill, state, detail) {
  pill.dataset.state = state;
  pill.querySelector(".state").textContent = state;
  pill.title = detail ? `${pill.dataset.label ?? ""} ${detail}`.trim() : pill.dataset.label ?? "";
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** "12 ms" with a small unit, so four figures fit side by side. */
function showMs(el, ms) {
  if (ms === null) {
    el.textContent = "–";
    return;
  }
  const num = document.createElement("span");
  num.textContent = ms < 10 ? ms.toFixed(1) : String(Math.round(ms));
  const unit = document.createElement("small");
  unit.textContent = " ms";
  el.replaceChildren(num, unit);
}
