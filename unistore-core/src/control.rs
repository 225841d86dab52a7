//! Control plane store: run status, append-only control events, worker heartbeats.
//!
//! The rules live here, the rows in the backends. A backend only reads and writes rows: it
//! creates a run, replaces a run's row if its version is still the one read (compare-and-set),
//! inserts an event under a primary key, and upserts heartbeats. Everything that decides what a
//! row becomes (the lifecycle, what `SET_WORKER_TARGET` or `START` does, the next sequence
//! number) is [`RunStatusRecord::transition`], [`RunStatusRecord::apply`] and the provided
//! methods of [`ControlStore`], so the three backends cannot disagree.
//!
//! Correctness comes from the database (the version check of `replace_run`, the primary key of
//! the events), not from in-process locks, so that workers on other hosts can share a run.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    ControlEvent, ControlEventKind, EventScope, RunId, RunPhase, RunStatus, RunStatusRecord, WorkerHeartbeat,
};

/// How often a compare-and-set that lost a race is retried before giving up with
/// `ErrorKind::Conflict`.
const CAS_ATTEMPTS: u32 = 200;

impl RunStatusRecord {
    /// Moves the run to `to` if the lifecycle allows it (see [`RunStatus::can_transition_to`]),
    /// keeping `reason` when one is given. A disallowed transition is `ErrorKind::Conflict` and
    /// changes nothing.
    pub fn transition(&mut self, to: RunStatus, reason: Option<&str>) -> Result<()> {
        if !self.status.can_transition_to(to) {
            return Err(Error::backend(
                ErrorKind::Conflict,
                format!(
                    "run {} is {} and cannot move to {to}: the run's lifecycle does not allow it",
                    self.run_id, self.status
                ),
            ));
        }
        self.status = to;
        if let Some(r) = reason {
            self.reason = Some(r.to_string());
        }
        Ok(())
    }

    /// Ends the run with the terminal status `to` and its reason, through the lifecycle's own
    /// steps (a running run is cancelled through `CANCELLING`); the phase becomes
    /// `PROCESSING`. A run that has already ended keeps its status and reason (returns
    /// `false`). A status that is not terminal is `ErrorKind::InvalidInput`.
    pub fn finish(&mut self, to: RunStatus, reason: Option<&str>) -> Result<bool> {
        if !to.is_terminal() {
            return Err(Error::invalid(format!(
                "{to} does not end a run: use COMPLETED, CANCELLED or FAILED"
            )));
        }
        if self.status.is_terminal() {
            return Ok(false);
        }
        if !self.status.can_transition_to(to) && to == RunStatus::Cancelled {
            self.transition(RunStatus::Cancelling, None)?;
        }
        if !self.status.can_transition_to(to) && to == RunStatus::Completed {
            self.transition(RunStatus::Stopping, None)?;
        }
        self.transition(to, reason)?;
        self.phase = RunPhase::Processing;
        Ok(true)
    }

    /// The sequence number the next event of this run gets.
    pub fn next_event_seq(&self) -> u64 {
        self.last_event_seq + 1
    }

    /// What an event does to the run's row: `START` sets the shared start instant, `SET_PHASE`
    /// the phase, a run-scoped `SET_WORKER_TARGET` the run's total targets (so a worker that
    /// missed events catches up from the row). `STOP` and events addressed to one worker or
    /// group leave the row as it is; the event's number becomes the last issued.
    pub fn apply(&mut self, event: &ControlEvent) {
        match (&event.scope, &event.kind) {
            (_, ControlEventKind::Start { load_start_at: Some(at) }) => self.load_start_at = Some(*at),
            (_, ControlEventKind::SetPhase { phase }) => self.phase = *phase,
            (EventScope::Run, ControlEventKind::SetWorkerTarget { connections, target_qps }) => {
                self.target_connections = *connections;
                self.target_qps = *target_qps;
            }
            _ => {}
        }
        self.last_event_seq = self.last_event_seq.max(event.seq);
    }
}

/// Now, at microsecond precision (what every backend's timestamps keep), so that a value
/// written equals the value read back.
pub fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn missing_run(run_id: RunId) -> Error {
    Error::backend(
        ErrorKind::NotFound,
        format!("run {run_id} does not exist in the control store: check the run id"),
    )
}

impl std::fmt::Debug for dyn ControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlStore")
    }
}

