//! The report as one HTML document: markup from maud, the style sheet and the chart library
//! inlined, the charts' data as JSON in the page. Nothing is fetched when it is opened, so the
//! file can be mailed, attached to a ticket or opened on a machine without a network.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Serialize;
use serde_json::Value;
use unistore_core::analysis::{Comparison, ComparisonRow, Difference, Metric, RunData, Significance};
use unistore_core::metrics::{KindStats, RunSummary, Verdict};

use super::series::{chart_series, ChartSeries, LatencyMerge};

/// uPlot, vendored from its npm package (`assets/uplot/README.md` says which version).
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
/// The vendored file opens with a banner holding the project's web address; the report names
/// no address at all, so the banner is replaced by one without it.
const UPLOT_BANNER: &str = "/*! https://github.com/leeoniya/uPlot (v1.6.32) */";
const UPLOT_NOTICE: &str = "/*! uPlot v1.6.32, (c) 2022 Leon Sorokin, MIT licence */";
const REPORT_JS: &str = include_str!("../../assets/report/report.js");
const REPORT_CSS: &str = include_str!("../../assets/report/report.css");

/// Line colours of the runs in the overlaid charts and their swatches in the tables.
const RUN_COLOURS: [&str; 8] =
    ["#2563eb", "#d97706", "#7c3aed", "#059669", "#db2777", "#0891b2", "#65a30d", "#475569"];

/// What the page's script draws.
#[derive(Debug, Serialize)]
struct ChartData {
    runs: Vec<ChartRun>,
}

#[derive(Debug, Serialize)]
struct ChartRun {
    id: String,
    label: String,
    colour: &'static str,
    series: ChartSeries,
}

/// Letter of the `i`th run: A is the baseline.
fn letter(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    match letters.get(i) {
        Some(c) => char::from(*c).to_string(),
        None => format!("R{}", i + 1),
    }
}

fn colour(i: usize) -> &'static str {
    RUN_COLOURS[i % RUN_COLOURS.len()]
}

/// The report of `runs` (the first is the baseline), with the statistical comparison when
/// one was computed.
pub fn render(runs: &[RunData], comparison: Option<&Comparison>) -> String {
    let several = runs.len() > 1;
    let data = ChartData {
        runs: runs
            .iter()
            .enumerate()
            .map(|(i, r)| ChartRun {
                id: r.summary.run_id.to_string(),
                label: format!("{} · {}", letter(i), short_id(&r.summary)),
                colour: colour(i),
                series: chart_series(&r.snapshots),
            })
            .collect(),
    };
    let title = match runs {
        [one] => format!("Unistore Bench report: run {}", short_id(&one.summary)),
        _ => format!("Unistore Bench report: {} runs", runs.len()),
    };
    let uplot_js = UPLOT_JS.replacen(UPLOT_BANNER, UPLOT_NOTICE, 1);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(UPLOT_CSS)) "\n" (PreEscaped(REPORT_CSS)) }
            }
            body {
                main {
                    header {
                        h1 { (title) }
                        p.muted {
                            "Generated " (chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"))
                            " by unistore-worker " (env!("CARGO_PKG_VERSION")) ". "
                            "Client figures cover the measurement window; server figures, where stored, every phase."
                        }
                        @if several {
                            nav.toc {
                                a href="#comparison" { "Comparison" }
                                @for (i, r) in runs.iter().enumerate() {
                                    a href={ "#run-" (r.summary.run_id) } { "Run " (letter(i)) }
                                }
                            }
                        }
                    }
                    @if several {
                        (comparison_section(runs, comparison, &data))
                    }
                    @for (i, r) in runs.iter().enumerate() {
                        (run_section(i, r, &data.runs[i].series, several))
                    }
                    footer {
                        "Charts drawn with uPlot 1.6.32 (MIT licence), inlined in this file: it needs no network to be read."
                    }
                }
                script #report-data type="application/json" { (PreEscaped(script_json(&data))) }
                script { (PreEscaped(uplot_js)) }
                script { (PreEscaped(REPORT_JS)) }
            }
        }
    };
    page.into_string()
}

