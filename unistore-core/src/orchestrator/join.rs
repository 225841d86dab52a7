//! The worker's side of a multi-worker run (`unistore-worker join`): register, wait for the
//! run's start instant, run its share of the load, heartbeat every second, apply control
//! events in sequence order, and stop on its own when the run ends, the controller goes
//! silent, or the control store cannot be written for too long: a worker never loads a
//! database forever after its controller is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::plan::{rate_share, share, worker_template};
use crate::control::ControlStore;
use crate::engine::{EngineControl, StopReason};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::MetricSnapshot;
use crate::model::{
    ControlEvent, ControlEventKind, EventScope, RunId, RunPhase, RunStatus, RunStatusRecord, WorkerHeartbeat,
    WorkerIdentity, WorkerState,
};
use crate::runner::{FinishedRun, ReadyRun};
use crate::sink::ResultsSink;
use crate::template::Template;

/// Where a worker pushes its one-second snapshots as they are taken (the controller's live
/// view). A push that fails is dropped: snapshots are also in the results store.
#[async_trait]
pub trait SnapshotPublisher: Send + Sync + 'static {
    /// Sends one snapshot.
    async fn publish(&self, snapshot: &MetricSnapshot) -> Result<()>;
}

/// Timings of a joined worker.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    /// How often the worker beats and reads its events.
    pub heartbeat_interval: Duration,
    /// The worker stops when its heartbeat could not be written for this long.
    pub control_timeout: Duration,
    /// The worker stops when the controller has not marked the run alive for this long.
    pub controller_timeout: Duration,
    /// Longest wait for the run's start before the worker gives up.
    pub start_timeout: Duration,
    /// How long a gap in the event sequence may last (an appender between claiming a number and
    /// writing its event) before the worker catches up from the run's row.
    pub gap_timeout: Duration,
}

impl Default for JoinSettings {
    fn default() -> Self {
        JoinSettings {
            heartbeat_interval: Duration::from_secs(1),
            control_timeout: Duration::from_secs(30),
            controller_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(600),
            gap_timeout: Duration::from_secs(2),
        }
    }
}

/// A worker registered with a run.
#[derive(Debug)]
pub struct WorkerAgent {
    control: Arc<dyn ControlStore>,
    run_id: RunId,
    identity: WorkerIdentity,
    settings: JoinSettings,
    host: String,
    last_seq: u64,
    gap_since: Option<Instant>,
    /// The run's template (all workers'), from which this worker's targets are derived.
    template: Template,
}

/// This host's name, for heartbeats.
pub fn host_name() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// The index in a worker id made by the orchestrator: `worker-3` and its replacements
/// `worker-3r1`, `worker-3r2` are index 3.
pub(crate) fn index_from_id(worker_id: &str) -> Option<u32> {
    worker_id.rsplit(['-', '_']).next().and_then(|n| n.split('r').next()).and_then(|n| n.parse().ok())
}

/// What a worker's counters are at a beat.
#[derive(Debug, Clone, Default)]
struct Progress {
    phase: Option<RunPhase>,
    connections: u32,
    ops: u64,
    errors: u64,
    last_error: Option<String>,
}

