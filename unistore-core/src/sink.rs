//! Results store: templates, run summaries, metric snapshots and sampled query executions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::metrics::{MetricSnapshot, QueryExecution, RunSummary};
use crate::model::{RunId, RunStatus, TableType};
use crate::template::Template;

/// A template as stored: the current version of an id in `TEST_TEMPLATES`, or one version of
/// its history in `TEST_TEMPLATE_VERSIONS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Stable id.
    pub template_id: String,
    /// The template.
    pub template: Template,
    /// Version of this content under `template_id`, from 1. The store assigns it: what is
    /// passed to [`ResultsSink::save_template`] is ignored (0 by convention, and in JSON
    /// written before versions existed).
    #[serde(default)]
    pub version: u32,
    /// When this version was stored.
    pub updated_at: DateTime<Utc>,
}

/// Whether two serialized templates hold the same template. They are compared as JSON values,
/// so formatting and key order do not count (a store may normalize them); a document that is
/// not JSON equals nothing.
pub fn same_template_json(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// One line of a run listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunListEntry {
    /// The run.
    pub run_id: RunId,
    /// Worker id for a worker's child row; `None` for the run's own row.
    pub worker_id: Option<String>,
    /// Template name.
    pub template_name: String,
    /// Table benchmarked.
    pub table: String,
    /// Final status.
    pub status: String,
    /// Start of the run.
    pub started_at: DateTime<Utc>,
    /// Measured operations.
    pub ops: u64,
    /// Measured QPS.
    pub qps: f64,
    /// Type of the table benchmarked (`None`: the stored value is not a known type).
    #[serde(default)]
    pub table_type: Option<TableType>,
    /// Id of the stored template the run was made from (`None`: the row was written only by a
    /// summary, without a template id).
    #[serde(default)]
    pub template_id: Option<String>,
    /// Failed operations of the measurement (`None` where a store does not list it).
    #[serde(default)]
    pub errors: Option<u64>,
    /// 95th percentile response time of the measurement, in ms (`None` where a store does not
    /// list it).
    #[serde(default)]
    pub p95_ms: Option<f64>,
}

/// Default of [`RunFilter::limit`].
pub const DEFAULT_RUN_PAGE_LIMIT: usize = 50;

/// Which runs [`ResultsReader::runs_page`] lists: every field set narrows the list (they
/// combine with AND); the default lists every run, [`DEFAULT_RUN_PAGE_LIMIT`] at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFilter {
    /// Template name, exactly.
    pub template_name: Option<String>,
    /// Table, matched as [`crate::analysis::same_table`] does: case-insensitive, and a name
    /// without dots also matches the last part of a qualified stored name (`orders` matches
    /// `public.orders`).
    pub table: Option<String>,
    /// Table type.
    pub table_type: Option<TableType>,
    /// Any of these statuses (`None` or empty: any status).
    pub status: Option<Vec<RunStatus>>,
    /// Runs started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Runs started at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Most runs on the page.
    pub limit: usize,
    /// Matching runs skipped before the page (newest first).
    pub offset: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            template_name: None,
            table: None,
            table_type: None,
            status: None,
            since: None,
            until: None,
            limit: DEFAULT_RUN_PAGE_LIMIT,
            offset: 0,
        }
    }
}

impl RunFilter {
    /// Whether a listed run passes the filter (paging aside): the same rules the stores apply
    /// in SQL, for callers that filter rows they already hold.
    pub fn matches(&self, entry: &RunListEntry) -> bool {
        self.template_name.as_ref().is_none_or(|t| *t == entry.template_name)
            && self.table.as_deref().is_none_or(|t| crate::analysis::same_table(t, &entry.table))
            && self.table_type.is_none_or(|t| entry.table_type == Some(t))
            && self
                .status
                .as_ref()
                .is_none_or(|s| s.is_empty() || s.iter().any(|s| s.as_str() == entry.status))
            && self.since.is_none_or(|t| entry.started_at >= t)
            && self.until.is_none_or(|t| entry.started_at <= t)
    }
}

/// One page of runs from [`ResultsReader::runs_page`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// The runs' own rows (never a worker's), newest first.
    pub runs: Vec<RunListEntry>,
    /// How many runs match the filter, on every page together.
    pub total: u64,
}

/// A run as it starts: written before the load, so that a run that never finishes (a killed
/// process, a lost host) still leaves a row that says what was running and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run.
    pub run_id: RunId,
    /// Worker id for a worker's child row; `None` for the run's own row.
    pub worker_id: Option<String>,
    /// Id of the stored template the run was made from.
    pub template_id: String,
    /// The version of that template whose content is [`RunRecord::template`]: `None` when it is
    /// not known (the template could not be saved, or was spooled and had no version yet).
    #[serde(default)]
    pub template_version: Option<u32>,
    /// The template as run, after flags and defaults: enough to repeat the run.
    pub template: Template,
    /// The target, with any secret removed.
    pub target: String,
    /// Backend of the target.
    pub target_kind: String,
    /// The table benchmarked, as resolved.
    pub table: String,
    /// Its type.
    pub table_type: TableType,
    /// Seed of the key sequences.
    pub seed: u64,
    /// When the load starts.
    pub started_at: DateTime<Utc>,
    /// When the load should end (warmup + measurement or search + cooldown). A run still
    /// `RUNNING` well past this, with no snapshot for a while, was abandoned.
    pub planned_end_at: DateTime<Utc>,
}

