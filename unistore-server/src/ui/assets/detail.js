// Run detail: the charts from the stored snapshots (the series come with the page).
"use strict";

// Delete: a second click within 5 s confirms (no dialog), then the run's rows are removed and
// the history opens.
(() => {
  const button = document.getElementById("delete-run");
  if (!button) return;
  let armed = null;
  button.addEventListener("click", async () => {
    if (!armed) {
      button.textContent = "Confirm delete";
      armed = setTimeout(() => { armed = null; button.textContent = "Delete"; }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.disabled = true;
    try {
      await UB.api("DELETE", `/api/results/${encodeURIComponent(button.dataset.run)}`);
      // A deleted run leaves the history's compare tray too.
      try {
        const key = "unistore.compare";
        const picks = JSON.parse(sessionStorage.getItem(key) || "[]");
        if (Array.isArray(picks)) sessionStorage.setItem(key, JSON.stringify(picks.filter(p => p && p.id !== button.dataset.run)));
      } catch (_) { /* an unreadable tray is the history's to reset */ }
      location.assign("/history");
    } catch (e) {
      button.disabled = false;
      button.textContent = "Delete";
      UB.notice("delete-notice", "error", `The run was not deleted: ${e.message}`);
    }
  });
})();

(() => {
  const d = UB.pageData();
  if (!d || !Array.isArray(d.t)) return;
  const opts = { liveLegend: false, time: false, xLabel: "seconds since the load started" };
  const draw = (id, series, yLabel, columns) => {
    const el = document.getElementById(id);
    if (!el) return;
    if (d.t.length === 0) {
      el.classList.add("empty");
      el.textContent = "No snapshots were stored for this run.";
      return;
    }
    const plot = UB.chart(el, series, yLabel, opts);
    plot.setData([d.t].concat(columns));
    el.dataset.points = String(d.t.length);
  };
  const line = (label, colour, extra) => Object.assign({ label, stroke: colour, width: 2, spanGaps: false }, extra || {});
  const css = name => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  draw("chart-throughput", [
    line("ok ops/s", css("--qps"), { value: (u, v) => UB.num(v) }),
    line("errors/s", css("--err"), { value: (u, v) => UB.num(v) }),
  ], "ops/s", [d.qps, d.errors]);
  draw("chart-latency", [
    line("p50", css("--p50"), { value: (u, v) => UB.ms(v) }),
    line("p95", css("--p95"), { value: (u, v) => UB.ms(v) }),
    line("p99", css("--p99"), { value: (u, v) => UB.ms(v) }),
  ], "ms", [d.p50, d.p95, d.p99]);
  draw("chart-connections", [
    line("open", "#0d9488"),
    line("asked for", "#94a3b8", { dash: [6, 4] }),
  ], "connections", [d.active, d.target]);
})();
