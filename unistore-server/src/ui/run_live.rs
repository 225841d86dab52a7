//! `GET /runs/{id}`: one run, live. The page is rendered from the run's row (or, for a run this
//! controller no longer drives, from the results store) and `live.js` keeps it current from the
//! run's WebSocket (`/ws/test/{id}`): phase stepper and timers, metric cards, SLO panel, worker
//! health, live charts, per-kind and step tables. A run that has ended shows its stored figures
//! and a link to its detail page; an unknown id is a 404 page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::json;
use unistore_core::orchestrator::RunView;
use unistore_core::template::{LoadMode, Scaling};
use unistore_core::{ErrorKind, RunId, RunStatus, RunSummary, Template};

use super::history::{ms, num};
use super::layout::{page, Nav};
use crate::AppState;

/// What the page knows about a run when it is opened.
struct Opened {
    run_id: RunId,
    status: RunStatus,
    reason: Option<String>,
    template: Option<Template>,
    /// The stored summary of a run that has ended.
    summary: Option<RunSummary>,
}

impl Opened {
    fn ended(&self) -> bool {
        self.status.is_terminal()
    }
}

fn status_name(s: RunStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The run from the orchestrator, else from the results store; `Ok(None)`: no such run.
async fn open(state: &AppState, run_id: RunId) -> Result<Option<Opened>, String> {
    let view: Option<RunView> = match &state.orchestrator {
        Some(o) => match o.view(run_id).await {
            Ok(v) => Some(v),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read the run: {e}")),
        },
        None => None,
    };
    let reader = &state.results.reader;
    let ended = view.as_ref().is_none_or(|v| v.record.status.is_terminal());
    let summary = if ended {
        reader.summary(run_id, None).await.map_err(|e| format!("cannot read the run's results: {e}"))?
    } else {
        None
    };
    let template = match view.as_ref().and_then(|v| v.record.template_json.as_deref()) {
        Some(json) => serde_json::from_str(json).ok(),
        None => reader.run_record(run_id, None).await.ok().flatten().map(|r| r.template),
    };
    Ok(match (view, summary) {
        (None, None) => None,
        (view, summary) => {
            let (status, reason) = match (&summary, &view) {
                (Some(s), _) => (s.status, s.reason.clone()),
                (None, Some(v)) => (v.record.status, v.record.reason.clone()),
                (None, None) => return Ok(None),
            };
            Some(Opened { run_id, status, reason, template, summary })
        }
    })
}

fn not_found(message: &str) -> Response {
    let body = html! {
        div.panel {
            h1 { "Run not found" }
            p { (message) }
            p { a href="/history" { "← Back to the stored runs" } " · " a href="/templates" { "Templates" } }
        }
    };
    (StatusCode::NOT_FOUND, page("Run not found", Nav::Runs, body, &[], None)).into_response()
}

async fn run_page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(run_id) = id.parse::<RunId>() else {
        return not_found(&format!("`{id}` is not a run id."));
    };
    let opened = match open(&state, run_id).await {
        Ok(Some(o)) => o,
        Ok(None) => return not_found(&format!("There is no run {run_id}.")),
        Err(e) => {
            let body =
                html! { div.notice.error { (e) } p { a href="/history" { "← Back to the stored runs" } } };
            return (StatusCode::SERVICE_UNAVAILABLE, page("Run", Nav::Runs, body, &[], None))
                .into_response();
        }
    };
    let data = json!({
        "run_id": opened.run_id,
        "status": status_name(opened.status),
        "ended": opened.ended(),
        "find_max": opened.template.as_ref().is_some_and(|t| matches!(t.load, LoadMode::FindMaxConcurrency { .. })),
        "slo": opened.template.as_ref().map(|t| &t.slo),
        "open_loop": opened.template.as_ref().is_some_and(|t| t.load.target_qps().is_some()),
    })
    .to_string();
    let title = opened.template.as_ref().map_or_else(|| "Run".to_string(), |t| t.name.clone());
    page(&title, Nav::Runs, body(&opened, &title), &["live.js"], Some(&data)).into_response()
}

fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn load_text(load: &LoadMode) -> String {
    match load {
        LoadMode::Concurrency { connections } => format!("closed loop, {connections} connections"),
        LoadMode::Qps { target_qps, connections } => {
            format!("open loop at {target_qps} ops/s, up to {connections} connections")
        }
        LoadMode::FindMaxConcurrency {
            start_connections,
            step_connections,
            step_duration,
            max_connections,
            ..
        } => {
            format!(
                "find max concurrency: {start_connections} connections, +{step_connections} every {}, up to {max_connections}",
                duration(*step_duration)
            )
        }
    }
}

fn scaling_text(s: &Scaling) -> String {
    match s {
        Scaling::Fixed { workers } => format!("fixed, {workers} worker(s)"),
        Scaling::Auto { max_workers } => format!("auto, up to {max_workers} workers"),
        Scaling::Bounded { min_workers, max_workers, max_connections_per_worker } => format!(
            "bounded, {min_workers} to {max_workers} workers, at most {max_connections_per_worker} connections each"
        ),
    }
}

fn about(t: &Template) -> Markup {
    let mix: Vec<String> = t.mix.iter().map(|(k, p)| format!("{} {p} %", k.as_str())).collect();
    html! {
        dl.kv {
            dt { "Table" } dd.mono { (t.table) }
            dt { "Load" } dd { (load_text(&t.load)) }
            dt { "Mix" } dd { (mix.join(" · ")) }
            dt { "Phases" } dd {
                "warmup " (duration(t.phases.warmup))
                " · measurement " (duration(unistore_core::orchestrator::plan::measurement_of(t)))
                " · cooldown " (duration(t.phases.cooldown))
            }
            dt { "Scaling" } dd { (scaling_text(&t.scaling)) }
        }
    }
}

/// A metric card whose value and sub-line the script fills.
fn card(class: &str, label: &str, id: &str, value: &str, sub: &str) -> Markup {
    html! {
        div class=(format!("card {class}")) {
            div.label { (label) }
            div.value id=(format!("m-{id}")) { (value) }
            div.sub id=(format!("m-{id}-sub")) { (sub) }
        }
    }
}

