//! `GET /results/{id}`: one finished run as the results store holds it — what ran, the
//! figures of the measurement window, charts over every phase from the stored snapshots, the
//! per-kind and per-worker tables, error samples, a few sampled executions and the server's own
//! figures beside the client's count (the numbers of `unistore-worker show RUN`).
//!
//! A run still going is shown by its live page (`/runs/{id}`): this page redirects there.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Value};
use unistore_core::analysis::{all_seconds, RunData};
use unistore_core::metrics::{KindStats, QueryExecution, RunSummary};
use unistore_core::sink::RunRecord;
use unistore_core::{ResultsReader, RunId};

use super::history::{count, ms, num, pct, problem_page, secs, short_id, status_badge, when};
use super::layout::{page, Nav};
use crate::error::ApiError;
use crate::results_api::workers_of;
use crate::AppState;

/// Sampled executions shown on the page (the API and the export have them all).
const EXECUTIONS_SHOWN: usize = 12;

/// Everything the page shows of one run.
pub(crate) struct RunDetail {
    pub summary: RunSummary,
    pub record: Option<RunRecord>,
    pub workers: Vec<RunSummary>,
    pub executions: Vec<QueryExecution>,
    /// The charts' series (JSON for the page's script).
    pub chart_data: Value,
}

/// The charts' series of a run over every phase: one point a second (the workers' snapshots
/// of a second merged), percentiles `null` in a second without a successful operation.
pub(crate) fn chart_series(run: &RunData) -> Result<Value, ApiError> {
    let points = all_seconds(run)?;
    let opt = |ok: bool, v: f64| if ok { json!(v) } else { Value::Null };
    let measured: Vec<u64> =
        points.iter().filter(|p| p.phase == unistore_core::RunPhase::Measurement).map(|p| p.second).collect();
    Ok(json!({
        "t": points.iter().map(|p| p.second).collect::<Vec<_>>(),
        "qps": points.iter().map(|p| p.stats.qps).collect::<Vec<_>>(),
        "errors": points.iter().map(|p| p.stats.errors).collect::<Vec<_>>(),
        "p50": points.iter().map(|p| opt(p.stats.ops > 0, p.stats.latency_ms.p50)).collect::<Vec<_>>(),
        "p95": points.iter().map(|p| opt(p.stats.ops > 0, p.stats.latency_ms.p95)).collect::<Vec<_>>(),
        "p99": points.iter().map(|p| opt(p.stats.ops > 0, p.stats.latency_ms.p99)).collect::<Vec<_>>(),
        "active": points.iter().map(|p| p.active_connections).collect::<Vec<_>>(),
        "target": points.iter().map(|p| p.target_connections).collect::<Vec<_>>(),
        "measurement": measured.first().zip(measured.last()).map(|(a, b)| [a, b]),
    }))
}

/// What the page needs of a run; `Ok(None)` for a run the store does not hold.
pub(crate) async fn read_detail(
    reader: &dyn ResultsReader,
    run_id: RunId,
) -> Result<Option<RunDetail>, ApiError> {
    let Some(summary) = reader.summary(run_id, None).await? else { return Ok(None) };
    let record = reader.run_record(run_id, None).await?;
    let snapshots = reader.snapshots(run_id).await?;
    let workers = workers_of(reader, run_id, &snapshots).await?;
    let executions = reader.query_executions(run_id, EXECUTIONS_SHOWN).await?;
    let run = RunData { summary, record, snapshots };
    let chart_data = chart_series(&run)?;
    Ok(Some(RunDetail { summary: run.summary, record: run.record, workers, executions, chart_data }))
}

fn kind_cells(k: &KindStats) -> Markup {
    let l = &k.latency_ms;
    html! {
        td.num { (count(k.ops)) }
        td.num { (count(k.errors)) }
        td.num { (pct(k.error_rate())) }
        td.num { (num(k.qps, 1)) }
        td.num { (ms(l.mean)) }
        td.num { (ms(l.p50)) }
        td.num { (ms(l.p95)) }
        td.num { (ms(l.p99)) }
        td.num { (ms(l.p999)) }
        td.num { (ms(l.max)) }
    }
}

