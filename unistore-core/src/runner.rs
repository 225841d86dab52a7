//! Running a template from start to finish on one worker: render and plan, connect, write the
//! run's row, start the engine, stream snapshots and samples to the results store, summarize,
//! judge (guardrails, SLOs, open-loop target) and store the verdict.
//!
//! Binaries and embedders call this instead of wiring the engine themselves. The stages are
//! separate so that a caller can report bad input (anything up to [`ReadyRun`]) before
//! anything is written:
//!
//! [`PreparedRun::prepare`] → [`PreparedRun::connect`] → [`ReadyRun::start`] →
//! [`ActiveRun::finish`].

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;

use crate::engine::{
    ConnectedEngine, Engine, EngineConfig, EngineControl, EngineHandle, EngineReport, StopReason,
};
use crate::error::{Error, Result};
use crate::metrics::{MetricSnapshot, QueryExecution, RunSummary, Verdict};
use crate::model::{QueryKind, RunId, RunStatus, WorkerIdentity};
use crate::notes::{run_notes, RunNotes};
use crate::sink::{ResultsSink, RunRecord, StoredTemplate};
use crate::stepload::{StepDecision, StepSearch, StepSearchParams};
use crate::summary::{summarize, SummaryContext};
use crate::table::{RenderRequest, TableManager, TableProfile};
use crate::target::TargetPool;
use crate::template::limits::MAX_CONNECTIONS_PER_WORKER;
use crate::template::{KeySource, Template};
use crate::workload::WorkloadPlan;

/// How many snapshots are buffered before they are written in one batch.
const SNAPSHOT_BATCH: usize = 5;
/// How many sampled executions are buffered before they are written in one batch.
const SAMPLE_BATCH: usize = 1_000;
/// Longest that profiling the table and sampling its keys may take (or the statement timeout,
/// when that is longer): a server that stops answering fails the run instead of hanging it.
const PROFILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest time all initial connections of a run may take together.
const MIN_CONNECT_ALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A run that has been validated, profiled and planned, but not started. Everything that can
/// fail because of bad input fails before this exists, and nothing has been written yet.
pub struct PreparedRun {
    /// The run.
    pub run_id: RunId,
    /// The template, as run.
    pub template: Template,
    /// The profiled table.
    pub profile: TableProfile,
    /// The plan.
    pub plan: Arc<WorkloadPlan>,
    /// Engine settings derived from the template.
    pub config: EngineConfig,
    /// Backend name of the target.
    pub target_kind: String,
    /// The target's URL without secrets, as stored with the run (default: the backend's
    /// scheme only; set it to the redacted URL).
    pub target: String,
    /// What will run and what may mislead (printed in the header; warnings are stored).
    pub notes: RunNotes,
    /// `Some(worker id)` for one worker of a multi-worker run: its run row and summary are the
    /// worker's own (`worker_id` set), beside the run's row that the orchestrator writes.
    /// `None` (the default): a single-process run, whose rows are the run's own.
    pub worker_row: Option<String>,
    pool: Arc<dyn TargetPool>,
    step_search: Option<StepSearchParams>,
}

impl std::fmt::Debug for PreparedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRun")
            .field("run_id", &self.run_id)
            .field("table", &self.profile.table)
            .finish()
    }
}

async fn bounded<T>(
    what: &str,
    limit: Duration,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, f).await.map_err(|_| {
        Error::backend(
            crate::error::ErrorKind::Timeout,
            format!(
                "{what} took longer than {}: is the server answering?",
                humantime::format_duration(limit)
            ),
        )
    })?
}

