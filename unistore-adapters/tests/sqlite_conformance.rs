//! The SQLite backend against the shared conformance suites, plus SQLite-specific behaviour:
//! URL errors, a missing or foreign file, declared-type mismatches, the demo database, and
//! several control-store connections sharing one file.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod control_processes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection};
use tempfile::TempDir;
use unistore_adapters::sqlite::demo::{ensure_demo_database, DEMO_ROWS};
use unistore_adapters::{open_control, open_results, open_target, OpenedTarget, TargetOptions};
use unistore_core::model::{ControlEventKind, EventScope, RunStatusRecord};
use unistore_core::testkit::{self, FIXTURE_NOPK_TABLE, FIXTURE_ROWS, FIXTURE_TABLE};
use unistore_core::{ErrorKind, RunId, TableRef, TableType};

/// Creates the conformance fixture in a fresh database file (the DDL lives here, in the test,
/// never in the tool).
fn create_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.db");
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE {FIXTURE_TABLE} (
             id BIGINT PRIMARY KEY,
             name VARCHAR(64) NOT NULL,
             amount DOUBLE NOT NULL,
             created_at TIMESTAMP NOT NULL
         );
         CREATE TABLE {FIXTURE_NOPK_TABLE} (id BIGINT, name VARCHAR(64));"
    ))
    .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO {FIXTURE_TABLE} (id, name, amount, created_at) VALUES (?1, ?2, ?3, ?4)"
            ))
            .unwrap();
        for id in 1..=FIXTURE_ROWS {
            let (id, name, amount, created_at) = testkit::fixture_row(id);
            let at = created_at.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            insert.execute(params![id, name, amount, at]).unwrap();
        }
        let mut insert =
            tx.prepare(&format!("INSERT INTO {FIXTURE_NOPK_TABLE} (id, name) VALUES (?1, ?2)")).unwrap();
        for id in 1..=testkit::FIXTURE_NOPK_ROWS {
            insert.execute(params![id, format!("name-{id}")]).unwrap();
        }
    }
    tx.commit().unwrap();
    path
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn options(table: &str, declared_type: Option<TableType>) -> TargetOptions {
    TargetOptions::new(RunId::new(), TableRef::parse(table).unwrap(), declared_type)
}

async fn open_fixture() -> (TempDir, PathBuf, OpenedTarget) {
    let dir = tempfile::tempdir().unwrap();
    let path = create_fixture(dir.path());
    let target = open_target(&url(&path), &options(FIXTURE_TABLE, None)).await.unwrap();
    assert_eq!(target.kind, "sqlite");
    assert_eq!(target.manager.table_type(), TableType::Sqlite);
    (dir, path, target)
}