fn body(o: &Opened, title: &str) -> Markup {
    let status = status_name(o.status);
    let ended = o.ended();
    let s = o.summary.as_ref();
    let find_max = o.template.as_ref().is_some_and(|t| matches!(t.load, LoadMode::FindMaxConcurrency { .. }));
    let dash = "–".to_string();
    html! {
        link rel="stylesheet" href="/assets/live.css";
        div.page-head {
            div {
                h1 { (title) " " span #run-status class=(format!("badge {status}")) { (status) } }
                div.muted.small { "Run " span.mono { (o.run_id) } }
            }
            div.actions {
                button #btn-start .btn.success type="button" hidden[o.status != RunStatus::Prepared] { "▶ Start" }
                button #btn-stop .btn.danger type="button" hidden[o.status != RunStatus::Running] { "■ Stop" }
                a #results-link .btn.primary href=(format!("/results/{}", o.run_id)) hidden[!ended] { "Results →" }
            }
        }
        div #live-notice .notice hidden[o.reason.is_none() && !ended] {
            @if ended {
                "The run has ended: " (status)
                @if let Some(r) = &o.reason { " — " (r) }
            } @else if let Some(r) = &o.reason { (r) }
        }
        div.grid.two.live-top {
            div.panel {
                h2 { "Run" }
                @match &o.template {
                    Some(t) => (about(t)),
                    None => p.muted { "The run's template is not stored." },
                }
            }
            div.panel {
                h2 { "Progress" }
                div.stepper #stepper {
                    @for (i, name) in ["Prepared", "Warmup", "Measurement", "Cooldown", "Done"].iter().enumerate() {
                        @let class = if ended { if i == 4 { "step current" } else { "step done" } } else if i == 0 { "step current" } else { "step" };
                        div class=(class) data-step=(i) { (name) }
                    }
                }
                div.progress { div #progress-bar style=(if ended { "width: 100%" } else { "width: 0%" }) {} }
                dl.kv.timers {
                    dt { "Elapsed" } dd #t-elapsed { (s.map_or(dash.clone(), |s| format!("{:.0}s measured", s.duration_s))) }
                    dt { "Phase" } dd #t-phase { (if ended { "done".to_string() } else { "waiting for the start".to_string() }) }
                    dt { "Left in phase" } dd #t-phase-left { "–" }
                    dt { "Left in run" } dd #t-left { "–" }
                }
            }
        }
        div.cards {
            (card("qps", "Throughput", "qps", &s.map_or(dash.clone(), |s| num(s.total.qps, 1)), "ops/s"))
            (card("inflight", "In flight", "inflight", "–", &s.map_or("connections –".to_string(), |s| format!("{} connections", s.connections))))
            (card("p50", "p50 latency", "p50", &s.map_or(dash.clone(), |s| ms(s.total.latency_ms.p50)), "response time"))
            (card("p95", "p95 latency", "p95", &s.map_or(dash.clone(), |s| ms(s.total.latency_ms.p95)), "response time"))
            (card("p99", "p99 latency", "p99", &s.map_or(dash.clone(), |s| ms(s.total.latency_ms.p99)), "response time"))
            (card("errors", "Error rate", "errors", &s.map_or(dash.clone(), |s| format!("{:.2} %", s.total.error_rate() * 100.0)), &s.map_or("errors –".to_string(), |s| format!("{} errors", s.total.errors))))
        }
        div.grid.two {
            div.panel {
                h2 { "SLOs " span.muted.small #slo-basis { (if ended { "measurement window" } else { "last second" }) } }
                div #slo { p.muted.small { "No SLOs in the template." } }
            }
            div.panel {
                h2 { "Workers" }
                div.workers #workers { p.muted.small { (if ended { "The run has ended." } else { "No worker yet." }) } }
            }
        }
        @if !ended {
            div.panel #charts {
                h2 { "Live" }
                div.live-charts {
                    div { h3 { "Throughput and errors" } div.chart #chart-qps {} }
                    div { h3 { "Latency" } div.chart #chart-latency {} }
                    div { h3 { "Connections and in flight" } div.chart #chart-conns {} }
                }
            }
        }
        div.panel {
            h2 { "Per kind" }
            div.table-wrap {
                table #kinds {
                    thead { tr { th { "Kind" } th.num { "ops/s" } th.num { "ops" } th.num { "errors" } th.num { "error rate" } th.num { "p50" } th.num { "p95" } th.num { "p99" } } }
                    tbody {
                        @if let Some(s) = s {
                            @for (k, f) in &s.by_kind {
                                tr {
                                    td { (k.as_str()) }
                                    td.num { (format!("{:.1}", f.qps)) }
                                    td.num { (f.ops) }
                                    td.num { (f.errors) }
                                    td.num { (format!("{:.2} %", f.error_rate() * 100.0)) }
                                    td.num { (ms(f.latency_ms.p50)) }
                                    td.num { (ms(f.latency_ms.p95)) }
                                    td.num { (ms(f.latency_ms.p99)) }
                                }
                            }
                        } @else {
                            tr { td.empty colspan="8" { "No figures yet." } }
                        }
                    }
                }
            }
        }
        @if find_max {
            div.panel #steps-panel {
                h2 { "Concurrency search" }
                p.small #steps-now { (s.and_then(|s| s.best_step.as_ref()).map_or_else(|| "No step judged yet.".to_string(), |b| format!("Best step: {} connections at {:.1} ops/s", b.connections, b.qps))) }
                div.table-wrap {
                    table #steps {
                        thead { tr { th { "Step" } th.num { "Connections" } th.num { "ops/s" } th.num { "p95" } th.num { "p99" } th.num { "error rate" } th { "Verdict" } } }
                        tbody {
                            @if let Some(s) = s {
                                @for (i, st) in s.steps.iter().enumerate() {
                                    tr {
                                        td { (i + 1) }
                                        td.num { (st.connections) }
                                        td.num { (format!("{:.1}", st.qps)) }
                                        td.num { (ms(st.p95_ms)) }
                                        td.num { (ms(st.p99_ms)) }
                                        td.num { (format!("{:.2} %", st.error_rate * 100.0)) }
                                        td { @if s.best_step.as_ref() == Some(st) { span.badge.ok { "BEST" } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.panel #notes-panel hidden {
            h2 { "Notes" }
            ul.small #notes {}
        }
    }
}

/// The run page's route.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/runs/{id}", get(run_page))
}
