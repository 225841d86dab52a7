//! Rolling workers up into the run: the run's summary from the workers' summaries, and the
//! run's live figures from the workers' latest one-second snapshots. Percentiles always come
//! from the merged histograms, never from the slowest worker's percentile.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::metrics::{KindStats, MetricSnapshot, RunSummary};
use crate::model::{RunId, RunPhase, RunStatus};
use crate::runner::apply_verdict;
use crate::stepload::{StepSearch, StepSearchParams, StepState};
use crate::summary::evaluate_slo;
use crate::template::Template;

fn merge_map<K: Ord + Clone>(
    maps: &[&BTreeMap<K, KindStats>],
    window_s: f64,
) -> Result<BTreeMap<K, KindStats>> {
    let mut by_key: BTreeMap<K, Vec<&KindStats>> = BTreeMap::new();
    for m in maps {
        for (k, v) in *m {
            by_key.entry(k.clone()).or_default().push(v);
        }
    }
    by_key.into_iter().map(|(k, parts)| Ok((k, KindStats::merge_exact(&parts, window_s)?))).collect()
}

/// How bad a status is, for taking the worst of the workers'.
fn severity(s: RunStatus) -> u8 {
    match s {
        RunStatus::Failed => 3,
        RunStatus::Cancelled | RunStatus::Cancelling => 2,
        _ => 1,
    }
}

