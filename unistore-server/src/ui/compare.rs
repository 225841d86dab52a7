//! `GET /compare?runs=A,B[,C,D]`: 2 to 4 finished runs side by side (the first is the
//! baseline), the statistics of `unistore_core::analysis::compare` (the numbers, intervals and
//! verdicts `unistore-worker compare A B` prints, with its warnings and its method), and
//! overlaid charts with one series per run. `run=A&run=B` (the tray's form without script) is
//! read too. Without runs the page says how to pick them.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Value};
use unistore_core::analysis::{
    all_seconds, compare, CompareOptions, Comparison, Metric, RunData, Significance,
};
use unistore_core::{QueryKind, RunId};

use super::history::{count, ms, num, pct, secs, short_id, status_badge, when};
use super::layout::{page, Nav};
use crate::AppState;

/// Runs a comparison page shows side by side.
pub(crate) const MIN_RUNS: usize = 2;
/// The most: more columns would not be readable.
pub(crate) const MAX_RUNS: usize = 4;
/// One colour per run, in the charts and beside the run's name.
const COLOURS: [&str; MAX_RUNS] = ["#4f46e5", "#d97706", "#059669", "#db2777"];

/// Decodes `%XX` and `+` in a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The run ids named by the query: `runs=A,B` and any `run=A` (in that order), as given.
pub(crate) fn named_runs(query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "runs" || key == "run" {
            ids.extend(
                percent_decode(value).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
            );
        }
    }
    ids
}

/// Why a comparison cannot be shown: the status and the message for the page.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal { status, message: message.into() }
}

/// Checks the named runs before anything is read: 2 to 4, each a run id, each once.
pub(crate) fn check_ids(ids: &[String]) -> Result<Vec<RunId>, Refusal> {
    if ids.len() < MIN_RUNS || ids.len() > MAX_RUNS {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "Pick {MIN_RUNS} to {MAX_RUNS} runs to compare; {} {} named.",
                ids.len(),
                if ids.len() == 1 { "was" } else { "were" }
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for text in ids {
        let id = text.parse::<RunId>().map_err(|_| {
            refuse(StatusCode::BAD_REQUEST, format!("`{text}` is not a run id (a UUID such as 5f0c2a9e-…)."))
        })?;
        if !seen.insert(id) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("Run {id} is named twice: name each run once."),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

/// The runs, read whole; an unknown run is a 404, a run still going a 400.
async fn read_runs(state: &AppState, ids: &[RunId]) -> Result<Vec<RunData>, Refusal> {
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        match unistore_core::sink::read_finished_run(state.results.reader.as_ref(), *id).await {
            Ok(Some(run)) => runs.push(run),
            Ok(None) => {
                return Err(refuse(StatusCode::NOT_FOUND, format!("Run {id} is not in the results store.")))
            }
            Err(e) if e.kind() == unistore_core::ErrorKind::InvalidInput => {
                return Err(refuse(StatusCode::BAD_REQUEST, format!("{e}. Its live page is /runs/{id}.")))
            }
            Err(e) => {
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("The results store did not answer: {e}"),
                ))
            }
        }
    }
    Ok(runs)
}

/// The overlaid charts' data: the seconds since each run's load started (the union over the
/// runs), and per run its series on those seconds (`null` where a run has no such second).
pub(crate) fn overlay_series(runs: &[RunData]) -> unistore_core::Result<Value> {
    let per_run: Vec<Vec<unistore_core::analysis::SecondPoint>> =
        runs.iter().map(all_seconds).collect::<Result<_, _>>()?;
    let seconds: BTreeSet<u64> = per_run.iter().flatten().map(|p| p.second).collect();
    let t: Vec<u64> = seconds.iter().copied().collect();
    let column = |points: &[unistore_core::analysis::SecondPoint],
                  f: &dyn Fn(&unistore_core::analysis::SecondPoint) -> Option<f64>|
     -> Vec<Value> {
        t.iter()
            .map(|s| points.iter().find(|p| p.second == *s).and_then(f).map_or(Value::Null, |v| json!(v)))
            .collect()
    };
    let latency = |q: fn(&unistore_core::metrics::LatencySummary) -> f64| {
        move |p: &unistore_core::analysis::SecondPoint| (p.stats.ops > 0).then(|| q(&p.stats.latency_ms))
    };
    let series: Vec<Value> = per_run
        .iter()
        .zip(runs)
        .enumerate()
        .map(|(i, (points, run))| {
            json!({
                "label": run_label(i, run),
                "colour": COLOURS[i % COLOURS.len()],
                "qps": column(points, &|p| Some(p.stats.qps)),
                "errors": column(points, &|p| Some(p.stats.errors as f64)),
                "p50": column(points, &latency(|l| l.p50)),
                "p95": column(points, &latency(|l| l.p95)),
                "p99": column(points, &latency(|l| l.p99)),
            })
        })
        .collect();
    Ok(json!({ "t": t, "runs": series }))
}

