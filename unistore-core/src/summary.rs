//! From what the engine measured to the run summary, with SLO verdicts.

use std::collections::BTreeMap;

use crate::engine::EngineReport;
use crate::error::Result;
use crate::metrics::{KindRecorder, KindStats, RunSummary, SloReport};
use crate::model::{QueryKind, RunId, RunStatus, TableType};
use crate::template::{Slo, SloScope};

/// What the summary needs besides the measurements.
#[derive(Debug, Clone)]
pub struct SummaryContext {
    /// The run.
    pub run_id: RunId,
    /// Worker id for a worker's own row.
    pub worker_id: Option<String>,
    /// Template name.
    pub template: String,
    /// Backend of the target.
    pub target_kind: String,
    /// Table benchmarked.
    pub table: String,
    /// Its type.
    pub table_type: TableType,
    /// Load mode name.
    pub mode: String,
    /// Thresholds.
    pub slo: BTreeMap<SloScope, Slo>,
    /// Seed used.
    pub seed: u64,
    /// Final status.
    pub status: RunStatus,
}

/// Builds the run summary. QPS is defined once: successful operations in the measurement
/// window divided by the window actually measured.
pub fn summarize(report: &EngineReport, ctx: &SummaryContext) -> Result<RunSummary> {
    let window_s = report.window.as_secs_f64();
    let mut total = KindRecorder::default();
    let mut by_kind = BTreeMap::new();
    for (kind, r) in &report.measured {
        total.merge(r);
        by_kind.insert(*kind, r.stats(window_s, true)?);
    }
    let total = total.stats(window_s, true)?;
    let by_statement = report
        .measured_by_label
        .iter()
        .map(|(label, r)| Ok((label.clone(), r.stats(window_s, true)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let slo = evaluate_slo(&ctx.slo, &by_kind, &total);
    Ok(RunSummary {
        run_id: ctx.run_id,
        worker_id: ctx.worker_id.clone(),
        template: ctx.template.clone(),
        target_kind: ctx.target_kind.clone(),
        table: ctx.table.clone(),
        table_type: ctx.table_type,
        mode: ctx.mode.clone(),
        connections: report.connections,
        target_qps: report.target_qps,
        status: ctx.status,
        reason: report.stop_reason.as_ref().map(|r| r.message().to_string()),
        started_at: report.started_at,
        measurement_started_at: report.measurement_started_at,
        measurement_ended_at: report.measurement_ended_at,
        warmup_s: report.warmup.as_secs_f64(),
        duration_s: window_s,
        total,
        by_kind,
        by_statement,
        warmup_ops: report.warmup_ops,
        cooldown_ops: report.cooldown_ops,
        completed_ops_all_phases: report.completed_ops,
        abandoned_in_flight: report.abandoned_in_flight,
        late_starts: report.late_starts,
        max_start_lag_ms: report.max_start_lag.as_secs_f64() * 1e3,
        unissued_ops: report.unissued_ops,
        unreachable_s: 0.0,
        samples_dropped: report.samples_dropped,
        error_examples: report.error_examples.clone(),
        slo,
        verdict: None,
        target_reached: None,
        warnings: Vec::new(),
        seed: ctx.seed,
        stages: Vec::new(),
        steps: Vec::new(),
        best_step: None,
        server_stats: None,
        client: Some(crate::metrics::ClientInfo::this_process(report.client_threads)),
        gate: None,
    })
}

/// Checks every threshold against the measured statistics: per kind, and for the whole run
/// (`TOTAL`). A kind with a threshold but no completed operation fails: an SLO that was never
/// exercised has not been met.
pub fn evaluate_slo(
    slos: &BTreeMap<SloScope, Slo>,
    by_kind: &BTreeMap<QueryKind, KindStats>,
    total: &KindStats,
) -> SloReport {
    let mut violations = Vec::new();
    for (scope, slo) in slos {
        let stats = match scope {
            SloScope::Total => Some(total),
            SloScope::Kind(kind) => by_kind.get(kind),
        };
        let Some(stats) = stats.filter(|s| s.ops > 0 || s.errors > 0) else {
            violations.push(format!("{scope}: no operations were measured, so its SLO cannot be met"));
            continue;
        };
        if let Some(limit) = slo.min_qps {
            if stats.qps < limit {
                violations.push(format!("{scope}: {:.1} ops/s < {limit} ops/s", stats.qps));
            }
        }
        if let Some(limit) = slo.p95_ms {
            if stats.latency_ms.p95 > limit {
                violations.push(format!("{scope}: p95 {:.3} ms > {limit} ms", stats.latency_ms.p95));
            }
        }
        if let Some(limit) = slo.p99_ms {
            if stats.latency_ms.p99 > limit {
                violations.push(format!("{scope}: p99 {:.3} ms > {limit} ms", stats.latency_ms.p99));
            }
        }
        if let Some(limit) = slo.max_error_rate {
            let rate = stats.error_rate();
            if rate > limit {
                violations.push(format!("{scope}: error rate {:.4} > {limit}", rate));
            }
        }
    }
    SloReport { passed: violations.is_empty(), violations }
}