/// The run's summary from its workers' summaries (at least one): counts added, histograms
/// merged (so p99 is the p99 of every operation of every worker), the window the longest
/// worker's (workers share the run's phase boundaries), the status the worst worker's, and
/// the SLOs, guardrails and verdict judged again on the merged figures.
pub fn merge_summaries(run_id: RunId, template: &Template, parts: &[RunSummary]) -> Result<RunSummary> {
    let Some(first) = parts.first() else {
        return Err(Error::invalid(format!(
            "run {run_id}: no worker wrote a summary, so there is nothing to roll up"
        )));
    };
    let window_s = parts.iter().map(|p| p.duration_s).fold(0.0, f64::max);
    let totals: Vec<&KindStats> = parts.iter().map(|p| &p.total).collect();
    let total = KindStats::merge_exact(&totals, window_s)?;
    let by_kind = merge_map(&parts.iter().map(|p| &p.by_kind).collect::<Vec<_>>(), window_s)?;
    let by_statement = merge_map(&parts.iter().map(|p| &p.by_statement).collect::<Vec<_>>(), window_s)?;
    let worst = parts.iter().max_by_key(|p| severity(p.status)).unwrap_or(first);
    let mut error_examples = BTreeMap::new();
    let mut warnings: Vec<String> = Vec::new();
    for p in parts {
        for (k, m) in &p.error_examples {
            error_examples.entry(*k).or_insert_with(|| m.clone());
        }
        for w in &p.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    let sum = |f: fn(&RunSummary) -> u64| parts.iter().map(f).sum::<u64>();
    // The run's target is the template's: the workers' shares move while the rate controller
    // splits it again, and a worker still starting at the end holds a share of its own.
    let target_qps =
        template.load.target_qps().or_else(|| parts.iter().filter_map(|p| p.target_qps).reduce(|a, b| a + b));
    let mut summary = RunSummary {
        run_id,
        worker_id: None,
        template: first.template.clone(),
        target_kind: first.target_kind.clone(),
        table: first.table.clone(),
        table_type: first.table_type,
        mode: first.mode.clone(),
        connections: parts.iter().map(|p| p.connections).sum(),
        target_qps,
        status: if severity(worst.status) > 1 { worst.status } else { RunStatus::Completed },
        reason: worst.reason.clone().map(|r| match &worst.worker_id {
            Some(w) if parts.len() > 1 => format!("{w}: {r}"),
            _ => r,
        }),
        started_at: parts.iter().map(|p| p.started_at).min().unwrap_or(first.started_at),
        measurement_started_at: parts
            .iter()
            .map(|p| p.measurement_started_at)
            .min()
            .unwrap_or(first.measurement_started_at),
        measurement_ended_at: parts
            .iter()
            .map(|p| p.measurement_ended_at)
            .max()
            .unwrap_or(first.measurement_ended_at),
        warmup_s: parts.iter().map(|p| p.warmup_s).fold(0.0, f64::max),
        duration_s: window_s,
        slo: evaluate_slo(&template.slo, &by_kind, &total),
        total,
        by_kind,
        by_statement,
        warmup_ops: sum(|p| p.warmup_ops),
        cooldown_ops: sum(|p| p.cooldown_ops),
        completed_ops_all_phases: sum(|p| p.completed_ops_all_phases),
        abandoned_in_flight: sum(|p| p.abandoned_in_flight),
        late_starts: sum(|p| p.late_starts),
        max_start_lag_ms: parts.iter().map(|p| p.max_start_lag_ms).fold(0.0, f64::max),
        unissued_ops: sum(|p| p.unissued_ops),
        unreachable_s: parts.iter().map(|p| p.unreachable_s).fold(0.0, f64::max),
        samples_dropped: sum(|p| p.samples_dropped),
        error_examples,
        verdict: None,
        target_reached: None,
        warnings,
        seed: first.seed,
        stages: Vec::new(),
        // One worker that searched itself judged the run's steps; across workers the
        // controller's search fills them in afterwards.
        steps: if parts.len() == 1 { first.steps.clone() } else { Vec::new() },
        best_step: if parts.len() == 1 { first.best_step.clone() } else { None },
        server_stats: merge_server_stats(parts),
        client: crate::metrics::ClientInfo::merge(parts.iter().filter_map(|p| p.client.as_ref())),
        gate: None,
    };
    apply_verdict(&mut summary, template, Vec::new());
    Ok(summary)
}

/// The run's server-side figures from its workers'. A backend's figures describe the server
/// over a window around one worker's load, and the server counts every client: on PostgreSQL
/// each worker's `pg_stat_statements` delta holds the other workers' calls too, so they are
/// never added up. The run's figures (`run`) are those of the worker whose window (`from`,
/// `to`) began before every worker's load started and ended after every other window, so they
/// cover the whole run's load (`covered_by` names it); without such a window, `run` is null.
/// Each worker's own figures stay under `per_worker`.
pub fn merge_server_stats(parts: &[RunSummary]) -> Option<serde_json::Value> {
    let with: Vec<(&str, &serde_json::Value)> = parts
        .iter()
        .filter_map(|p| p.server_stats.as_ref().map(|s| (p.worker_id.as_deref().unwrap_or("run"), s)))
        .collect();
    if with.is_empty() {
        return None;
    }
    let at = |v: &serde_json::Value, field: &str| {
        v.get(field).and_then(|t| t.as_str()).and_then(|t| t.parse::<DateTime<Utc>>().ok())
    };
    let first_start = parts.iter().map(|p| p.started_at).min();
    let last_end = with.iter().filter_map(|(_, s)| at(s, "to")).max();
    let covering = with.iter().find(|(_, s)| {
        matches!((at(s, "from"), at(s, "to"), first_start, last_end), (Some(f), Some(t), Some(start), Some(end)) if f <= start && t >= end)
            && with.len() == parts.len()
            && with.iter().all(|(_, o)| at(o, "to").is_some())
    });
    let per_worker: serde_json::Map<String, serde_json::Value> =
        with.iter().map(|(w, s)| ((*w).to_string(), (*s).clone())).collect();
    Some(serde_json::json!({
        "run": covering.map(|(_, s)| (*s).clone()),
        "covered_by": covering.map(|(w, _)| *w),
        "per_worker": per_worker,
        "note": match covering {
            Some((w, _)) => format!("the run's figures are {w}'s: its window covers every worker's load; \
                the server counts every client, so the workers' figures are not added up"),
            None => "no worker's window covers the whole run's load (a worker joined late or had no \
                window): see each worker's figures; the server counts every client, so they are not added up"
                .to_string(),
        },
    }))
}

/// The merged live figures of a run: the exact merge of each worker's latest one-second
/// snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveFigures {
    /// The newest snapshot's time.
    pub taken_at: DateTime<Utc>,
    /// The run's phase as the workers report it (the most advanced).
    pub phase: RunPhase,
    /// Workers whose snapshot is merged.
    pub workers: usize,
    /// Connections open, all workers.
    pub active_connections: u32,
    /// Open-loop target of all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_qps: Option<f64>,
    /// The merge's window, seconds (the longest of the merged intervals).
    pub interval_s: f64,
    /// Operations in flight on average over the window, by Little's law: the summed response
    /// time of the operations that completed in it over its length. The engine keeps no
    /// in-flight gauge, and a gauge read once a second would miss every burst in between.
    pub in_flight: f64,
    /// Open loop: operations due that had not started yet, all workers.
    pub backlog: u64,
    /// All kinds, all workers (histograms left out).
    pub total: KindStats,
    /// Per kind, all workers (histograms left out).
    pub by_kind: BTreeMap<crate::model::QueryKind, KindStats>,
    /// Each merged worker's own second, by worker id.
    pub per_worker: BTreeMap<String, WorkerLive>,
    /// A `FIND_MAX_CONCURRENCY` run: where the step search stands (`current_step`,
    /// `connections`, `elapsed_in_step_s`, `step_s`, `max_connections`, the judged `steps` and
    /// why the search `finished`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub steps: Option<StepState>,
}