impl WorkerAgent {
    /// Reads the run and checks that it can be joined: it exists, has not ended, and carries
    /// its template. `index`/`count` default to the number in the worker id and the run's
    /// worker count. Returns the agent, the run's row and the template the worker runs (its
    /// share of the run's current targets).
    pub async fn attach(
        control: Arc<dyn ControlStore>,
        run_id: RunId,
        worker_id: &str,
        index: Option<u32>,
        count: Option<u32>,
        settings: JoinSettings,
    ) -> Result<(WorkerAgent, RunStatusRecord, Template)> {
        if worker_id.trim().is_empty() {
            return Err(Error::invalid("--worker-id is empty: give the worker an id such as worker-3"));
        }
        let record = control.run(run_id).await?.ok_or_else(|| {
            Error::backend(
                ErrorKind::NotFound,
                format!("run {run_id} does not exist in the control store: check --run-id and --control"),
            )
        })?;
        if record.status.is_terminal() {
            return Err(Error::invalid(format!(
                "run {run_id} is {} and cannot be joined: it has ended; start a new run",
                record.status
            )));
        }
        let Some(json) = record.template_json.as_deref() else {
            return Err(Error::invalid(format!(
                "run {run_id} has no template in the control store: it was not created by a Unistore controller"
            )));
        };
        let template: Template = serde_json::from_str(json)
            .map_err(|e| Error::invalid(format!("run {run_id}: its stored template cannot be read: {e}")))?;
        let count = count.unwrap_or(record.worker_count).max(1);
        let index = index.or_else(|| index_from_id(worker_id)).unwrap_or(0);
        if index >= count {
            return Err(Error::invalid(format!(
                "worker index {index} is outside the run's {count} workers: use --worker-index 0 to {}",
                count - 1
            )));
        }
        let identity = WorkerIdentity { worker_id: worker_id.to_string(), index, count };
        // Targets addressed to this worker before it joined (a worker the rate controller
        // added, or a replacement) are in the events, not in the run's row.
        let events = control.events_since(run_id, 0).await?;
        let agent = WorkerAgent {
            control,
            run_id,
            identity,
            settings,
            host: host_name(),
            // What happened before this worker joined is in the run's row: catch up from it.
            last_seq: record.last_event_seq,
            gap_since: None,
            template,
        };
        let own = agent.own_template(&events);
        agent.beat(WorkerState::Connecting, &Progress::default()).await?;
        Ok((agent, record, own))
    }

    /// The worker's identity (id, index, count).
    pub fn identity(&self) -> &WorkerIdentity {
        &self.identity
    }

    /// The template this worker runs: its targets after the run's events so far.
    fn own_template(&self, events: &[ControlEvent]) -> Template {
        let (connections, rate) = self.targets_after(events);
        worker_template(&self.template, connections, rate, self.identity.count > 1)
    }

    /// This worker's connections and rate after `events` (in sequence order), from the
    /// template's: a run-wide target is split by the worker's index and count, a target
    /// addressed to this worker is its own.
    fn targets_after(&self, events: &[ControlEvent]) -> (u32, Option<f64>) {
        let template = &self.template;
        let WorkerIdentity { index, count, .. } = self.identity;
        let mut connections = share(template.load.initial_connections(), index, count);
        let mut rate = template.load.target_qps().map(|q| rate_share(q, count));
        for e in events {
            if let Some((c, q)) = self.target_of(e) {
                connections = c;
                rate = q.or(rate);
            }
        }
        (connections.max(1), rate)
    }

    /// What a `SET_WORKER_TARGET` event asks of this worker, if it is one that applies to it.
    fn target_of(&self, event: &ControlEvent) -> Option<(u32, Option<f64>)> {
        let ControlEventKind::SetWorkerTarget { connections, target_qps } = &event.kind else {
            return None;
        };
        if !event.scope.applies_to(&self.identity.worker_id, None) {
            return None;
        }
        let WorkerIdentity { index, count, .. } = self.identity;
        Some(match event.scope {
            EventScope::Run => (share(*connections, index, count), target_qps.map(|q| rate_share(q, count))),
            _ => (*connections, *target_qps),
        })
    }

    async fn beat(&self, state: WorkerState, p: &Progress) -> Result<()> {
        self.control
            .heartbeat(&WorkerHeartbeat {
                run_id: self.run_id,
                worker_id: self.identity.worker_id.clone(),
                state,
                phase: p.phase.unwrap_or(RunPhase::Preparing),
                connections: p.connections,
                ops: p.ops,
                errors: p.errors,
                last_error: p.last_error.clone(),
                last_event_seq: self.last_seq,
                beat_at: crate::control::now_micros(),
                host: self.host.clone(),
                pid: std::process::id(),
            })
            .await
    }