fn run_label(i: usize, run: &RunData) -> String {
    format!(
        "{} {} · {}",
        if i == 0 { "baseline" } else { "run" },
        short_id(&run.summary.run_id),
        run.summary.template
    )
}

fn swatch(i: usize) -> Markup {
    html! { span.swatch style={"background:" (COLOURS[i % COLOURS.len()])} {} }
}

fn side_by_side(runs: &[RunData]) -> Markup {
    let row = |label: &str, f: &dyn Fn(&RunData) -> Markup| {
        html! { tr { th scope="row" { (label) } @for r in runs { td.num { (f(r)) } } } }
    };
    html! {
        div.table-wrap {
            table.compare-runs id="compare-runs" {
                thead { tr {
                    th {}
                    @for (i, r) in runs.iter().enumerate() {
                        th.num { (swatch(i)) a href=(format!("/results/{}", r.summary.run_id)) { (short_id(&r.summary.run_id)) }
                            br; span.muted.small { @if i == 0 { "baseline" } @else { "run " (i + 1) } } }
                    }
                } }
                tbody {
                    (row("Template", &|r| html! { (r.summary.template) }))
                    (row("Table", &|r| html! { code { (r.summary.table) } " " span.badge { (r.summary.table_type.as_str()) } }))
                    (row("Started (UTC)", &|r| html! { (when(r.summary.started_at)) }))
                    (row("Load", &|r| html! { (r.summary.mode) ", " (r.summary.connections) " conn" @if let Some(q) = r.summary.target_qps { ", " (num(q, 0)) "/s" } }))
                    (row("Workers", &|r| html! { (r.summary.client.as_ref().map_or(1, |c| c.workers)) }))
                    (row("Status", &|r| html! { (status_badge(r.summary.status)) " " span class={"badge " (r.summary.verdict().as_str())} { (r.summary.verdict().as_str()) } }))
                    (row("Measured", &|r| html! { (secs(r.summary.duration_s)) }))
                    tr.section { th scope="row" { "Throughput (ok ops/s)" } @for r in runs { td.num.qps { (num(r.summary.total.qps, 1)) } } }
                    (row("p50", &|r| html! { (ms(r.summary.total.latency_ms.p50)) }))
                    (row("p95", &|r| html! { (ms(r.summary.total.latency_ms.p95)) }))
                    (row("p99", &|r| html! { (ms(r.summary.total.latency_ms.p99)) }))
                    (row("Error rate", &|r| html! { (pct(r.summary.total.error_rate())) }))
                    tr { th scope="row" { "Ok operations" } @for r in runs { td.num.ops { (count(r.summary.total.ops)) } } }
                }
            }
        }
    }
}

