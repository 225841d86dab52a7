//! Running a template from start to finish on one worker: render and plan, start the engine,
//! stream snapshots and samples to the results store, summarize, evaluate SLOs.
//!
//! Binaries and embedders call this instead of wiring the engine themselves.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;

use crate::engine::{Engine, EngineConfig, EngineControl, EngineHandle};
use crate::error::{Error, Result};
use crate::metrics::{MetricSnapshot, QueryExecution, RunSummary};
use crate::model::{QueryKind, RunId, RunStatus, WorkerIdentity};
use crate::sink::{ResultsSink, StoredTemplate};
use crate::stepload::{StepDecision, StepSearch, StepSearchParams};
use crate::summary::{summarize, SummaryContext};
use crate::table::{RenderRequest, TableManager, TableProfile};
use crate::target::TargetPool;
use crate::template::{KeySource, LoadMode, Template};
use crate::workload::WorkloadPlan;

/// How many snapshots are buffered before they are written in one batch.
const SNAPSHOT_BATCH: usize = 5;
/// How many sampled executions are buffered before they are written in one batch.
const SAMPLE_BATCH: usize = 1_000;

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
        let profile = manager.profile(&table).await?;
        let kinds: Vec<QueryKind> = template.mix.iter().filter(|(_, p)| **p > 0).map(|(k, _)| *k).collect();
        let supported = manager.supported_kinds();
        if let Some(k) = kinds.iter().find(|k| !supported.contains(k)) {
            return Err(Error::Unsupported(format!(
                "{k} is not supported on {} tables: remove it from the mix (supported: {})",
                manager.table_type(),
                supported.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let statements = kinds
            .iter()
            .map(|kind| {
                manager.render(
                    &profile,
                    &RenderRequest {
                        kind: *kind,
                        values: &template.values,
                        custom_sql: template.custom_sql.as_ref(),
                    },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let needs_pool = template.values.source == KeySource::Pool
            && statements.iter().any(|s| s.params.iter().any(|p| p.role == crate::target::ParamRole::Key));
        let key_pool = if needs_pool {
            let key = profile.key_column(template.values.key_column.as_deref())?;
            let pool_values = manager.sample_values(&profile, &key.name, template.values.pool_size).await?;
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
        let plan = WorkloadPlan::build(&template, &profile, statements, key_pool, run_id, &worker)?;
        let (connections, target_qps, step_search) = match &template.load {
            LoadMode::Concurrency { connections } => (*connections, None, None),
            LoadMode::Qps { target_qps, connections } => (*connections, Some(*target_qps), None),
            LoadMode::FindMaxConcurrency {
                start_connections,
                step_connections,
                step_duration,
                max_connections,
                qps_drop_pct,
                p95_growth_pct,
                max_error_rate,
            } => (
                *start_connections,
                None,
                Some(StepSearchParams {
                    start_connections: *start_connections,
                    step_connections: *step_connections,
                    step_duration: *step_duration,
                    max_connections: *max_connections,
                    qps_drop_pct: *qps_drop_pct,
                    p95_growth_pct: *p95_growth_pct,
                    max_error_rate: *max_error_rate,
                }),
            ),
        };
        // A search measures for as long as it searches, at most every step up to the bound.
        let measurement =
            step_search.as_ref().map_or(template.phases.measurement, StepSearchParams::max_duration);
        let mut config = EngineConfig::new(run_id, connections, measurement);
        config.worker = worker;
        config.target_qps = target_qps;
        config.warmup = template.phases.warmup;
        config.cooldown = template.phases.cooldown;
        config.sample_rate = template.sample_rate;
        config.seed = template.seed.unwrap_or_else(|| rand::thread_rng().gen());
        Ok(PreparedRun {
            run_id,
            template,
            profile,
            plan: Arc::new(plan),
            config,
            target_kind: pool.kind().to_string(),
            pool,
            step_search,
        })
    }

    /// Opens the connections and starts the load.
    pub async fn start(self) -> Result<ActiveRun> {
        // The server-side baseline is taken before the first connection of the load, so the
        // server's counts cover exactly the operations the engine issued.
        let mut warnings = Vec::new();
        if let Err(e) = self.pool.begin_server_stats().await {
            warnings.push(format!("no server-side statistics: {e}"));
        }
        let since = chrono::Utc::now();
        let handle = Engine::start(self.pool.clone(), self.plan.clone(), self.config.clone()).await?;
        Ok(ActiveRun { prepared: self, handle, since, warnings })
    }
}

/// A run whose load is going.
#[derive(Debug)]
pub struct ActiveRun {
    prepared: PreparedRun,
    handle: EngineHandle,
    since: chrono::DateTime<chrono::Utc>,
    warnings: Vec<String>,
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

    /// Waits for the load to end while streaming snapshots to `on_snapshot` and, if given, to
    /// the results store; then writes the summary and the template.
    pub async fn finish(
        mut self,
        sink: Option<Arc<dyn ResultsSink>>,
        mut on_snapshot: impl FnMut(&MetricSnapshot) + Send,
    ) -> Result<FinishedRun> {
        let mut warnings = std::mem::take(&mut self.warnings);
        let mut snapshots =
            self.handle.take_snapshots().ok_or_else(|| Error::invalid("snapshots already taken"))?;
        let samples = self.handle.take_samples().ok_or_else(|| Error::invalid("samples already taken"))?;
        let sample_writer = tokio::spawn(write_samples(samples, sink.clone()));
        let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
        let mut search = self.prepared.step_search.clone().map(StepSearch::new);
        let mut search_finished = false;
        let control = self.handle.control();
        while let Some(s) = snapshots.recv().await {
            on_snapshot(&s);
            if let Some(search) = search.as_mut() {
                match search.observe(&s) {
                    Ok(StepDecision::Continue) => {}
                    Ok(StepDecision::SetConnections(n)) => control.set_connections(n),
                    Ok(StepDecision::Stop(reason)) => {
                        search_finished = true;
                        control.stop(format!("search finished: {reason}"));
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
        let report = self.handle.wait().await?;
        match sample_writer.await {
            Ok(Some(w)) => warnings.push(w),
            Ok(None) => {}
            Err(e) => warnings.push(format!("sample writer failed: {e}")),
        }
        let p = &self.prepared;
        let server_stats = match p.pool.finish_server_stats(self.since).await {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("no server-side statistics: {e}"));
                None
            }
        };
        // A search that ended itself completed; any other early stop cancelled the run. A search
        // that ran to the engine's end also completed.
        let stopped_by_search = search_finished
            && report.stop_reason.as_deref().is_some_and(|r| r.starts_with("search finished"));
        let status = if report.stop_reason.is_some() && !stopped_by_search {
            RunStatus::Cancelled
        } else {
            RunStatus::Completed
        };
        let summary = summarize(
            &report,
            &SummaryContext {
                run_id: p.run_id,
                worker_id: None,
                template: p.template.name.clone(),
                target_kind: p.target_kind.clone(),
                table: p.profile.table.to_string(),
                table_type: p.profile.table_type,
                mode: p.template.load.name().to_string(),
                slo: p.template.slo.clone(),
                seed: p.config.seed,
                status,
            },
        )?;
        let mut summary = RunSummary { server_stats, ..summary };
        if let Some(search) = &search {
            summary.steps = search.steps().to_vec();
            summary.best_step = search.best().cloned();
            if let Some(best) = &summary.best_step {
                summary.connections = best.connections;
            }
            if !stopped_by_search && summary.reason.is_none() {
                summary.reason = Some("search finished: every step up to max_connections ran".into());
            }
        }
        if let Some(sink) = &sink {
            let stored = StoredTemplate {
                template_id: template_id(&p.template),
                template: p.template.clone(),
                updated_at: chrono::Utc::now(),
            };
            if let Err(e) = sink.save_template(&stored).await {
                warnings.push(format!("could not save the template: {e}"));
            }
            if let Err(e) = sink.write_summary(&summary).await {
                warnings.push(format!("could not write the run summary: {e}"));
            }
        }
        Ok(FinishedRun { summary, persistence_warnings: warnings })
    }
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
