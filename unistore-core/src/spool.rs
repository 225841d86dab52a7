//! Results that could not be written, kept on local disk until the store takes them.
//!
//! A benchmark's results are the product: a results store that is restarted or unreachable
//! during a run must not cost a snapshot, a sampled execution or the summary. [`DurableSink`]
//! wraps any [`ResultsSink`]: each write is retried with backoff, and what still cannot be
//! written is appended to a [`Spool`] file (one JSON line per write) in the data directory.
//! The spool is replayed, in order, before the next write of the same process and whenever a
//! command opens the same store again (or by `unistore-worker flush`). Writes are replayed
//! in the order they were made, and every store write is idempotent (snapshots by key,
//! summaries by run and worker, `begin_run` insert-if-absent, a template whose content is
//! already the current version), so a replay that is cut short and repeated never duplicates
//! a row.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{MetricSnapshot, QueryExecution, RunSummary};
use crate::model::RunId;
use crate::sink::{ResultsSink, RunRecord, StoredTemplate};

/// One write that the store did not take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "write", content = "data", rename_all = "snake_case")]
pub enum SpooledWrite {
    /// [`ResultsSink::save_template_version`].
    Template(StoredTemplate),
    /// [`ResultsSink::begin_run`].
    BeginRun(RunRecord),
    /// [`ResultsSink::write_snapshots`].
    Snapshots(Vec<MetricSnapshot>),
    /// [`ResultsSink::write_query_executions`].
    Executions(Vec<QueryExecution>),
    /// [`ResultsSink::write_summary`].
    Summary(Box<RunSummary>),
}

impl SpooledWrite {
    /// Writes to `sink`; a template's write answers the version the store gave it.
    async fn apply(&self, sink: &dyn ResultsSink) -> Result<Option<u32>> {
        let written = match self {
            SpooledWrite::Template(t) => return sink.save_template_version(t).await,
            SpooledWrite::BeginRun(r) => sink.begin_run(r).await,
            SpooledWrite::Snapshots(s) => sink.write_snapshots(s).await,
            SpooledWrite::Executions(e) => sink.write_query_executions(e).await,
            SpooledWrite::Summary(s) => sink.write_summary(s).await,
        };
        written.map(|()| None)
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Writes the store took.
    pub written: usize,
    /// Writes still in the spool (the store failed again).
    pub remaining: usize,
    /// Writes the store refused for good (not a transient failure); moved to the
    /// `.rejected` file beside the spool, with the error, for a person to look at.
    pub rejected: usize,
    /// The last error, when writes remain or were rejected.
    pub last_error: Option<String>,
}

/// The spool file of one results store: `<dir>/results-<hash of the store URL>.jsonl`.
#[derive(Debug, Clone)]
pub struct Spool {
    path: PathBuf,
    lock_path: PathBuf,
    rejected_path: PathBuf,
}

/// How long to wait for another process that holds the spool.
const LOCK_WAIT: Duration = Duration::from_secs(30);

impl Spool {
    /// The spool of the store known as `store` (its URL without secrets) in `dir`.
    pub fn new(dir: &Path, store: &str) -> Spool {
        // FNV-1a: stable across versions and platforms, unlike the std hasher.
        let hash = store
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let base = dir.join(format!("results-{hash:016x}"));
        Spool {
            path: base.with_extension("jsonl"),
            lock_path: base.with_extension("lock"),
            rejected_path: base.with_extension("rejected.jsonl"),
        }
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes waiting in the spool.
    pub fn pending(&self) -> usize {
        match std::fs::File::open(&self.path) {
            Ok(f) => std::io::BufReader::new(f)
                .lines()
                .map_while(std::result::Result::ok)
                .filter(|l| !l.trim().is_empty())
                .count(),
            Err(_) => 0,
        }
    }

    fn io_error(&self, what: &str, e: &std::io::Error) -> Error {
        Error::backend(
            ErrorKind::Other,
            format!("cannot {what} the results spool {}: {e}", self.path.display()),
        )
    }

    /// Takes the spool's lock file, waiting (without blocking the runtime) for another
    /// process that holds it.
    async fn lock(&self) -> Result<std::fs::File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io_error("create the directory of", &e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.io_error("open the lock of", &e))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::backend(
                        ErrorKind::Timeout,
                        format!(
                            "the results spool {} is held by another process for more than {} s",
                            self.path.display(),
                            LOCK_WAIT.as_secs()
                        ),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(self.io_error("lock", &e)),
            }
        }
    }

