// Hedgerow testnet dashboard: one server-sent-events stream per page, no polling.
"use strict";

const HISTORY_POINTS_MAX = 600;
const TIMELINE_SHOWN_MAX = 200;
const COLORS = ["#2f5d8a", "#c0392b", "#2e7d32", "#b26a00", "#6a3d9a", "#00838f", "#ad1457", "#5d4037"];

const state = {
  token: "",
  history: { t: [], names: [], heights: {} },
  chart: null,
  chartNames: "",
  rows: new Map(),
  busy: false,
  snapshot: null,
};

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== "") node.textContent = text;
  return node;
}

// -- token ---------------------------------------------------------------------------------------

function loadToken() {
  const match = /token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem("hedgerow-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname);  // keep the token out of the address bar
  }
  state.token = sessionStorage.getItem("hedgerow-token") || "";
  document.getElementById("token-bar").hidden = state.token !== "";
}

function saveToken() {
  const value = document.getElementById("token-input").value.trim();
  if (value) {
    sessionStorage.setItem("hedgerow-token", value);
    loadToken();
  }
}

// -- control -------------------------------------------------------------------------------------

function say(text, isError = false) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
}

async function post(path, body) {
  if (!state.token) {
    document.getElementById("token-bar").hidden = false;
    say("control needs the token printed by `hedgerow testnet dashboard`", true);
    return;
  }
  state.busy = true;
  renderControls();
  try {
    const reply = await fetch(path, {
      method: "POST",
      headers: { "X-Hedgerow-Token": state.token, "Content-Type": "application/json" },
      body: body === undefined ? "{}" : JSON.stringify(body),
    });
    const answer = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      say(`${path}: ${answer.error || reply.status}`, true);
      if (reply.status === 401) document.getElementById("token-bar").hidden = false;
    } else {
      say(answer.result || (answer.partition ? "partition open" : answer.healed ? "partition healed" : "done"));
    }
  } catch (error) {
    say(`${path}: ${error}`, true);
  } finally {
    state.busy = false;
    renderControls();
  }
}

function nodeAction(name, action) {
  return post(`/api/nodes/${encodeURIComponent(name)}/${action}`);
}

function openPartition() {
  const ticked = [...document.querySelectorAll("input.cut:checked")].map((box) => box.dataset.node);
  if (ticked.length === 0) {
    say("tick the nodes to cut off first", true);
    return;
  }
  post("/api/partition", { a: ticked });
}

// -- nodes table ----------------------------------------------------------------------------------

const ACTIONS_BY_STATE = { alive: ["pause", "kill"], paused: ["resume", "kill"], killed: ["start"] };
const CELLS = ["role", "state", "height", "round", "leader", "peers", "age", "tps"];

function makeRow(name) {
  const row = el("tr", { "data-node": name, class: "node" });
  const cut = el("input", { type: "checkbox", class: "cut", "data-node": name, "aria-label": `cut ${name}` });
  const first = el("td");
  first.append(cut);
  row.append(first, el("td", { class: "name mono" }, name));
  for (const cell of CELLS) {
    const numeric = ["height", "round", "peers", "age", "tps"].includes(cell);
    row.append(el("td", { class: `${cell}${numeric ? " num" : ""}` }));
  }
  const control = el("td", { class: "control" });
  for (const action of ["pause", "resume", "kill", "start"]) {
    const button = el("button", { type: "button", "data-action": action, "data-node": name }, action);
    button.addEventListener("click", () => nodeAction(name, action));
    control.append(button);
  }
  row.append(control);
  return row;
}

function fmt(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" ? value.toFixed(digits) : String(value);
}

