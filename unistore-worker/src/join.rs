//! `join`: one worker of a multi-worker run, started by the controller (or by hand on another
//! host with the same arguments).
//!
//! Exit codes: `0` the worker finished its share (or the run was stopped: STOP, the run ended,
//! the controller went silent); `2` it could not join or run (unknown run, bad input, target
//! unreachable: its heartbeat says why); `3` its results are spooled, not stored yet;
//! `130`/`143` SIGINT/SIGTERM (its summary is still written, CANCELLED).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clap::Args;
use unistore_adapters::{open_control, open_target, redact_url, TargetOptions};
use unistore_core::metrics::MetricSnapshot;
use unistore_core::orchestrator::join::{JoinSettings, SnapshotPublisher, WorkerAgent};
use unistore_core::runner::PreparedRun;
use unistore_core::{Error, ResultsSink, RunId};

use crate::results;
use crate::signals::Interrupts;

const EXIT_BAD_INPUT: u8 = 2;
const EXIT_RESULTS_NOT_STORED: u8 = 3;

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The run to join (its id, as the controller or `bench --workers` printed it).
    #[arg(long)]
    run_id: String,
    /// This worker's id within the run, e.g. worker-3.
    #[arg(long)]
    worker_id: String,
    /// This worker's index for sharding keys (default: the number in --worker-id).
    #[arg(long)]
    worker_index: Option<u32>,
    /// Workers in the run (default: the run's worker count).
    #[arg(long)]
    worker_count: Option<u32>,
    /// Control store URL (default: the embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_CONTROL", hide_env_values = true)]
    control: Option<String>,
    /// Results store URL (default: the run's, else the embedded SQLite file).
    #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
    results: Option<String>,
    /// Controller base URL: one-second snapshots are pushed to
    /// POST {controller}/api/runs/{run_id}/metrics/live.
    #[arg(long)]
    controller: Option<String>,
    /// Stop when the controller has not marked the run alive for this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "UNISTORE_CONTROLLER_TIMEOUT")]
    controller_timeout: Duration,
    /// Stop when heartbeats cannot be written to the control store for this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "UNISTORE_CONTROL_TIMEOUT")]
    control_timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration ({e}): write e.g. 30s"))
}

/// Pushes snapshots to the controller over HTTP.
struct HttpPublisher {
    client: reqwest::Client,
    url: String,
    /// The controller's `UNISTORE_TOKEN`, inherited from the controller that started this
    /// worker; required when the controller listens beyond loopback.
    token: Option<String>,
}

#[async_trait]
impl SnapshotPublisher for HttpPublisher {
    async fn publish(&self, snapshot: &MetricSnapshot) -> unistore_core::Result<()> {
        let body = serde_json::to_vec(snapshot).map_err(|e| Error::invalid(format!("snapshot: {e}")))?;
        let mut request = self.client.post(&self.url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Error::invalid(format!("pushing a snapshot to the controller: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::invalid(format!(
                "the controller refused a snapshot: HTTP {}",
                response.status()
            )));
        }
        Ok(())
    }
}

pub fn main(args: JoinArgs) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bad_input(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_BAD_INPUT)
}

async fn run(args: JoinArgs) -> ExitCode {
    let interrupts = match Interrupts::install() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run_id: RunId = match args.run_id.parse() {
        Ok(r) => r,
        Err(e) => return bad_input(format!("--run-id: {e}")),
    };
    let control_url =
        args.control.clone().unwrap_or_else(unistore_adapters::sqlite::demo::default_results_url);
    let control = match open_control(&control_url).await {
        Ok(c) => c,
        Err(e) => return bad_input(format!("control store {}: {e}", redact_url(&control_url))),
    };
    let settings = JoinSettings {
        controller_timeout: args.controller_timeout,
        control_timeout: args.control_timeout,
        ..JoinSettings::default()
    };
    let attached =
        WorkerAgent::attach(control, run_id, &args.worker_id, args.worker_index, args.worker_count, settings)
            .await;
    let (mut agent, record, template) = match attached {
        Ok(a) => a,
        Err(e) => return bad_input(e),
    };
    // Past registration, a failure is also told to the controller through the heartbeat.
    macro_rules! fail {
        ($e:expr) => {{
            let message = $e.to_string();
            if let Err(e) = agent.report_failure(&message).await {
                eprintln!("warning: could not report the failure to the control store: {e}");
            }
            return bad_input(message);
        }};
    }
    let results_url = args.results.clone().or(record.results_url.clone());
    let store = match results::open(results_url.as_deref()).await {
        Ok(s) => s,
        Err(e) => fail!(e),
    };
    let Some(target_url) = template.target.clone() else {
        fail!(format!("run {run_id}'s template has no target"));
    };
    let table = match template.table_ref() {
        Ok(t) => t,
        Err(e) => fail!(e),
    };
    let mut options = TargetOptions::new(run_id, table, template.table_type);
    options.connect_timeout = template.timeouts.connect;
    options.statement_timeout = template.timeouts.statement;
    let target = match open_target(&target_url, &options).await {
        Ok(t) => t,
        Err(e) => fail!(format!("target {}: {e}", redact_url(&target_url))),
    };
    let identity = agent.identity().clone();
    let mut prepared =
        match PreparedRun::prepare(template, run_id, identity, target.pool.clone(), target.manager.as_ref())
            .await
        {
            Ok(p) => p,
            Err(e) => fail!(e),
        };
    prepared.target = redact_url(&target_url);
    prepared.worker_row = Some(args.worker_id.clone());
    let connections = prepared.config.connections;
    let ready = match prepared.connect().await {
        Ok(r) => r,
        Err(e) => fail!(format!("{e} (target {})", redact_url(&target_url))),
    };
    let start = tokio::select! {
        s = agent.wait_for_start(connections) => s,
        sig = interrupts.wait() => {
            eprintln!("{}: stopped before the load started", sig.reason());
            return ExitCode::from(sig.exit_code());
        }
    };
    let load_start_at = match start {
        Ok(Some(at)) => at,
        Ok(None) => {
            eprintln!("run {run_id} was stopped before its load started");
            return ExitCode::SUCCESS;
        }
        Err(e) => fail!(e),
    };
    let publisher: Option<Arc<dyn SnapshotPublisher>> = args.controller.as_ref().map(|base| {
        Arc::new(HttpPublisher {
            client: reqwest::Client::new(),
            url: format!("{}/api/runs/{run_id}/metrics/live", base.trim_end_matches('/')),
            token: std::env::var("UNISTORE_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.trim().to_string()),
        }) as Arc<dyn SnapshotPublisher>
    });
    let sink: Arc<dyn ResultsSink> = store.sink();
    let finished =
        agent.run(ready, Some(sink), load_start_at, publisher, |control| interrupts.attach(control)).await;
    for w in &finished.persistence_warnings {
        eprintln!("warning: {w}");
    }
    let s = &finished.summary;
    eprintln!(
        "{}: {} {} ops in {:.1}s ({:.1} ops/s){}",
        args.worker_id,
        s.status,
        s.total.ops,
        s.duration_s,
        s.total.qps,
        s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
    );
    eprintln!("{}", store.final_line());
    if let Some(sig) = interrupts.first() {
        return ExitCode::from(sig.exit_code());
    }
    if store.incomplete() {
        return ExitCode::from(EXIT_RESULTS_NOT_STORED);
    }
    ExitCode::SUCCESS
}