/// Writes results. Writes are batched by the caller and happen off the hot path.
#[async_trait]
pub trait ResultsSink: Send + Sync + 'static {
    /// Saves a template as the current version of its id, and returns the version that holds
    /// this content. Templates are versioned, never overwritten: if the latest stored version
    /// has the same content (the template itself; `updated_at` does not count), nothing changes
    /// and its version is returned; otherwise the content is stored as a new version (the
    /// latest + 1, from 1), which becomes current, and the older ones stay readable through
    /// [`ResultsReader::template_versions`]. Concurrent saves never give two different contents
    /// the same version.
    ///
    /// A store always answers `Some`. `None` means the write was accepted but is not stored
    /// yet (a [`crate::spool::DurableSink`] spooled it; the version is assigned on replay).
    async fn save_template_version(&self, template: &StoredTemplate) -> Result<Option<u32>>;

    /// [`ResultsSink::save_template_version`], for callers that do not need the version.
    async fn save_template(&self, template: &StoredTemplate) -> Result<()> {
        self.save_template_version(template).await.map(|_| ())
    }

    /// Appends interval snapshots.
    async fn write_snapshots(&self, snapshots: &[MetricSnapshot]) -> Result<()>;

    /// Appends sampled query executions.
    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()>;

    /// Writes a run's row before its load starts: status `RUNNING`, the effective template
    /// with its id and version, the target (without secrets) and the planned end. If the row
    /// exists already (a replayed write), it is left as it is.
    async fn begin_run(&self, run: &RunRecord) -> Result<()>;

    /// Writes a run summary (one row per run and worker), completing the row `begin_run`
    /// wrote, or creating it. Writing the same run and worker again replaces the summary, so a
    /// retried write never duplicates a result; the template and target stay as begun.
    async fn write_summary(&self, summary: &RunSummary) -> Result<()>;

    /// Marks runs that are still `RUNNING` although their planned end is more than `grace`
    /// before `now` and their last snapshot (or start) too, as `FAILED` with the reason
    /// "worker stopped without finishing". Returns the runs it marked.
    async fn fail_stale_runs(&self, now: DateTime<Utc>, grace: std::time::Duration) -> Result<Vec<RunId>>;
}

/// The reason given to runs found abandoned by [`ResultsSink::fail_stale_runs`].
pub const STALE_RUN_REASON: &str =
    "worker stopped without finishing (no snapshot or summary arrived after the planned end)";

/// Reads results back (for the UI and comparisons).
#[async_trait]
pub trait ResultsReader: Send + Sync + 'static {
    /// The current version of a template, by id.
    async fn template(&self, template_id: &str) -> Result<Option<StoredTemplate>>;

    /// Every stored version of a template, oldest first (empty for an unknown id).
    async fn template_versions(&self, template_id: &str) -> Result<Vec<StoredTemplate>>;

    /// The current version of every template, most recently updated first.
    async fn templates(&self) -> Result<Vec<StoredTemplate>>;

    /// Removes a template with all its versions; returns whether it existed.
    async fn delete_template(&self, template_id: &str) -> Result<bool>;

    /// How a run was configured, as [`ResultsSink::begin_run`] wrote it (`worker_id` `None`:
    /// the run's own row). `None` when the run has no such row, or its row was written only by
    /// its summary (by a version of the tool that did not write rows before the load).
    async fn run_record(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunRecord>>;

    /// The most recent rows, newest first: the runs' own rows and their workers' rows.
    async fn runs(&self, limit: usize) -> Result<Vec<RunListEntry>>;

    /// A page of the runs' own rows (no worker rows) that pass `filter`, newest first (ties by
    /// run id), filtered and paged by the store itself, with the number of matching runs.
    async fn runs_page(&self, filter: &RunFilter) -> Result<RunPage>;

    /// Removes everything stored about a run: its own row and its workers' rows, its snapshots
    /// and its sampled executions, in one transaction where the store has them. Returns whether
    /// the store held anything of it.
    async fn delete_run(&self, run_id: RunId) -> Result<bool>;

    /// A run's summary (`worker_id` `None`: the run's own row).
    async fn summary(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunSummary>>;

    /// A run's snapshots, in time order (all workers).
    async fn snapshots(&self, run_id: RunId) -> Result<Vec<MetricSnapshot>>;

    /// Up to `limit` sampled executions of a run, in time order.
    async fn query_executions(&self, run_id: RunId, limit: usize) -> Result<Vec<QueryExecution>>;
}

/// Reads a finished run back for the analysis: its own summary, its configuration and every
/// snapshot. `Ok(None)`: the store has no such run (the caller names the store in its
/// message). A run that has not ended is `ErrorKind::InvalidInput`.
pub async fn read_finished_run(
    reader: &dyn ResultsReader,
    run_id: RunId,
) -> Result<Option<crate::analysis::RunData>> {
    let Some(summary) = reader.summary(run_id, None).await? else {
        return Ok(None);
    };
    if !summary.status.is_terminal() {
        return Err(crate::error::Error::invalid(format!(
            "run {run_id} is still {}: wait until it has finished (or stop it)",
            summary.status
        )));
    }
    let record = reader.run_record(run_id, None).await?;
    let snapshots = reader.snapshots(run_id).await?;
    Ok(Some(crate::analysis::RunData { summary, record, snapshots }))
}