fn per_kind(runs: &[RunData]) -> Markup {
    let kinds: BTreeSet<QueryKind> = runs.iter().flat_map(|r| r.summary.by_kind.keys().copied()).collect();
    html! {
        div.table-wrap {
            table.compare-kinds {
                thead { tr {
                    th { "Kind" } th { "Figure" }
                    @for (i, r) in runs.iter().enumerate() { th.num { (swatch(i)) (short_id(&r.summary.run_id)) } }
                } }
                tbody {
                    @for kind in &kinds {
                        @for (fi, (figure, f)) in [
                            ("ok ops/s", (|k: &unistore_core::metrics::KindStats| num(k.qps, 1)) as fn(&unistore_core::metrics::KindStats) -> String),
                            ("p50", |k| ms(k.latency_ms.p50)),
                            ("p95", |k| ms(k.latency_ms.p95)),
                            ("p99", |k| ms(k.latency_ms.p99)),
                            ("error rate", |k| pct(k.error_rate())),
                        ].into_iter().enumerate() {
                            tr {
                                td { @if fi == 0 { strong { (kind.as_str()) } } }
                                td { (figure) }
                                @for r in runs {
                                    td.num { (r.summary.by_kind.get(kind).map_or("–".to_string(), f)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn format_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{:.4} %", v * 100.0),
        Metric::Throughput => num(v, 1),
        _ => format!("{v:.3}"),
    }
}

fn statistics(c: &Comparison) -> Markup {
    html! {
        div.table-wrap {
            table.statistics id="compare-statistics" {
                thead {
                    tr {
                        th { "Kind" } th { "Figure" } th.num { (swatch(0)) (short_id(&c.runs[0])) }
                        @for (i, id) in c.runs.iter().enumerate().skip(1) {
                            th.num { (swatch(i)) (short_id(id)) } th.num { "Change" } th.num { "Interval of the difference" } th { "" }
                        }
                    }
                }
                tbody {
                    @for row in &c.rows {
                        tr data-kind=(row.kind.map_or("TOTAL", |k| k.as_str())) data-metric=(row.metric.label()) {
                            td { (row.kind.map_or("TOTAL", |k| k.as_str())) }
                            td { (row.metric.label()) }
                            td.num { (row.values.first().copied().flatten().map_or("–".into(), |v| format_value(row.metric, v))) }
                            @for (i, d) in row.differences.iter().enumerate() {
                                td.num { (row.values.get(i + 1).copied().flatten().map_or("–".into(), |v| format_value(row.metric, v))) }
                                @match d {
                                    None => { td.num { "–" } td {} td {} }
                                    Some(d) => {
                                        td.num { (d.ratio.map_or("–".into(), |r| format!("{:+.1} %", (r - 1.0) * 100.0))) }
                                        td.num.nowrap {
                                            @if let Some((lo, hi)) = d.interval {
                                                @if row.metric == Metric::ErrorRate { "[" (format!("{:+.4}", lo * 100.0)) ", " (format!("{:+.4}", hi * 100.0)) "] %" }
                                                @else { "[" (format!("{lo:+.3}")) ", " (format!("{hi:+.3}")) "]" }
                                            }
                                        }
                                        @match (d.significance, d.better) {
                                            (Significance::Significant, Some(true)) => { td.better { "better" } }
                                            (Significance::Significant, _) => { td.worse { "WORSE" } }
                                            (Significance::NotSignificant, _) => { td.muted { "same" } }
                                            (Significance::NotEnoughData, _) => { td.muted { "n/a" } }
                                            (Significance::NotTested, _) => { td {} }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.small.muted {
            "better / WORSE: the difference is significant at " (format!("{:.0}", c.confidence * 100.0))
            " % (its interval excludes 0); same: it is not; n/a: not enough data to tell. Latencies in ms."
        }
    }
}

/// The page's body for a comparison.
pub(crate) fn render(runs: &[RunData], c: &Comparison, charts: &Value) -> Markup {
    let body = html! {
        link rel="stylesheet" href="/assets/history.css";
        div.page-head {
            div {
                h1 { "Compare " (runs.len()) " runs" }
                p.muted { "The first run is the baseline; each other run is compared with it." }
            }
            div.actions { a.btn href="/history" { "← History" } }
        }
        @if !c.warnings.is_empty() {
            div.notice.warn id="compare-warnings" {
                strong { "Before trusting this comparison:" }
                ul { @for w in &c.warnings { li { (w) } } }
            }
        }
        div.panel { h2 { "Side by side" } (side_by_side(runs)) }
        div.grid.two {
            @for (id, title, unit) in [
                ("chart-qps", "Throughput", "ok ops/s"),
                ("chart-errors", "Errors", "failed ops/s"),
                ("chart-p50", "p50 latency", "ms"),
                ("chart-p95", "p95 latency", "ms"),
                ("chart-p99", "p99 latency", "ms"),
            ] {
                div.panel.chart-panel {
                    h2 { (title) span.small.muted { (unit) ", per second since the load started" } }
                    div.chart id=(id) {}
                }
            }
        }
        div.panel { h2 { "Statistics" } (statistics(c)) }
        div.panel { h2 { "By query kind" } (per_kind(runs)) }
        div.panel { h2 { "Method" } p.method { (c.method) } }
    };
    page("Compare", Nav::Compare, body, &["compare.js"], Some(&charts.to_string()))
}

fn explain(status: StatusCode, problem: Option<&str>) -> Response {
    let body = html! {
        link rel="stylesheet" href="/assets/history.css";
        div.page-head { div { h1 { "Compare runs" } } }
        @if let Some(p) = problem { div.notice.error role="alert" id="compare-problem" { (p) } }
        div.panel {
            h2 { "How to compare" }
            ol.steps-list {
                li { "Open the " a href="/history" { "History" } "." }
                li { "Tick " (MIN_RUNS) " to " (MAX_RUNS) " finished runs; the first you tick is the baseline." }
                li { "Press " strong { "Compare" } " in the tray at the bottom of the page." }
            }
            p.muted {
                "The page shows the runs side by side, overlaid charts, and for each figure whether the difference \
                 is significant, with the same statistics as " code { "unistore-worker compare A B" } "."
            }
            div.actions { a.btn.primary href="/history" { "Pick runs in the history" } }
        }
    };
    (status, page("Compare", Nav::Compare, body, &[], None)).into_response()
}

async fn compare_page(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let names = named_runs(query.as_deref().unwrap_or(""));
    if names.is_empty() {
        return explain(StatusCode::OK, None);
    }
    let ids = match check_ids(&names) {
        Ok(ids) => ids,
        Err(r) => return explain(r.status, Some(&r.message)),
    };
    let runs = match read_runs(&state, &ids).await {
        Ok(runs) => runs,
        Err(r) => return explain(r.status, Some(&r.message)),
    };
    // The bootstrap takes CPU for a while: off the async workers.
    let done = tokio::task::spawn_blocking(move || {
        let c = compare(&runs, &CompareOptions::default());
        let charts = overlay_series(&runs);
        (runs, c, charts)
    })
    .await;
    match done {
        Ok((runs, Ok(c), Ok(charts))) => render(&runs, &c, &charts).into_response(),
        Ok((_, Err(e), _) | (_, _, Err(e))) => {
            explain(StatusCode::BAD_REQUEST, Some(&format!("These runs cannot be compared: {e}")))
        }
        Err(e) => explain(StatusCode::INTERNAL_SERVER_ERROR, Some(&format!("The comparison failed: {e}"))),
    }
}

/// `GET /compare`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/compare", get(compare_page))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn runs_are_read_from_either_form_and_checked() {
        let a = RunId::new().to_string();
        let b = RunId::new().to_string();
        assert_eq!(named_runs(&format!("runs={a}%2C{b}")), vec![a.clone(), b.clone()]);
        assert_eq!(named_runs(&format!("run={a}&run={b}&x=1")), vec![a.clone(), b.clone()]);
        assert_eq!(named_runs("runs=%"), vec!["%".to_string()]);
        assert!(check_ids(&[a.clone(), b.clone()]).is_ok());
        let one = check_ids(std::slice::from_ref(&a)).unwrap_err();
        assert_eq!(one.status, StatusCode::BAD_REQUEST);
        assert!(one.message.contains("Pick 2 to 4 runs to compare; 1 was named."));
        let five: Vec<String> = (0..5).map(|_| RunId::new().to_string()).collect();
        assert!(check_ids(&five).unwrap_err().message.contains("5 were named"));
        assert!(check_ids(&[a.clone(), "nope".into()])
            .unwrap_err()
            .message
            .contains("`nope` is not a run id"));
        assert!(check_ids(&[a.clone(), a.clone()]).unwrap_err().message.contains("named twice"));
    }

    #[test]
    fn the_overlay_has_one_series_per_run_on_shared_seconds() {
        use unistore_core::metrics::MetricSnapshot;
        let make = |seconds: &[u64]| {
            let summary = unistore_core::testkit::sample_summary(RunId::new());
            let snapshots: Vec<MetricSnapshot> = seconds
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut total = summary.by_kind.values().next().unwrap().clone();
                    total.ops = 100 + *s;
                    MetricSnapshot {
                        run_id: summary.run_id,
                        worker_id: "w".into(),
                        seq: i as u64 + 1,
                        taken_at: summary.started_at,
                        elapsed_s: *s as f64 + 1.0,
                        interval_s: 1.0,
                        phase: unistore_core::RunPhase::Measurement,
                        active_connections: 2,
                        target_connections: 2,
                        target_qps: None,
                        late_starts: 0,
                        backlog: 0,
                        total,
                        by_kind: Default::default(),
                    }
                })
                .collect();
            RunData { summary, record: None, snapshots }
        };
        let v = overlay_series(&[make(&[0, 1, 2]), make(&[1, 2, 3])]).unwrap();
        assert_eq!(v["t"], json!([0, 1, 2, 3]));
        assert_eq!(v["runs"].as_array().unwrap().len(), 2);
        assert_eq!(v["runs"][0]["qps"], json!([100.0, 101.0, 102.0, null]));
        assert_eq!(v["runs"][1]["qps"], json!([null, 101.0, 102.0, 103.0]));
        assert!(v["runs"][0]["label"].as_str().unwrap().starts_with("baseline "));
    }
}