fn kinds_table(s: &RunSummary) -> Markup {
    html! {
        div.table-wrap {
            table.kinds {
                thead { tr {
                    th { "Kind" } th.num { "Ok ops" } th.num { "Errors" } th.num { "Error rate" } th.num { "Ok ops/s" }
                    th.num { "Mean" } th.num { "p50" } th.num { "p95" } th.num { "p99" } th.num { "p99.9" } th.num { "Max" }
                } }
                tbody {
                    @for (kind, k) in &s.by_kind {
                        tr { td { (kind.as_str()) } (kind_cells(k)) }
                        @let prefix = format!("{}:", kind.as_str());
                        @for (label, k) in s.by_statement.iter().filter(|(l, _)| l.starts_with(&prefix)) {
                            tr { td.sub { (&label[prefix.len()..]) } (kind_cells(k)) }
                        }
                    }
                    tr.total { td { "TOTAL" } (kind_cells(&s.total)) }
                }
            }
        }
    }
}

fn workers_table(workers: &[RunSummary]) -> Markup {
    html! {
        div.table-wrap {
            table.workers {
                thead { tr {
                    th { "Worker" } th { "Status" } th.num { "Connections" } th.num { "Ok ops" } th.num { "Errors" }
                    th.num { "Ok ops/s" } th.num { "p50" } th.num { "p99" }
                } }
                tbody {
                    @for w in workers {
                        tr {
                            td.mono { (w.worker_id.as_deref().unwrap_or("–")) }
                            td { (status_badge(w.status)) }
                            td.num { (w.connections) }
                            td.num { (count(w.total.ops)) }
                            td.num { (count(w.total.errors)) }
                            td.num { (num(w.total.qps, 1)) }
                            td.num { (ms(w.total.latency_ms.p50)) }
                            td.num { (ms(w.total.latency_ms.p99)) }
                        }
                    }
                }
            }
        }
    }
}

