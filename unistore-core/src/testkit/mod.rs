//! Conformance suites that every adapter runs against its real backend (feature `testkit`).
//!
//! A new backend proves itself by passing the same checks as the others: each function below
//! exercises one trait with real values and panics, with a message that says what differed, on
//! any failure. They are test helpers, so panicking is their way of failing.
//!
//! The table checks need a fixture that each adapter's tests create themselves (the tool never
//! issues DDL, so the DDL lives in the tests):
//!
//! ```text
//! FIXTURE_TABLE(id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL,
//!               amount DOUBLE/FLOAT NOT NULL, created_at TIMESTAMP NOT NULL)
//! FIXTURE_NOPK_TABLE(id BIGINT, name VARCHAR(64))
//! ```
//!
//! ```no_run
//! # async fn example(
//! #     manager: std::sync::Arc<dyn unistore_core::TableManager>,
//! #     pool: std::sync::Arc<dyn unistore_core::TargetPool>,
//! # ) {
//! use unistore_core::testkit;
//! use unistore_core::TableRef;
//!
//! let table = TableRef::parse(testkit::FIXTURE_TABLE).expect("valid name");
//! let nopk = TableRef::parse(testkit::FIXTURE_NOPK_TABLE).expect("valid name");
//! let missing = TableRef::parse("unistore_no_such_table").expect("valid name");
//! testkit::check_table_manager(manager.as_ref(), &table, &nopk, &missing).await;
//! testkit::check_target_pool(pool.clone(), manager.as_ref(), &table).await;
//! # }
//! ```

mod run_listing;
mod stores;
mod target;
mod template_versions;

use chrono::{DateTime, Utc};

pub use stores::{check_control_store, check_results_store, sample_summary};
pub use target::{check_engine_counts, check_table_manager, check_target_pool};

/// Name of the conformance fixture table.
///
/// Fixture each adapter's tests create themselves (DDL lives in the tests, never in the tool):
/// FIXTURE_TABLE(id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DOUBLE/FLOAT NOT NULL, created_at TIMESTAMP NOT NULL)
///   with rows id = 1..=1000, name = format!("name-{id}"), amount = id as f64 * 1.5, created_at = 2024-01-01 00:00:00 + id seconds;
/// FIXTURE_NOPK_TABLE(id BIGINT, name VARCHAR(64)) with 10 rows and no primary key.
pub const FIXTURE_TABLE: &str = "unistore_conformance";
/// Name of the conformance fixture table without a primary key.
pub const FIXTURE_NOPK_TABLE: &str = "unistore_conformance_nopk";
/// Rows in [`FIXTURE_TABLE`].
pub const FIXTURE_ROWS: i64 = 1000;

/// Rows in [`FIXTURE_NOPK_TABLE`].
pub const FIXTURE_NOPK_ROWS: i64 = 10;

/// `created_at` of fixture row `id = 0` (2024-01-01 00:00:00 UTC, in seconds since the epoch);
/// row `id` has this plus `id` seconds.
pub const FIXTURE_EPOCH_S: i64 = 1_704_067_200;

/// The fixture row for `id`: `(id, name, amount, created_at)`, for adapters' fixture loaders.
pub fn fixture_row(id: i64) -> (i64, String, f64, DateTime<Utc>) {
    let created_at =
        DateTime::from_timestamp(FIXTURE_EPOCH_S + id, 0).expect("fixture timestamps are in range");
    (id, format!("name-{id}"), id as f64 * 1.5, created_at)
}

/// Now, truncated to whole milliseconds: every backend stores at least millisecond precision,
/// so values built from it round-trip exactly.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is in range")
}
