// Draws the report's charts with uPlot from the JSON in #report-data. Inlined in the page by
// `unistore-worker report --html`; it loads nothing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var HEIGHT = 240;
  var charts = [];
  var stepped = uPlot.paths.stepped({ align: 1 });

  function fmt(v, digits) {
    if (v == null || !isFinite(v)) return "\u2013";
    if (digits != null) return v.toFixed(digits);
    var a = Math.abs(v);
    return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
  }

  function fromZero(u, min, max) {
    return [0, max > 0 ? max * 1.08 : 1];
  }

  function line(label, colour, unit, extra) {
    var s = {
      label: label,
      stroke: colour,
      width: 1.6,
      spanGaps: false,
      points: { show: false },
      value: function (u, v) { return v == null ? "\u2013" : (fmt(v) + " " + unit).trim(); }
    };
    for (var k in extra || {}) s[k] = extra[k];
    return s;
  }

  // Shades the seconds outside the measurement window (warmup, cooldown): they are drawn but
  // not counted in the tables.
  function shadeOutside(window) {
    return function (u) {
      if (!window) return;
      var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
      var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
      var from = Math.max(left, Math.min(right, u.valToPos(window[0] - 1, "x", true)));
      var to = Math.max(left, Math.min(right, u.valToPos(window[1], "x", true)));
      ctx.save();
      ctx.fillStyle = "rgba(128, 128, 128, 0.13)";
      if (from > left) ctx.fillRect(left, top, from - left, h);
      if (to < right) ctx.fillRect(to, top, right - to, h);
      ctx.restore();
    };
  }

  function make(el, title, axes, scales, series, columns, window) {
    var opts = {
      title: title,
      width: Math.max(260, el.clientWidth),
      height: HEIGHT,
      // Seconds since the load started, from 0 so that the warmup is visible.
      scales: Object.assign({ x: { time: false, range: function (u, min, max) { return [0, Math.max(max, 1)]; } } }, scales),
      axes: axes,
      series: [{ label: "second", value: function (u, v) { return v == null ? "\u2013" : fmt(v, 0) + " s"; } }].concat(series),
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      hooks: { drawClear: [shadeOutside(window)] }
    };
    charts.push({ el: el, plot: new uPlot(opts, columns, el) });
  }

  function xAxis() {
    return { label: "elapsed seconds", labelSize: 20, size: 36, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600] };
  }

  function yAxis(label, scale, side) {
    var a = { label: label, labelSize: 18, size: 60, scale: scale };
    if (side === "right") { a.side = 1; a.grid = { show: false }; }
    return a;
  }

  function runChart(el) {
    var run = data.runs[Number(el.dataset.run)];
    var s = run.series;
    var worst = s.latency_merge === "worst_worker" ? " (worst worker where several: upper bound)" : "";
    var axes, scales, series, cols, title;
    if (el.dataset.chart === "throughput") {
      title = "Throughput and errors";
      axes = [xAxis(), yAxis("ok ops/s", "ops"), yAxis("errors/s", "err", "right")];
      scales = { ops: { range: fromZero }, err: { range: fromZero } };
      series = [line("ok ops/s", "#2563eb", "ops/s", { scale: "ops" }),
                line("errors/s", "#dc2626", "errors/s", { scale: "err" })];
      cols = [s.t, s.ops_per_s, s.errors_per_s];
      if (s.target_qps.some(function (v) { return v != null; })) {
        series.push(line("target ops/s", "#64748b", "ops/s", { scale: "ops", dash: [6, 4] }));
        cols.push(s.target_qps);
      }
    } else if (el.dataset.chart === "latency") {
      title = "Response time percentiles" + worst;
      axes = [xAxis(), yAxis("milliseconds", "ms")];
      scales = { ms: { range: fromZero } };
      series = [line("p50", "#059669", "ms", { scale: "ms" }),
                line("p95", "#d97706", "ms", { scale: "ms" }),
                line("p99", "#dc2626", "ms", { scale: "ms" })];
      cols = [s.t, s.p50, s.p95, s.p99];
    } else {
      title = "Connections";
      axes = [xAxis(), yAxis("connections", "conn")];
      scales = { conn: { range: fromZero } };
      // A count at the end of each second, not a rate: drawn as steps.
      series = [line("open", "#7c3aed", "", { scale: "conn", paths: stepped }),
                line("asked for", "#64748b", "", { scale: "conn", dash: [6, 4], paths: stepped })];
      cols = [s.t, s.connections, s.target_connections];
    }
    make(el, title, axes, scales, series, cols, s.measurement);
  }

  var OVERLAYS = {
    throughput: ["Throughput", "ok ops/s", "ops/s", "ops_per_s"],
    errors: ["Errors", "errors/s", "errors/s", "errors_per_s"],
    p50: ["p50 response time", "milliseconds", "ms", "p50"],
    p95: ["p95 response time", "milliseconds", "ms", "p95"],
    p99: ["p99 response time", "milliseconds", "ms", "p99"],
    connections: ["Open connections", "connections", "", "connections"]
  };

  function overlayChart(el) {
    var o = OVERLAYS[el.dataset.overlay];
    var tables = data.runs.map(function (r) { return [r.series.t, r.series[o[3]]]; });
    var cols = uPlot.join(tables);
    var series = data.runs.map(function (r) {
      return line(r.label, r.colour, o[2], o[3] === "connections" ? { scale: "y", paths: stepped } : { scale: "y" });
    });
    var axes = [xAxis(), yAxis(o[1], "y")];
    make(el, o[0] + " by run", axes, { y: { range: fromZero } }, series, cols, null);
  }

  document.querySelectorAll(".chart[data-run]").forEach(runChart);
  document.querySelectorAll(".chart[data-overlay]").forEach(overlayChart);

  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) {
        c.plot.setSize({ width: Math.max(260, c.el.clientWidth), height: HEIGHT });
      });
    }, 100);
  });
  document.body.dataset.charts = String(charts.length);
})();