fn table(name: &str) -> TableRef {
    TableRef::parse(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_table_manager() {
    let (_dir, _path, target) = open_fixture().await;
    testkit::check_table_manager(
        target.manager.as_ref(),
        &table(FIXTURE_TABLE),
        &table(FIXTURE_NOPK_TABLE),
        &table("unistore_no_such_table"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_target_pool_leaves_the_file_as_it_was() {
    let (_dir, path, target) = open_fixture().await;
    testkit::check_target_pool(target.pool.clone(), target.manager.as_ref(), &table(FIXTURE_TABLE)).await;
    // The user's file keeps its journal mode and its rows (the inserted row was deleted again).
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "the tool changed the journal mode of the user's database");
    let count: i64 =
        conn.query_row(&format!("SELECT count(*) FROM {FIXTURE_TABLE}"), [], |r| r.get(0)).unwrap();
    assert_eq!(count, FIXTURE_ROWS);
    assert!(!path.with_extension("db-wal").exists(), "a WAL file appeared next to the user's database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_engine_counts() {
    let (_dir, _path, target) = open_fixture().await;
    let report = testkit::check_engine_counts(
        target.pool.clone(),
        target.manager.as_ref(),
        &table(FIXTURE_TABLE),
        Duration::from_secs(1),
    )
    .await;
    let window = report.window.as_secs_f64();
    assert!((0.9..1.5).contains(&window), "measured window {window} s for a 1 s run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_results_store() {
    let dir = tempfile::tempdir().unwrap();
    // The directory does not exist yet: the results store is the tool's own file and is created.
    let path = dir.path().join("nested").join("results.db");
    let store = open_results(&url(&path)).await.unwrap();
    testkit::check_results_store(store.sink.clone(), store.reader.clone()).await;
    assert!(path.exists());
    // Reopening keeps the data and applies the idempotent schema again without error.
    let again = open_results(&url(&path)).await.unwrap();
    assert!(!again.reader.runs(10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_control_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_control(&url(&dir.path().join("control.db"))).await.unwrap();
    testkit::check_control_store(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_and_results_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let shared = url(&dir.path().join("results.db"));
    let results = open_results(&shared).await.unwrap();
    let control = open_control(&shared).await.unwrap();
    testkit::check_control_store(control).await;
    testkit::check_results_store(results.sink.clone(), results.reader.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_control_stores_on_one_file_never_reuse_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let shared = url(&dir.path().join("control.db"));
    let a = open_control(&shared).await.unwrap();
    let b = open_control(&shared).await.unwrap();
    let record = RunStatusRecord::prepared(RunId::new(), "shared", 2);
    let run = record.run_id;
    a.create_run(&record).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..25 {
                let target = ControlEventKind::SetWorkerTarget { connections: t, target_qps: None };
                seqs.push(store.append_event(run, EventScope::Run, target).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    let from_b = b.run(run).await.unwrap().unwrap();
    assert_eq!(from_b.last_event_seq, 200);
    // The run's target is the one of the event with the highest sequence number.
    let events = a.events_since(run, 199).await.unwrap();
    assert_eq!(events.len(), 1);
    let ControlEventKind::SetWorkerTarget { connections, .. } = events[0].kind else {
        panic!("unexpected event {:?}", events[0]);
    };
    assert_eq!(from_b.target_connections, connections);
}

/// Three processes share the file: SQLite's write lock, not a lock in one process, keeps the
/// run's sequence numbers unique and without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_appending_to_one_run_get_every_sequence_number_once() {
    if control_processes::run_as_child().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    control_processes::check_processes_share_one_sequence(
        &url(&dir.path().join("control.db")),
        "three_processes_appending_to_one_run_get_every_sequence_number_once",
    )
    .await;
}

/// A control file made by the first version (other event and heartbeat columns, no VERSION)
/// is brought up to date when the store opens: runs keep their rows, the suite passes on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_control_file_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.db");
    let old = RunStatusRecord::prepared(RunId::new(), "old", 2);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE RUN_STATUS (RUN_ID TEXT NOT NULL PRIMARY KEY, TEMPLATE_NAME TEXT NOT NULL, \
             STATUS TEXT NOT NULL, PHASE TEXT NOT NULL, REASON TEXT, WORKER_COUNT INTEGER NOT NULL, \
             TARGET_CONNECTIONS INTEGER NOT NULL, TARGET_QPS REAL, LAST_EVENT_SEQ INTEGER NOT NULL DEFAULT 0, \
             CREATED_AT TEXT NOT NULL, UPDATED_AT TEXT NOT NULL);
             CREATE TABLE RUN_CONTROL_EVENTS (RUN_ID TEXT NOT NULL, SEQ INTEGER NOT NULL, \
             SCOPE_JSON TEXT NOT NULL, EVENT_JSON TEXT NOT NULL, EVENT_TYPE TEXT NOT NULL, \
             CREATED_AT TEXT NOT NULL, PRIMARY KEY (RUN_ID, SEQ));
             CREATE TABLE WORKER_HEARTBEATS (RUN_ID TEXT NOT NULL, WORKER_ID TEXT NOT NULL, \
             STATUS TEXT NOT NULL, PHASE TEXT NOT NULL, CONNECTIONS INTEGER NOT NULL, OPS INTEGER NOT NULL, \
             ERRORS INTEGER NOT NULL, LAST_ERROR TEXT, LAST_EVENT_SEQ INTEGER NOT NULL, BEAT_AT TEXT NOT NULL, \
             PRIMARY KEY (RUN_ID, WORKER_ID));",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO RUN_STATUS VALUES (?1, 'old', 'RUNNING', 'WARMUP', NULL, 2, 8, NULL, 3, \
             '2025-03-01T10:00:00.000000000Z', '2025-03-01T10:00:01.000000000Z')",
            params![old.run_id.to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO WORKER_HEARTBEATS VALUES (?1, 'w', 'RUNNING', 'WARMUP', 1, 2, 0, NULL, 3, \
             '2025-03-01T10:00:01.000000000Z')",
            params![old.run_id.to_string()],
        )
        .unwrap();
    }
    let store = open_control(&url(&path)).await.unwrap();
    let read = store.run(old.run_id).await.unwrap().expect("the old run is kept");
    assert_eq!(
        (read.template_name.as_str(), read.target_connections, read.last_event_seq, read.version),
        ("old", 8, 3, 0)
    );
    assert_eq!((read.template_json, read.load_start_at), (None, None));
    // The old run goes on: its next event is number 4.
    let e = store
        .append_event(old.run_id, EventScope::Run, ControlEventKind::Stop { reason: None })
        .await
        .unwrap();
    assert_eq!(e.seq, 4);
    assert!(store.heartbeats(old.run_id).await.unwrap().is_empty(), "old heartbeats are dropped");
    // Opening again (and from a second store) changes nothing more.
    let again = open_control(&url(&path)).await.unwrap();
    assert_eq!(again.run(old.run_id).await.unwrap().unwrap().last_event_seq, 4);
    testkit::check_control_store(again).await;
}

#[tokio::test]
async fn malformed_urls_are_rejected() {
    for bad in ["sqlite://", "sqlite:///", "sqlite:///tmp/x.db?mode=ro", "sqlite:///tmp/some-dir/"] {
        let e = open_target(bad, &options("t", None)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e}");
        assert!(e.to_string().contains("sqlite:///absolute/path/file.db"), "{bad}: {e}");
        let e = open_results(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e}");
    }
}

#[tokio::test]
async fn a_missing_database_file_is_not_found_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent").join("user.db");
    let e = open_target(&url(&missing), &options("t", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&missing.display().to_string()), "the error does not name the file: {e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!missing.exists(), "the tool created the user's database file");
    assert!(!missing.parent().unwrap().exists(), "the tool created the user's directory");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, b"this is a text file, not a database, padded to a page or so ....").unwrap();
    let e = open_target(&url(&path), &options("t", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
}

#[tokio::test]
async fn a_declared_type_other_than_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_fixture(dir.path());
    let e = open_target(&url(&path), &options(FIXTURE_TABLE, Some(TableType::Hybrid))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let message = e.to_string();
    assert!(message.contains("hybrid"), "{message}");
    assert!(message.contains("--table-type sqlite"), "{message}");
    open_target(&url(&path), &options(FIXTURE_TABLE, Some(TableType::Sqlite))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_database_is_created_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("demo.db");
    let demo = tokio::task::spawn_blocking({
        let path = path.clone();
        move || ensure_demo_database(&path)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(demo.created);
    assert_eq!(demo.rows, DEMO_ROWS);
    assert_eq!(demo.rows, 100_000);
    assert_eq!(demo.table, "demo_orders");
    assert_eq!(demo.path, path);

    let again = ensure_demo_database(&path).unwrap();
    assert!(!again.created, "the second call must find the existing database");
    assert_eq!(again.rows, 100_000);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["demo.db".to_string()], "temporary files were left behind");

    // The demo is an ordinary SQLite target: profile it through the registry.
    let target = open_target(&demo.url(), &options("demo_orders", None)).await.unwrap();
    let profile = target.manager.profile(&table("demo_orders")).await.unwrap();
    assert_eq!(profile.primary_key, vec!["id".to_string()]);
    assert_eq!(profile.row_estimate, 100_000);
    assert_eq!(profile.key_range, Some((1, 100_000)));
    assert_eq!(profile.time_column.as_deref(), Some("created_at"));
    assert_eq!(profile.indexes, vec!["demo_orders_customer_id".to_string()]);
    let id = profile.column("id").unwrap();
    assert!(id.has_default, "INTEGER PRIMARY KEY is the rowid, which SQLite fills");

    // Deterministic content: the same rows on every machine.
    let conn = Connection::open(&path).unwrap();
    let (customers, first_at): (i64, String) = conn
        .query_row(
            "SELECT count(DISTINCT customer_id), (SELECT created_at FROM demo_orders WHERE id = 1) \
             FROM demo_orders",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(customers > 4_000, "customer ids should spread over 5,000 values, got {customers}");
    assert_eq!(first_at, "2024-01-01 00:01:00.000000");
}

#[tokio::test]
async fn an_existing_file_without_the_demo_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_fixture(dir.path());
    let e = ensure_demo_database(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("demo_orders"), "{e}");
}

#[tokio::test]
async fn tables_outside_the_file_are_refused() {
    let (_dir, _path, target) = open_fixture().await;
    let three_parts = TableRef::parse(&format!("db.main.{FIXTURE_TABLE}")).unwrap();
    let e = target.manager.profile(&three_parts).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = target.manager.profile(&table(&format!("other.{FIXTURE_TABLE}"))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // Explicit `main` and any spelling of the name resolve to the same table.
    let profile = target.manager.profile(&table("MAIN.Unistore_Conformance")).await.unwrap();
    assert_eq!(profile.table.name, FIXTURE_TABLE);
    assert_eq!(profile.row_estimate, FIXTURE_ROWS as u64);
}

/// Threads of one process creating the demo database at once (the controller's template page
/// lists the tables and previews the statements together) all get it: each builds under a
/// temporary name of its own. With one temporary name per process, one thread removed the
/// file another was writing ("disk I/O error" on the page).
#[test]
fn threads_creating_the_demo_database_at_once_all_get_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("demo.db");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| ensure_demo_database(&path))).collect();
        handles.into_iter().map(|h| h.join().expect("a creating thread panicked")).collect()
    });
    for r in &results {
        let demo = r.as_ref().unwrap_or_else(|e| panic!("creating the demo database at once failed: {e}"));
        assert_eq!(demo.rows, DEMO_ROWS);
    }
    assert!(results.iter().filter_map(|r| r.as_ref().ok()).any(|d| d.created), "one of them created it");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["demo.db".to_string()], "temporary files were left behind");
}