function renderNodes(snapshot) {
  const body = document.querySelector("#nodes tbody");
  const validators = snapshot.nodes.filter((n) => n.role === "validator").map((n) => n.name);
  for (const view of snapshot.nodes) {
    let row = state.rows.get(view.name);
    if (!row) {
      row = makeRow(view.name);
      state.rows.set(view.name, row);
      body.append(row);
    }
    const put = (cell, text) => { row.querySelector(`td.${cell}`).textContent = text; };
    put("role", view.role);
    put("state", view.state);
    row.querySelector("td.state").className = `state state-${view.state}`;
    row.dataset.state = view.state;
    put("height", fmt(view.height));
    row.querySelector("td.height").classList.toggle("stale", Boolean(view.height_stale));
    put("round", fmt(view.round));
    const leader = view.leader === null || view.leader === undefined ? null : validators[view.leader] ?? view.leader;
    put("leader", fmt(leader));
    put("peers", fmt(view.peers));
    put("age", view.last_commit_age_ms === null || view.last_commit_age_ms === undefined
      ? "–" : `${(view.last_commit_age_ms / 1000).toFixed(1)} s`);
    put("tps", fmt(view.tx_per_second, 1));
    row.classList.toggle("is-leader", leader === view.name);
    row.title = view.error ? `last error: ${view.error}` : "";
  }
  renderControls();
  const alive = snapshot.nodes.filter((n) => n.state === "alive");
  const top = Math.max(-1, ...snapshot.nodes.map((n) => n.height ?? -1));
  document.getElementById("summary").textContent =
    `${alive.length}/${snapshot.nodes.length} alive · height ${top < 0 ? "–" : top} · app ${snapshot.app}`;
  document.getElementById("dir").textContent = snapshot.dir;
  const cut = snapshot.partition;
  document.getElementById("partition-state").textContent =
    cut ? `${cut.side_a.join(",")} | ${cut.side_b.join(",")}` : "none";
}

function renderControls() {
  for (const [name, row] of state.rows) {
    const allowed = ACTIONS_BY_STATE[row.dataset.state] || [];
    for (const button of row.querySelectorAll("button[data-action]")) {
      button.hidden = !allowed.includes(button.dataset.action);
      button.disabled = state.busy;
    }
    row.querySelector("input.cut").disabled = state.busy;
    void name;
  }
  const open = Boolean(state.snapshot && state.snapshot.partition);
  document.getElementById("partition-btn").disabled = state.busy || open;
  document.getElementById("heal-btn").disabled = state.busy || !open;
}

// -- chart --------------------------------------------------------------------------------------

function chartData() {
  const h = state.history;
  return [h.t, ...h.names.map((name) => h.heights[name])];
}

function ensureChart() {
  const names = state.history.names.join(",");
  if (state.chart && state.chartNames === names) return;
  if (state.chart) state.chart.destroy();
  const box = document.getElementById("chart");
  const series = [{}, ...state.history.names.map((name, i) => ({
    label: name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, points: { show: false },
  }))];
  state.chart = new uPlot({
    width: Math.max(300, box.clientWidth - 10), height: 260, series,
    scales: { x: { time: true } },
    axes: [{}, { label: "committed height" }],
    legend: { live: false },
  }, chartData(), box);
  state.chartNames = names;
}

function appendPoint(snapshot) {
  const h = state.history;
  for (const view of snapshot.nodes) {
    if (!h.names.includes(view.name)) {
      h.names.push(view.name);
      h.heights[view.name] = h.t.map(() => null);
    }
  }
  h.t.push(snapshot.t);
  for (const name of h.names) {
    const view = snapshot.nodes.find((n) => n.name === name);
    h.heights[name].push(view ? view.height : null);
  }
  if (h.t.length > HISTORY_POINTS_MAX) {
    h.t.shift();
    for (const name of h.names) h.heights[name].shift();
  }
}

function renderChart() {
  if (typeof uPlot === "undefined" || state.history.t.length === 0) return;
  ensureChart();
  state.chart.setData(chartData());
}

// -- timeline, ledger, jobs ----------------------------------------------------------------------

function addEvents(events) {
  const list = document.getElementById("timeline");
  for (const event of events) {
    const item = el("li", { class: `ev-${event.kind}`, "data-kind": event.name });
    item.append(el("span", { class: "when" }, new Date(event.t * 1000).toLocaleTimeString()),
      el("span", { class: "kind" }, event.name), el("span", { class: "mono" }, `${event.node} `),
      el("span", {}, event.detail));
    list.prepend(item);
  }
  while (list.children.length > TIMELINE_SHOWN_MAX) list.lastChild.remove();
}

function table(columns, rows) {
  const out = el("table");
  const head = el("tr");
  for (const column of columns) head.append(el("th", {}, column));
  out.append(head);
  for (const row of rows) {
    const line = el("tr");
    for (const cell of row) line.append(el("td", {}, String(cell)));
    out.append(line);
  }
  return out;
}