/// One worker's latest second.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerLive {
    /// The snapshot's sequence number (the worker's second).
    pub seq: u64,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Successful operations per second.
    pub qps: f64,
    /// Successful operations in the second.
    pub ops: u64,
    /// Failed operations in the second.
    pub errors: u64,
    /// Connections open.
    pub connections: u32,
    /// p95 response time, ms.
    pub p95_ms: f64,
}

/// The latest snapshot of each worker of one run, merged on demand, and for a
/// `FIND_MAX_CONCURRENCY` run the step search followed on the same snapshots.
#[derive(Debug, Default)]
pub struct LiveRun {
    latest: HashMap<String, MetricSnapshot>,
    steps: Option<StepFollower>,
}

/// The run's step search, replayed for the live view. The search is a pure function of the
/// run-level snapshots, so feeding it what the deciding search is fed (one worker's own
/// snapshots, or the controller's merged rounds of several workers) gives the same steps and
/// verdicts without asking the worker or the driver for their state.
#[derive(Debug)]
struct StepFollower {
    search: StepSearch,
    /// Fed merged rounds ([`LiveRun::observe_round`]) rather than each worker's snapshots.
    rounds: bool,
}

/// Snapshots older than this behind the newest are left out of the live merge (their worker is
/// stopping or silent).
const LIVE_STALENESS_S: i64 = 3;

impl LiveRun {
    /// Keeps `snapshot` if it is newer (by its worker's sequence number) than what its worker
    /// sent before: pushes may arrive out of order.
    pub fn observe(&mut self, snapshot: MetricSnapshot) {
        match self.latest.get(&snapshot.worker_id) {
            Some(old) if old.seq >= snapshot.seq => {}
            _ => {
                if let Some(f) = self.steps.as_mut().filter(|f| !f.rounds) {
                    // An error here is the merge's (a histogram that does not decode): the
                    // deciding search meets the same one, and the live view shows what it has.
                    let _ = f.search.observe(&snapshot);
                }
                self.latest.insert(snapshot.worker_id.clone(), snapshot);
            }
        }
    }

    /// Follows a `FIND_MAX_CONCURRENCY` search from now on: fed each worker's snapshots (one
    /// worker searching itself) or, with `rounds`, the merged rounds of several workers.
    pub fn follow_steps(&mut self, params: StepSearchParams, rounds: bool) {
        self.steps = Some(StepFollower { search: StepSearch::new(params), rounds });
    }

    /// One merged round of a search across workers (the snapshot the driver's search gets).
    pub fn observe_round(&mut self, merged: &MetricSnapshot) {
        if let Some(f) = self.steps.as_mut().filter(|f| f.rounds) {
            let _ = f.search.observe(merged);
        }
    }

    /// The latest snapshot of one worker.
    pub fn latest(&self, worker_id: &str) -> Option<&MetricSnapshot> {
        self.latest.get(worker_id)
    }

    /// Workers that sent a snapshot.
    pub fn workers(&self) -> usize {
        self.latest.len()
    }

