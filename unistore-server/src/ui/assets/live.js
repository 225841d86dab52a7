// The live run page (/runs/{id}): follows the run's WebSocket (/ws/test/{id}, one message a
// second), keeps the cards, stepper, SLO panel, worker cards, charts and tables current, and
// reconnects with backoff when the socket closes. Data reaches the DOM through textContent only.
"use strict";

(() => {
  const data = UB.pageData();
  if (!data) return;
  const runId = data.run_id;
  const body = document.body;
  body.dataset.updates = "0";
  body.dataset.sockets = "0";

  const live = {
    socket: null,
    finished: data.ended,
    last: null,          // the last message received (parsed)
    lastRaw: null,       // and its text, as received
    retry: 0,
    timer: null,
    /** Closes the socket as a dropped network would (the page reconnects). For tests. */
    dropSocket() { if (live.socket) live.socket.close(); },
    /** Shows message `m` as if the socket had delivered it. For tests. */
    render(m) { handle(m); },
  };
  window.UBLive = live;

  // ---- buttons ---------------------------------------------------------------------------
  const startBtn = document.getElementById("btn-start");
  const stopBtn = document.getElementById("btn-stop");
  const notice = document.getElementById("live-notice");

  async function control(action, btn, payload) {
    btn.disabled = true;
    try {
      await UB.api("POST", `/api/runs/${encodeURIComponent(runId)}/${action}`, payload);
      UB.notice(notice, "ok", action === "start" ? "Starting: the workers connect, then warmup begins." : "Stopping: the workers finish what is in flight.");
      if (!live.socket && !live.finished) connect();
    } catch (e) {
      UB.notice(notice, "error", `Could not ${action} the run: ${e.message}`);
      btn.disabled = false;
    }
  }
  startBtn.addEventListener("click", () => control("start", startBtn));
  stopBtn.addEventListener("click", () => control("stop", stopBtn, { reason: "stopped from the web UI" }));

  // ---- charts ----------------------------------------------------------------------------
  const MAX_POINTS = 3600;
  const css = getComputedStyle(document.documentElement);
  const color = (name, fallback) => (css.getPropertyValue(name) || fallback).trim();
  const fmt = (digits, unit) => (u, v) => (v === null || v === undefined ? "–" : UB.num(v, digits) + unit);

  /** A uPlot time chart following its container's width; `axes` after the x axis. */
  function timeChart(el, series, axes, scales) {
    if (!el || typeof uPlot === "undefined") return null;
    const width = () => Math.max(260, el.clientWidth);
    const plot = new uPlot({
      width: width(),
      height: 240,
      scales: Object.assign({ x: { time: true } }, scales || {}),
      series: [{ label: "time" }].concat(series),
      axes: [{ stroke: "#667085", grid: { stroke: "#eef0f4" } }].concat(axes.map((a) => Object.assign({ stroke: "#667085", grid: { stroke: "#eef0f4" }, size: 64 }, a))),
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    }, [[]].concat(series.map(() => [])), el);
    new ResizeObserver(() => plot.setSize({ width: width(), height: 240 })).observe(el);
    return plot;
  }

  const zeroBased = { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] };
  const charts = data.ended ? null : {
    qps: timeChart(document.getElementById("chart-qps"), [
      { label: "throughput", scale: "ops", stroke: color("--qps", "#4f46e5"), width: 2, fill: "rgba(79,70,229,.08)", value: fmt(1, " ops/s") },
      { label: "errors", scale: "err", stroke: color("--err", "#dc2626"), width: 2, value: fmt(0, " /s") },
    ], [
      { scale: "ops", label: "ops/s" },
      { scale: "err", label: "errors/s", side: 1, grid: { show: false } },
    ], { ops: zeroBased, err: zeroBased }),
    latency: timeChart(document.getElementById("chart-latency"), [
      { label: "p50", stroke: color("--p50", "#2563eb"), width: 2, value: fmt(2, " ms") },
      { label: "p95", stroke: color("--p95", "#d97706"), width: 2, value: fmt(2, " ms") },
      { label: "p99", stroke: color("--p99", "#dc2626"), width: 2, value: fmt(2, " ms") },
    ], [{ label: "ms" }], { y: zeroBased }),
    conns: timeChart(document.getElementById("chart-conns"), [
      { label: "connections", stroke: "#7c3aed", width: 2, value: fmt(0, "") },
      { label: "in flight", stroke: "#059669", width: 2, value: fmt(2, "") },
    ], [{ label: "connections / operations" }], { y: zeroBased }),
  };
  const series = { x: [], qps: [], err: [], p50: [], p95: [], p99: [], conns: [], inflight: [] };
  let lastX = null;

  function plot(m) {
    const l = m.live;
    if (!charts || !l || !l.taken_at) return;
    const x = Date.parse(l.taken_at) / 1000;
    // A second seen before (the latest message repeated to a new socket) is not plotted twice.
    if (lastX !== null && x <= lastX) return;
    lastX = x;
    const perSecond = l.interval_s > 0 ? l.errors / l.interval_s : l.errors;
    const values = { x, qps: l.qps, err: perSecond, p50: l.p50_ms, p95: l.p95_ms, p99: l.p99_ms, conns: l.connections, inflight: l.in_flight };
    for (const k of Object.keys(series)) {
      series[k].push(values[k]);
      if (series[k].length > MAX_POINTS) series[k].shift();
    }
    if (charts.qps) charts.qps.setData([series.x, series.qps, series.err]);
    if (charts.latency) charts.latency.setData([series.x, series.p50, series.p95, series.p99]);
    if (charts.conns) charts.conns.setData([series.x, series.conns, series.inflight]);
    body.dataset.points = String(series.x.length);
  }

  // ---- helpers ---------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = el("td", c.num ? "num" : "", c.node ? undefined : c.text);
      if (c.node) td.appendChild(c.node);
      tr.appendChild(td);
    }
    return tr;
  }
  function replaceRows(tbody, rows, emptyText, cols) {
    tbody.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = el("td", "empty", emptyText);
      td.colSpan = cols;
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    rows.forEach((r) => tbody.appendChild(r));
  }
  const badge = (text, cls) => el("span", "badge " + (cls || text), text);

  // ---- stepper and timers ------------------------------------------------------------------
  const STEP_OF_PHASE = { PREPARING: 0, WARMUP: 1, MEASUREMENT: 2, COOLDOWN: 3, PROCESSING: 4 };
  function stepper(m) {
    let current;
    if (m.final) current = 4;
    else if (m.status === "PREPARED") current = 0;
    else current = STEP_OF_PHASE[m.phase] !== undefined ? STEP_OF_PHASE[m.phase] : 0;
    document.querySelectorAll("#stepper .step").forEach((s) => {
      const i = Number(s.dataset.step);
      s.className = "step" + (i < current || (m.final && i === 4) ? " done" : "") + (i === current ? " current" : "");
    });
    body.dataset.phase = m.final ? "DONE" : (m.status === "PREPARED" ? "PREPARED" : m.phase || "");
    const phases = m.phases || [];
    const total = phases.reduce((a, p) => a + p.length_s, 0);
    const elapsed = m.elapsed_s || 0;
    const bar = document.getElementById("progress-bar");
    if (bar) bar.style.width = (m.final ? 100 : total > 0 ? Math.min(100, (100 * elapsed) / total) : 0).toFixed(1) + "%";
    if (m.final) {
      UB.setText("t-phase", "done");
      UB.setText("t-phase-left", "–");
      UB.setText("t-left", "–");
      if (m.summary) UB.setText("t-elapsed", `${UB.secs(m.summary.duration_s)} measured`);
      return;
    }
    UB.setText("t-elapsed", m.elapsed_s === null || m.elapsed_s === undefined ? "not started" : UB.secs(m.elapsed_s));
    const names = { PREPARING: "preparing (workers connect)", WARMUP: "warmup", MEASUREMENT: "measurement", COOLDOWN: "cooldown", PROCESSING: "writing results" };
    UB.setText("t-phase", m.status === "PREPARED" ? "prepared, not started" : names[m.phase] || String(m.phase || "–").toLowerCase());
    UB.setText("t-phase-left", m.phase_remaining_s === null || m.phase_remaining_s === undefined ? "–" : UB.secs(m.phase_remaining_s));
    UB.setText("t-left", m.elapsed_s === null || m.elapsed_s === undefined ? "–" : UB.secs(phases.reduce((a, p) => a + p.remaining_s, 0)));
  }

  // ---- cards -------------------------------------------------------------------------------
  function cards(m) {
    const f = m.final && m.summary ? m.summary : m.live;
    if (!f) return;
    // One decimal always, as the server renders the card: a whole-number rate keeps its ".0".
    UB.setText("m-qps", UB.num(f.qps, 1));
    const target = m.live && m.live.target_qps;
    UB.setText("m-qps-sub", target ? `ops/s · target ${UB.num(target)}` : m.final ? "ops/s, measurement" : "ops/s");
    if (m.final) {
      UB.setText("m-inflight", "–");
      UB.setText("m-inflight-sub", `${UB.num(f.connections)} connections`);
    } else {
      UB.setText("m-inflight", UB.num(f.in_flight, 1));
      UB.setText("m-inflight-sub", `${UB.num(f.connections)} connections` + (f.backlog ? ` · ${UB.num(f.backlog)} behind` : ""));
    }
    UB.setText("m-p50", UB.ms(f.p50_ms));
    UB.setText("m-p95", UB.ms(f.p95_ms));
    UB.setText("m-p99", UB.ms(f.p99_ms));
    UB.setText("m-errors", UB.pct(f.error_rate));
    UB.setText("m-errors-sub", `${UB.num(f.errors)} errors · ${UB.num(f.ops)} ops`);
  }

  // ---- SLOs --------------------------------------------------------------------------------
  const SLO_CHECKS = [
    ["min_qps", "throughput ≥", (v) => UB.num(v) + " ops/s", (f) => f.qps, (got, want) => got >= want, (v) => UB.num(v) + " ops/s"],
    ["p95_ms", "p95 ≤", UB.ms, (f) => f.p95_ms, (got, want) => got <= want, UB.ms],
    ["p99_ms", "p99 ≤", UB.ms, (f) => f.p99_ms, (got, want) => got <= want, UB.ms],
    ["max_error_rate", "error rate ≤", UB.pct, (f) => f.error_rate, (got, want) => got <= want, UB.pct],
  ];
  function slo(m) {
    const targets = data.slo || {};
    const scopes = Object.keys(targets);
    const box = document.getElementById("slo");
    if (!scopes.length) return;
    const f = m.final && m.summary ? m.summary : m.live;
    const table = el("table");
    const head = el("tr");
    ["Scope", "Target", "Now", ""].forEach((h, i) => head.appendChild(el("th", i === 2 ? "num" : "", h)));
    table.appendChild(el("thead")).appendChild(head);
    const tbody = table.appendChild(el("tbody"));
    let failed = 0;
    for (const scope of scopes) {
      const figures = !f ? null : scope === "TOTAL" ? f : (f.kinds || []).find((k) => k.kind === scope) || null;
      for (const [key, label, show, pick, ok, showGot] of SLO_CHECKS) {
        const want = targets[scope][key];
        if (want === undefined || want === null) continue;
        const got = figures ? pick(figures) : null;
        const pass = got === null || got === undefined ? null : ok(got, want);
        if (pass === false) failed++;
        tbody.appendChild(row([
          { text: scope },
          { text: `${label} ${show(want)}` },
          { text: got === null || got === undefined ? "–" : showGot(got), num: true },
          { node: pass === null ? badge("waiting", "") : pass ? badge("PASS", "ok") : badge("FAIL", "bad") },
        ]));
      }
    }
    box.replaceChildren(table);
    box.dataset.failed = String(failed);
  }

  // ---- workers -----------------------------------------------------------------------------
  function workers(m) {
    const box = document.getElementById("workers");
    const ws = m.workers || [];
    if (!ws.length) return;
    box.replaceChildren(...ws.map((w) => {
      const card = el("div", "worker" + (w.beat_age_s > 3 && !m.final ? " stale" : ""));
      const head = card.appendChild(el("div", "head"));
      head.appendChild(el("span", "name", w.worker_id));
      head.appendChild(badge(w.state));
      const dl = card.appendChild(el("dl"));
      const kv = (k, v) => { dl.appendChild(el("dt", "", k)); dl.appendChild(el("dd", "", v)); };
      kv("ops/s", w.qps === null || w.qps === undefined ? "–" : UB.num(w.qps));
      kv("connections", UB.num(w.connections));
      kv("errors", UB.num(w.errors));
      kv("ops", UB.num(w.ops));
      kv("heartbeat", `${UB.num(w.beat_age_s, 1)} s ago`);
      if (w.host) kv("host", w.host);
      if (w.last_error) card.appendChild(el("div", "err", w.last_error));
      return card;
    }));
  }

  // ---- per kind and steps ------------------------------------------------------------------
  function kinds(m) {
    const f = m.final && m.summary ? m.summary : m.live;
    if (!f) return;
    const rows = (f.kinds || []).map((k) => row([
      { text: k.kind }, { text: UB.num(k.qps), num: true }, { text: UB.num(k.ops), num: true },
      { text: UB.num(k.errors), num: true }, { text: UB.pct(k.error_rate), num: true },
      { text: UB.ms(k.p50_ms), num: true }, { text: UB.ms(k.p95_ms), num: true }, { text: UB.ms(k.p99_ms), num: true },
    ]));
    replaceRows(document.querySelector("#kinds tbody"), rows, "No figures yet.", 8);
  }

  function steps(m) {
    const tbody = document.querySelector("#steps tbody");
    if (!tbody) return;
    let list = [];
    let now = "";
    if (m.final && m.summary && m.summary.steps) {
      const best = m.summary.best_step;
      list = m.summary.steps.map((s, i) => Object.assign({ step: i + 1, verdict: best && best.connections === s.connections ? "BEST" : "" }, s));
      now = best ? `Best step: ${best.connections} connections at ${UB.num(best.qps)} ops/s.` : "No sustainable step.";
      if (m.reason) now += " " + m.reason;
    } else if (m.steps) {
      const s = m.steps;
      list = s.steps;
      now = s.finished
        ? `Search finished: ${s.finished}`
        : `Step ${s.current_step}: ${s.connections} connections, ${UB.secs(s.elapsed_in_step_s)} of ${UB.secs(s.step_s)} (up to ${s.max_connections}).`;
    } else {
      return;
    }
    UB.setText("steps-now", now);
    replaceRows(tbody, list.map((s) => row([
      { text: String(s.step) }, { text: UB.num(s.connections), num: true }, { text: UB.num(s.qps), num: true },
      { text: UB.ms(s.p95_ms), num: true }, { text: UB.ms(s.p99_ms), num: true }, { text: UB.pct(s.error_rate), num: true },
      { node: s.verdict ? badge(s.verdict) : el("span", "muted", "–") },
    ])), "No step judged yet.", 7);
  }

  function notes(m) {
    const list = (m.notes || []).concat(m.summary && m.summary.warnings ? m.summary.warnings : []);
    const panel = document.getElementById("notes-panel");
    if (!list.length) return;
    const ul = document.getElementById("notes");
    const unique = [...new Set(list)];
    ul.replaceChildren(...unique.map((n) => el("li", "", n)));
    panel.hidden = false;
  }

  // ---- one message -------------------------------------------------------------------------
  function handle(m) {
    // The seconds before this socket opened (sent once, first): chart points only.
    if (Array.isArray(m.history)) {
      for (const point of m.history) plot({ live: point });
      body.dataset.history = String(m.history.length);
      return;
    }
    live.last = m;
    body.dataset.updates = String(Number(body.dataset.updates) + 1);
    if (m.error) {
      UB.notice(notice, "error", m.error);
      if (m.final) finish(m);
      return;
    }
    const status = document.getElementById("run-status");
    status.textContent = m.status;
    status.className = "badge " + m.status;
    body.dataset.status = m.status;
    startBtn.hidden = m.status !== "PREPARED";
    stopBtn.hidden = m.status !== "RUNNING";
    if (m.status === "RUNNING") stopBtn.disabled = false;
    stepper(m);
    cards(m);
    slo(m);
    workers(m);
    kinds(m);
    steps(m);
    notes(m);
    plot(m);
    if (m.final) finish(m);
    else if (m.reason && m.status !== "RUNNING") UB.notice(notice, "warn", m.reason);
    else if (m.status === "RUNNING" && m.phase !== "PREPARING" && notice.classList.contains("ok")) UB.notice(notice, "", "");
  }

  function finish(m) {
    live.finished = true;
    body.dataset.final = "1";
    UB.setText("slo-basis", "measurement window");
    startBtn.hidden = true;
    stopBtn.hidden = true;
    document.getElementById("results-link").hidden = false;
    if (!m.error) {
      const kind = m.status === "COMPLETED" ? "ok" : m.status === "FAILED" ? "error" : "warn";
      UB.notice(notice, kind, `The run has ended: ${m.status}` + (m.reason ? ` — ${m.reason}` : "") + ". Its stored figures are on the results page.");
    }
    if (live.socket) live.socket.close();
  }

  // ---- the socket --------------------------------------------------------------------------
  function connect() {
    clearTimeout(live.timer);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/test/${encodeURIComponent(runId)}`);
    live.socket = ws;
    body.dataset.sockets = String(Number(body.dataset.sockets) + 1);
    ws.onopen = () => {
      live.retry = 0;
      body.dataset.connected = "1";
      if (notice.dataset.reconnecting) {
        delete notice.dataset.reconnecting;
        UB.notice(notice, "", "");
      }
    };
    ws.onmessage = (ev) => {
      live.lastRaw = ev.data;
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      handle(m);
    };
    ws.onclose = () => {
      if (live.socket === ws) live.socket = null;
      body.dataset.connected = "0";
      if (live.finished) return;
      // Backoff: 0.5 s, 1 s, 2 s ... up to 10 s, so a restarting controller is not hammered.
      const delay = Math.min(10000, 500 * 2 ** live.retry);
      live.retry += 1;
      notice.dataset.reconnecting = "1";
      UB.notice(notice, "warn", `Live updates interrupted; reconnecting in ${(delay / 1000).toFixed(1)} s…`);
      live.timer = setTimeout(connect, delay);
    };
  }

  // A run that has ended gets one message (its stored figures) and the socket closes.
  connect();
})();
