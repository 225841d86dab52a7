//! # unistore-core
//!
//! The database-independent heart of Unistore Bench: the model (templates, runs, lifecycle),
//! the four traits every backend implements ([`TargetPool`], [`TableManager`],
//! [`ResultsSink`], [`ControlStore`]) plus [`Catalog`] for discovering tables, the workload
//! engine, and the metrics.
//!
//! No database driver lives here; backends are in `unistore-adapters`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use unistore_core::{Engine, EngineConfig, RunId, TargetPool, WorkloadPlan};
//!
//! async fn run(pool: Arc<dyn TargetPool>, plan: Arc<WorkloadPlan>) -> unistore_core::Result<()> {
//!     let config = EngineConfig::new(RunId::new(), 8, Duration::from_secs(10));
//!     let report = Engine::start(pool, plan, config).await?.wait().await?;
//!     println!("measured {} kinds over {:?}", report.measured.len(), report.window);
//!     Ok(())
//! }
//! ```

pub mod analysis;
pub mod catalog;
pub mod control;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod model;
pub mod notes;
pub mod orchestrator;
pub mod runner;
pub mod sink;
pub mod spool;
pub mod sql;
pub mod stepload;
pub mod summary;
pub mod table;
pub mod target;
pub mod template;
pub mod value;
pub mod workload;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use catalog::{Catalog, CatalogTable};
pub use control::ControlStore;
pub use engine::{
    ClientThreads, ConnectedEngine, Engine, EngineConfig, EngineControl, EngineHandle, EngineReport,
    StopReason,
};
pub use error::{DriverError, Error, ErrorKind, Result};
pub use metrics::{KindStats, LatencySummary, MetricSnapshot, QueryExecution, RunSummary, Verdict};
pub use model::{QueryKind, RunId, RunPhase, RunStatus, TableRef, TableType, WorkerIdentity};
pub use sink::{ResultsReader, ResultsSink, RunFilter, RunListEntry, RunPage, RunRecord, StoredTemplate};
pub use table::{ColumnInfo, Generated, TableManager, TableProfile};
pub use target::{StatementSpec, TargetPool, TargetSession};
pub use template::Template;
pub use value::{ColumnType, Value};
pub use workload::WorkloadPlan;
