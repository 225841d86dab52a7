//! Multi-worker runs, coordinated through the [`ControlStore`].
//!
//! A run is prepared (its `RUN_STATUS` row, `PREPARED`), started (workers launched through a
//! [`Launcher`]; once every worker's connections are open, one `START` event gives them all
//! the same start instant, so they share the run's phase boundaries), driven (`SET_PHASE` at
//! each boundary, heartbeats watched, lost workers replaced or the run failed), stopped (`STOP`
//! event, then SIGTERM after a grace period, then SIGKILL) and finalized: the run's own row is
//! the exact roll-up of the workers' rows, merging their histograms.
//!
//! The same [`Orchestrator`] serves the controller's HTTP API and `unistore-worker bench
//! --workers N`. Workers are `unistore-worker join` processes ([`join`]); a worker started by
//! hand on another host with the same arguments joins the same run.

pub mod join;
pub mod launcher;
pub mod merge;
pub mod plan;
pub mod qps;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;

use crate::control::{now_micros, ControlStore};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{MetricSnapshot, RunSummary, Verdict};
use crate::model::{
    ControlEventKind, EventScope, RunId, RunPhase, RunStatus, RunStatusRecord, WorkerHeartbeat, WorkerState,
};
use crate::sink::{ResultsReader, ResultsSink};
use crate::template::Template;

pub use launcher::{url_has_secret, LaunchSpec, Launcher, LocalLauncher, Secret, WorkerExit, WorkerProcess};
pub use merge::{merge_summaries, LiveFigures, LiveRun};
pub use plan::{plan_workers, HostCapacity, WorkerPlan};
pub use qps::{QpsAction, QpsBounds, QpsLoop, WorkerRate};

/// What happens when a worker stops responding mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum LossPolicy {
    /// Start a replacement with the same share (up to `max_replacements` per run); the run goes
    /// on and the loss is recorded with it.
    Replace {
        /// Replacements allowed per run.
        max_replacements: u32,
    },
    /// End the run `FAILED` ("worker failure: N worker(s) stopped responding").
    Fail,
}

impl std::str::FromStr for LossPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Ok(LossPolicy::Fail),
            "replace" => Ok(LossPolicy::Replace { max_replacements: 3 }),
            other => match other.strip_prefix("replace:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(LossPolicy::Replace { max_replacements: n }),
                _ => Err(Error::invalid(format!(
                    "worker loss policy `{s}` is unknown: use `fail`, `replace` or `replace:N` (N replacements)"
                ))),
            },
        }
    }
}

/// How the orchestrator runs workers and how patient it is.
#[derive(Debug, Clone)]
pub struct OrchestratorSettings {
    /// The control store's URL, as workers open it.
    pub control_url: String,
    /// The results store's URL, as workers open it (`None`: the workers' default).
    pub results_url: Option<String>,
    /// The controller's base URL for live snapshots (`None`: workers do not push).
    pub controller_url: Option<String>,
    /// A worker silent for this long is lost.
    pub heartbeat_timeout: Duration,
    /// Longest time for every worker to open its connections.
    pub ready_timeout: Duration,
    /// After `STOP`, how long workers get to stop and write their rows before SIGTERM.
    pub stop_grace: Duration,
    /// After SIGTERM, how long before SIGKILL.
    pub kill_grace: Duration,
    /// Time between "every worker is ready" and the shared start instant.
    pub start_delay: Duration,
    /// A run prepared and never started expires after this.
    pub prepared_ttl: Duration,
    /// Default policy for lost workers.
    pub on_worker_loss: LossPolicy,
    /// What `AUTO` scaling may use.
    pub host: HostCapacity,
}

impl OrchestratorSettings {
    /// Defaults for a control store at `control_url`.
    pub fn new(control_url: impl Into<String>) -> Self {
        OrchestratorSettings {
            control_url: control_url.into(),
            results_url: None,
            controller_url: None,
            heartbeat_timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(120),
            stop_grace: Duration::from_secs(10),
            kill_grace: Duration::from_secs(5),
            start_delay: Duration::from_millis(500),
            prepared_ttl: Duration::from_secs(3600),
            on_worker_loss: LossPolicy::Fail,
            host: HostCapacity::detect(),
        }
    }
}

/// Per-run choices beside the template.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Policy for lost workers (`None`: the orchestrator's default).
    pub on_worker_loss: Option<LossPolicy>,
    /// Secrets for the run's workers' environment (the password of a stored connection, as
    /// `PGPASSWORD`): kept in memory for the run's life, given to replacement workers too, never
    /// written to the control store. A run re-attached after a controller restart has none.
    pub worker_env: Vec<(String, Secret)>,
}

/// A worker as the run's view shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerView {
    /// Its latest heartbeat.
    #[serde(flatten)]
    pub heartbeat: WorkerHeartbeat,
    /// Seconds since that heartbeat.
    pub beat_age_s: f64,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    /// The run's row in the control store.
    #[serde(flatten)]
    pub record: RunStatusRecord,
    /// Seconds since the load started (`None` before).
    pub elapsed_s: Option<f64>,
    /// Its workers.
    pub workers: Vec<WorkerView>,
    /// The merged live figures of the workers' latest one-second snapshots.
    pub live: Option<LiveFigures>,
    /// Workers lost and replaced, and scaling notes.
    pub notes: Vec<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Its final row.
    pub record: RunStatusRecord,
    /// The run's summary (the roll-up of the workers'), when any worker wrote one.
    pub summary: Option<RunSummary>,
}

struct Entry {
    policy: LossPolicy,
    /// The run's [`RunOptions::worker_env`].
    worker_env: Vec<(String, Secret)>,
    notes: Vec<String>,
    done: Option<watch::Receiver<Option<RunOutcome>>>,
    live: LiveRun,
    live_cache: Option<(Instant, Option<LiveFigures>)>,
    /// A snapshot arrived after the cached figures were computed.
    live_dirty: bool,
    /// A search across workers: each second's snapshots of every worker, merged once all
    /// have arrived and handed to the driver's step search.
    rounds: Option<SearchRounds>,
}

