//! Helpers shared by the worker's end-to-end tests: running the binary, reading the SQLite
//! results store, `psql` against the test server, and a throwaway PostgreSQL cluster that a
//! test may stop and start again.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The worker binary with a throwaway data directory and no store or target from the
/// environment.
pub fn worker(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unistore-worker"));
    c.env("UNISTORE_DATA_DIR", data_dir).env_remove("UNISTORE_TARGET").env_remove("UNISTORE_RESULTS");
    c
}

/// `unistore-worker bench ARGS`, waited for.
pub fn bench(data_dir: &Path, args: &[&str]) -> Output {
    worker(data_dir).arg("bench").args(args).output().expect("the worker runs")
}

/// `unistore-worker bench ARGS` in the background, output piped.
pub fn spawn_bench(data_dir: &Path, args: &[&str]) -> std::process::Child {
    worker(data_dir)
        .arg("bench")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker starts")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends `signal` (e.g. "-TERM") to a process.
pub fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

pub fn sqlite_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

pub fn sqlite_text(db: &Path, sql: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// A template file in `dir`.
pub fn template(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// The PostgreSQL server of the test run.
pub fn pg_url() -> String {
    std::env::var("UNISTORE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs SQL with psql and returns its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {sql}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-server")
}

/// A throwaway PostgreSQL cluster of the test's own (stopped and removed when dropped), which
/// the test may stop and start again on the same port.
pub struct Cluster {
    pub url: String,
    pub dir: tempfile::TempDir,
    port: String,
}

fn as_postgres(args: &[&str]) -> Output {
    let bindir = text(&Command::new("pg_config").arg("--bindir").output().unwrap().stdout).trim().to_string();
    let mut c =
        if is_root() { Command::new("runuser") } else { Command::new(format!("{bindir}/{}", args[0])) };
    if is_root() {
        c.args(["-u", "postgres", "--", &format!("{bindir}/{}", args[0])]);
    }
    c.args(&args[1..]).output().unwrap()
}

fn is_root() -> bool {
    text(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::Builder::new().prefix("unistore-worker-pg-").tempdir().unwrap();
        let out = Command::new(script()).arg("start-stats").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "start-stats: {}{}", text(&out.stdout), text(&out.stderr));
        let url = text(&out.stdout).lines().last().unwrap().trim().to_string();
        let port = std::fs::read_to_string(dir.path().join("port")).unwrap().trim().to_string();
        Cluster { url, dir, port }
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Stops the server at once (connections are cut, as in a crash or a restart).
    pub fn stop(&self) {
        let out = as_postgres(&["pg_ctl", "-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", text(&out.stderr));
    }

    /// Starts the server again on the same port.
    pub fn restart(&self) {
        let log = self.dir.path().join("server.log").display().to_string();
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let out =
            as_postgres(&["pg_ctl", "-D", &self.data(), "-l", &log, "-w", "-t", "30", "-o", &opts, "start"]);
        assert!(out.status.success(), "pg_ctl start: {}{}", text(&out.stdout), text(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop-stats").arg(self.dir.path()).output();
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn results_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("results.db").display())
}

/// The run's row and each worker's row, read back through the results store.
pub fn summaries(
    data: &Path,
    run_id: unistore_core::RunId,
    workers: &[&str],
) -> (unistore_core::RunSummary, Vec<unistore_core::RunSummary>) {
    runtime().block_on(async {
        let store = unistore_adapters::open_results(&results_url(data)).await.unwrap();
        let parent = store.reader.summary(run_id, None).await.unwrap().expect("the run's own row");
        let mut parts = Vec::new();
        for w in workers {
            parts.push(
                store.reader.summary(run_id, Some(w)).await.unwrap().unwrap_or_else(|| panic!("{w}'s row")),
            );
        }
        (parent, parts)
    })
}

pub fn run_id_of(stderr: &str) -> unistore_core::RunId {
    let line =
        stderr.lines().find(|l| l.starts_with("run ")).unwrap_or_else(|| panic!("no run line in {stderr}"));
    line[4..].split(':').next().unwrap().trim().parse().unwrap()
}
