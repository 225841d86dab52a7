//! # unistore
//!
//! Facade of Unistore Bench: the core (model, traits, engine, metrics) and the adapters in one
//! dependency, for Rust tools that embed the benchmark.
//!
//! ```no_run
//! use unistore::adapters::{open_target, TargetOptions};
//! use unistore::core::runner::PreparedRun;
//! use unistore::core::template::parse_mix;
//! use unistore::{RunId, Template, WorkerIdentity};
//!
//! # async fn example() -> unistore::Result<()> {
//! let mut template = Template::new("main.demo_orders", parse_mix("point_lookup=100")?);
//! template.phases.measurement = std::time::Duration::from_secs(5);
//! let run_id = RunId::new();
//! let options = TargetOptions::new(run_id, template.table_ref()?, None);
//! let target = open_target("sqlite:///tmp/demo.db", &options).await?;
//! let prepared =
//!     PreparedRun::prepare(template, run_id, WorkerIdentity::solo(), target.pool, target.manager.as_ref()).await?;
//! let finished = prepared.connect().await?.start(None).await.finish(|_| {}).await;
//! println!("{} ops/s", finished.summary.total.qps);
//! # Ok(())
//! # }
//! ```

pub use unistore_adapters as adapters;
pub use unistore_core as core;
pub use unistore_core::*;