/// The control-plane store. Backends implement the row operations; the provided methods hold
/// the rules and must not be overridden with other behaviour.
#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    /// Creates a run's status row. A run id that exists already is an error
    /// (`ErrorKind::Constraint`).
    async fn create_run(&self, record: &RunStatusRecord) -> Result<()>;

    /// The run's current status row.
    async fn run(&self, run_id: RunId) -> Result<Option<RunStatusRecord>>;

    /// Runs whose status is one of `statuses` (every run when empty), newest first, at most
    /// `limit`.
    async fn runs(&self, statuses: &[RunStatus], limit: usize) -> Result<Vec<RunStatusRecord>>;

    /// Compare-and-set: replaces every column of the run's row with `record` (its `version`
    /// included) if the stored row's version is still `expected_version`. Returns whether the
    /// row was replaced; `false` when another writer got there first or the run does not exist.
    async fn replace_run(&self, record: &RunStatusRecord, expected_version: u64) -> Result<bool>;

    /// Inserts an event row. An event with the same run and sequence number is an error
    /// (`ErrorKind::Constraint`).
    async fn insert_event(&self, event: &ControlEvent) -> Result<()>;

    /// Events with a sequence number greater than `after_seq`, in order.
    async fn events_since(&self, run_id: RunId, after_seq: u64) -> Result<Vec<ControlEvent>>;

    /// Inserts or replaces the worker's heartbeat row.
    async fn heartbeat(&self, beat: &WorkerHeartbeat) -> Result<()>;

    /// Every worker's latest heartbeat for the run, by worker id.
    async fn heartbeats(&self, run_id: RunId) -> Result<Vec<WorkerHeartbeat>>;

    /// Reads the run, lets `change` edit it, and writes it back with a compare-and-set,
    /// retrying from a fresh read when another writer got there first. An error from `change`
    /// changes nothing; a missing run is `ErrorKind::NotFound`.
    async fn update_run(
        &self,
        run_id: RunId,
        change: &(dyn for<'r> Fn(&'r mut RunStatusRecord) -> Result<()> + Send + Sync),
    ) -> Result<RunStatusRecord> {
        for attempt in 0..CAS_ATTEMPTS {
            let current = self.run(run_id).await?.ok_or_else(|| missing_run(run_id))?;
            let mut next = current.clone();
            change(&mut next)?;
            next.version = current.version + 1;
            next.updated_at = now_micros();
            if self.replace_run(&next, current.version).await? {
                return Ok(next);
            }
            // Lost a race: back off a little, more after repeated losses, with jitter so that
            // the losers do not retry in lockstep.
            let jitter = rand::random::<u64>() % 1_000;
            tokio::time::sleep(Duration::from_micros(u64::from(attempt.min(20)) * 1_000 + jitter)).await;
        }
        Err(Error::backend(
            ErrorKind::Conflict,
            format!("run {run_id} kept changing under {CAS_ATTEMPTS} attempts to update it: try again"),
        ))
    }

    /// Moves the run to `to` if the lifecycle allows it; returns the updated row. A disallowed
    /// transition is `ErrorKind::Conflict` and changes nothing; a missing run is
    /// `ErrorKind::NotFound`.
    async fn transition(
        &self,
        run_id: RunId,
        to: RunStatus,
        reason: Option<&str>,
    ) -> Result<RunStatusRecord> {
        let reason = reason.map(str::to_string);
        self.update_run(run_id, &move |r| r.transition(to, reason.as_deref())).await
    }

    /// Ends the run (see [`RunStatusRecord::finish`]); a run that has ended already is left as
    /// it is. Returns the row.
    async fn finish_run(
        &self,
        run_id: RunId,
        to: RunStatus,
        reason: Option<&str>,
    ) -> Result<RunStatusRecord> {
        let reason = reason.map(str::to_string);
        self.update_run(run_id, &move |r| r.finish(to, reason.as_deref()).map(|_| ())).await
    }

    /// Sets the run's phase (without an event; [`ControlEventKind::SetPhase`] does both).
    async fn set_phase(&self, run_id: RunId, phase: RunPhase) -> Result<()> {
        self.update_run(run_id, &move |r| {
            r.phase = phase;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Records that the controller driving the run is alive at `at`.
    async fn controller_beat(&self, run_id: RunId, at: DateTime<Utc>) -> Result<()> {
        self.update_run(run_id, &move |r| {
            r.controller_beat_at = Some(at);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Appends an event with the run's next sequence number and applies it to the run's row
    /// ([`RunStatusRecord::apply`]); returns it. The number is claimed by the compare-and-set
    /// of the row, so concurrent appenders, in any process, never get the same one. The event
    /// row is written just after: a reader may briefly see a later event before an earlier one
    /// (or, if the appender died between the two writes, never see a number). Readers therefore
    /// apply events only in unbroken sequence and, after a short wait at a gap, catch up from the
    /// run's row, which already holds every event's effect (see
    /// [`crate::orchestrator::join`]).
    async fn append_event(
        &self,
        run_id: RunId,
        scope: EventScope,
        kind: ControlEventKind,
    ) -> Result<ControlEvent> {
        let created_at = now_micros();
        let event =
            |seq: u64| ControlEvent { run_id, seq, scope: scope.clone(), kind: kind.clone(), created_at };
        let updated = self
            .update_run(run_id, &|r| {
                let e = event(r.next_event_seq());
                r.apply(&e);
                Ok(())
            })
            .await?;
        let appended = event(updated.last_event_seq);
        self.insert_event(&appended).await?;
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: RunStatus) -> RunStatusRecord {
        let mut r = RunStatusRecord::prepared(RunId::new(), "t", 1);
        r.status = status;
        r.reason = Some("earlier".into());
        r
    }

    #[test]
    fn finish_ends_a_run_through_the_lifecycle_and_never_reopens_one() {
        let mut r = record(RunStatus::Running);
        assert!(r.finish(RunStatus::Cancelled, Some("stopped by request")).unwrap());
        assert_eq!(
            (r.status, r.reason.as_deref(), r.phase),
            (RunStatus::Cancelled, Some("stopped by request"), RunPhase::Processing)
        );
        let mut r = record(RunStatus::Stopping);
        assert!(r.finish(RunStatus::Cancelled, None).unwrap());
        assert_eq!((r.status, r.reason.as_deref()), (RunStatus::Cancelled, Some("earlier")));
        let mut r = record(RunStatus::Running);
        assert!(r.finish(RunStatus::Completed, None).unwrap());
        assert_eq!(r.status, RunStatus::Completed);
        // An ended run keeps its status and reason.
        let mut r = record(RunStatus::Failed);
        assert!(!r.finish(RunStatus::Completed, Some("late")).unwrap());
        assert_eq!((r.status, r.reason.as_deref()), (RunStatus::Failed, Some("earlier")));
        let err = record(RunStatus::Running).finish(RunStatus::Stopping, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