    /// Appends a write, durably (the line is on disk when this returns).
    pub async fn append(&self, write: &SpooledWrite) -> Result<()> {
        let line = serde_json::to_string(write)
            .map_err(|e| Error::backend(ErrorKind::Other, format!("cannot encode a spooled write: {e}")))?;
        let _lock = self.lock().await?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io_error("open", &e))?;
        writeln!(f, "{line}").and_then(|()| f.sync_data()).map_err(|e| self.io_error("write", &e))
    }

    /// Writes the spooled writes to `sink`, in order, and removes what the store took.
    pub async fn replay(&self, sink: &dyn ResultsSink) -> Result<ReplayReport> {
        let mut report = ReplayReport::default();
        if !self.path.exists() {
            return Ok(report);
        }
        let _lock = self.lock().await?;
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(self.io_error("read", &e)),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut done = 0;
        for line in &lines {
            let outcome = match serde_json::from_str::<SpooledWrite>(line) {
                Ok(write) => match tokio::time::timeout(WRITE_TIMEOUT, write.apply(sink)).await {
                    Ok(r) => r.map(|_| ()),
                    Err(_) => Err(timeout_error()),
                },
                Err(e) => Err(Error::invalid(format!("unreadable spool line: {e}"))),
            };
            match outcome {
                Ok(()) => report.written += 1,
                Err(e) if e.is_transient() => {
                    report.last_error = Some(e.to_string());
                    break;
                }
                Err(e) => {
                    self.reject(line, &e)?;
                    report.rejected += 1;
                    report.last_error = Some(e.to_string());
                }
            }
            done += 1;
        }
        report.remaining = lines.len() - done;
        if report.remaining == 0 {
            std::fs::remove_file(&self.path).map_err(|e| self.io_error("remove", &e))?;
        } else {
            // Keep what is left, replacing the file atomically.
            let tmp = self.path.with_extension("jsonl.tmp");
            let mut rest = lines[done..].join("\n");
            rest.push('\n');
            std::fs::write(&tmp, rest)
                .and_then(|()| std::fs::rename(&tmp, &self.path))
                .map_err(|e| self.io_error("rewrite", &e))?;
        }
        Ok(report)
    }

    fn reject(&self, line: &str, e: &Error) -> Result<()> {
        #[derive(Serialize)]
        struct Rejected<'a> {
            rejected_at: DateTime<Utc>,
            error: String,
            line: &'a str,
        }
        let entry = serde_json::to_string(&Rejected { rejected_at: Utc::now(), error: e.to_string(), line })
            .map_err(|e| Error::backend(ErrorKind::Other, format!("cannot encode a rejected write: {e}")))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.rejected_path)
            .map_err(|e| self.io_error("open the rejected file of", &e))?;
        writeln!(f, "{entry}").map_err(|e| self.io_error("write the rejected file of", &e))
    }
}

/// Longest a single store write may take before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

fn timeout_error() -> Error {
    Error::backend(
        ErrorKind::Timeout,
        format!("the results store did not answer within {} s", WRITE_TIMEOUT.as_secs()),
    )
}

/// Pauses between attempts of one write. Four attempts over about 3.5 s ride out a
/// restarting server without holding a finished run for long.
const RETRY_BACKOFF: [Duration; 3] =
    [Duration::from_millis(250), Duration::from_millis(1_000), Duration::from_millis(2_000)];

