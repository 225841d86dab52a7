// Compare: overlaid charts, one series per run, named in the legend.
"use strict";

(() => {
  const d = UB.pageData();
  if (!d || !Array.isArray(d.t) || !Array.isArray(d.runs)) return;
  const opts = { liveLegend: false, time: false, xLabel: "seconds since the load started" };
  const charts = [
    ["chart-qps", "qps", "ok ops/s", v => UB.num(v)],
    ["chart-errors", "errors", "failed ops/s", v => UB.num(v)],
    ["chart-p50", "p50", "ms", v => UB.ms(v)],
    ["chart-p95", "p95", "ms", v => UB.ms(v)],
    ["chart-p99", "p99", "ms", v => UB.ms(v)],
  ];
  for (const [id, key, unit, fmt] of charts) {
    const el = document.getElementById(id);
    if (!el) continue;
    if (d.t.length === 0) {
      el.classList.add("empty");
      el.textContent = "No snapshots were stored for these runs.";
      continue;
    }
    const series = d.runs.map(r => ({ label: r.label, stroke: r.colour, width: 2, value: (u, v) => fmt(v) }));
    const plot = UB.chart(el, series, unit, opts);
    plot.setData([d.t].concat(d.runs.map(r => r[key])));
    el.dataset.points = String(d.t.length);
  }
})();