/// Collects the workers' snapshots of each second into one run-level snapshot.
struct SearchRounds {
    workers: usize,
    pending: BTreeMap<u64, Vec<MetricSnapshot>>,
    tx: tokio::sync::mpsc::UnboundedSender<MetricSnapshot>,
}

impl SearchRounds {
    /// Takes a worker's snapshot; returns the round's merged snapshot (also sent to the
    /// driver's search) when this one completed it.
    fn observe(&mut self, snapshot: MetricSnapshot) -> Result<Option<MetricSnapshot>> {
        let seq = snapshot.seq;
        let round = self.pending.entry(seq).or_default();
        if round.iter().any(|s| s.worker_id == snapshot.worker_id) {
            return Ok(None);
        }
        round.push(snapshot);
        if round.len() < self.workers {
            return Ok(None);
        }
        let round = self.pending.remove(&seq).unwrap_or_default();
        // A round that never completed (a worker lost meanwhile) is dropped, not merged late.
        self.pending.retain(|s, _| *s > seq);
        let window = round.iter().map(|s| s.interval_s).fold(0.0, f64::max);
        let totals: Vec<&crate::metrics::KindStats> = round.iter().map(|s| &s.total).collect();
        let total = crate::metrics::KindStats::merge_exact(&totals, window)?;
        let first = &round[0];
        let merged = MetricSnapshot {
            run_id: first.run_id,
            worker_id: "run".to_string(),
            seq,
            taken_at: round.iter().map(|s| s.taken_at).max().unwrap_or(first.taken_at),
            elapsed_s: round.iter().map(|s| s.elapsed_s).fold(0.0, f64::max),
            interval_s: window,
            phase: round.iter().map(|s| s.phase).min().unwrap_or(first.phase),
            active_connections: round.iter().map(|s| s.active_connections).sum(),
            target_connections: round.iter().map(|s| s.target_connections).sum(),
            target_qps: None,
            late_starts: round.iter().map(|s| s.late_starts).sum(),
            backlog: round.iter().map(|s| s.backlog).sum(),
            total,
            by_kind: BTreeMap::new(),
        };
        let _ = self.tx.send(merged.clone());
        Ok(Some(merged))
    }
}

/// Runs multi-worker runs.
pub struct Orchestrator {
    control: Arc<dyn ControlStore>,
    sink: Arc<dyn ResultsSink>,
    reader: Arc<dyn ResultsReader>,
    launcher: Arc<dyn Launcher>,
    settings: OrchestratorSettings,
    runs: Mutex<HashMap<RunId, Entry>>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator").field("settings", &self.settings).finish()
    }
}

fn conflict(message: String) -> Error {
    Error::backend(ErrorKind::Conflict, message)
}

