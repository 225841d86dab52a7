//! `bench --workers N`: the controller's orchestrator in this process, with N local
//! `unistore-worker join` processes and the control store embedded beside the results, so a
//! multi-worker run needs no server. Prints merged progress from the workers' heartbeats and
//! the run's summary, rolled up from the workers' histograms.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use unistore_adapters::{open_control, redact_url};
use unistore_core::orchestrator::{
    LocalLauncher, LossPolicy, Orchestrator, OrchestratorSettings, RunOptions,
};
use unistore_core::{RunStatus, Template, Verdict};

use crate::prometheus::PrometheusExporter;
use crate::report;
use crate::results;
use crate::signals::Interrupts;

/// What `bench` hands over for an orchestrated run.
#[derive(Debug)]
pub struct Headless {
    pub template: Template,
    pub results: Option<String>,
    pub control: Option<String>,
    pub no_results: bool,
    pub on_worker_loss: Option<LossPolicy>,
    pub json: Option<std::path::PathBuf>,
    /// `--metrics-listen`: the exporter, already serving, that the workers' snapshots feed.
    pub exporter: Option<Arc<PrometheusExporter>>,
    /// `--metrics-linger`.
    pub metrics_linger: Duration,
}

type LiveSlot = Arc<parking_lot::Mutex<Option<Arc<Orchestrator>>>>;

/// A loopback HTTP endpoint for the workers' snapshots (`POST /api/runs/{id}/metrics/live`),
/// answered by the orchestrator once it is in the slot (and counted by the exporter, if any).
/// Returns its base URL.
async fn live_receiver(exporter: Option<Arc<PrometheusExporter>>) -> std::io::Result<(String, LiveSlot)> {
    use axum::extract::State;
    use axum::http::StatusCode;
    type Receivers = (LiveSlot, Option<Arc<PrometheusExporter>>);
    let slot: LiveSlot = Arc::new(parking_lot::Mutex::new(None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    async fn push(State((slot, exporter)): State<Receivers>, body: axum::body::Bytes) -> StatusCode {
        let Ok(snapshot) = serde_json::from_slice::<unistore_core::MetricSnapshot>(&body) else {
            return StatusCode::BAD_REQUEST;
        };
        let orchestrator = slot.lock().clone();
        if let (Some(e), Some(_)) = (&exporter, &orchestrator) {
            e.observe(&snapshot);
        }
        match orchestrator.map(|o| o.observe_live(snapshot)) {
            Some(Ok(())) => StatusCode::NO_CONTENT,
            _ => StatusCode::NOT_FOUND,
        }
    }
    let app = axum::Router::new()
        .route("/api/runs/{id}/metrics/live", axum::routing::post(push))
        .with_state((slot.clone(), exporter));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the snapshot endpoint stopped: {e}");
        }
    });
    Ok((url, slot))
}

