//! Control plane store: run status, append-only control events, worker heartbeats.
//!
//! Correctness comes from the database (primary keys, transactions, row locks), not from
//! in-process locks, so that workers on other hosts can share a run.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{
    ControlEvent, ControlEventKind, EventScope, RunId, RunPhase, RunStatus, RunStatusRecord, WorkerHeartbeat,
};

/// The control-plane store.
#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    /// Creates a run's status row. A run id that exists already is an error
    /// (`ErrorKind::Constraint`).
    async fn create_run(&self, record: &RunStatusRecord) -> Result<()>;

    /// The run's current status row.
    async fn run(&self, run_id: RunId) -> Result<Option<RunStatusRecord>>;

    /// Atomically moves the run to `to` if the lifecycle allows it from the current status
    /// (see [`RunStatus::can_transition_to`]); returns the updated row. A disallowed transition
    /// is `ErrorKind::Conflict` and changes nothing; a missing run is `ErrorKind::NotFound`.
    async fn transition(&self, run_id: RunId, to: RunStatus, reason: Option<&str>)
        -> Result<RunStatusRecord>;

    /// Sets the run's phase.
    async fn set_phase(&self, run_id: RunId, phase: RunPhase) -> Result<()>;

    /// Appends an event with the next per-run sequence number and returns it. For
    /// `SET_WORKER_TARGET` on the run scope, the run's current targets are updated in the same
    /// transaction. Concurrent appends never get the same number.
    async fn append_event(
        &self,
        run_id: RunId,
        scope: EventScope,
        kind: ControlEventKind,
    ) -> Result<ControlEvent>;

    /// Events with a sequence number greater than `after_seq`, in order.
    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>>;

    /// Inserts or replaces the worker's heartbeat row.
    async fn heartbeat(&self, beat: &WorkerHeartbeat) -> Result<()>;

    /// Every worker's latest heartbeat for the run, by worker id.
    async fn heartbeats(&self, run_id: RunId) -> Result<Vec<WorkerHeartbeat>>;
}
