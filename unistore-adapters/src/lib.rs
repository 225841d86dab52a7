//! # unistore-adapters
//!
//! Backends for Unistore Bench, one module per family with the same inner shape
//! (`config`, `pool`, `tables`, `sink`, `control`), each behind a feature:
//!
//! - `sqlite` (default): the embedded default for results and control, and a target for demo
//!   and local runs.
//!
//! The [`registry`] picks a backend from a URL scheme (`sqlite://`, `postgres://`,
//! `snowflake://`). There is no hidden global registration: the registry is a plain `match`.

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "snowflake"))]
mod control_rows;
pub mod registry;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "snowflake"))]
mod run_filter;
mod url_util;

#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "snowflake")]
pub mod snowflake;

#[cfg(feature = "postgres")]
pub mod postgres;

pub use registry::{
    apply_schema, open_catalog, open_control, open_results, open_target, ping, OpenedTarget, ResultsStore,
    TargetOptions, DEFAULT_CONNECT_TIMEOUT,
};
pub use url_util::redact_url;
