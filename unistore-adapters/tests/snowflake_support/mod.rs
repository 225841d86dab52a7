//! Shared setup of the Snowflake tests: the emulator's URL and fixtures in fresh schemas.
//!
//! The URL comes from `UNISTORE_TEST_SNOWFLAKE_URL` (exported by `scripts/test` after
//! `scripts/snowflake-emulator start`); without it the tests start the emulator themselves
//! through the same script, so `cargo test` works alone. They never skip silently.

#![allow(dead_code)]

pub mod proxy;

use std::process::Command;
use std::sync::OnceLock;

use unistore_adapters::snowflake::execute_statements;
use unistore_core::testkit::{fixture_row, FIXTURE_NOPK_TABLE, FIXTURE_ROWS, FIXTURE_TABLE};

/// The emulator's base URL (database UNISTORE_TEST).
pub fn emulator_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("UNISTORE_TEST_SNOWFLAKE_URL") {
            if !url.trim().is_empty() {
                return url.trim().to_string();
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/snowflake-emulator");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            out.status.success(),
            "{script} start failed (set UNISTORE_TEST_SNOWFLAKE_URL to use a running emulator):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout.lines().rev().find(|l| l.starts_with("snowflake://"));
        url.unwrap_or_else(|| panic!("{script} start printed no snowflake:// URL: {stdout}")).to_string()
    })
    .clone()
}

/// The emulator URL with another default schema (in database UNISTORE_TEST).
pub fn url_with_schema(schema: &str) -> String {
    let base = emulator_url();
    let (head, query) = base.split_once('?').unwrap_or((&base, ""));
    let prefix = head.rsplit_once('/').map(|(p, _)| p).unwrap_or(head);
    let prefix =
        if prefix.ends_with("/UNISTORE_TEST") { prefix.to_string() } else { format!("{head}/UNISTORE_TEST") };
    format!("{prefix}/{schema}?{query}")
}

/// A fresh schema name, unique per test and run.
pub fn fresh_schema(tag: &str) -> String {
    format!(
        "T_{}_{}",
        tag.to_ascii_uppercase(),
        uuid::Uuid::new_v4().simple().to_string()[..10].to_ascii_uppercase()
    )
}

/// `CREATE [kind] TABLE` of the conformance fixture with its 1000 rows.
pub fn fixture_statements(kind: &str, name: &str, extra: &str) -> Vec<String> {
    let mut statements = vec![format!(
        "CREATE {kind} TABLE {name} (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DOUBLE NOT NULL, \
         created_at TIMESTAMP_NTZ NOT NULL{extra})"
    )];
    let rows: Vec<String> = (1..=FIXTURE_ROWS)
        .map(|id| {
            let (id, name, amount, at) = fixture_row(id);
            format!("({id}, '{name}', {amount:?}, '{}')", at.format("%Y-%m-%d %H:%M:%S"))
        })
        .collect();
    for chunk in rows.chunks(500) {
        statements.push(format!("INSERT INTO {name} VALUES {}", chunk.join(", ")));
    }
    statements
}

/// Creates a fresh schema holding the standard fixture tables; returns its URL.
pub async fn standard_fixture(tag: &str) -> String {
    let schema = fresh_schema(tag);
    let url = url_with_schema(&schema);
    let mut statements = vec![
        format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
        format!("USE SCHEMA UNISTORE_TEST.{schema}"),
    ];
    statements.extend(fixture_statements("", FIXTURE_TABLE, ""));
    statements.push(format!("CREATE TABLE {FIXTURE_NOPK_TABLE} (id BIGINT, name VARCHAR(64))"));
    let nopk: Vec<String> = (1..=10).map(|i| format!("({i}, 'nopk-{i}')")).collect();
    statements.push(format!("INSERT INTO {FIXTURE_NOPK_TABLE} VALUES {}", nopk.join(", ")));
    execute_statements(&url, &statements)
        .await
        .unwrap_or_else(|e| panic!("creating the standard fixture failed: {e}"));
    url
}

/// Creates a fresh schema holding the fixture as a hybrid table (with a secondary index on
/// `name`); returns its URL.
pub async fn hybrid_fixture(tag: &str) -> String {
    let schema = fresh_schema(tag);
    let url = url_with_schema(&schema);
    let mut statements = vec![
        format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
        format!("USE SCHEMA UNISTORE_TEST.{schema}"),
    ];
    statements.extend(fixture_statements("HYBRID", FIXTURE_TABLE, ", INDEX idx_conformance_name (name)"));
    execute_statements(&url, &statements)
        .await
        .unwrap_or_else(|e| panic!("creating the hybrid fixture failed: {e}"));
    url
}
