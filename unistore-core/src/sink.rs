//! Results store: templates, run summaries, metric snapshots and sampled query executions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::metrics::{MetricSnapshot, QueryExecution, RunSummary};
use crate::model::RunId;
use crate::template::Template;

/// A template as stored in `TEST_TEMPLATES`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Stable id.
    pub template_id: String,
    /// The template.
    pub template: Template,
    /// Last change.
    pub updated_at: DateTime<Utc>,
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
}

/// Writes results. Writes are batched by the caller and happen off the hot path.
#[async_trait]
pub trait ResultsSink: Send + Sync + 'static {
    /// Inserts or replaces a template by id.
    async fn save_template(&self, template: &StoredTemplate) -> Result<()>;

    /// Appends interval snapshots.
    async fn write_snapshots(&self, snapshots: &[MetricSnapshot]) -> Result<()>;

    /// Appends sampled query executions.
    async fn write_query_executions(&self, rows: &[QueryExecution]) -> Result<()>;

    /// Writes a run summary (one row per run and worker). Writing the same run and worker
    /// again replaces the row, so a retried write never duplicates a result.
    async fn write_summary(&self, summary: &RunSummary) -> Result<()>;
}

/// Reads results back (for the UI and comparisons).
#[async_trait]
pub trait ResultsReader: Send + Sync + 'static {
    /// A template by id.
    async fn template(&self, template_id: &str) -> Result<Option<StoredTemplate>>;

    /// All templates, most recently updated first.
    async fn templates(&self) -> Result<Vec<StoredTemplate>>;

    /// Removes a template; returns whether it existed.
    async fn delete_template(&self, template_id: &str) -> Result<bool>;

    /// The most recent runs, newest first.
    async fn runs(&self, limit: usize) -> Result<Vec<RunListEntry>>;

    /// A run's summary (`worker_id` `None`: the run's own row).
    async fn summary(&self, run_id: RunId, worker_id: Option<&str>) -> Result<Option<RunSummary>>;

    /// A run's snapshots, in time order (all workers).
    async fn snapshots(&self, run_id: RunId) -> Result<Vec<MetricSnapshot>>;

    /// Up to `limit` sampled executions of a run, in time order.
    async fn query_executions(&self, run_id: RunId, limit: usize) -> Result<Vec<QueryExecution>>;
}
