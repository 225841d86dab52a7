//! Shared helpers of the Postgres integration tests: a schema of their own per test (dropped
//! afterwards, also when the test fails), the conformance fixture, a throwaway cluster with
//! `pg_stat_statements` for the server-side counting test, and ([`cluster`]) one with
//! `scram-sha-256` passwords and TLS for the authentication and `sslmode` tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub mod cluster;

use tokio_postgres::{Client, NoTls};
use unistore_core::testkit::{FIXTURE_NOPK_ROWS, FIXTURE_NOPK_TABLE, FIXTURE_ROWS, FIXTURE_TABLE};
use unistore_core::TableRef;

/// The server the tests run against.
pub fn pg_url() -> String {
    std::env::var("UNISTORE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with one more query parameter.
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// A plain connection for test set-up.
pub async fn connect(url: &str) -> Client {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A schema created for one test and dropped (with everything in it) when the guard goes out
/// of scope, whether the test passed or panicked.
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    pub async fn create(url: &str) -> TestSchema {
        let name = format!("ut_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let client = connect(url).await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        TestSchema { url: url.to_string(), name }
    }

    /// A table of this schema.
    pub fn table(&self, name: &str) -> TableRef {
        TableRef { database: None, schema: Some(self.name.clone()), name: name.to_string() }
    }

    /// The store URL for this schema (`?schema=`).
    pub fn store_url(&self) -> String {
        with_param(&self.url, "schema", &self.name)
    }

    /// Creates and fills the conformance fixture tables in this schema (and analyzes them).
    pub async fn load_fixture(&self) {
        let s = &self.name;
        let sql = format!(
            "CREATE TABLE {s}.{FIXTURE_TABLE} (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, \
                 amount DOUBLE PRECISION NOT NULL, created_at TIMESTAMP NOT NULL);
             INSERT INTO {s}.{FIXTURE_TABLE} SELECT i, 'name-' || i, i * 1.5, \
                 TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL '1 second' FROM generate_series(1, {FIXTURE_ROWS}) i;
             CREATE TABLE {s}.{FIXTURE_NOPK_TABLE} (id BIGINT, name VARCHAR(64));
             INSERT INTO {s}.{FIXTURE_NOPK_TABLE} SELECT i, 'name-' || i FROM generate_series(1, {FIXTURE_NOPK_ROWS}) i;
             ANALYZE {s}.{FIXTURE_TABLE};
             ANALYZE {s}.{FIXTURE_NOPK_TABLE};"
        );
        connect(&self.url)
            .await
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("cannot load the fixture: {e}"));
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A thread with its own runtime: Drop may run inside (or outside) the test's runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test schema {}", self.name);
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-server")
}

/// A PostgreSQL with `pg_stat_statements` preloaded: `UNISTORE_TEST_PG_STATS_URL` if set,
/// else a throwaway cluster started by `scripts/pg-test-server start-stats` and stopped when
/// the guard goes out of scope.
pub struct StatsServer {
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

impl StatsServer {
    pub fn start() -> StatsServer {
        if let Ok(url) = std::env::var("UNISTORE_TEST_PG_STATS_URL") {
            return StatsServer { url, dir: None };
        }
        let dir =
            tempfile::Builder::new().prefix("unistore-pgstats-").tempdir().expect("temporary directory");
        let out = Command::new(script())
            .arg("start-stats")
            .arg(dir.path())
            .output()
            .expect("running scripts/pg-test-server");
        assert!(
            out.status.success(),
            "scripts/pg-test-server start-stats failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout.lines().last().unwrap_or_default().trim().to_string();
        assert!(url.starts_with("postgres://"), "unexpected output of start-stats: {stdout}");
        StatsServer { url, dir: Some(dir) }
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(script()).arg("stop-stats").arg(dir.path()).output();
        }
    }
}

/// Sessions named `application_name` that still match `condition` (SQL on `pg_stat_activity`,
/// e.g. `state = 'active'`), as the server sees them after up to 3 s for a cancel to land.
pub async fn sessions_still(application_name: &str, condition: &str) -> i64 {
    let watcher = connect(&pg_url()).await;
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND {condition}");
    let mut left = -1;
    for _ in 0..30 {
        left = watcher.query_one(&sql, &[&application_name]).await.expect("pg_stat_activity").get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    left
}

/// Sessions named `application_name` waiting on a lock (see [`sessions_still`]).
pub async fn waiting_on_a_lock(application_name: &str) -> i64 {
    sessions_still(application_name, "wait_event_type = 'Lock'").await
}