/// A [`ResultsSink`] that retries and spools: a write returns `Ok` once the store took it or
/// it is safely on disk. [`DurableSink::spooled`] tells how many writes are waiting.
pub struct DurableSink {
    inner: Arc<dyn ResultsSink>,
    spool: Option<Spool>,
    order: tokio::sync::Mutex<()>,
    spooled: AtomicU64,
    retried: AtomicU64,
}

impl std::fmt::Debug for DurableSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSink").field("spool", &self.spool.as_ref().map(Spool::path)).finish()
    }
}

impl DurableSink {
    /// Wraps `inner`; writes it does not take go to `spool` (with `None`, they fail).
    pub fn new(inner: Arc<dyn ResultsSink>, spool: Option<Spool>) -> Self {
        DurableSink {
            inner,
            spool,
            order: tokio::sync::Mutex::new(()),
            spooled: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        }
    }

    /// Writes of this process that went to the spool instead of the store.
    pub fn spooled(&self) -> u64 {
        self.spooled.load(Ordering::Relaxed)
    }

    /// Attempts that failed and were retried.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// The spool, if any.
    pub fn spool(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    /// Writes still waiting in the spool (of this and earlier processes).
    pub fn pending(&self) -> usize {
        self.spool.as_ref().map_or(0, Spool::pending)
    }

    /// Writes through to the store, else to the spool: `Ok` with what the store answered
    /// (a template's version), or `Ok(None)` once the write is safely in the spool.
    async fn write(&self, write: SpooledWrite) -> Result<Option<u32>> {
        let _order = self.order.lock().await;
        if let Some(spool) = &self.spool {
            // Earlier writes go first: replay them before this one, or queue this one behind.
            if spool.path().exists() {
                let report = spool.replay(self.inner.as_ref()).await?;
                if report.remaining > 0 {
                    self.spooled.fetch_add(1, Ordering::Relaxed);
                    return spool.append(&write).await.map(|()| None);
                }
            }
        }
        let mut last = None;
        for attempt in 0..=RETRY_BACKOFF.len() {
            if attempt > 0 {
                self.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_BACKOFF[attempt - 1]).await;
            }
            let outcome = match tokio::time::timeout(WRITE_TIMEOUT, write.apply(self.inner.as_ref())).await {
                Ok(r) => r,
                Err(_) => Err(timeout_error()),
            };
            match outcome {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    let transient = e.is_transient();
                    tracing::warn!("results store write failed (attempt {}): {e}", attempt + 1);
                    last = Some(e);
                    if !transient {
                        break;
                    }
                }
            }
        }
        let error = last.unwrap_or_else(timeout_error);
        match &self.spool {
            Some(spool) => {
                spool.append(&write).await?;
                self.spooled.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("results spooled to {} after: {error}", spool.path().display());
                Ok(None)
            }
            None => Err(error),
        }
    }
}

#[async_trait]
impl ResultsSink for DurableSink {
    /// The store's version, or `None` when the template went to the spool (a run begun now
    /// then records no version: the spooled save gets one only when it is replayed).
    async fn save_template_version(&self, template: &StoredTemplate) -> Result<Option<u32>> {
        self.write(SpooledWrite::Template(template.clone())).await
    }

    async fn write_snapshots(&self, snapshots: &[MetricSnapshot]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        self.write(SpooledWrite::Snapshots(snapshots.to_vec())).await.map(|_| ())
    }

    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(SpooledWrite::Executions(rows.to_vec())).await.map(|_| ())
    }

    async fn begin_run(&self, run: &RunRecord) -> Result<()> {
        self.write(SpooledWrite::BeginRun(run.clone())).await.map(|_| ())
    }

    async fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        self.write(SpooledWrite::Summary(Box::new(summary.clone()))).await.map(|_| ())
    }

    async fn fail_stale_runs(&self, now: DateTime<Utc>, grace: Duration) -> Result<Vec<RunId>> {
        self.inner.fail_stale_runs(now, grace).await
    }
}