const short = (hex) => (hex ? `${String(hex).slice(0, 8)}…` : "–");

function renderLedger(snapshot) {
  const box = document.getElementById("ledger");
  box.replaceChildren();
  if (snapshot.app !== "grassroots") {
    box.textContent = `this testnet runs the ${snapshot.app} app; start one with --app grassroots for the ledger`;
    return;
  }
  const ledger = snapshot.ledger;
  if (!ledger) {
    box.textContent = "no running node answered yet";
    return;
  }
  box.classList.remove("muted");
  box.append(el("div", { class: "muted" }, `from ${ledger.from}; open: ` +
    (Object.entries(ledger.open_counts).map(([k, v]) => `${v} ${k}s`).join(", ") || "no contracts")));
  box.append(el("h3", {}, "Supply per issuer"), table(["issuer", "maturity", "outstanding", "held by others"],
    ledger.supply.map((r) => [short(r.issuer), r.maturity, r.outstanding, r.held_by_others])));
  box.append(el("h3", {}, "Issuers: liquidity and defaults"), table(["agent", "ratios", "defaults", "net"],
    ledger.accounts.map((a) => [short(a.agent), JSON.stringify(a.ratios), `${a.default_count}${a.in_default ? " (in default)" : ""}`,
      a.net_position])));
}

function drawCurve(canvas, curve) {
  const ctx = canvas.getContext("2d");
  const values = curve.map((p) => p[1]).filter((v) => typeof v === "number" && v > 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (values.length < 2) return;
  const logs = values.map(Math.log10);
  const lo = Math.min(...logs), hi = Math.max(...logs);
  ctx.strokeStyle = "#2f5d8a";
  ctx.beginPath();
  logs.forEach((v, i) => {
    const x = (i / (logs.length - 1)) * (canvas.width - 4) + 2;
    const y = canvas.height - 2 - ((v - lo) / (hi - lo || 1)) * (canvas.height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function renderJobs(snapshot) {
  const box = document.getElementById("jobs");
  if (!snapshot.jobs || snapshot.jobs.length === 0) return;
  box.replaceChildren();
  box.classList.remove("muted");
  const out = table(["job", "kind", "iteration", "metric", "last", "curve (log)", "stragglers", "done"], []);
  for (const job of snapshot.jobs) {
    const last = job.curve.length ? job.curve[job.curve.length - 1][1] : null;
    const line = el("tr");
    for (const cell of [job.job, job.kind, fmt(job.iteration), job.metric,
      typeof last === "number" ? last.toExponential(2) : "–"]) line.append(el("td", {}, String(cell)));
    const canvas = el("canvas", { class: "curve", width: "160", height: "36" });
    const cell = el("td");
    cell.append(canvas);
    line.append(cell, el("td", {}, (job.stragglers || []).join(",") || "–"), el("td", {}, job.done ? "yes" : "no"));
    out.append(line);
    drawCurve(canvas, job.curve);
  }
  box.append(out);
}

// -- stream --------------------------------------------------------------------------------------

function render(snapshot) {
  if (!snapshot) return;
  state.snapshot = snapshot;
  renderNodes(snapshot);
  renderChart();
  renderLedger(snapshot);
  renderJobs(snapshot);
}

function connect() {
  const conn = document.getElementById("conn");
  const source = new EventSource("/api/stream");
  source.addEventListener("init", (message) => {
    const data = JSON.parse(message.data);
    state.history = data.history;
    document.getElementById("timeline").replaceChildren();
    addEvents(data.events);
    render(data.snapshot);
    conn.textContent = "live";
    conn.className = "conn conn-live";
  });
  source.addEventListener("snapshot", (message) => {
    const data = JSON.parse(message.data);
    appendPoint(data);
    addEvents(data.events);
    render(data);
  });
  source.onerror = () => {
    conn.textContent = "reconnecting…";
    conn.className = "conn conn-lost";
  };
}

window.addEventListener("DOMContentLoaded", () => {
  loadToken();
  document.getElementById("token-bar").addEventListener("submit", (event) => {
    event.preventDefault();
    saveToken();
  });
  document.getElementById("partition-btn").addEventListener("click", openPartition);
  document.getElementById("heal-btn").addEventListener("click", () => post("/api/heal"));
  window.addEventListener("resize", () => { state.chartNames = ""; renderChart(); });
  connect();
});