impl PreparedRun {
    /// Validates the template against the table (supported kinds, key column, write
    /// permission), renders one statement per kind in the mix, samples the key pool and builds
    /// the plan.
    pub async fn prepare(
        template: Template,
        run_id: RunId,
        worker: WorkerIdentity,
        pool: Arc<dyn TargetPool>,
        manager: &dyn TableManager,
    ) -> Result<Self> {
        template.validate()?;
        let table = template.table_ref()?;
        let profile_limit = template.timeouts.statement.map_or(PROFILE_TIMEOUT, |s| s.max(PROFILE_TIMEOUT));
        let profile =
            bounded(&format!("profiling table {table}"), profile_limit, manager.profile(&table)).await?;
        let kinds: Vec<QueryKind> = template.mix.iter().filter(|(_, p)| **p > 0).map(|(k, _)| *k).collect();
        let supported = manager.supported_kinds();
        if let Some(k) = kinds.iter().find(|k| !supported.contains(k)) {
            return Err(Error::Unsupported(format!(
                "{k} is not supported on {} tables: remove it from the mix (supported: {})",
                manager.table_type(),
                supported.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let statements = render_statements(manager, &profile, &template, &kinds)?;
        let needs_pool = template.values.source == KeySource::Pool
            && statements.iter().any(|s| s.params.iter().any(|p| p.role == crate::target::ParamRole::Key));
        let key_pool = if needs_pool {
            let key = profile.key_column(template.values.key_column.as_deref())?;
            let pool_values = bounded(
                &format!("sampling keys of {}", profile.table),
                profile_limit,
                manager.sample_values(&profile, &key.name, template.values.pool_size),
            )
            .await?;
            if pool_values.is_empty() {
                return Err(Error::invalid(format!(
                    "table {} has no rows to look up: load data first, or use inserts only",
                    profile.table
                )));
            }
            Some(pool_values)
        } else {
            None
        };
        let notes = run_notes(&template, &profile, &statements, key_pool.as_ref().map(Vec::len));
        let plan = WorkloadPlan::build(&template, &profile, statements, key_pool, run_id, &worker)?;
        let step_search = StepSearchParams::from_load(&template.load);
        let (connections, target_qps) = (template.load.initial_connections(), template.load.target_qps());
        // A staged run starts (and warms up) at its first stage's load.
        let (connections, target_qps) = match template.stages.first() {
            Some(first) => (first.connections.unwrap_or(connections), first.target_qps.or(target_qps)),
            None => (connections, target_qps),
        };
        let staged_most = template.stages.iter().filter_map(|s| s.connections).max().unwrap_or(0);
        let most = step_search.as_ref().map_or(connections, |s| s.max_connections).max(staged_most);
        if most > MAX_CONNECTIONS_PER_WORKER {
            return Err(Error::invalid(format!(
                "{most} connections in one worker process is more than the limit of \
                 {MAX_CONNECTIONS_PER_WORKER}: use fewer connections, or spread them over several workers"
            )));
        }
        if let Some((limit, why)) = pool.max_sessions() {
            if most > limit {
                return Err(Error::invalid(format!(
                    "{most} connections to a {} target is more than its limit of {limit}: {why}",
                    pool.kind()
                )));
            }
        }
        // A search measures for as long as it searches, at most every step up to the bound.
        let measurement = step_search.as_ref().map_or(template.measurement(), StepSearchParams::max_duration);
        let mut config = EngineConfig::new(run_id, connections, measurement);
        config.worker = worker;
        config.target_qps = target_qps;
        config.warmup = template.phases.warmup;
        config.cooldown = template.phases.cooldown;
        config.sample_rate = template.sample_rate;
        config.seed = template.seed.unwrap_or_else(|| rand::thread_rng().gen());
        config.connect_timeout = template.timeouts.connect.max(MIN_CONNECT_ALL_TIMEOUT);
        Ok(PreparedRun {
            run_id,
            template,
            profile,
            plan: Arc::new(plan),
            config,
            target_kind: pool.kind().to_string(),
            target: format!("{}://", pool.kind()),
            notes,
            worker_row: None,
            pool,
            step_search,
        })
    }

    /// The run's row as it starts.
    fn record(
        &self,
        template_version: Option<u32>,
        started_at: chrono::DateTime<chrono::Utc>,
        planned_end_at: chrono::DateTime<chrono::Utc>,
    ) -> RunRecord {
        RunRecord {
            run_id: self.run_id,
            worker_id: self.worker_row.clone(),
            template_id: template_id(&self.template),
            template_version,
            template: self.template.clone(),
            target: self.target.clone(),
            target_kind: self.target_kind.clone(),
            table: self.profile.table.to_string(),
            table_type: self.profile.table_type,
            seed: self.config.seed,
            started_at,
            planned_end_at,
        }
    }

    /// How long the load is planned to take: warmup, measurement (or the longest search) and
    /// cooldown.
    pub fn planned_duration(&self) -> Duration {
        self.config.warmup.saturating_add(self.config.measurement).saturating_add(self.config.cooldown)
    }

    /// Opens and prepares the initial connections, then takes the server-side baseline. A
    /// failure here is a setup error (the target is unreachable, the statements do not
    /// prepare): nothing has been run or written.
    ///
    /// The baseline is taken here, not when the load starts: a worker of a multi-worker run
    /// says it is ready after this, and the run's shared start instant is set only when every
    /// worker is, so every worker's server-side window begins before any worker's load (a
    /// worker that learns of the start late, or writes its row slowly, still has a window that
    /// covers the whole run).
    pub async fn connect(self) -> Result<ReadyRun> {
        let engine = Engine::connect(self.pool.clone(), self.plan.clone(), self.config.clone()).await?;
        let baseline_warning =
            self.pool.begin_server_stats().await.err().map(|e| format!("no server-side statistics: {e}"));
        let stats_since = chrono::Utc::now();
        Ok(ReadyRun { prepared: self, engine, stats_since, baseline_warning })
    }
}

/// A run whose connections are open and whose server-side baseline is taken: the next step
/// writes its row and starts the load.
#[derive(Debug)]
pub struct ReadyRun {
    prepared: PreparedRun,
    engine: ConnectedEngine,
    /// When the server-side baseline was taken (the backends that read history by time read
    /// it from here).
    stats_since: chrono::DateTime<chrono::Utc>,
    /// Why there is no baseline, if there is none.
    baseline_warning: Option<String>,
}

impl ReadyRun {
    /// The prepared run.
    pub fn prepared(&self) -> &PreparedRun {
        &self.prepared
    }

    /// Saves the template (a new version when its content changed), writes the run's row
    /// (status `RUNNING`, template with that version, target, planned end) to `sink`, and
    /// starts the load.
    pub async fn start(self, sink: Option<Arc<dyn ResultsSink>>) -> ActiveRun {
        self.start_at(sink, None).await
    }

    /// [`ReadyRun::start`] at a run's shared start instant (`None`: now): the load waits for
    /// it, or, when it has passed, starts in the phase the run is in by now (see
    /// [`ConnectedEngine::start_at`]). The row's start is that instant.
    pub async fn start_at(
        self,
        sink: Option<Arc<dyn ResultsSink>>,
        load_start_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> ActiveRun {
        let ReadyRun { prepared: p, engine, stats_since, baseline_warning } = self;
        let mut warnings: Vec<String> = baseline_warning.into_iter().collect();
        // Saved before the run's row, so that the row names the exact version it ran.
        let mut template_version = None;
        if let Some(sink) = &sink {
            let stored = StoredTemplate {
                template_id: template_id(&p.template),
                template: p.template.clone(),
                version: 0,
                updated_at: chrono::Utc::now(),
            };
            match sink.save_template_version(&stored).await {
                Ok(version) => template_version = version,
                Err(e) => warnings.push(format!("could not save the template: {e}")),
            }
        }
        let started_at = load_start_at.unwrap_or_else(chrono::Utc::now);
        let planned = chrono::Duration::from_std(p.planned_duration()).unwrap_or(chrono::Duration::MAX);
        let record = p.record(
            template_version,
            started_at,
            started_at.checked_add_signed(planned).unwrap_or(started_at),
        );
        if let Some(sink) = &sink {
            if let Err(e) = sink.begin_run(&record).await {
                warnings.push(format!("could not write the run's row: {e}"));
            }
        }
        let handle = match load_start_at {
            Some(at) => engine.start_at(at).await,
            None => engine.start(),
        };
        ActiveRun { prepared: p, handle, since: started_at, stats_since, warnings, sink }
    }
}

/// Receives each interval snapshot of a run as it is taken.
#[async_trait::async_trait]
pub trait SnapshotObserver: Send {
    /// One snapshot.
    async fn observe(&mut self, snapshot: &MetricSnapshot);
}

/// A plain closure as an observer.
struct FnObserver<F>(F);

#[async_trait::async_trait]
impl<F: FnMut(&MetricSnapshot) + Send> SnapshotObserver for FnObserver<F> {
    async fn observe(&mut self, snapshot: &MetricSnapshot) {
        (self.0)(snapshot);
    }
}

/// A run whose load is going.
#[derive(Debug)]
pub struct ActiveRun {
    prepared: PreparedRun,
    handle: EngineHandle,
    /// The load's start (a failed run's row starts here).
    since: chrono::DateTime<chrono::Utc>,
    /// When the server-side baseline was taken.
    stats_since: chrono::DateTime<chrono::Utc>,
    warnings: Vec<String>,
    sink: Option<Arc<dyn ResultsSink>>,
}

impl std::fmt::Debug for dyn ResultsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResultsSink")
    }
}

/// What finishing a run produced.
#[derive(Debug)]
pub struct FinishedRun {
    /// The summary (also written to the results store when one was given).
    pub summary: RunSummary,
    /// Problems writing results; the run itself is valid, but the store may lack rows.
    pub persistence_warnings: Vec<String>,
}

impl ActiveRun {
    /// The engine's control handle (stop, change connections).
    pub fn control(&self) -> EngineControl {
        self.handle.control()
    }

    /// Every operation, when `config.log_operations` was set before connecting (take once and
    /// keep reading it while the run goes: the load waits for its reader).
    pub fn take_operation_log(&mut self) -> Option<mpsc::Receiver<QueryExecution>> {
        self.handle.take_operation_log()
    }

    /// Waits for the load to end while streaming snapshots to `on_snapshot` and to the
    /// results store; then judges the run and writes its summary. A run that
    /// broke (a panicking connection task, an engine failure) ends `FAILED` with the reason;
    /// it is never reported as a success.
    pub async fn finish(self, on_snapshot: impl FnMut(&MetricSnapshot) + Send) -> FinishedRun {
        self.finish_observed(&mut FnObserver(on_snapshot)).await
    }

    /// [`ActiveRun::finish`] with an observer that may await for each snapshot (a heartbeat
    /// write, an HTTP push, a broadcast). The run's own handling of snapshots (the step
    /// search, the store) waits for it, so an observer bounds its work with a timeout.
    pub async fn finish_observed(mut self, observer: &mut (dyn SnapshotObserver + '_)) -> FinishedRun {
        let mut warnings = std::mem::take(&mut self.warnings);
        let sink = self.sink.clone();
        let mut search = self.prepared.step_search.clone().map(StepSearch::new);
        let mut unreachable_s = 0.0;
        let mut stages = StageTally::new(&self.prepared.template.stages, self.prepared.config.warmup);
        if let (Some(mut snapshots), Some(samples)) =
            (self.handle.take_snapshots(), self.handle.take_samples())
        {
            let sample_writer = tokio::spawn(write_samples(samples, sink.clone()));
            let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
            let control = self.handle.control();
            let stage_driver = (!self.prepared.template.stages.is_empty()).then(|| {
                tokio::spawn(drive_stages(
                    control.clone(),
                    self.prepared.config.warmup,
                    self.prepared.template.stages.clone(),
                ))
            });
            while let Some(s) = snapshots.recv().await {
                observer.observe(&s).await;
                stages.observe(&s);
                if s.phase == crate::model::RunPhase::Measurement && target_unreachable(&s) {
                    unreachable_s += s.interval_s;
                }
                if let Some(search) = search.as_mut() {
                    match search.observe(&s) {
                        Ok(StepDecision::Continue) => {}
                        Ok(StepDecision::SetConnections(n)) => control.set_connections(n),
                        Ok(StepDecision::Stop(reason)) => {
                            control.stop(StopReason::SearchFinished(format!("search finished: {reason}")))
                        }
                        Err(e) => warnings.push(format!("step search: {e}")),
                    }
                }
                batch.push(s);
                if batch.len() >= SNAPSHOT_BATCH {
                    flush_snapshots(&sink, &mut batch, &mut warnings).await;
                }
            }
            flush_snapshots(&sink, &mut batch, &mut warnings).await;
            if let Some(driver) = stage_driver {
                driver.abort();
            }
            match sample_writer.await {
                Ok(Some(w)) => warnings.push(w),
                Ok(None) => {}
                Err(e) => warnings.push(format!("sample writer failed: {e}")),
            }
        }
        let p = &self.prepared;
        let summary = match self.handle.wait().await {
            Ok(report) => {
                let server_stats = match p.pool.finish_server_stats(self.stats_since).await {
                    Ok(s) => s,
                    Err(e) => {
                        warnings.push(format!("no server-side statistics: {e}"));
                        None
                    }
                };
                match judge(p, &report, search.as_ref(), server_stats, stages.results()) {
                    Ok(s) => RunSummary { unreachable_s, ..s },
                    Err(e) => failed_summary(
                        p,
                        self.since,
                        format!("the run's figures could not be summarized: {e}"),
                    ),
                }
            }
            Err(e) => failed_summary(p, self.since, format!("the load engine failed: {e}")),
        };
        if let Some(sink) = &sink {
            if let Err(e) = sink.write_summary(&summary).await {
                warnings.push(format!("could not write the run summary: {e}"));
            }
        }
        FinishedRun { summary, persistence_warnings: warnings }
    }
}

/// Turns what the engine measured into the summary and judges it: status from the stop
/// reason and the guardrails, then the verdict from the open-loop target and the SLOs.
fn judge(
    p: &PreparedRun,
    report: &EngineReport,
    search: Option<&StepSearch>,
    server_stats: Option<serde_json::Value>,
    stages: Vec<crate::metrics::StageResult>,
) -> Result<RunSummary> {
    let (status, reason) = match &report.stop_reason {
        Some(StopReason::Failed(m)) => (RunStatus::Failed, Some(m.clone())),
        Some(StopReason::Requested(m)) => (RunStatus::Cancelled, Some(m.clone())),
        Some(StopReason::SearchFinished(m)) => (RunStatus::Completed, Some(m.clone())),
        None if search.is_some() => {
            (RunStatus::Completed, Some("search finished: every step up to max_connections ran".to_string()))
        }
        None => (RunStatus::Completed, None),
    };
    let mut summary = summarize(report, &context(p, status))?;
    summary.reason = reason;
    summary.warnings = p.notes.warnings.clone();
    summary.server_stats = server_stats;
    if let Some(search) = search {
        summary.steps = search.steps().to_vec();
        summary.best_step = search.best().cloned();
        if let Some(best) = &summary.best_step {
            summary.connections = best.connections;
        }
    }
    apply_verdict(&mut summary, &p.template, stages);
    Ok(summary)
}

/// Judges a summary whose figures are final: the guardrails (too many errors fail a completed
/// run), the open-loop target (per stage when `stages` has targets), the SLOs already in
/// `summary.slo`, and from these the verdict. Shared by a single worker and by the run-level
/// roll-up of several workers.
pub fn apply_verdict(
    summary: &mut RunSummary,
    template: &Template,
    stages: Vec<crate::metrics::StageResult>,
) {
    if summary.status == RunStatus::Completed {
        if let Some(failure) = guardrail_failure(summary, template.guardrails.max_error_rate) {
            summary.status = RunStatus::Failed;
            summary.reason = Some(failure);
        }
    }
    let g = &template.guardrails;
    // Open loop: the achieved rate against the target, stage by stage when there are stages
    // (a stage that did not run, cut short by a stop, is not held against the run).
    summary.target_reached = if stages.iter().any(|s| s.target_qps.is_some()) {
        Some(stages.iter().all(|s| match s.target_qps {
            Some(target) if s.total.ops + s.total.errors > 0 => s.total.qps >= target * g.target_tolerance,
            _ => true,
        }))
    } else {
        summary.target_qps.map(|target| summary.total.qps >= target * g.target_tolerance)
    };
    summary.stages = stages;
    if summary.target_reached == Some(false) && summary.stages.is_empty() {
        if let Some(why) = shortfall_reason(summary) {
            summary.warnings.push(why);
        }
    }
    summary.verdict = Some(match summary.status {
        RunStatus::Failed => Verdict::Failed,
        RunStatus::Cancelled | RunStatus::Cancelling => Verdict::Cancelled,
        _ if summary.target_reached == Some(false) && !g.expect_shortfall => Verdict::TargetNotReached,
        _ if !summary.slo.passed => Verdict::SloFailed,
        _ => Verdict::Passed,
    });
}

/// Why an open-loop run fell short of its target, from Little's law: the connections needed
/// at the target rate are the rate times the mean service time. When the run's connections
/// were fewer, they were the limit (each was busy all the time: more connections, or the
/// database is at its limit); when there were enough, the client fell behind.
fn shortfall_reason(s: &RunSummary) -> Option<String> {
    let target = s.target_qps?;
    let service_ms = s.total.service_time_ms.map_or(s.total.latency_ms.mean, |l| l.mean);
    if service_ms <= 0.0 || s.connections == 0 {
        return None;
    }
    let needed = target * service_ms / 1e3;
    let busy = s.total.qps * service_ms / 1e3;
    Some(if needed > f64::from(s.connections) * 0.9 {
        format!(
            "open loop short of its target: {:.1} of {target:.1} ops/s; at a mean service time of {service_ms:.3} ms \
             the target needs about {needed:.0} operations in flight, and the run had {} connections (busy {busy:.1} \
             on average): give it more connections (or workers), or the database is at its limit",
            s.total.qps, s.connections
        )
    } else {
        format!(
            "open loop short of its target: {:.1} of {target:.1} ops/s although its {} connections were not all busy \
             ({busy:.1} on average): the client could not issue operations fast enough (add workers or threads)",
            s.total.qps, s.connections
        )
    })
}

/// Moves a staged run from stage to stage at the boundaries (measured from the load's start,
/// after warmup): connections in closed loop, rate (and connections, if given) in open loop.
async fn drive_stages(control: EngineControl, warmup: Duration, stages: Vec<crate::template::Stage>) {
    let mut boundary = warmup;
    for pair in stages.windows(2) {
        boundary = boundary.saturating_add(pair[0].duration);
        let wait = boundary.saturating_sub(control.elapsed());
        tokio::time::sleep(wait).await;
        if control.is_stopping() {
            return;
        }
        let next = &pair[1];
        if let Some(c) = next.connections {
            control.set_connections(c);
        }
        if let Some(q) = next.target_qps {
            control.set_target_qps(q);
        }
    }
}

/// Assigns each measurement snapshot to the stage its interval mostly belonged to, and merges
/// them per stage at the end (exactly, from the snapshots' histograms).
struct StageTally {
    stages: Vec<crate::template::Stage>,
    ends_s: Vec<f64>,
    warmup_s: f64,
    parts: Vec<Vec<crate::metrics::KindStats>>,
}

impl StageTally {
    fn new(stages: &[crate::template::Stage], warmup: Duration) -> Self {
        let mut end = 0.0;
        let ends_s = stages
            .iter()
            .map(|s| {
                end += s.duration.as_secs_f64();
                end
            })
            .collect();
        StageTally {
            stages: stages.to_vec(),
            ends_s,
            warmup_s: warmup.as_secs_f64(),
            parts: vec![Vec::new(); stages.len()],
        }
    }

    fn observe(&mut self, s: &MetricSnapshot) {
        if self.stages.is_empty() || s.phase != crate::model::RunPhase::Measurement {
            return;
        }
        let mid = s.elapsed_s - s.interval_s / 2.0 - self.warmup_s;
        let i = self.ends_s.partition_point(|end| *end <= mid).min(self.stages.len() - 1);
        self.parts[i].push(s.total.clone());
    }

    fn results(&self) -> Vec<crate::metrics::StageResult> {
        self.stages
            .iter()
            .enumerate()
            .map(|(index, stage)| {
                let parts: Vec<&crate::metrics::KindStats> = self.parts[index].iter().collect();
                let window = stage.duration.as_secs_f64();
                let total = crate::metrics::KindStats::merge_exact(&parts, window).unwrap_or_default();
                crate::metrics::StageResult {
                    index,
                    duration_s: window,
                    connections: stage.connections,
                    target_qps: stage.target_qps,
                    total,
                }
            })
            .collect()
    }
}

/// A second in which the target could not be reached: nothing succeeded, and connections were
/// lost or could not be opened.
fn target_unreachable(s: &MetricSnapshot) -> bool {
    s.total.ops == 0
        && (s.total.errors_by_kind.contains_key(&crate::error::ErrorKind::Connect)
            || s.active_connections == 0)
}

/// Why a run that ran to its end still failed: it measured nothing, or mostly errors.
fn guardrail_failure(s: &RunSummary, max_error_rate: f64) -> Option<String> {
    let first_error =
        || s.error_examples.iter().next().map(|(k, m)| format!("; first {k} error: {m}")).unwrap_or_default();
    if s.total.ops == 0 && s.total.errors == 0 {
        return Some(format!(
            "no operation completed in the {:.3} s measurement window: nothing was measured \
             (is the window shorter than one operation, or did every connection hang?)",
            s.duration_s
        ));
    }
    if s.total.ops == 0 {
        return Some(format!("every measured operation failed ({} errors){}", s.total.errors, first_error()));
    }
    let rate = s.total.error_rate();
    if rate > max_error_rate {
        return Some(format!(
            "{:.1}% of the measured operations failed, above the guardrail of {:.1}% \
             (guardrails.max_error_rate){}",
            rate * 100.0,
            max_error_rate * 100.0,
            first_error()
        ));
    }
    None
}

fn context(p: &PreparedRun, status: RunStatus) -> SummaryContext {
    SummaryContext {
        run_id: p.run_id,
        worker_id: p.worker_row.clone(),
        template: p.template.name.clone(),
        target_kind: p.target_kind.clone(),
        table: p.profile.table.to_string(),
        table_type: p.profile.table_type,
        mode: p.template.load.name().to_string(),
        slo: p.template.slo.clone(),
        seed: p.config.seed,
        status,
    }
}

/// The summary of a run whose measurements were lost (the engine itself failed).
fn failed_summary(p: &PreparedRun, since: chrono::DateTime<chrono::Utc>, reason: String) -> RunSummary {
    let record = p.record(None, since, since);
    RunSummary {
        status: RunStatus::Failed,
        reason: Some(reason),
        verdict: Some(Verdict::Failed),
        ..RunSummary::running(&record)
    }
}

/// One statement per kind in the mix, and one per custom statement (in template order, which
/// the plan relies on to find each one's generators).
pub fn render_statements(
    manager: &dyn TableManager,
    profile: &TableProfile,
    template: &Template,
    kinds: &[QueryKind],
) -> Result<Vec<crate::target::StatementSpec>> {
    let mut out = Vec::new();
    for kind in kinds {
        let request = |custom_sql| RenderRequest { kind: *kind, values: &template.values, custom_sql };
        if *kind == QueryKind::CustomSql {
            if template.custom_sql.is_empty() {
                return Err(Error::invalid("CUSTOM_SQL needs a [custom_sql] section with sql and params"));
            }
            for custom in &template.custom_sql {
                out.push(manager.render(profile, &request(Some(custom)))?);
            }
        } else {
            out.push(manager.render(profile, &request(None))?);
        }
    }
    Ok(out)
}

/// A stable id for a template: its name, made safe for keys.
pub fn template_id(t: &Template) -> String {
    t.name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

async fn flush_snapshots(
    sink: &Option<Arc<dyn ResultsSink>>,
    batch: &mut Vec<MetricSnapshot>,
    warnings: &mut Vec<String>,
) {
    if batch.is_empty() {
        return;
    }
    if let Some(sink) = sink {
        if let Err(e) = sink.write_snapshots(batch).await {
            let w = format!("could not write {} snapshots: {e}", batch.len());
            tracing::warn!("{w}");
            if warnings.len() < 10 {
                warnings.push(w);
            }
        }
    }
    batch.clear();
}

async fn write_samples(
    mut rx: mpsc::Receiver<QueryExecution>,
    sink: Option<Arc<dyn ResultsSink>>,
) -> Option<String> {
    let mut batch = Vec::with_capacity(SAMPLE_BATCH);
    let mut failure = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(row) => {
                    batch.push(row);
                    if batch.len() < SAMPLE_BATCH {
                        continue;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {}
        }
        if let (Some(s), false) = (&sink, batch.is_empty()) {
            if let Err(e) = s.write_query_executions(&batch).await {
                failure.get_or_insert_with(|| format!("could not write sampled executions: {e}"));
            }
        }
        batch.clear();
    }
    if let (Some(s), false) = (&sink, batch.is_empty()) {
        if let Err(e) = s.write_query_executions(&batch).await {
            failure.get_or_insert_with(|| format!("could not write sampled executions: {e}"));
        }
    }
    failure
}