/// The data as JSON that cannot end its `<script>` element: `<`, `>` and `&` only occur
/// inside JSON strings, where their `\u` escapes mean the same.
fn script_json(data: &ChartData) -> String {
    // Serializing plain structs of numbers and strings cannot fail; an empty object keeps the
    // page valid (and chartless) if it ever did.
    serde_json::to_string(data)
        .unwrap_or_else(|_| "{\"runs\":[]}".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn short_id(s: &RunSummary) -> String {
    s.run_id.to_string().chars().take(8).collect()
}

fn verdict_badge(s: &RunSummary) -> Markup {
    let verdict = s.verdict();
    let class = match verdict {
        Verdict::Passed => "badge ok",
        Verdict::SloFailed | Verdict::TargetNotReached => "badge warn",
        Verdict::Failed | Verdict::Regressed => "badge bad",
        Verdict::Cancelled | Verdict::Pending => "badge neutral",
    };
    html! { span class=(class) { (verdict) } }
}

fn load(s: &RunSummary) -> String {
    match s.target_qps {
        Some(rate) => format!("{} · target {rate:.1} ops/s, {} connections", s.mode, s.connections),
        None => format!("{} · {} connections", s.mode, s.connections),
    }
}

/// The load in a few words, for the runs side by side.
fn short_load(s: &RunSummary) -> String {
    match s.target_qps {
        Some(rate) => format!("{rate:.0} ops/s, ≤{} conn.", s.connections),
        None if s.mode == "CONCURRENCY" => format!("{} connections", s.connections),
        None => format!("{} · {} conn.", s.mode, s.connections),
    }
}

fn ms(v: f64) -> String {
    format!("{v:.3}")
}

fn kind_row(label: &str, k: &KindStats, class: &str) -> Markup {
    let l = &k.latency_ms;
    html! {
        tr class=(class) {
            td { (label) }
            td { (k.ops) }
            td { (k.errors) }
            td { (format!("{:.1}", k.qps)) }
            td { (ms(l.mean)) }
            td { (ms(l.p50)) }
            td { (ms(l.p95)) }
            td { (ms(l.p99)) }
            td { (ms(l.p999)) }
            td { (ms(l.max)) }
        }
    }
}

/// Ops, errors, rate and response times per kind, named statements under their kind, then the
/// total: the columns of the terminal summary.
fn kind_table(s: &RunSummary) -> Markup {
    html! {
        div.scroll {
            table.kinds {
                thead { tr {
                    th { "kind" } th { "ok ops" } th { "errors" } th { "ok ops/s" } th { "mean ms" }
                    th { "p50 ms" } th { "p95 ms" } th { "p99 ms" } th { "p99.9 ms" } th { "max ms" }
                } }
                tbody {
                    @for (kind, k) in &s.by_kind {
                        (kind_row(kind.as_str(), k, ""))
                        @let prefix = format!("{kind}:");
                        @for (label, k) in s.by_statement.iter().filter(|(l, _)| l.starts_with(&prefix)) {
                            (kind_row(&label[prefix.len()..], k, "statement"))
                        }
                    }
                    (kind_row("TOTAL", &s.total, "total"))
                }
            }
        }
    }
}

fn facts(r: &RunData) -> Markup {
    let s = &r.summary;
    html! {
        dl.facts {
            div { dt { "template" } dd { (s.template)
                @if let Some(v) = r.record.as_ref().and_then(|rec| rec.template_version) { " (version " (v) ")" } } }
            div { dt { "table" } dd { (s.table) " (" (s.table_type) ", " (s.target_kind) ")" } }
            @if let Some(rec) = &r.record { div { dt { "target" } dd { (rec.target) } } }
            div { dt { "load" } dd { (load(s)) } }
            div { dt { "status" } dd { (s.status) " " (verdict_badge(s)) } }
            div { dt { "started" } dd { (s.started_at.format("%Y-%m-%d %H:%M:%S UTC")) } }
            div { dt { "measured" } dd { (format!("{:.1} s", s.duration_s)) " (warmup " (format!("{:.1} s", s.warmup_s)) " excluded)" } }
            @if let Some(c) = &s.client {
                div { dt { "client" } dd {
                    (c.hosts.join(", ")) " · " (c.workers) " worker" @if c.workers != 1 { "s" }
                    " · " (c.threads) " client thread" @if c.threads != 1 { "s" } " · v" (c.version)
                } }
            }
            div { dt { "seed" } dd { (s.seed) } }
            @if s.target_qps.is_some() {
                div { dt { "open loop" } dd {
                    (s.late_starts) " late starts, max start lag " (ms(s.max_start_lag_ms)) " ms, "
                    (s.unissued_ops) " due operations never started"
                } }
            }
        }
    }
}

/// What a reader must know before trusting the run's figures, in one box.
fn notes(s: &RunSummary) -> Markup {
    let mut lines: Vec<String> = Vec::new();
    if let Some(reason) = &s.reason {
        lines.push(format!("stopped early: {reason}"));
    }
    lines.extend(s.slo.violations.iter().map(|v| format!("SLO violated: {v}")));
    lines.extend(s.warnings.iter().cloned());
    if s.unreachable_s > 0.0 {
        lines.push(format!(
            "target unreachable for {:.1} s of the window (nothing succeeded)",
            s.unreachable_s
        ));
    }
    if s.samples_dropped > 0 {
        lines.push(format!("{} sampled executions dropped (results store too slow)", s.samples_dropped));
    }
    if s.abandoned_in_flight > 0 {
        lines.push(format!(
            "{} operations still in flight at the stop deadline were abandoned",
            s.abandoned_in_flight
        ));
    }
    html! {
        @if !lines.is_empty() {
            div.notes role="note" {
                strong { "Warnings" }
                ul { @for l in &lines { li { (l) } } }
            }
        }
        @if let Some(gate) = &s.gate {
            div.notes role="note" {
                strong {
                    "Regression gate against " (gate.baseline) " (allowance " (format!("{:.1}", gate.max_regression_pct)) " %): "
                    (if gate.passed { "passed" } else { "FAILED" })
                }
                ul { @for l in &gate.lines { li { (l) } } }
            }
        }
        @if !s.error_examples.is_empty() {
            div.notes.errors {
                strong { "First error of each kind" }
                ul { @for (kind, msg) in &s.error_examples { li { code { (kind.as_str()) } ": " (msg) } } }
            }
        }
    }
}

fn stages_and_steps(s: &RunSummary) -> Markup {
    html! {
        @if !s.stages.is_empty() {
            h3 { "Stages" }
            div.scroll { table {
                thead { tr { th { "stage" } th { "length s" } th { "connections" } th { "target ops/s" }
                    th { "ok ops/s" } th { "p50 ms" } th { "p99 ms" } th { "errors" } } }
                tbody { @for st in &s.stages { tr {
                    td { (st.index + 1) } td { (format!("{:.1}", st.duration_s)) }
                    td { (st.connections.map_or("-".into(), |c| c.to_string())) }
                    td { (st.target_qps.map_or("-".into(), |q| format!("{q:.1}"))) }
                    td { (format!("{:.1}", st.total.qps)) } td { (ms(st.total.latency_ms.p50)) }
                    td { (ms(st.total.latency_ms.p99)) } td { (st.total.errors) }
                } } }
            } }
        }
        @if !s.steps.is_empty() {
            h3 { "Concurrency search steps" }
            div.scroll { table {
                thead { tr { th { "connections" } th { "ok ops/s" } th { "p95 ms" } th { "p99 ms" } th { "error rate" } } }
                tbody { @for step in &s.steps {
                    tr class=[(s.best_step.as_ref() == Some(step)).then_some("total")] {
                        td { (step.connections) @if s.best_step.as_ref() == Some(step) { " (best)" } }
                        td { (format!("{:.1}", step.qps)) } td { (ms(step.p95_ms)) } td { (ms(step.p99_ms)) }
                        td { (format!("{:.4}", step.error_rate)) }
                    }
                } }
            } }
        }
    }
}

/// The server's own figures beside the client's. PostgreSQL's `pg_stat_statements` deltas
/// and a multi-worker run's figures have known shapes; anything else is shown as JSON.
fn server_section(s: &RunSummary) -> Markup {
    html! {
        h3 { "Server-side figures beside the client's" }
        @match &s.server_stats {
            None => p.muted { "No server-side figures were stored with this run (the backend offers none, or its statistics view was not available)." },
            Some(v) => (server_value(v, s)),
        }
    }
}

fn server_value(v: &Value, s: &RunSummary) -> Markup {
    if let Some(statements) = v.get("statements").and_then(Value::as_array) {
        return statements_table(v, statements, s);
    }
    if let Some(per_worker) = v.get("per_worker").and_then(Value::as_object) {
        return html! {
            @if let Some(note) = v.get("note").and_then(Value::as_str) { p.muted { (note) } }
            @match v.get("run").filter(|r| !r.is_null()) {
                Some(run) => {
                    p { "The run's figures (" (v.get("covered_by").and_then(Value::as_str).unwrap_or("a worker")) "'s window):" }
                    (server_value(run, s))
                }
                None => p { "No worker's window covers the whole run: each worker's figures follow." },
            }
            @for (worker, figures) in per_worker {
                details {
                    summary { "Figures of worker " code { (worker) } }
                    (server_value(figures, s))
                }
            }
        };
    }
    html! { pre { (serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())) } }
}

fn statements_table(v: &Value, statements: &[Value], s: &RunSummary) -> Markup {
    let num = |st: &Value, field: &str| st.get(field).and_then(Value::as_f64).unwrap_or(0.0);
    let calls: f64 = statements.iter().map(|st| num(st, "calls")).sum();
    let exec_ms: f64 = statements.iter().map(|st| num(st, "total_exec_time_ms")).sum();
    let text = |field: &str| v.get(field).and_then(Value::as_str).unwrap_or("?").to_string();
    let at = |field: &str| {
        let raw = text(field);
        raw.parse::<chrono::DateTime<chrono::Utc>>()
            .map_or(raw, |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
    };
    html! {
        div.side {
            div {
                h4 { "Client (" (s.target_kind) " driver, measured from the worker)" }
                table.pairs { tbody {
                    tr { td { "operations completed, all phases" } td { (s.completed_ops_all_phases) } }
                    tr { td { "ok operations, measurement window" } td { (s.total.ops) } }
                    tr { td { "mean response time" } td { (ms(s.total.latency_ms.mean)) " ms" } }
                } }
            }
            div {
                h4 { "Server (" (text("source")) ")" }
                table.pairs { tbody {
                    tr { td { "calls, all statements" } td { (format!("{calls:.0}")) } }
                    tr { td { "statements" } td { (statements.len()) } }
                    tr { td { "mean execution time" } td {
                        @if calls > 0.0 { (ms(exec_ms / calls)) " ms" } @else { "-" } } }
                } }
            }
        }
        p.muted { "Server window " (at("from")) " to " (at("to")) ". The server counts every client of the database, and execution time excludes the network and the driver." }
        div.scroll { table.statements {
            thead { tr { th { "statement" } th { "calls" } th { "rows" } th { "total ms" } th { "mean ms" } } }
            tbody { @for st in statements { tr {
                td.query { code { (st.get("query").and_then(Value::as_str).unwrap_or("")) } }
                td { (format!("{:.0}", num(st, "calls"))) } td { (format!("{:.0}", num(st, "rows"))) }
                td { (ms(num(st, "total_exec_time_ms"))) } td { (ms(num(st, "mean_exec_time_ms"))) }
            } } }
        } }
    }
}

fn run_section(i: usize, r: &RunData, series: &ChartSeries, several: bool) -> Markup {
    let s = &r.summary;
    html! {
        section.run id={ "run-" (s.run_id) } {
            h2 {
                @if several { span.swatch style={ "background:" (colour(i)) } {} "Run " (letter(i)) ": " }
                @else { "Run " }
                code { (s.run_id) }
            }
            (facts(r))
            (notes(s))
            h3 { "Per kind (measurement window)" }
            (kind_table(s))
            (stages_and_steps(s))
            (server_section(s))
            h3 { "Over time" }
            @if series.t.is_empty() {
                p.muted { "No snapshots were stored for this run: nothing to chart." }
            } @else {
                div.chart data-run=(i) data-chart="throughput" {}
                div.chart data-run=(i) data-chart="latency" {}
                div.chart data-run=(i) data-chart="connections" {}
                p.charts-note {
                    "One point per second, at the end of the second it covers; all workers added up. "
                    "Shaded: warmup and cooldown (not in the tables above)."
                    @if series.latency_merge == LatencyMerge::WorstWorker {
                        " Latency of seconds measured by several workers whose snapshots carry no histogram is the worst worker's: an upper bound."
                    }
                }
            }
        }
    }
}

fn metric_value(m: Metric, v: f64) -> String {
    match m {
        Metric::Throughput => format!("{v:.1}"),
        Metric::ErrorRate => format!("{:.3} %", v * 100.0),
        _ => format!("{v:.3}"),
    }
}

fn metric_diff(m: Metric, v: f64) -> String {
    match m {
        Metric::Throughput => format!("{v:+.1}"),
        Metric::ErrorRate => format!("{:+.3} pt", v * 100.0),
        _ => format!("{v:+.3}"),
    }
}

fn significance(d: &Difference) -> Markup {
    match (d.significance, d.better) {
        (Significance::Significant, Some(true)) => html! { span.sig-better { "▲ significant, better" } },
        (Significance::Significant, Some(false)) => html! { span.sig-worse { "▼ significant, worse" } },
        (Significance::Significant, None) => html! { span.sig-worse { "significant" } },
        (Significance::NotSignificant, _) => html! { span.sig-none { "not significant" } },
        (Significance::NotEnoughData, _) => html! { span.sig-nodata { "not enough data" } },
        (Significance::NotTested, _) => html! { span.sig-none { "not tested" } },
    }
}

fn comparison_row(row: &ComparisonRow, runs: usize) -> Markup {
    let m = row.metric;
    let baseline = row.values.first().copied().flatten();
    html! {
        tr {
            td { (row.kind.map_or("TOTAL", |k| k.as_str())) }
            td.left { (m.label()) }
            td { (baseline.map_or("-".into(), |v| metric_value(m, v))) }
            @for i in 1..runs {
                @match row.differences.get(i - 1).and_then(Option::as_ref) {
                    Some(d) => {
                        td.sep { (metric_value(m, d.value)) }
                        td { (metric_diff(m, d.diff)) }
                        td { (d.ratio.map_or("-".into(), |r| format!("×{r:.3}"))) }
                        td { (d.interval.map_or("-".into(), |(lo, hi)| format!("[{}, {}]", metric_diff(m, lo), metric_diff(m, hi)))) }
                        td.left { (significance(d)) }
                    }
                    None => {
                        td.sep { (row.values.get(i).copied().flatten().map_or("-".into(), |v| metric_value(m, v))) }
                        td { "-" } td { "-" } td { "-" } td.left { span.sig-none { "no value" } }
                    }
                }
            }
        }
    }
}

fn comparison_section(runs: &[RunData], comparison: Option<&Comparison>, data: &ChartData) -> Markup {
    html! {
        section #comparison {
            h2 { "Comparison" }
            div.scroll { table.runs {
                thead { tr {
                    th { "run" } th.left { "table" } th.left { "load" } th.left { "verdict" }
                    th { "ok ops/s" } th { "error rate" } th { "p50 ms" } th { "p95 ms" } th { "p99 ms" }
                } }
                tbody { @for (i, r) in runs.iter().enumerate() {
                    @let s = &r.summary;
                    tr {
                        td { span.swatch style={ "background:" (colour(i)) } {} a href={ "#run-" (s.run_id) } { (data.runs[i].label) }
                            @if i == 0 { " (baseline)" } }
                        td.left { (s.table) } td.left { (short_load(s)) } td.left { (verdict_badge(s)) }
                        td { (format!("{:.1}", s.total.qps)) }
                        td { (metric_value(Metric::ErrorRate, s.total.error_rate())) }
                        td { (ms(s.total.latency_ms.p50)) } td { (ms(s.total.latency_ms.p95)) }
                        td { (ms(s.total.latency_ms.p99)) }
                    }
                } }
            } }
            @match comparison {
                Some(c) => {
                    @if !c.warnings.is_empty() {
                        div.notes role="note" {
                            strong { "Before trusting this comparison" }
                            ul { @for w in &c.warnings { li { (w) } } }
                        }
                    }
                    h3 { "Differences from the baseline (" (format!("{:.0}", c.confidence * 100.0)) " % confidence)" }
                    div.scroll { table.comparison {
                        thead {
                            tr {
                                th rowspan="2" { "kind" } th.left rowspan="2" { "metric" } th rowspan="2" { "A (baseline)" }
                                @for i in 1..c.runs.len() { th.sep.center colspan="5" { (letter(i)) " against A" } }
                            }
                            tr { @for _ in 1..c.runs.len() {
                                th.sep { "value" } th { "diff" } th { "ratio" } th { "interval of diff" } th.left { "significance" }
                            } }
                        }
                        tbody { @for row in &c.rows { (comparison_row(row, c.runs.len())) } }
                    } }
                    p.method { strong { "Method. " } (c.method) }
                }
                None => p.muted { "No statistical comparison is included: the figures side by side and the charts below are not a test of significance." },
            }
            h3 { "Overlaid over time" }
            div.overlays {
                @for chart in ["throughput", "errors", "p50", "p95", "p99", "connections"] {
                    div.chart data-overlay=(chart) {}
                }
            }
            p.charts-note { "One line per run, over the seconds since its load started (warmup included)." }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use unistore_core::analysis::{Comparison, ComparisonRow, Difference, Metric, RunData, Significance};
    use unistore_core::testkit::sample_summary;
    use unistore_core::{QueryKind, RunId};

    use super::*;

    fn run(server_stats: Option<Value>) -> RunData {
        let mut summary = sample_summary(RunId::new());
        summary.server_stats = server_stats;
        RunData { summary, record: None, snapshots: Vec::new() }
    }

    #[test]
    fn a_failed_regression_gate_is_shown_with_its_reasons() {
        let mut r = run(None);
        let baseline = RunId::new();
        r.summary.gate = Some(unistore_core::analysis::GateReport {
            baseline,
            max_regression_pct: 5.0,
            metrics: vec![Metric::Throughput],
            passed: false,
            lines: vec!["REGRESSED ops/s: 900.000 against 1000.000 (-10.0 %)".into()],
        });
        let page = render(std::slice::from_ref(&r), None);
        assert!(
            page.contains(&format!("Regression gate against {baseline} (allowance 5.0 %): FAILED")),
            "{page}"
        );
        assert!(page.contains("REGRESSED ops/s: 900.000 against 1000.000"));
        assert!(!render(&[run(None)], None).contains("Regression gate"), "no gate, no section");
    }

    #[test]
    fn one_run_shows_its_figures_warnings_errors_and_unknown_server_figures_as_json() {
        let r = run(Some(serde_json::json!({"calls": 42, "note": "round-trips"})));
        let page = render(std::slice::from_ref(&r), None);
        let s = &r.summary;
        assert!(page.starts_with("<!DOCTYPE html>"), "{}", &page[..40]);
        for needle in [
            format!("<td>{}</td>", s.total.ops),
            format!("<td>{:.1}</td>", s.total.qps),
            "SLO violated: POINT_LOOKUP: p95 9 ms &gt; 5 ms".into(),
            "key column `id` has no index".into(),
            "duplicate key".into(),
            "SLO_FAILED".into(),
            "bench-host-1 · 1 worker · 2 client threads".into(),
            "&quot;note&quot;: &quot;round-trips&quot;".into(),
            "No snapshots were stored for this run".into(),
        ] {
            assert!(page.contains(&needle), "missing {needle}");
        }
        assert!(!page.contains("http://") && !page.contains("https://"), "the page names no address");
        assert!(!page.contains("id=\"comparison\""), "one run has no comparison");
    }

    #[test]
    fn postgres_statements_are_a_table_beside_the_clients_count_and_escaped() {
        let stats = serde_json::json!({
            "source": "pg_stat_statements",
            "from": "2026-01-02T03:04:05.123456Z",
            "to": "2026-01-02T03:04:15Z",
            "statements": [
                {"queryid": 1, "query": "SELECT * FROM t WHERE id < $1 -- </script>", "calls": 900, "rows": 900,
                 "total_exec_time_ms": 45.0, "mean_exec_time_ms": 0.05},
                {"queryid": 2, "query": "BEGIN", "calls": 100, "rows": 0, "total_exec_time_ms": 5.0, "mean_exec_time_ms": 0.05},
            ]
        });
        let page = render(&[run(Some(stats.clone()))], None);
        assert!(page.contains("SELECT * FROM t WHERE id &lt; $1 -- &lt;/script&gt;"), "escaped query");
        assert!(page.contains("<td>1000</td>"), "calls of all statements");
        assert!(page.contains("0.050 ms"), "mean execution time over all calls");
        assert!(page.contains("2026-01-02 03:04:05.123 UTC to 2026-01-02 03:04:15.000 UTC"));

        let merged = serde_json::json!({
            "run": stats, "covered_by": "worker-1",
            "per_worker": {"worker-1": {"source": "pg_stat_statements", "statements": []}, "worker-2": {"x": 1}},
            "note": "the run's figures are worker-1's",
        });
        let page = render(&[run(Some(merged))], None);
        assert!(page.contains("The run's figures (worker-1's window)"));
        assert!(page.contains("Figures of worker <code>worker-2</code>"));
        assert!(page.contains("&quot;x&quot;: 1"), "an unknown shape as JSON");
    }

    #[test]
    fn the_charts_data_cannot_close_its_script_element() {
        let data = ChartData {
            runs: vec![ChartRun {
                id: "x".into(),
                label: "</script><script>alert(1)</script> & <!--".into(),
                colour: colour(0),
                series: chart_series(&[]),
            }],
        };
        let json = script_json(&data);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'), "{json}");
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["runs"][0]["label"], "</script><script>alert(1)</script> & <!--");
    }

    fn difference(value: f64, significance: Significance, better: Option<bool>) -> Option<Difference> {
        Some(Difference {
            baseline: 100.0,
            value,
            diff: value - 100.0,
            ratio: Some(value / 100.0),
            interval: (significance != Significance::NotTested).then_some((value - 103.0, value - 97.0)),
            significance,
            better,
        })
    }

    #[test]
    fn several_runs_show_warnings_first_then_differences_marked_and_the_method() {
        let runs = [run(None), run(None)];
        let comparison = Comparison {
            runs: runs.iter().map(|r| r.summary.run_id).collect(),
            confidence: 0.95,
            method: "Moving-block bootstrap of the per-second series.".into(),
            warnings: vec!["the runs used different client hosts".into()],
            rows: vec![
                ComparisonRow {
                    kind: None,
                    metric: Metric::Throughput,
                    values: vec![Some(100.0), Some(120.0)],
                    differences: vec![difference(120.0, Significance::Significant, Some(true))],
                },
                ComparisonRow {
                    kind: Some(QueryKind::PointLookup),
                    metric: Metric::P99,
                    values: vec![Some(100.0), Some(110.0)],
                    differences: vec![difference(110.0, Significance::Significant, Some(false))],
                },
                ComparisonRow {
                    kind: Some(QueryKind::PointLookup),
                    metric: Metric::P999,
                    values: vec![Some(100.0), Some(101.0)],
                    differences: vec![difference(101.0, Significance::NotEnoughData, None)],
                },
                ComparisonRow {
                    kind: Some(QueryKind::Insert),
                    metric: Metric::Max,
                    values: vec![Some(100.0), None],
                    differences: vec![None],
                },
            ],
        };
        let page = render(&runs, Some(&comparison));
        let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("missing {needle}"));
        assert!(at("the runs used different client hosts") < at("class=\"comparison\""), "warnings first");
        assert!(at("Differences from the baseline (95 % confidence)") > 0);
        assert!(at("▲ significant, better") < at("▼ significant, worse"));
        assert!(at("+20.0") > 0 && at("×1.200") > 0 && at("[+17.0, +23.0]") > 0);
        assert!(at("not enough data") > 0 && at("no value") > 0);
        assert!(at("Moving-block bootstrap of the per-second series.") > at("class=\"comparison\""));
        assert_eq!(page.matches("data-overlay=").count(), 6, "six overlaid charts");
        assert_eq!(page.matches("data-run=").count(), 0, "runs without snapshots have no chart");
    }
}