fn bad_input(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

pub async fn run(h: Headless, interrupts: &Interrupts) -> ExitCode {
    // --no-results: the workers still need a shared store to hand their rows to this process;
    // a throwaway one in a temporary directory, removed at the end.
    let scratch = if h.no_results {
        match tempfile::Builder::new().prefix("unistore-run-").tempdir() {
            Ok(d) => Some(d),
            Err(e) => return bad_input(format!("cannot create a temporary store: {e}")),
        }
    } else {
        None
    };
    let results_url = match &scratch {
        Some(dir) => format!("sqlite://{}", dir.path().join("run.db").display()),
        None => h.results.clone().unwrap_or_else(unistore_adapters::sqlite::demo::default_results_url),
    };
    let control_url = h.control.clone().unwrap_or_else(|| {
        if results_url.starts_with("sqlite://") {
            results_url.clone()
        } else {
            unistore_adapters::sqlite::demo::default_results_url()
        }
    });
    let store = match results::open(Some(&results_url)).await {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let control = match open_control(&control_url).await {
        Ok(c) => c,
        Err(e) => return bad_input(format!("control store {}: {e}", redact_url(&control_url))),
    };
    let (program, leading_args) = match crate::this_program() {
        Ok(p) => p,
        Err(e) => return bad_input(format!("cannot find this program to start workers: {e}")),
    };
    let log_dir = unistore_adapters::sqlite::demo::default_data_dir().join("worker-logs");
    let launcher = LocalLauncher::new(program).with_leading_args(leading_args).with_log_dir(&log_dir);
    // The workers push their one-second snapshots here, as they would to the controller: the
    // live merge (and a search across workers) needs them.
    let (live_url, live_slot) = match live_receiver(h.exporter.clone()).await {
        Ok(r) => r,
        Err(e) => return bad_input(format!("cannot listen for the workers' snapshots on 127.0.0.1: {e}")),
    };
    let mut settings = OrchestratorSettings::new(control_url.clone());
    settings.results_url = Some(results_url.clone());
    settings.controller_url = Some(live_url);
    if let Some(p) = h.on_worker_loss {
        settings.on_worker_loss = p;
    }
    let orchestrator =
        Orchestrator::new(control, store.sink(), store.reader.clone(), Arc::new(launcher.clone()), settings);
    *live_slot.lock() = Some(orchestrator.clone());
    // Runs that an earlier `bench --workers` or controller left behind (killed with their
    // workers) end FAILED with the reason instead of staying RUNNING.
    match orchestrator.recover(false).await {
        Ok(lines) => lines.iter().for_each(|l| eprintln!("{l}")),
        Err(e) => eprintln!("warning: cannot check the control store for abandoned runs: {e}"),
    }
    let baseline = match &h.template.gate {
        Some(gate) => match crate::gate::baseline(store.reader.as_ref(), gate, &store.redacted).await {
            Ok(b) => Some((b, gate.clone())),
            Err(e) => return bad_input(e),
        },
        None => None,
    };
    let record = match orchestrator.prepare(h.template.clone(), RunOptions::default()).await {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let run_id = record.run_id;
    if let Some(e) = &h.exporter {
        e.start_run(run_id, &h.template.table, h.template.load.name(), crate::bench::mix_kinds(&h.template));
    }
    let first = unistore_core::orchestrator::plan_workers(&h.template, orchestrator.settings().host)
        .map_or(record.worker_count, |p| p.workers);
    let workers = if first < record.worker_count {
        format!("{first} workers (the rate controller may add up to {})", record.worker_count - first)
    } else {
        format!("{first} workers")
    };
    eprintln!(
        "run {run_id}: {workers}, {} connections{} against {} table {}",
        record.target_connections,
        record.target_qps.map(|q| format!(", {q} ops/s")).unwrap_or_default(),
        h.template.target.as_deref().map(redact_url).unwrap_or_default(),
        h.template.table
    );
    eprintln!(
        "worker logs: {}",
        launcher
            .log_path(run_id, "worker-0")
            .and_then(|p| p.parent().map(|d| d.display().to_string()))
            .unwrap_or_default()
    );
    if let Err(e) = orchestrator.start(run_id).await {
        return bad_input(e);
    }
    let mut last_ops = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut elapsed = 0u64;
    let outcome = loop {
        tokio::select! {
            o = orchestrator.wait(run_id) => break o,
            sig = interrupts.wait() => {
                eprintln!("{}: stopping the run's workers", sig.reason());
                if let Err(e) = orchestrator.stop(run_id, Some(sig.reason())).await {
                    eprintln!("warning: {e}");
                }
                break orchestrator.wait(run_id).await;
            }
            _ = tick.tick() => {
                elapsed += 1;
                if let Ok(view) = orchestrator.view(run_id).await {
                    let ops: u64 = view.workers.iter().map(|w| w.heartbeat.ops).sum();
                    let errors: u64 = view.workers.iter().map(|w| w.heartbeat.errors).sum();
                    let conns: u32 = view.workers.iter().map(|w| w.heartbeat.connections).sum();
                    let states: Vec<String> = view.workers.iter().map(|w| format!("{}={}", w.heartbeat.worker_id, w.heartbeat.state)).collect();
                    // The merged one-second figures when the workers' pushes are in, else the
                    // heartbeats' counts.
                    let figures = match &view.live {
                        Some(l) => format!(
                            "{:>9.1} ops/s p50 {:.3} ms p99 {:.3} ms",
                            l.total.qps, l.total.latency_ms.p50, l.total.latency_ms.p99
                        ),
                        None => format!("{:>9.1} ops/s", ops.saturating_sub(last_ops) as f64),
                    };
                    eprintln!(
                        "{elapsed:>5}s {:<11} {figures} {:>7} errors {:>4} conns  {}",
                        view.record.phase.as_str(),
                        errors,
                        conns,
                        states.join(" ")
                    );
                    last_ops = ops;
                }
            }
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(e) = &h.exporter {
        // A worker's push is best effort (it may be lost, or still in flight when the worker
        // exits); its snapshots are all in the store by the time its summary is: those not
        // counted yet are added, so the final counters are the run's totals.
        match store.reader.snapshots(run_id).await {
            Ok(snapshots) => snapshots.iter().for_each(|s| e.observe(s)),
            Err(e) => eprintln!("warning: the metrics may miss a worker's last seconds: {e}"),
        }
        e.finish();
    }
    for note in orchestrator.view(run_id).await.map(|v| v.notes).unwrap_or_default() {
        eprintln!("note: {note}");
    }
    let mut json_failed = false;
    let mut outcome = outcome;
    let gate_report = match (baseline, outcome.summary.as_mut()) {
        (Some((baseline, gate)), Some(s)) => Some(
            crate::gate::judge(store.reader.as_ref(), &store.sink(), s, baseline, &gate, !store.incomplete())
                .await,
        ),
        _ => None,
    };
    match &outcome.summary {
        Some(s) => {
            report::print_summary(s, !h.no_results);
            if let Some(r) = &gate_report {
                crate::gate::print(r);
            }
            json_failed = h.json.as_deref().is_some_and(|path| !report::write_json(path, s));
        }
        None => println!(
            "run {run_id} {}: {}",
            outcome.record.status,
            outcome.record.reason.as_deref().unwrap_or("no worker wrote a summary")
        ),
    }
    if h.no_results {
        eprintln!("results: not stored (--no-results)");
    } else {
        eprintln!("{}", store.final_line());
    }
    let verdict = outcome.summary.as_ref().map_or(Verdict::Failed, |s| s.verdict());
    let code = match (interrupts.first(), outcome.record.status, verdict) {
        (Some(sig), _, _) => ExitCode::from(sig.exit_code()),
        (None, RunStatus::Failed, _)
        | (None, _, Verdict::Failed | Verdict::SloFailed | Verdict::TargetNotReached | Verdict::Regressed) => {
            ExitCode::from(1)
        }
        _ if store.incomplete() || json_failed => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    };
    if h.exporter.is_some() {
        crate::prometheus::linger(h.metrics_linger, interrupts).await;
    }
    code
}