    /// The exact merge of the workers' latest snapshots (those within a few seconds of the
    /// newest), or `None` before the first.
    pub fn merged(&self) -> Result<Option<LiveFigures>> {
        let Some(newest) = self.latest.values().map(|s| s.taken_at).max() else {
            return Ok(None);
        };
        let fresh: Vec<&MetricSnapshot> = self
            .latest
            .values()
            .filter(|s| (newest - s.taken_at).num_seconds() <= LIVE_STALENESS_S)
            .collect();
        let window = fresh.iter().map(|s| s.interval_s).fold(0.0, f64::max).max(1e-9);
        let mut total = KindStats::merge_exact(&fresh.iter().map(|s| &s.total).collect::<Vec<_>>(), window)?;
        let mut by_kind = merge_map(&fresh.iter().map(|s| &s.by_kind).collect::<Vec<_>>(), window)?;
        for k in std::iter::once(&mut total).chain(by_kind.values_mut()) {
            k.histogram = None;
            k.service_histogram = None;
        }
        let per_worker = fresh
            .iter()
            .map(|s| {
                let w = WorkerLive {
                    seq: s.seq,
                    taken_at: s.taken_at,
                    qps: s.total.qps,
                    ops: s.total.ops,
                    errors: s.total.errors,
                    connections: s.active_connections,
                    p95_ms: s.total.latency_ms.p95,
                };
                (s.worker_id.clone(), w)
            })
            .collect();
        Ok(Some(LiveFigures {
            taken_at: newest,
            phase: fresh.iter().map(|s| s.phase).max().unwrap_or(RunPhase::Preparing),
            workers: fresh.len(),
            active_connections: fresh.iter().map(|s| s.active_connections).sum(),
            target_qps: fresh.iter().filter_map(|s| s.target_qps).reduce(|a, b| a + b),
            interval_s: window,
            in_flight: total.sum_ns as f64 / 1e9 / window,
            backlog: fresh.iter().map(|s| s.backlog).sum(),
            total,
            by_kind,
            per_worker,
            steps: self.steps.as_ref().map(|f| f.search.state()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{KindRecorder, MetricSnapshot};
    use crate::model::{QueryKind, TableType};
    use crate::sink::RunRecord;

    fn template() -> Template {
        Template::new("public.t", [(QueryKind::PointLookup, 100)].into_iter().collect())
    }

    fn stats(latencies_us: &[(u64, u64)], window_s: f64) -> KindStats {
        let mut r = KindRecorder::default();
        for (us, n) in latencies_us {
            for _ in 0..*n {
                r.response.record_ns(us * 1_000);
            }
        }
        r.stats(window_s, true).expect("stats")
    }

    fn worker(run_id: RunId, id: &str, latencies_us: &[(u64, u64)]) -> RunSummary {
        let now = Utc::now();
        let record = RunRecord {
            run_id,
            worker_id: Some(id.into()),
            template_id: "t".into(),
            template_version: None,
            template: template(),
            target: "sqlite://".into(),
            target_kind: "sqlite".into(),
            table: "main.t".into(),
            table_type: TableType::Standard,
            seed: 1,
            started_at: now,
            planned_end_at: now,
        };
        let total = stats(latencies_us, 10.0);
        let mut s = RunSummary::running(&record);
        s.status = RunStatus::Completed;
        s.duration_s = 10.0;
        s.connections = 2;
        s.completed_ops_all_phases = total.ops + 7;
        s.by_kind.insert(QueryKind::PointLookup, total.clone());
        s.total = total;
        s
    }

    /// The run's p99 is the p99 of every operation of every worker, not the slowest worker's:
    /// worker A is fast, worker B has a slow tail of 2 % of its operations. Over both, the tail
    /// is 1 % of the operations, so the run's p99 falls in the fast part, while B's own p99 is
    /// in the tail.
    #[test]
    fn run_p99_comes_from_the_merged_histograms() {
        let run_id = RunId::new();
        let a = worker(run_id, "worker-0", &[(1_000, 1_000)]);
        let b = worker(run_id, "worker-1", &[(1_000, 980), (50_000, 20)]);
        let merged = merge_summaries(run_id, &template(), &[a.clone(), b.clone()]).expect("merge");
        // An independent reference: one histogram with every value recorded.
        let mut all =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram");
        all.record_n(1_000, 1_980).expect("record");
        all.record_n(50_000, 20).expect("record");
        let reference_p99 = all.value_at_quantile(0.99) as f64 / 1_000.0;
        assert_eq!(merged.total.ops, 2_000);
        assert_eq!(merged.completed_ops_all_phases, 2_014);
        assert_eq!(merged.connections, 4);
        assert!((merged.total.qps - 200.0).abs() < 1e-9, "qps = ops / window: {}", merged.total.qps);
        assert!(
            (merged.total.latency_ms.p99 - reference_p99).abs() < 0.01,
            "merged p99 {} vs reference {reference_p99}",
            merged.total.latency_ms.p99
        );
        let slowest = a.total.latency_ms.p99.max(b.total.latency_ms.p99);
        assert!(slowest > 40.0, "worker B's own p99 is in its tail: {slowest}");
        assert!(
            merged.total.latency_ms.p99 < 2.0,
            "the run's p99 is not the slowest worker's: {}",
            merged.total.latency_ms.p99
        );
        assert_eq!(merged.by_kind[&QueryKind::PointLookup].ops, 2_000);
        assert_eq!(merged.verdict, Some(crate::metrics::Verdict::Passed));
        assert_eq!(merged.worker_id, None);
    }

    #[test]
    fn live_figures_merge_the_latest_snapshot_of_each_worker() {
        let run_id = RunId::new();
        let snap = |worker: &str, seq: u64, us: u64, n: u64| MetricSnapshot {
            run_id,
            worker_id: worker.into(),
            seq,
            taken_at: Utc::now(),
            elapsed_s: seq as f64,
            interval_s: 1.0,
            phase: RunPhase::Measurement,
            active_connections: 2,
            target_connections: 2,
            target_qps: None,
            late_starts: 0,
            backlog: 0,
            total: stats(&[(us, n)], 1.0),
            by_kind: BTreeMap::new(),
        };
        let mut live = LiveRun::default();
        live.observe(snap("worker-0", 1, 500, 10));
        live.observe(snap("worker-0", 2, 1_000, 100));
        live.observe(snap("worker-1", 1, 2_000, 50));
        live.observe(snap("worker-0", 1, 500, 10)); // late and older: ignored
        let m = live.merged().expect("merge").expect("figures");
        assert_eq!((m.workers, m.total.ops, m.active_connections), (2, 150, 4));
        assert!((m.total.qps - 150.0).abs() < 1e-9);
        assert!(m.total.histogram.is_none(), "histograms are not sent to browsers");
        // 100 operations of 1 ms and 50 of 2 ms in one second: 0.2 s busy, 0.2 in flight.
        assert!((m.in_flight - 0.2).abs() < 1e-9, "{}", m.in_flight);
        assert_eq!(m.per_worker["worker-0"].seq, 2);
        assert_eq!(m.per_worker["worker-0"].ops, 100);
        assert_eq!(m.per_worker["worker-1"].ops, 50);
        assert!((m.per_worker["worker-1"].qps - 50.0).abs() < 1e-9);
        assert!(m.steps.is_none(), "not a search");
    }

    /// The live view follows a search on the same snapshots as the deciding search: the same
    /// steps, the current step and connections, and a verdict per step.
    #[test]
    fn live_figures_follow_the_step_search() {
        let run_id = RunId::new();
        let params = crate::stepload::StepSearchParams {
            start_connections: 2,
            step_connections: 2,
            step_duration: std::time::Duration::from_secs(1),
            max_connections: 8,
            qps_drop_pct: 20.0,
            p95_growth_pct: 50.0,
            max_error_rate: 0.5,
        };
        // Step 1 at 1 ms, step 2 at 1 ms with more throughput, step 3 at 5 ms: over the p95 bound.
        let seconds = [(1, 1_000, 100), (2, 1_000, 150), (3, 5_000, 160)];
        let mut deciding = crate::stepload::StepSearch::new(params.clone());
        let mut live = LiveRun::default();
        live.follow_steps(params, false);
        for (seq, us, n) in seconds {
            let s = MetricSnapshot {
                run_id,
                worker_id: "worker-0".into(),
                seq,
                taken_at: Utc::now(),
                elapsed_s: seq as f64,
                interval_s: 1.0,
                phase: RunPhase::Measurement,
                active_connections: 2 * seq as u32,
                target_connections: 2 * seq as u32,
                target_qps: None,
                late_starts: 0,
                backlog: 0,
                total: stats(&[(us, n)], 1.0),
                by_kind: BTreeMap::new(),
            };
            deciding.observe(&s).expect("observe");
            live.observe(s);
        }
        let steps = live.merged().expect("merge").expect("figures").steps.expect("a search");
        assert_eq!(steps.steps.len(), 3);
        assert_eq!(
            steps.steps.iter().map(|s| &s.result).collect::<Vec<_>>(),
            deciding.steps().iter().collect::<Vec<_>>()
        );
        let verdicts: Vec<&str> = steps.steps.iter().map(|s| s.verdict).collect();
        assert_eq!(verdicts, ["OK", "BEST", "BREACH"]);
        assert_eq!(steps.steps[1].result.connections, 4);
        assert!(steps.finished.as_deref().is_some_and(|r| r.contains("p95")), "{:?}", steps.finished);
        assert_eq!((steps.current_step, steps.connections), (3, 6));
    }
}