    /// Reports that the worker cannot run (bad input, the target unreachable): a final
    /// heartbeat with the message, so the run shows it.
    pub async fn report_failure(&self, message: &str) -> Result<()> {
        let p = Progress { last_error: Some(message.to_string()), ..Progress::default() };
        self.beat(WorkerState::Failed, &p).await
    }

    /// Says the worker's connections are open, then waits for the run's start. Returns the
    /// shared start instant, or `None` when the run was stopped or ended before it started.
    pub async fn wait_for_start(&mut self, connections: u32) -> Result<Option<DateTime<Utc>>> {
        let ready = Progress { connections, ..Progress::default() };
        let since = Instant::now();
        loop {
            self.beat(WorkerState::Ready, &ready).await?;
            let record = self.control.run(self.run_id).await?.ok_or_else(|| {
                Error::backend(
                    ErrorKind::NotFound,
                    format!("run {} disappeared from the control store", self.run_id),
                )
            })?;
            if matches!(record.status, RunStatus::Stopping | RunStatus::Cancelling)
                || record.status.is_terminal()
            {
                return Ok(None);
            }
            if let Some(at) = record.load_start_at {
                return Ok(Some(at));
            }
            if since.elapsed() > self.settings.start_timeout {
                return Err(Error::backend(
                    ErrorKind::Timeout,
                    format!(
                        "run {} did not start within {}: is its controller running?",
                        self.run_id,
                        humantime::format_duration(self.settings.start_timeout)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the load from the run's start instant to its end, beating and applying control
    /// events, and writes the worker's summary (`worker_id` set) and snapshots to `sink`.
    /// `on_start` gets the engine's control handle as the load starts (to stop it on a signal).
    pub async fn run(
        self,
        ready: ReadyRun,
        sink: Option<Arc<dyn ResultsSink>>,
        load_start_at: DateTime<Utc>,
        publisher: Option<Arc<dyn SnapshotPublisher>>,
        on_start: impl FnOnce(EngineControl),
    ) -> FinishedRun {
        let active = ready.start_at(sink, Some(load_start_at)).await;
        let control = active.control();
        on_start(control.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let coordination = tokio::spawn(self.coordinate(control.clone(), rx, publisher));
        let finished = active
            .finish(move |s| {
                let _ = tx.send(s.clone());
            })
            .await;
        let agent = match coordination.await {
            Ok(agent) => agent,
            Err(e) => panic!("the worker's coordination task failed: {e}"),
        };
        let final_progress = Progress {
            phase: Some(RunPhase::Processing),
            connections: 0,
            ops: finished.summary.completed_ops_all_phases,
            errors: finished.summary.total.errors,
            last_error: finished.summary.reason.clone(),
        };
        if let Err(e) = agent.beat(WorkerState::Finished, &final_progress).await {
            tracing::warn!("could not write the final heartbeat: {e}");
        }
        finished
    }

    async fn coordinate(
        mut self,
        control: EngineControl,
        mut snapshots: mpsc::UnboundedReceiver<MetricSnapshot>,
        publisher: Option<Arc<dyn SnapshotPublisher>>,
    ) -> WorkerAgent {
        let mut progress = Progress::default();
        let mut tick = tokio::time::interval(self.settings.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unwritten_since: Option<Instant> = None;
        loop {
            tokio::select! {
                s = snapshots.recv() => {
                    let Some(s) = s else { break };
                    progress.phase = Some(s.phase);
                    progress.connections = s.active_connections;
                    progress.ops += s.total.ops;
                    progress.errors += s.total.errors;
                    if s.total.errors > 0 {
                        progress.last_error = Some(format!(
                            "{} error(s) in the last second: {}",
                            s.total.errors,
                            s.total.errors_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if let Some(p) = &publisher {
                        let p = p.clone();
                        tokio::spawn(async move {
                            let pushed = tokio::time::timeout(Duration::from_secs(2), p.publish(&s)).await;
                            if let Ok(Err(e)) = pushed {
                                tracing::debug!("live snapshot not delivered: {e}");
                            }
                        });
                    }
                }
                _ = tick.tick() => {
                    let state = if control.is_stopping() { WorkerState::Stopping } else { WorkerState::Running };
                    match self.beat(state, &progress).await {
                        Ok(()) => unwritten_since = None,
                        Err(e) => {
                            let since = *unwritten_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= self.settings.control_timeout && !control.is_stopping() {
                                control.stop(StopReason::Requested(format!(
                                    "the control store could not be written for {}s ({e}): the worker stops rather \
                                     than load the database without its controller",
                                    self.settings.control_timeout.as_secs()
                                )));
                            }
                            continue;
                        }
                    }
                    if !control.is_stopping() {
                        if let Err(e) = self.follow(&control).await {
                            tracing::warn!("reading control events: {e}");
                        }
                    }
                }
            }
        }
        self
    }

    /// Applies new events in order and checks the run's row: ended, stopping, or its
    /// controller silent.
    async fn follow(&mut self, control: &EngineControl) -> Result<()> {
        let events = self.control.events_since(self.run_id, self.last_seq).await?;
        let mut caught_up = false;
        for e in &events {
            if e.seq != self.last_seq + 1 {
                // A gap: a number claimed whose event is not written yet. Wait a little, then
                // catch up from the run's row (which every append updates first).
                let since = *self.gap_since.get_or_insert_with(Instant::now);
                if since.elapsed() < self.settings.gap_timeout {
                    break;
                }
                caught_up = true;
            }
            self.gap_since = None;
            self.apply(e, control);
            self.last_seq = e.seq;
        }
        let record = self.control.run(self.run_id).await?.ok_or_else(|| {
            Error::backend(
                ErrorKind::NotFound,
                format!("run {} disappeared from the control store", self.run_id),
            )
        })?;
        if caught_up {
            let all = self.control.events_since(self.run_id, 0).await?;
            let (connections, rate) = self.targets_after(&all);
            control.set_connections(connections);
            if let Some(q) = rate {
                control.set_target_qps(q);
            }
        }
        if record.status.is_terminal() || matches!(record.status, RunStatus::Stopping | RunStatus::Cancelling)
        {
            control.stop(StopReason::Requested(match &record.reason {
                Some(r) => format!("the run is {}: {r}", record.status),
                None => format!("the run is {}", record.status),
            }));
        } else if let Some(beat) = record.controller_beat_at {
            let silent = (Utc::now() - beat).to_std().unwrap_or(Duration::ZERO);
            if silent > self.settings.controller_timeout {
                control.stop(StopReason::Requested(format!(
                    "the controller has not been heard from for {}s: the worker stops rather than load the \
                     database without it",
                    silent.as_secs()
                )));
            }
        }
        Ok(())
    }

    fn apply(&self, event: &ControlEvent, control: &EngineControl) {
        if !event.scope.applies_to(&self.identity.worker_id, None) {
            return;
        }
        match &event.kind {
            ControlEventKind::Stop { reason } => control.stop(StopReason::Requested(
                reason.clone().unwrap_or_else(|| "stopped by the controller".to_string()),
            )),
            ControlEventKind::Finish { reason } => control.stop(StopReason::SearchFinished(reason.clone())),
            ControlEventKind::SetWorkerTarget { .. } => {
                if let Some((c, q)) = self.target_of(event) {
                    control.set_connections(c.max(1));
                    if let Some(q) = q {
                        control.set_target_qps(q);
                    }
                }
            }
            ControlEventKind::Start { .. } | ControlEventKind::SetPhase { .. } => {}
        }
    }
}
