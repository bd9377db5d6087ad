// The kill feed: newest first, a bounded list, plus round and match
// milestones so a viewer can follow the flow of the game.

const MAX_ENTRIES = 12;

export class KillFeed {
  constructor(list, { nameOf = (id) => id } = {}) {
    this.list = list;
    this.nameOf = nameOf;
    this.count = 0;
  }

  clear() {
    this.list.replaceChildren();
    this.count = 0;
  }

  apply(ev) {
    switch (ev.type) {
      case "kill":
        this.#kill(ev);
        break;
      case "round_start":
        this.#note(`Round ${ev.round} starts${ev.map ? ` on ${ev.map}` : ""}`);
        break;
      case "round_end":
        this.#note(`Round ${ev.round} over${ev.winner ? `: ${ev.winner} wins` : ""}`);
        break;
      case "match_end":
        this.#note(`Match over${ev.winner ? `: ${ev.winner} wins` : ""}`);
        break;
      default:
        break;
    }
  }

  #kill(ev) {
    const li = document.createElement("li");
    li.className = "kill";
    li.dataset.ts = String(ev.ts);
    const killer = span("who", this.nameOf(ev.player));
    const weapon = span("weapon", ev.weapon ?? "?");
    const victim = span("who victim", this.nameOf(ev.target));
    li.append(killer, weapon);
    if (ev.headshot) li.append(span("hs", "headshot"));
    if (Number.isFinite(ev.distance)) li.append(span("dist", `${Math.round(ev.distance)} m`));
    li.append(victim, span("time", clock(ev.ts)));
    this.#push(li);
    this.count += 1;
  }

  #note(text) {
    const li = document.createElement("li");
    li.className = "note";
    li.textContent = text;
    this.#push(li);
  }

  #push(li) {
    this.list.prepend(li);
    while (this.list.children.length > MAX_ENTRIES) this.list.lastElementChild.remove();
  }
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

export function clock(ts) {
  const d = new Date(Number(ts));
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour12: false });
}