fn not_found(run_id: RunId) -> Error {
    Error::backend(ErrorKind::NotFound, format!("run {run_id} does not exist: check the run id"))
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Orchestrator {
    /// An orchestrator over these stores, launching workers with `launcher`.
    pub fn new(
        control: Arc<dyn ControlStore>,
        sink: Arc<dyn ResultsSink>,
        reader: Arc<dyn ResultsReader>,
        launcher: Arc<dyn Launcher>,
        settings: OrchestratorSettings,
    ) -> Arc<Self> {
        Arc::new(Orchestrator { control, sink, reader, launcher, settings, runs: Mutex::new(HashMap::new()) })
    }

    /// The settings.
    pub fn settings(&self) -> &OrchestratorSettings {
        &self.settings
    }

    /// The control store.
    pub fn control(&self) -> &Arc<dyn ControlStore> {
        &self.control
    }

    /// Creates a run from `template` (validated, workers planned): its `RUN_STATUS` row,
    /// `PREPARED`. Bad input is an error and nothing is created.
    pub async fn prepare(&self, template: Template, options: RunOptions) -> Result<RunStatusRecord> {
        if template.target.is_none() {
            return Err(Error::invalid(
                "the template has no target: set `target` (e.g. postgres://user@host/db) in it",
            ));
        }
        let plan = plan_workers(&template, self.settings.host)?;
        let json = serde_json::to_string(&template)
            .map_err(|e| Error::invalid(format!("the template cannot be stored: {e}")))?;
        let run_id = RunId::new();
        // The run's worker count is its slots: the rate controller may add workers up to it.
        let mut record = RunStatusRecord::prepared(run_id, template.name.clone(), plan.max_workers);
        record.created_at = now_micros();
        record.updated_at = record.created_at;
        record.template_json = Some(json);
        record.results_url = self.settings.results_url.clone().filter(|u| !launcher::url_has_secret(u));
        record.target_connections = plan.connections;
        record.target_qps = plan.target_qps;
        self.control.create_run(&record).await?;
        self.runs.lock().insert(
            run_id,
            Entry {
                policy: options.on_worker_loss.unwrap_or(self.settings.on_worker_loss),
                worker_env: options.worker_env,
                notes: plan.bound_note.into_iter().collect(),
                done: None,
                live: LiveRun::default(),
                live_cache: None,
                live_dirty: false,
                rounds: None,
            },
        );
        Ok(record)
    }

    /// Starts a prepared run: launches its workers and drives it in the background. Starting
    /// a run twice, or a run that has ended, is `ErrorKind::Conflict`.
    pub async fn start(self: &Arc<Self>, run_id: RunId) -> Result<RunStatusRecord> {
        let record = self.control.run(run_id).await?.ok_or_else(|| not_found(run_id))?;
        if record.status != RunStatus::Prepared {
            return Err(conflict(format!(
                "run {run_id} is {}: only a PREPARED run can be started{}",
                record.status,
                if record.status.is_terminal() { "; it has ended" } else { " (it was started already)" }
            )));
        }
        let template = stored_template(&record)?;
        // The compare-and-set makes exactly one of two concurrent starts win.
        let record = self.control.transition(run_id, RunStatus::Running, None).await.map_err(|e| {
            if e.kind() == ErrorKind::Conflict {
                conflict(format!("run {run_id} was started already"))
            } else {
                e
            }
        })?;
        let (tx, rx) = watch::channel(None);
        let mut search_rx = None;
        {
            let mut runs = self.runs.lock();
            let entry = runs.entry(run_id).or_insert_with(|| Entry {
                policy: self.settings.on_worker_loss,
                worker_env: Vec::new(),
                notes: Vec::new(),
                done: None,
                live: LiveRun::default(),
                live_cache: None,
                live_dirty: false,
                rounds: None,
            });
            entry.done = Some(rx);
            if let Some(params) = crate::stepload::StepSearchParams::from_load(&template.load) {
                entry.live.follow_steps(params, record.worker_count > 1);
            }
            if crate::stepload::StepSearchParams::from_load(&template.load).is_some()
                && record.worker_count > 1
            {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                entry.rounds = Some(SearchRounds {
                    workers: record.worker_count as usize,
                    pending: BTreeMap::new(),
                    tx,
                });
                search_rx = Some(rx);
            }
        }
        let me = self.clone();
        let driven = record.clone();
        tokio::spawn(async move {
            let mut driver = Driver::new(me.clone(), driven, template);
            if let Some(rx) = search_rx {
                driver.search = crate::stepload::StepSearchParams::from_load(&driver.template.load)
                    .map(|p| (crate::stepload::StepSearch::new(p), rx));
            }
            let outcome = driver.run(true).await;
            // The run's secrets live as long as the run, not as long as the controller.
            if let Some(entry) = me.runs.lock().get_mut(&run_id) {
                entry.worker_env.clear();
            }
            let _ = tx.send(Some(outcome));
        });
        Ok(record)
    }

    /// Asks a run to stop: a prepared run is cancelled at once; a running one gets `STOP` (its
    /// workers stop and write their rows; the controller ends stragglers with SIGTERM, then
    /// SIGKILL). A run that has ended is `ErrorKind::Conflict`.
    pub async fn stop(&self, run_id: RunId, reason: Option<String>) -> Result<RunStatusRecord> {
        let record = self.control.run(run_id).await?.ok_or_else(|| not_found(run_id))?;
        let reason = reason.unwrap_or_else(|| "stopped by request".to_string());
        match record.status {
            s if s.is_terminal() => {
                Err(conflict(format!("run {run_id} has already ended ({s}): there is nothing to stop")))
            }
            RunStatus::Prepared => {
                self.control
                    .transition(run_id, RunStatus::Cancelled, Some(&format!("{reason} before it started")))
                    .await
            }
            RunStatus::Stopping | RunStatus::Cancelling => Ok(record),
            _ => {
                let r = self.control.transition(run_id, RunStatus::Stopping, Some(&reason)).await?;
                self.control
                    .append_event(run_id, EventScope::Run, ControlEventKind::Stop { reason: Some(reason) })
                    .await?;
                Ok(r)
            }
        }
    }

    /// Waits until a run this orchestrator drives has ended.
    pub async fn wait(&self, run_id: RunId) -> Result<RunOutcome> {
        let rx = self.runs.lock().get(&run_id).and_then(|e| e.done.clone());
        let Some(mut rx) = rx else {
            let record = self.control.run(run_id).await?.ok_or_else(|| not_found(run_id))?;
            let summary = self.reader.summary(run_id, None).await?;
            return Ok(RunOutcome { record, summary });
        };
        loop {
            if let Some(outcome) = rx.borrow().clone() {
                return Ok(outcome);
            }
            if rx.changed().await.is_err() {
                return Err(Error::backend(ErrorKind::Other, format!("the driver of run {run_id} stopped")));
            }
        }
    }

    /// Takes a worker's pushed snapshot into the run's live view. An unknown run is
    /// `ErrorKind::NotFound`.
    pub fn observe_live(&self, snapshot: MetricSnapshot) -> Result<()> {
        let mut runs = self.runs.lock();
        let entry = runs.get_mut(&snapshot.run_id).ok_or_else(|| not_found(snapshot.run_id))?;
        if let Some(rounds) = entry.rounds.as_mut() {
            if let Some(merged) = rounds.observe(snapshot.clone())? {
                entry.live.observe_round(&merged);
            }
        }
        entry.live.observe(snapshot);
        entry.live_dirty = true;
        Ok(())
    }

    /// The merged live figures of a run, computed at most once a second.
    pub fn live(&self, run_id: RunId) -> Result<Option<LiveFigures>> {
        let mut runs = self.runs.lock();
        let Some(entry) = runs.get_mut(&run_id) else {
            return Ok(None);
        };
        // Recomputed when a snapshot arrived since, at most about once a second (a little
        // under, so that a reader polling every second is not handed the same second twice).
        if let Some((at, figures)) = &entry.live_cache {
            if !entry.live_dirty || at.elapsed() < Duration::from_millis(900) {
                return Ok(figures.clone());
            }
        }
        entry.live_dirty = false;
        let figures = entry.live.merged()?;
        entry.live_cache = Some((Instant::now(), figures.clone()));
        Ok(figures)
    }

    /// A run with its workers and live figures.
    pub async fn view(&self, run_id: RunId) -> Result<RunView> {
        let record = self.control.run(run_id).await?.ok_or_else(|| not_found(run_id))?;
        let now = Utc::now();
        let workers = self
            .control
            .heartbeats(run_id)
            .await?
            .into_iter()
            .map(|h| WorkerView {
                beat_age_s: (now - h.beat_at).num_milliseconds() as f64 / 1e3,
                heartbeat: h,
            })
            .collect();
        let elapsed_s = record.load_start_at.map(|at| ((now - at).num_milliseconds() as f64 / 1e3).max(0.0));
        let live = self.live(run_id)?;
        let notes = self.runs.lock().get(&run_id).map(|e| e.notes.clone()).unwrap_or_default();
        Ok(RunView { record, elapsed_s, workers, live, notes })
    }

    /// The most recent runs of the control store, newest first.
    pub async fn list(&self, limit: usize) -> Result<Vec<RunStatusRecord>> {
        self.control.runs(&[], limit).await
    }

    fn note(&self, run_id: RunId, note: String) {
        if let Some(e) = self.runs.lock().get_mut(&run_id) {
            e.notes.push(note);
        }
    }

    fn policy(&self, run_id: RunId) -> LossPolicy {
        self.runs.lock().get(&run_id).map_or(self.settings.on_worker_loss, |e| e.policy)
    }

    /// After a controller (re)start: runs left `PREPARED` longer than the TTL are cancelled
    /// with a reason; running runs whose controller went silent are re-attached when their
    /// workers are still beating and `reattach` is set (this controller finishes them; a
    /// short-lived `bench --workers` leaves them alone), or marked `FAILED` with the reason
    /// when no worker is left. Returns one line per run it touched.
    pub async fn recover(self: &Arc<Self>, reattach: bool) -> Result<Vec<String>> {
        let mut lines = self.expire_prepared().await?;
        let active = self
            .control
            .runs(&[RunStatus::Running, RunStatus::Stopping, RunStatus::Cancelling], 1_000)
            .await?;
        let now = Utc::now();
        let silent_after = to_chrono(self.settings.heartbeat_timeout);
        for record in active {
            let run_id = record.run_id;
            if self.runs.lock().get(&run_id).is_some_and(|e| e.done.is_some()) {
                continue;
            }
            let controller_silent = record.controller_beat_at.is_none_or(|b| now - b > silent_after);
            if !controller_silent {
                continue;
            }
            let beats = self.control.heartbeats(run_id).await?;
            let alive =
                beats.iter().filter(|b| !b.state.is_final() && now - b.beat_at <= silent_after).count();
            let template = stored_template(&record);
            match (record.load_start_at, alive, template) {
                (Some(_), n, Ok(_)) if n > 0 && !reattach => {
                    lines.push(format!("run {run_id}: its controller is silent but {n} worker(s) still run"));
                }
                (Some(_), n, Ok(template)) if n > 0 => {
                    let (tx, rx) = watch::channel(None);
                    self.runs.lock().insert(
                        run_id,
                        Entry {
                            policy: LossPolicy::Fail,
                            worker_env: Vec::new(),
                            notes: vec!["re-attached by a restarted controller".to_string()],
                            done: Some(rx),
                            live: LiveRun::default(),
                            live_cache: None,
                            live_dirty: false,
                            rounds: None,
                        },
                    );
                    let me = self.clone();
                    tokio::spawn(async move {
                        let outcome = Driver::new(me.clone(), record, template).run(false).await;
                        let _ = tx.send(Some(outcome));
                    });
                    lines.push(format!("run {run_id}: re-attached ({n} worker(s) still running)"));
                }
                _ => {
                    let reason = if record.load_start_at.is_none() {
                        "controller restarted before the run's load started"
                    } else {
                        "controller restarted and no worker of the run is still running"
                    };
                    self.fail_run(run_id, reason).await?;
                    lines.push(format!("run {run_id}: FAILED ({reason})"));
                }
            }
        }
        Ok(lines)
    }

    /// Cancels runs that were prepared longer ago than the TTL and never started.
    pub async fn expire_prepared(&self) -> Result<Vec<String>> {
        let now = Utc::now();
        let ttl = to_chrono(self.settings.prepared_ttl);
        let mut lines = Vec::new();
        for record in self.control.runs(&[RunStatus::Prepared], 1_000).await? {
            if now - record.created_at > ttl {
                let reason = format!(
                    "expired: prepared at {} and never started within {}",
                    record.created_at.to_rfc3339(),
                    humantime::format_duration(self.settings.prepared_ttl)
                );
                match self.control.transition(record.run_id, RunStatus::Cancelled, Some(&reason)).await {
                    Ok(_) => lines.push(format!("run {}: CANCELLED ({reason})", record.run_id)),
                    Err(e) if e.kind() == ErrorKind::Conflict => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(lines)
    }

    /// Ends a run `FAILED` with `reason`, whatever state it is in (unless it has ended).
    async fn fail_run(&self, run_id: RunId, reason: &str) -> Result<RunStatusRecord> {
        self.control.finish_run(run_id, RunStatus::Failed, Some(reason)).await
    }
}

fn stored_template(record: &RunStatusRecord) -> Result<Template> {
    let json = record
        .template_json
        .as_deref()
        .ok_or_else(|| Error::invalid(format!("run {} has no stored template", record.run_id)))?;
    serde_json::from_str(json).map_err(|e| {
        Error::invalid(format!("run {}: its stored template cannot be read: {e}", record.run_id))
    })
}

/// One launched (or re-attached) worker.
struct Slot {
    worker_id: String,
    index: u32,
    process: Option<Box<dyn WorkerProcess>>,
    exit: Option<WorkerExit>,
    done: bool,
    replacements: u32,
}

/// Why the driver ended the load early.
#[derive(Debug, Clone)]
enum EndCause {
    Stopped(String),
    Failed(String),
}

struct Driver {
    o: Arc<Orchestrator>,
    record: RunStatusRecord,
    template: Template,
    slots: Vec<Slot>,
    cause: Option<EndCause>,
    lost: Vec<String>,
    phase: RunPhase,
    /// A search across workers, fed one merged snapshot per second.
    search: Option<(crate::stepload::StepSearch, tokio::sync::mpsc::UnboundedReceiver<MetricSnapshot>)>,
    /// Why the search ended the load.
    search_finished: Option<String>,
    /// Workers launched at the start (the run's slots may hold more).
    initial_workers: u32,
    /// The rate controller of an open-loop run under `AUTO` or `BOUNDED` scaling.
    qps: Option<RateControl>,
}

/// The rate controller and what the driver last told each worker.
struct RateControl {
    control: QpsLoop,
    last_tick: Instant,
    /// The latest snapshot sequence of each worker seen by a tick.
    seen: HashMap<String, u64>,
    /// Connections and rate last sent to each worker.
    sent: HashMap<String, (u32, f64)>,
}

impl Driver {
    fn new(o: Arc<Orchestrator>, record: RunStatusRecord, template: Template) -> Self {
        // The plan was checked when the run was prepared; the slots are the run's.
        let plan = plan_workers(&template, o.settings.host).ok();
        let initial_workers =
            plan.as_ref().map_or(record.worker_count, |p| p.workers.min(record.worker_count));
        let qps = plan.and_then(|p| p.qps_bounds).map(|mut bounds| {
            bounds.max_workers = bounds.max_workers.min(record.worker_count);
            RateControl {
                control: QpsLoop::new(bounds),
                last_tick: Instant::now(),
                seen: HashMap::new(),
                sent: HashMap::new(),
            }
        });
        Driver {
            o,
            record,
            template,
            slots: Vec::new(),
            cause: None,
            lost: Vec::new(),
            phase: RunPhase::Preparing,
            search: None,
            search_finished: None,
            initial_workers,
            qps,
        }
    }

    fn run_id(&self) -> RunId {
        self.record.run_id
    }

    fn spec(&self, worker_id: &str, index: u32) -> LaunchSpec {
        LaunchSpec {
            run_id: self.run_id(),
            worker_id: worker_id.to_string(),
            index,
            count: self.record.worker_count,
            control_url: self.o.settings.control_url.clone(),
            results_url: self.o.settings.results_url.clone(),
            controller_url: self.o.settings.controller_url.clone(),
            env: self.o.runs.lock().get(&self.run_id()).map(|e| e.worker_env.clone()).unwrap_or_default(),
        }
    }

    /// Drives the run to its end and finalizes it. `launch`: start the workers (a fresh run) or
    /// follow the ones already running (a re-attached run).
    async fn run(mut self, launch: bool) -> RunOutcome {
        let run_id = self.run_id();
        let beat_control = self.o.control.clone();
        let beater = tokio::spawn(async move {
            loop {
                if let Err(e) = beat_control.controller_beat(run_id, now_micros()).await {
                    tracing::warn!("run {run_id}: cannot mark the controller alive: {e}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        if let Err(e) = self.drive(launch).await {
            self.cause.get_or_insert(EndCause::Failed(e.to_string()));
        }
        self.shutdown_workers().await;
        let outcome = self.finalize().await;
        beater.abort();
        outcome
    }

    async fn drive(&mut self, launch: bool) -> Result<()> {
        let beats = self.o.control.heartbeats(self.run_id()).await?;
        if launch {
            let initial = self.initial_workers.max(1);
            for index in 0..initial {
                let worker_id = format!("worker-{index}");
                if let Some(rate) = self.qps.as_ref().map(|q| q.control.bounds().target_qps) {
                    // The run's slots may be more than its first workers: each is told its share.
                    let connections = plan::share(self.record.target_connections, index, initial);
                    self.send_target(&worker_id, connections, plan::rate_share(rate, initial)).await?;
                }
                self.launch_slot(worker_id, index, 0).await?;
            }
            if !self.wait_ready().await? {
                return Ok(());
            }
            let at = now_micros() + to_chrono(self.o.settings.start_delay);
            self.o
                .control
                .append_event(
                    self.run_id(),
                    EventScope::Run,
                    ControlEventKind::Start { load_start_at: Some(at) },
                )
                .await?;
            self.record.load_start_at = Some(at);
        } else {
            for b in beats.iter().filter(|b| !b.state.is_final()) {
                let index = join::index_from_id(&b.worker_id);
                self.slots.push(Slot {
                    worker_id: b.worker_id.clone(),
                    index: index.unwrap_or(0),
                    process: None,
                    exit: None,
                    done: false,
                    replacements: 0,
                });
            }
        }
        self.follow().await
    }

    /// Launches a worker into slot `index` and keeps its handle.
    async fn launch_slot(&mut self, worker_id: String, index: u32, replacements: u32) -> Result<()> {
        let process = self.o.launcher.launch(&self.spec(&worker_id, index)).await?;
        self.slots.push(Slot {
            worker_id,
            index,
            process: Some(process),
            exit: None,
            done: false,
            replacements,
        });
        Ok(())
    }

    /// Tells one worker its connections and rate (`SET_WORKER_TARGET` addressed to it).
    async fn send_target(&mut self, worker_id: &str, connections: u32, rate: f64) -> Result<()> {
        self.o
            .control
            .append_event(
                self.run_id(),
                EventScope::Worker(worker_id.to_string()),
                ControlEventKind::SetWorkerTarget { connections, target_qps: Some(rate) },
            )
            .await?;
        if let Some(q) = self.qps.as_mut() {
            q.sent.insert(worker_id.to_string(), (connections, rate));
        }
        Ok(())
    }

    /// One tick of the rate controller, once a second, on the workers' latest snapshots: moves
    /// workers' connections, splits the rate, adds workers, and records why the rate is short.
    async fn rate_tick(&mut self) -> Result<()> {
        let Some(q) = self.qps.as_mut() else {
            return Ok(());
        };
        if q.last_tick.elapsed() < Duration::from_secs(1) || self.phase < RunPhase::Warmup {
            return Ok(());
        }
        let running: Vec<String> =
            self.slots.iter().filter(|s| !s.done).map(|s| s.worker_id.clone()).collect();
        let latest: Vec<MetricSnapshot> = {
            let runs = self.o.runs.lock();
            let Some(entry) = runs.get(&self.record.run_id) else {
                return Ok(());
            };
            running.iter().filter_map(|id| entry.live.latest(id).cloned()).collect()
        };
        // A tick reads each worker's next second; one that has not sent it yet is waited for
        // (up to 3 seconds, then it counts as not reporting).
        let fresh = |s: &MetricSnapshot| q.seen.get(&s.worker_id).is_none_or(|seen| s.seq > *seen);
        let waited = q.last_tick.elapsed() >= Duration::from_secs(3);
        if !waited && latest.len() == running.len() && !latest.iter().all(fresh) {
            return Ok(());
        }
        let reporting: Vec<&MetricSnapshot> = latest.iter().filter(|s| fresh(s)).collect();
        let pending = u32::try_from(running.len() - reporting.len()).unwrap_or(u32::MAX);
        let rates: Vec<WorkerRate> = reporting
            .iter()
            .map(|s| {
                let (connections, target_qps) = q
                    .sent
                    .get(&s.worker_id)
                    .copied()
                    .unwrap_or((s.target_connections, s.target_qps.unwrap_or(0.0)));
                WorkerRate {
                    worker_id: s.worker_id.clone(),
                    connections,
                    target_qps,
                    achieved_qps: s.total.qps,
                    service_ms: s.total.service_time_ms.as_ref().map_or(s.total.latency_ms.mean, |l| l.mean),
                    waiting: s.late_starts + s.backlog,
                }
            })
            .collect();
        for s in &reporting {
            q.seen.insert(s.worker_id.clone(), s.seq);
        }
        q.last_tick = Instant::now();
        let achieved: f64 = rates.iter().map(|r| r.achieved_qps).sum();
        let actions = q.control.tick(&rates, pending);
        for action in actions {
            match action {
                QpsAction::Set { worker_id, connections, target_qps } => {
                    self.send_target(&worker_id, connections, target_qps).await?;
                }
                QpsAction::AddWorker { connections, target_qps } => {
                    let used: Vec<u32> = self.slots.iter().map(|s| s.index).collect();
                    let Some(index) = (0..self.record.worker_count).find(|i| !used.contains(i)) else {
                        continue;
                    };
                    let worker_id = format!("worker-{index}");
                    self.send_target(&worker_id, connections, target_qps).await?;
                    self.launch_slot(worker_id.clone(), index, 0).await?;
                    let elapsed = self.record.load_start_at.map_or(0, |at| (Utc::now() - at).num_seconds());
                    self.o.note(
                        self.run_id(),
                        format!(
                            "QPS controller: added {worker_id} at {elapsed} s ({} workers at their cap, {achieved:.1} \
                             of {:.1} ops/s)",
                            rates.len(),
                            self.qps.as_ref().map_or(0.0, |q| q.control.bounds().target_qps)
                        ),
                    );
                }
                QpsAction::Note(note) => self.o.note(self.run_id(), note),
            }
        }
        Ok(())
    }

    /// Waits until every worker has its connections open. Returns `false` when the run was
    /// stopped or failed meanwhile (the cause is set).
    async fn wait_ready(&mut self) -> Result<bool> {
        let since = Instant::now();
        loop {
            let record = self.o.control.run(self.run_id()).await?.ok_or_else(|| not_found(self.run_id()))?;
            if record.status != RunStatus::Running {
                self.cause =
                    Some(EndCause::Stopped(record.reason.unwrap_or_else(|| "stopped by request".into())));
                return Ok(false);
            }
            let beats = self.beats().await?;
            let mut ready = 0;
            for slot in &mut self.slots {
                let beat = beats.get(&slot.worker_id);
                if let Some(b) = beat.filter(|b| b.state == WorkerState::Failed) {
                    self.cause = Some(EndCause::Failed(format!(
                        "{} could not start: {}",
                        slot.worker_id,
                        b.last_error.as_deref().unwrap_or("no reason given")
                    )));
                    return Ok(false);
                }
                if beat.is_some_and(|b| b.state == WorkerState::Ready) {
                    ready += 1;
                    continue;
                }
                if let Some(exit) = slot.process.as_mut().map(|p| p.try_exit()).transpose()?.flatten() {
                    self.cause = Some(EndCause::Failed(format!(
                        "{} ended ({}) before its connections were open{}",
                        slot.worker_id,
                        exit.description,
                        beat.and_then(|b| b.last_error.as_deref())
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    )));
                    return Ok(false);
                }
            }
            if ready == self.slots.len() {
                return Ok(true);
            }
            if since.elapsed() > self.o.settings.ready_timeout {
                self.cause = Some(EndCause::Failed(format!(
                    "only {ready} of {} workers opened their connections within {}",
                    self.slots.len(),
                    humantime::format_duration(self.o.settings.ready_timeout)
                )));
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The latest heartbeat of each worker, by worker id.
    async fn beats(&self) -> Result<HashMap<String, WorkerHeartbeat>> {
        let beats = self.o.control.heartbeats(self.run_id()).await?;
        Ok(beats.into_iter().map(|b| (b.worker_id.clone(), b)).collect())
    }

    /// The run's phase at `now`, from its start instant and the template's phases.
    fn phase_at(&self, now: DateTime<Utc>) -> RunPhase {
        let Some(at) = self.record.load_start_at else {
            return RunPhase::Preparing;
        };
        let warm = at + to_chrono(self.template.phases.warmup);
        let measure = warm + to_chrono(plan::measurement_of(&self.template));
        let cool = measure + to_chrono(self.template.phases.cooldown);
        match now {
            n if n < at => RunPhase::Preparing,
            n if n < warm => RunPhase::Warmup,
            n if n < measure => RunPhase::Measurement,
            n if n < cool => RunPhase::Cooldown,
            _ => RunPhase::Processing,
        }
    }

    fn planned_end(&self) -> DateTime<Utc> {
        let at = self.record.load_start_at.unwrap_or_else(Utc::now);
        at + to_chrono(self.template.phases.warmup)
            + to_chrono(plan::measurement_of(&self.template))
            + to_chrono(self.template.phases.cooldown)
    }

    /// Follows the run until every worker is done: phases, stop requests, lost workers.
    async fn follow(&mut self) -> Result<()> {
        let timeout = to_chrono(self.o.settings.heartbeat_timeout);
        // Workers end by themselves at the planned end; past it plus this, they are stopped.
        let overdue = self.planned_end() + to_chrono(Duration::from_secs(30)) + timeout;
        let mut parent_written = false;
        let mut stop_sent: Option<Instant> = None;
        loop {
            let now = Utc::now();
            let phase = self.phase_at(now);
            if phase != self.phase && phase != RunPhase::Processing {
                self.o
                    .control
                    .append_event(self.run_id(), EventScope::Run, ControlEventKind::SetPhase { phase })
                    .await?;
                self.phase = phase;
            }
            if !parent_written && phase > RunPhase::Preparing {
                parent_written = self.write_parent_row().await;
            }
            let record = self.o.control.run(self.run_id()).await?.ok_or_else(|| not_found(self.run_id()))?;
            if stop_sent.is_none() && matches!(record.status, RunStatus::Stopping | RunStatus::Cancelling) {
                self.cause.get_or_insert(EndCause::Stopped(
                    record.reason.clone().unwrap_or_else(|| "stopped by request".into()),
                ));
                stop_sent = Some(Instant::now());
            }
            if stop_sent.is_none() && now > overdue {
                self.stop_all("the run's workers did not finish by their planned end").await?;
                stop_sent = Some(Instant::now());
            }
            self.step_search().await?;
            if stop_sent.is_none() {
                self.rate_tick().await?;
            }
            let beats = self.beats().await?;
            let mut lost_now = Vec::new();
            for (i, slot) in self.slots.iter_mut().enumerate() {
                if slot.done {
                    continue;
                }
                let beat = beats.get(&slot.worker_id);
                if let Some(p) = slot.process.as_mut() {
                    if let Some(exit) = p.try_exit()? {
                        slot.exit = Some(exit.clone());
                        slot.done = true;
                        if !beat.is_some_and(|b| b.state == WorkerState::Finished) {
                            lost_now.push((i, format!("ended ({}) without finishing", exit.description)));
                        }
                        continue;
                    }
                } else if beat.is_some_and(|b| b.state.is_final()) {
                    slot.done = true;
                    continue;
                }
                if let Some(b) = beat {
                    let silent = now - b.beat_at;
                    if silent > timeout && b.state != WorkerState::Finished {
                        slot.done = true;
                        lost_now.push((i, format!("silent for {}s", silent.num_seconds())));
                    }
                }
            }
            for (i, why) in lost_now {
                self.handle_loss(i, &why, stop_sent.is_some()).await?;
                if matches!(self.cause, Some(EndCause::Failed(_))) && stop_sent.is_none() {
                    stop_sent = Some(Instant::now());
                    self.stop_all("worker failure").await?;
                }
            }
            if self.slots.iter().all(|s| s.done) {
                return Ok(());
            }
            if let Some(sent) = stop_sent {
                if sent.elapsed() > self.o.settings.stop_grace {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Feeds the search the merged snapshots that arrived, and moves the run's connections (or
    /// ends the load) as it decides.
    async fn step_search(&mut self) -> Result<()> {
        let Some((search, rx)) = self.search.as_mut() else {
            return Ok(());
        };
        let mut decisions = Vec::new();
        while let Ok(snapshot) = rx.try_recv() {
            if self.search_finished.is_some() {
                break;
            }
            match search.observe(&snapshot)? {
                crate::stepload::StepDecision::Continue => {}
                crate::stepload::StepDecision::SetConnections(n) => {
                    decisions.push(ControlEventKind::SetWorkerTarget { connections: n, target_qps: None })
                }
                crate::stepload::StepDecision::Stop(reason) => {
                    let reason = format!("search finished: {reason}");
                    self.search_finished = Some(reason.clone());
                    decisions.push(ControlEventKind::Finish { reason });
                }
            }
        }
        for kind in decisions {
            self.o.control.append_event(self.run_id(), EventScope::Run, kind).await?;
        }
        Ok(())
    }

    async fn stop_all(&mut self, reason: &str) -> Result<()> {
        self.o
            .control
            .append_event(
                self.run_id(),
                EventScope::Run,
                ControlEventKind::Stop { reason: Some(reason.to_string()) },
            )
            .await
            .map(|_| ())
    }

    async fn handle_loss(&mut self, i: usize, why: &str, stopping: bool) -> Result<()> {
        let worker_id = self.slots[i].worker_id.clone();
        self.lost.push(format!("{worker_id} {why}"));
        // Its last heartbeat stays, marked lost, so the run's view says what happened.
        if let Some(mut b) =
            self.o.control.heartbeats(self.run_id()).await?.into_iter().find(|b| b.worker_id == worker_id)
        {
            b.state = WorkerState::Lost;
            b.last_error = Some(format!("lost: {why}"));
            self.o.control.heartbeat(&b).await?;
        }
        if stopping {
            return Ok(());
        }
        let used: u32 = self.slots.iter().map(|s| s.replacements).sum();
        let in_time = Utc::now() < self.planned_end();
        match self.o.policy(self.run_id()) {
            LossPolicy::Replace { max_replacements } if used < max_replacements && in_time => {
                let index = self.slots[i].index;
                let new_id = format!("worker-{index}r{}", used + 1);
                // Under the rate controller a worker's targets are its own: the replacement
                // takes over the lost worker's.
                if let Some((c, q)) = self.qps.as_ref().and_then(|q| q.sent.get(&worker_id).copied()) {
                    self.send_target(&new_id, c, q).await?;
                }
                self.launch_slot(new_id.clone(), index, 1).await?;
                self.o.note(self.run_id(), format!("{worker_id} {why}; replaced by {new_id}"));
            }
            LossPolicy::Replace { .. } if !in_time => {
                self.o.note(self.run_id(), format!("{worker_id} {why} after the run's planned end"));
            }
            _ => {
                let n = self.lost.len();
                self.cause = Some(EndCause::Failed(format!(
                    "worker failure: {n} worker(s) stopped responding ({})",
                    self.lost.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// Writes the run's own row before the load runs, from the first worker's row (which
    /// names the table as resolved), with the run's whole template.
    async fn write_parent_row(&self) -> bool {
        for slot in &self.slots {
            if let Ok(Some(mut rec)) = self.o.reader.run_record(self.run_id(), Some(&slot.worker_id)).await {
                rec.worker_id = None;
                rec.template = self.template.clone();
                if let Some(at) = self.record.load_start_at {
                    rec.started_at = at;
                }
                rec.planned_end_at = self.planned_end();
                return match self.o.sink.begin_run(&rec).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("run {}: cannot write the run's row: {e}", self.run_id());
                        false
                    }
                };
            }
        }
        false
    }

    /// STOP to workers still running, then SIGTERM after the grace period, then SIGKILL.
    async fn shutdown_workers(&mut self) {
        if self.slots.iter().all(|s| s.done) {
            return;
        }
        let reason = match &self.cause {
            Some(EndCause::Stopped(r) | EndCause::Failed(r)) => r.clone(),
            None => "the run ended".to_string(),
        };
        if let Err(e) = self.stop_all(&reason).await {
            tracing::warn!("run {}: cannot append STOP: {e}", self.run_id());
        }
        let wait_exit = |slots: &mut Vec<Slot>| {
            let mut all = true;
            for s in slots.iter_mut().filter(|s| !s.done) {
                match s.process.as_mut().map(|p| p.try_exit()) {
                    Some(Ok(Some(exit))) => {
                        s.exit = Some(exit);
                        s.done = true;
                    }
                    None => s.done = true,
                    _ => all = false,
                }
            }
            all
        };
        let deadline = Instant::now() + self.o.settings.stop_grace;
        while Instant::now() < deadline && !wait_exit(&mut self.slots) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for s in self.slots.iter_mut().filter(|s| !s.done) {
            if let Some(p) = s.process.as_mut() {
                if let Err(e) = p.terminate() {
                    tracing::warn!("{}: {e}", s.worker_id);
                }
            }
        }
        let deadline = Instant::now() + self.o.settings.kill_grace;
        while Instant::now() < deadline && !wait_exit(&mut self.slots) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for s in self.slots.iter_mut().filter(|s| !s.done) {
            if let Some(p) = s.process.as_mut() {
                let _ = p.kill().await;
            }
            s.done = true;
        }
    }

    /// Rolls the workers' rows up into the run's row and ends the run with its status.
    async fn finalize(&mut self) -> RunOutcome {
        let run_id = self.run_id();
        let _ = self
            .o
            .control
            .append_event(run_id, EventScope::Run, ControlEventKind::SetPhase { phase: RunPhase::Processing })
            .await;
        let mut ids: Vec<String> = self.slots.iter().map(|s| s.worker_id.clone()).collect();
        if let Ok(beats) = self.o.control.heartbeats(run_id).await {
            for b in beats {
                if !ids.contains(&b.worker_id) {
                    ids.push(b.worker_id);
                }
            }
        }
        let mut parts = Vec::new();
        for id in &ids {
            match self.o.reader.summary(run_id, Some(id)).await {
                Ok(Some(s)) if s.status != RunStatus::Running => parts.push(s),
                Ok(_) => {}
                Err(e) => tracing::warn!("run {run_id}: cannot read the summary of {id}: {e}"),
            }
        }
        let mut summary = if parts.is_empty() {
            None
        } else {
            match merge_summaries(run_id, &self.template, &parts) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.cause.get_or_insert(EndCause::Failed(format!(
                        "the workers' figures could not be merged: {e}"
                    )));
                    None
                }
            }
        };
        let (status, reason) = match (&self.cause, &summary) {
            (Some(EndCause::Failed(r)), _) => (RunStatus::Failed, Some(r.clone())),
            (Some(EndCause::Stopped(r)), _) => (RunStatus::Cancelled, Some(r.clone())),
            (None, None) => (
                RunStatus::Failed,
                Some("no worker wrote a summary: see the workers' logs and heartbeats".to_string()),
            ),
            (None, Some(s)) => (s.status, s.reason.clone()),
        };
        let mut notes = self.o.runs.lock().get(&run_id).map(|e| e.notes.clone()).unwrap_or_default();
        for l in &self.lost {
            if !notes.iter().any(|n| n.starts_with(l.as_str())) {
                notes.push(format!("lost: {l}"));
            }
        }
        if let (Some(s), Some((search, _))) = (summary.as_mut(), self.search.as_ref()) {
            s.steps = search.steps().to_vec();
            s.best_step = search.best().cloned();
            if let Some(best) = &s.best_step {
                s.connections = best.connections;
            }
        }
        let reason = match (&self.search, status) {
            (Some(_), RunStatus::Completed) => Some(
                self.search_finished
                    .clone()
                    .unwrap_or_else(|| "search finished: every step up to max_connections ran".to_string()),
            ),
            _ => reason,
        };
        if let Some(s) = summary.as_mut() {
            s.status = status;
            s.reason = reason.clone();
            s.warnings.extend(notes.iter().cloned());
            s.verdict = Some(match status {
                RunStatus::Failed => Verdict::Failed,
                RunStatus::Cancelled => Verdict::Cancelled,
                _ => s.verdict(),
            });
            if let Err(e) = self.o.sink.write_summary(s).await {
                tracing::warn!("run {run_id}: cannot write the run's summary: {e}");
            }
        }
        let final_status = match status {
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled => status,
            _ => RunStatus::Failed,
        };
        let record = self
            .o
            .control
            .finish_run(run_id, final_status, reason.as_deref())
            .await
            .unwrap_or_else(|_| self.record.clone());
        RunOutcome { record, summary }
    }
}
