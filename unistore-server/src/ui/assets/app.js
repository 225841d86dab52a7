// Unistore Bench UI: helpers shared by every page's script. No build step, no dependencies
// besides uPlot (loaded before this file).
"use strict";

const UB = (() => {
  /** Calls the JSON API; resolves to the parsed body, rejects with an Error whose message is
   *  the API's `error.message` (and `.kind`, `.status`). */
  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let json = null;
    if (text) {
      try { json = JSON.parse(text); } catch (_) { json = null; }
    }
    if (!res.ok) {
      const err = new Error((json && json.error && json.error.message) || text || res.statusText);
      err.kind = json && json.error ? json.error.kind : undefined;
      err.status = res.status;
      throw err;
    }
    return json;
  }

  /** The JSON a page was rendered with (`<script id="page-data">`), or null. */
  function pageData() {
    const el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  const nf = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (digits !== undefined) return Number(v).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    return nf.format(v);
  }
  /** Milliseconds with a sensible precision. */
  function ms(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (v < 1) return v.toFixed(3) + " ms";
    if (v < 10) return v.toFixed(2) + " ms";
    if (v < 1000) return v.toFixed(1) + " ms";
    return (v / 1000).toFixed(2) + " s";
  }
  function pct(v) {
    return v === null || v === undefined ? "–" : (v * 100).toFixed(2) + " %";
  }
  function secs(s) {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.round(s));
    const m = Math.floor(s / 60);
    return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
  }

  /** Sets an element's text by id (no HTML interpretation). */
  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  /** Shows a message in a `.notice` element (kind: "", "error", "ok", "warn"). */
  function notice(el, kind, text) {
    if (typeof el === "string") el = document.getElementById(el);
    if (!el) return;
    el.className = "notice" + (kind ? " " + kind : "");
    el.textContent = text;
    el.hidden = !text;
  }

  /** A uPlot time-series chart filling `el`'s width, resized with it. `series` are uPlot series
   *  options after the x series; `yLabel` names the unit on the axis. `opts.liveLegend: false`
   *  keeps the legend to the series' names (no values under the cursor). */
  function chart(el, series, yLabel, opts) {
    opts = opts || {};
    const width = () => Math.max(280, el.clientWidth);
    const data = [[]].concat(series.map(() => []));
    const plot = new uPlot({
      width: width(),
      height: opts.height || 240,
      scales: { x: { time: opts.time !== false } },
      series: [{ label: opts.xLabel || "time" }].concat(series),
      axes: [
        { label: opts.xLabel, stroke: "#667085", grid: { stroke: "#eef0f4" } },
        { label: yLabel, stroke: "#667085", grid: { stroke: "#eef0f4" }, size: 60 },
      ],
      legend: { live: opts.liveLegend !== false },
      cursor: { drag: { x: true, y: false } },
    }, data, el);
    new ResizeObserver(() => plot.setSize({ width: width(), height: opts.height || 240 })).observe(el);
    return plot;
  }

  return { api, pageData, num, ms, pct, secs, setText, notice, chart };
})();