/// The server's own figures beside the client's count, as `unistore-worker show` prints them:
/// a multi-worker run keeps the covering worker's window under `run`; statement figures are
/// those on the run's table, with the calls added up against the client's operations.
pub(crate) fn server_figures(s: &RunSummary) -> Markup {
    let Some(stats) = &s.server_stats else {
        return html! {
            p.muted { "No server-side figures were stored for this run (the target offers none, or \
                       its statistics view was not readable)." }
        };
    };
    let (figures, origin) = match stats.get("run") {
        Some(run) if !run.is_null() => (run, stats.get("covered_by").and_then(Value::as_str)),
        Some(_) => {
            let note = stats.get("note").and_then(Value::as_str).unwrap_or("no window covers the whole run");
            return html! { p.muted { "Server-side figures: " (note) } };
        }
        None => (stats, None),
    };
    let Some(statements) = figures.get("statements").and_then(Value::as_array) else {
        let text = serde_json::to_string_pretty(figures).unwrap_or_else(|_| figures.to_string());
        return html! { pre.server-json { (text) } };
    };
    let table = s.table.rsplit('.').next().unwrap_or(&s.table).to_ascii_lowercase();
    let on_table: Vec<&Value> = statements
        .iter()
        .filter(|st| {
            st.get("query").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase().contains(&table)
        })
        .collect();
    let calls: u64 = on_table.iter().map(|st| st.get("calls").and_then(Value::as_u64).unwrap_or(0)).sum();
    let client = s.completed_ops_all_phases + s.total.errors;
    html! {
        p {
            "Source: " strong { (figures.get("source").and_then(Value::as_str).unwrap_or("server")) }
            @if let Some(w) = origin { " (" (w) "'s window)" }
            ", statements on " code { (s.table) } "."
        }
        div.cards {
            div.card.qps { div.label { "Server calls on the table" } div.value.server-calls { (count(calls)) } div.sub { "every phase" } }
            div.card.ops { div.label { "Client operations" } div.value.client-ops { (count(client)) } div.sub { "every phase, ok and failed" } }
        }
        div.table-wrap {
            table.server {
                thead { tr { th.num { "Calls" } th.num { "Rows" } th.num { "Mean" } th { "Statement" } } }
                tbody {
                    @for st in &on_table {
                        tr {
                            td.num { (count(st.get("calls").and_then(Value::as_u64).unwrap_or(0))) }
                            td.num { (count(st.get("rows").and_then(Value::as_u64).unwrap_or(0))) }
                            td.num { (ms(st.get("mean_exec_time_ms").and_then(Value::as_f64).unwrap_or(0.0))) }
                            td.mono { (st.get("query").and_then(Value::as_str).unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")) }
                        }
                    }
                }
            }
        }
        p.muted.small {
            "The server counted " (count(calls)) " calls on the table; the client issued " (count(client))
            " operations (all phases)."
        }
    }
}

/// Lines a person should read before trusting the figures.
fn notes(s: &RunSummary) -> Vec<String> {
    let mut out: Vec<String> = s.warnings.clone();
    if let Some(reason) = &s.reason {
        out.push(format!(
            "{} {reason}",
            if s.status == unistore_core::RunStatus::Failed { "Failed:" } else { "Stopped early:" }
        ));
    }
    out.extend(s.slo.violations.iter().map(|v| format!("SLO violated: {v}")));
    if let Some(target) = s.target_qps.filter(|_| s.stages.is_empty()) {
        out.push(format!(
            "Open loop: target {} ops/s, achieved {} ok ops/s; {} due operations never started{}.",
            num(target, 1),
            num(s.total.qps, 1),
            count(s.unissued_ops),
            if s.target_reached == Some(false) { " — target not reached" } else { "" }
        ));
    }
    if s.unreachable_s > 0.0 {
        out.push(format!(
            "The target was unreachable for {} of the measurement window.",
            secs(s.unreachable_s)
        ));
    }
    if s.abandoned_in_flight > 0 {
        out.push(format!(
            "{} operations were still in flight at the stop deadline and abandoned.",
            count(s.abandoned_in_flight)
        ));
    }
    if s.samples_dropped > 0 {
        out.push(format!(
            "{} sampled executions were dropped (the persistence channel was full).",
            count(s.samples_dropped)
        ));
    }
    if let Some(gate) = &s.gate {
        out.extend(gate.failures().map(|f| format!("Regression gate: {f}")));
    }
    out
}

fn header(s: &RunSummary, record: Option<&RunRecord>) -> Markup {
    let t = record.map(|r| &r.template);
    html! {
        dl.kv.wide {
            dt { "Template" } dd { (s.template) @if let Some(r) = record { span.muted { " (" (r.template_id) @if let Some(v) = r.template_version { " v" (v) } ")" } } }
            dt { "Table" } dd { code { (s.table) } " " span.badge { (s.table_type.as_str()) } }
            dt { "Mode" } dd { (s.mode) @if let Some(q) = s.target_qps { " at " (num(q, 0)) " ops/s" } }
            dt { "Mix" } dd {
                @if let Some(t) = t {
                    (t.mix.iter().map(|(k, w)| format!("{} {w} %", k.as_str())).collect::<Vec<_>>().join(", "))
                } @else { span.muted { "not stored" } }
            }
            dt { "Phases" } dd {
                @if let Some(t) = t {
                    "warmup " (humantime::format_duration(t.phases.warmup))
                    ", measurement " (humantime::format_duration(t.phases.measurement))
                    ", cooldown " (humantime::format_duration(t.phases.cooldown))
                } @else {
                    "warmup " (secs(s.warmup_s)) ", measured " (secs(s.duration_s))
                }
            }
            dt { "Connections" } dd { (s.connections) }
            dt { "Workers" } dd { (s.client.as_ref().map_or(1, |c| c.workers)) }
            dt { "Status" } dd { (status_badge(s.status)) " " span class={"badge " (s.verdict().as_str())} { (s.verdict().as_str()) } }
            dt { "Started" } dd { (when(s.started_at)) " UTC" }
            dt { "Measured" } dd { (s.measurement_started_at.format("%H:%M:%S")) " to " (s.measurement_ended_at.format("%H:%M:%S")) " (" (secs(s.duration_s)) ")" }
            dt { "Client" } dd {
                @if let Some(c) = &s.client {
                    (c.hosts.join(", ")) span.muted { " · " (c.threads) " thread(s) · unistore " (c.version) }
                } @else { span.muted { "not recorded" } }
            }
            dt { "Target" } dd { @if let Some(r) = record { code { (r.target) } } @else { (s.target_kind) } " · seed " (s.seed) }
        }
    }
}

fn cards(s: &RunSummary) -> Markup {
    let l = &s.total.latency_ms;
    html! {
        div.cards {
            div.card.qps { div.label { "Throughput" } div.value #card-qps { (num(s.total.qps, 1)) } div.sub { "ok ops/s, measured" } }
            div.card.p50 { div.label { "p50" } div.value { (ms(l.p50)) } div.sub { "response time" } }
            div.card.p95 { div.label { "p95" } div.value { (ms(l.p95)) } div.sub { "response time" } }
            div.card.p99 { div.label { "p99" } div.value { (ms(l.p99)) } div.sub { "max " (ms(l.max)) } }
            div.card.errors { div.label { "Error rate" } div.value { (pct(s.total.error_rate())) } div.sub { (count(s.total.errors)) " failed" } }
            div.card.ops { div.label { "Ok operations" } div.value #card-ops { (count(s.total.ops)) } div.sub { (count(s.completed_ops_all_phases)) " in every phase" } }
        }
    }
}

fn errors_panel(s: &RunSummary) -> Markup {
    html! {
        @if s.total.errors == 0 && s.error_examples.is_empty() {
            p.muted { "No operation failed in the measurement window." }
        } @else {
            div.table-wrap {
                table.errors {
                    thead { tr { th { "Error kind" } th.num { "Count" } th { "First message" } } }
                    tbody {
                        @let kinds: BTreeSet<_> = s.total.errors_by_kind.keys().chain(s.error_examples.keys()).copied().collect();
                        @for kind in kinds {
                            tr {
                                td { (kind.as_str()) }
                                td.num { (count(s.total.errors_by_kind.get(&kind).copied().unwrap_or(0))) }
                                td.mono { (s.error_examples.get(&kind).map(String::as_str).unwrap_or("–")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn executions_table(rows: &[QueryExecution]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "No sampled executions were stored." }
        } @else {
            div.table-wrap {
                table.executions {
                    thead { tr { th { "Started (UTC)" } th { "Worker" } th.num { "Conn" } th { "Kind" } th { "Phase" } th.num { "Response" } th.num { "Rows" } th { "Result" } } }
                    tbody {
                        @for e in rows {
                            tr {
                                td.nowrap { (e.started_at.format("%H:%M:%S%.3f")) }
                                td.mono { (e.worker_id) }
                                td.num { (e.connection) }
                                td { (e.kind.as_str()) }
                                td { (e.phase.as_str()) }
                                td.num { (ms(e.response_us as f64 / 1000.0)) }
                                td.num { (count(e.rows)) }
                                td {
                                    @if e.ok { span.badge.ok { "ok" } }
                                    @else { span.badge.bad { (e.error_kind.map_or("error", |k| k.as_str())) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page's body.
pub(crate) fn render(d: &RunDetail) -> Markup {
    let s = &d.summary;
    let id = s.run_id.to_string();
    let notes = notes(s);
    let show_workers = d.workers.len() > 1 || d.workers.first().is_some_and(|w| w.worker_id.is_some());
    let body = html! {
        link rel="stylesheet" href="/assets/history.css";
        div.page-head.detail-head {
            div {
                h1 { "Run " span.mono { (short_id(&s.run_id)) } (status_badge(s.status)) }
                p.muted.small.mono { (id) }
            }
            div.actions {
                a.btn href=(format!("/api/results/{id}/export?format=csv")) download { "Export CSV" }
                a.btn href=(format!("/api/results/{id}/export?format=json")) download { "Export JSON" }
                a.btn.primary href="/history" { "History" }
                button.btn.danger #delete-run type="button" data-run=(id) { "Delete" }
            }
        }
        div #delete-notice .notice.error hidden {}
        div.panel { (header(s, d.record.as_ref())) }
        (cards(s))
        @if !notes.is_empty() {
            div.panel {
                h2 { "Warnings and notes" }
                ul.notes { @for n in &notes { li { (n) } } }
            }
        }
        div.grid.two {
            div.panel.chart-panel {
                h2 { "Throughput and errors" span.small.muted { "per second, every phase" } }
                div.chart #chart-throughput {}
            }
            div.panel.chart-panel {
                h2 { "Latency percentiles" span.small.muted { "ms, per second" } }
                div.chart #chart-latency {}
            }
            div.panel.chart-panel {
                h2 { "Connections" span.small.muted { "open and asked for" } }
                div.chart #chart-connections {}
            }
        }
        div.panel {
            h2 { "By query kind" span.small.muted { " measurement window" } }
            @if s.steps.is_empty() { (kinds_table(s)) }
            @else {
                p.muted.small { "A search's steps ran at different concurrencies: each step has its own figures." }
                div.table-wrap {
                    table.steps {
                        thead { tr { th.num { "Connections" } th.num { "Ok ops/s" } th.num { "p95" } th.num { "p99" } th.num { "Error rate" } } }
                        tbody {
                            @for st in &s.steps {
                                tr class=[(s.best_step.as_ref() == Some(st)).then_some("total")] {
                                    td.num { (st.connections) } td.num { (num(st.qps, 1)) } td.num { (ms(st.p95_ms)) }
                                    td.num { (ms(st.p99_ms)) } td.num { (pct(st.error_rate)) }
                                }
                            }
                        }
                    }
                }
            }
            @if !s.stages.is_empty() {
                h3 { "Stages" }
                div.table-wrap {
                    table.stages {
                        thead { tr { th.num { "Stage" } th.num { "Length" } th.num { "Connections" } th.num { "Target ops/s" } th.num { "Ok ops/s" } th.num { "p50" } th.num { "p99" } th.num { "Errors" } } }
                        tbody {
                            @for st in &s.stages {
                                tr {
                                    td.num { (st.index + 1) } td.num { (secs(st.duration_s)) }
                                    td.num { (st.connections.map_or("–".into(), |c| c.to_string())) }
                                    td.num { (st.target_qps.map_or("–".into(), |q| num(q, 1))) }
                                    td.num { (num(st.total.qps, 1)) } td.num { (ms(st.total.latency_ms.p50)) }
                                    td.num { (ms(st.total.latency_ms.p99)) } td.num { (count(st.total.errors)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if show_workers {
            div.panel { h2 { "By worker" } (workers_table(&d.workers)) }
        }
        div.grid.two {
            div.panel { h2 { "Errors" } (errors_panel(s)) }
            div.panel.server-panel { h2 { "Server-side figures" } (server_figures(s)) }
        }
        div.panel {
            h2 { "Sampled executions" span.small.muted { " the first " (EXECUTIONS_SHOWN) "; all in the JSON API" } }
            (executions_table(&d.executions))
        }
    };
    page(
        &format!("Run {}", short_id(&s.run_id)),
        Nav::History,
        body,
        &["detail.js"],
        Some(&d.chart_data.to_string()),
    )
}

async fn detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let not_found =
        |message: String| problem_page(StatusCode::NOT_FOUND, "Run not found", Nav::History, &message);
    let Ok(run_id) = id.trim().parse::<RunId>() else {
        return not_found(format!(
            "`{id}` is not a run id (a UUID such as 5f0c2a9e-…). Pick a run from the history."
        ));
    };
    let reader = state.results.reader.as_ref();
    // A run still going has its live page; check before reading every snapshot.
    match reader.summary(run_id, None).await {
        Ok(Some(s)) if !s.status.is_terminal() => {
            return Redirect::to(&format!("/runs/{run_id}")).into_response()
        }
        Ok(_) => {}
        Err(e) => return unavailable(e.into()),
    }
    match read_detail(reader, run_id).await {
        Ok(Some(d)) => render(&d).into_response(),
        Ok(None) => not_found(format!("Run {run_id} is not in the results store.")),
        Err(e) => unavailable(e),
    }
}

fn unavailable(e: ApiError) -> Response {
    problem_page(
        e.status,
        "Run unavailable",
        Nav::History,
        &format!("The run could not be read: {}", e.message),
    )
}

/// `GET /results/{id}`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/results/{id}", get(detail))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_page_shows_the_summary_and_the_server_figures() {
        let mut s = unistore_core::testkit::sample_summary(RunId::new());
        s.server_stats = Some(json!({
            "source": "pg_stat_statements",
            "statements": [
                { "query": "SELECT * FROM unistore_conformance WHERE id = $1", "calls": 1200, "rows": 1200, "mean_exec_time_ms": 0.05 },
                { "query": "SELECT 1", "calls": 5, "rows": 5, "mean_exec_time_ms": 0.01 },
            ]
        }));
        let client = s.completed_ops_all_phases + s.total.errors;
        let d = RunDetail {
            summary: s.clone(),
            record: None,
            workers: vec![],
            executions: vec![],
            chart_data: json!({}),
        };
        let html = render(&d).into_string();
        assert!(html.contains(&count(s.total.ops)), "ops card");
        assert!(html.contains("SLO violated: POINT_LOOKUP: p95 9 ms &gt; 5 ms"));
        assert!(html.contains("key column `id` has no index"));
        assert!(html.contains("duplicate key"), "error example");
        assert!(html.contains(&format!(
            "The server counted 1,200 calls on the table; the client issued {} operations",
            count(client)
        )));
        assert!(!html.contains("SELECT 1<"), "statements on other tables are left out");
        assert!(html.contains(&format!("/api/results/{}/export?format=csv", s.run_id)));

        let mut s2 = s.clone();
        s2.server_stats = Some(json!({ "run": null, "note": "no worker's window covers the run" }));
        assert!(
            server_figures(&s2).into_string().contains("no worker&#39;s window covers the run")
                || server_figures(&s2).into_string().contains("no worker's window covers the run")
        );
        s2.server_stats = None;
        assert!(server_figures(&s2).into_string().contains("No server-side figures"));
    }

    /// The pages through the router, on a real (temporary) SQLite store: a run still going
    /// redirects to its live page and cannot be compared; unknown runs are 404s.
    #[tokio::test]
    async fn a_running_run_redirects_and_unknown_runs_are_not_found() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let store = unistore_adapters::open_results(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        let finished = unistore_core::testkit::sample_summary(RunId::new());
        store.sink.write_summary(&finished).await.unwrap();
        let running = RunId::new();
        let template = unistore_core::Template::new(
            "orders",
            std::collections::BTreeMap::from([(unistore_core::QueryKind::PointLookup, 100)]),
        );
        let now = chrono::Utc::now();
        store
            .sink
            .begin_run(&RunRecord {
                run_id: running,
                worker_id: None,
                template_id: "t".into(),
                template_version: None,
                template,
                target: "sqlite:///tmp/x.db".into(),
                target_kind: "sqlite".into(),
                table: "orders".into(),
                table_type: unistore_core::TableType::Sqlite,
                seed: 1,
                started_at: now,
                planned_end_at: now + chrono::Duration::hours(1),
            })
            .await
            .unwrap();
        let app = crate::router(crate::AppState {
            results: store,
            results_kind: "sqlite".into(),
            orchestrator: None,
            live: Default::default(),
            connections: Default::default(),
        });
        let get = |path: String| {
            let app = app.clone();
            async move {
                let res = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
                let status = res.status();
                let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
                let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
                (status, location, String::from_utf8(body.to_vec()).unwrap())
            }
        };

        let (status, location, _) = get(format!("/results/{running}")).await;
        assert!(status.is_redirection(), "{status}");
        assert_eq!(location, Some(format!("/runs/{running}")));
        let (status, _, body) = get(format!("/results/{}", finished.run_id)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(&count(finished.total.ops)));
        let (status, _, body) = get(format!("/results/{}", RunId::new())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("is not in the results store"));
        let (status, _, body) = get("/results/nope".into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("`nope` is not a run id"));

        let (status, _, body) = get(format!("/compare?runs={},{running}", finished.run_id)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("is still RUNNING"), "{body}");
        assert!(body.contains(&format!("Its live page is /runs/{running}")), "{body}");
        let five: Vec<String> = (0..5).map(|_| RunId::new().to_string()).collect();
        let (status, _, body) = get(format!("/compare?runs={}", five.join(","))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("Pick 2 to 4 runs to compare; 5 were named."));

        // The history lists both, the running one linked to its live page and not pickable.
        let (status, _, body) = get("/history".into()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(&format!("href=\"/runs/{running}\"")), "{body}");
        assert!(body.contains(&format!("href=\"/results/{}\"", finished.run_id)));
        assert!(body.contains("Runs 1–2 of <strong>2</strong>"));
        let (_, _, body) = get("/history?status=RUNNING".into()).await;
        assert!(
            body.contains("Runs 1–1 of <strong>1</strong>") && !body.contains(&finished.run_id.to_string())
        );
        let (_, _, body) = get("/history?table_type=postgres".into()).await;
        assert!(body.contains(&finished.run_id.to_string()) && !body.contains(&running.to_string()));
    }
}
