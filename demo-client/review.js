// The analysts' review page: polls /review.json (the demo server ranks
// the alerts and scores it has read from the bus) and fills two tables.

import { kindLabel, shortName, topFeatures } from "./alerts.js";

const POLL_MS = 2_000;

const flagged = document.querySelector("#flagged tbody");
const accounts = document.querySelector("#accounts tbody");
const updated = document.querySelector("#review-updated");

async function poll() {
  try {
    const res = await fetch("review.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    fill(flagged, body.flagged ?? [], flaggedRow, "No flagged player yet.", 7);
    fill(accounts, body.accounts ?? [], accountRow, "No scores yet.", 5);
    document.querySelector("#flagged-count").textContent = String((body.flagged ?? []).length);
    document.querySelector("#accounts-count").textContent = String((body.accounts ?? []).length);
    updated.dataset.state = "live";
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    updated.dataset.state = "error";
    updated.textContent = `cannot reach the demo server (${err.message}); retrying`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function fill(tbody, rows, render, empty, columns) {
  if (!rows.length) {
    const td = cell(empty);
    td.colSpan = columns;
    const tr = document.createElement("tr");
    tr.className = "empty";
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  tbody.replaceChildren(...rows.map((row, i) => render(row, i + 1)));
}

function flaggedRow(q, rank) {
  const tr = document.createElement("tr");
  tr.dataset.match = q.match;
  tr.dataset.player = q.player;
  const kinds = (q.kinds ?? []).map(kindLabel).join(", ");
  const features = topFeatures(q.features)
    .map((f) => `${String(f.name).replaceAll("_", " ")} ${num(f.value)}${against(f)}`)
    .join("; ");
  tr.append(cell(rank), cell(shortName(q.match), q.match), cell(q.player, "", "player"),
            cell(num(q.score), "", "mono"), cell([kinds, q.reason].filter(Boolean).join(": ")),
            cell(features, "", "features"), cell(Number.isFinite(q.ping) ? `${q.ping} ms` : "–"));
  return tr;
}

/** What a feature value is read against: the population, or the player's own earlier matches. */
function against(f) {
  if (Number.isFinite(f.percentile)) return ` (p${Math.round(f.percentile)})`;
  if (Number.isFinite(f.own_median)) return ` (own ${num(f.own_median)})`;
  return "";
}

function accountRow(a, rank) {
  const tr = document.createElement("tr");
  tr.dataset.player = a.player;
  tr.dataset.matches = String(a.matches);
  tr.append(cell(rank), cell(a.player, "", "player"), cell(a.matches),
            cell(a.tail.toExponential(1), "", "mono"),
            cell(`${shortName(a.top_match)} · ${num(a.top_score)}`, a.top_match));
  return tr;
}

function cell(text, title = "", cls = "") {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (title) td.title = title;
  if (cls) td.className = cls;
  return td;
}

function num(v) {
  const x = Number(v);
  if (!Number.isFinite(x)) return String(v ?? "");
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toFixed(3);
}

poll();
