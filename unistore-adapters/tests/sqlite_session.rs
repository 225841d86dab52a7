//! SQLite sessions in detail: how values are bound, how rows are counted, and how SQLite's
//! errors are classified.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use unistore_adapters::{open_target, OpenedTarget, TargetOptions};
use unistore_core::target::{ParamRole, ParamSpec};
use unistore_core::{ColumnType, ErrorKind, QueryKind, RunId, StatementSpec, TableRef, TargetSession, Value};

fn create_db(dir: &Path) -> PathBuf {
    let path = dir.join("kinds.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE kinds (id INTEGER PRIMARY KEY, flag BOOLEAN, at TIMESTAMP, note TEXT, \
         x REAL, n INTEGER);
         INSERT INTO kinds (id, note) VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    )
    .unwrap();
    path
}

async fn open(path: &Path) -> OpenedTarget {
    let options = TargetOptions::new(RunId::new(), TableRef::parse("kinds").unwrap(), None);
    open_target(&format!("sqlite://{}", path.display()), &options).await.unwrap()
}

fn spec(sql: &str, params: usize) -> StatementSpec {
    StatementSpec {
        kind: QueryKind::CustomSql,
        sql: sql.to_string(),
        params: (0..params)
            .map(|i| ParamSpec {
                column: String::new(),
                column_type: ColumnType::Integer,
                role: ParamRole::Custom(i),
            })
            .collect(),
        returning: None,
    }
}

async fn session(target: &OpenedTarget, statements: &[StatementSpec]) -> Box<dyn TargetSession> {
    let mut s = target.pool.connect().await.unwrap();
    s.prepare(statements).await.unwrap();
    s
}

#[tokio::test]
async fn values_are_bound_as_sqlite_stores_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path());
    let target = open(&path).await;
    let insert = spec("INSERT INTO kinds (id, flag, at, note, x, n) VALUES (?, ?, ?, ?, ?, ?)", 6);
    let select = spec("SELECT * FROM kinds WHERE id >= ?", 1);
    let mut s = session(&target, &[insert, select]).await;
    let at = chrono::DateTime::parse_from_rfc3339("2024-06-01T12:34:56.789012Z").unwrap();
    let params = [
        Value::Int(10),
        Value::Bool(true),
        Value::Timestamp(at.timestamp_micros()),
        Value::text("ten"),
        Value::Float(2.5),
        Value::Null,
    ];
    assert_eq!(s.execute(0, &params).await.unwrap(), 1);
    assert_eq!(s.execute(1, &[Value::Int(1)]).await.unwrap(), 4, "rows read by a SELECT");
    assert_eq!(s.execute(1, &[Value::Int(3)]).await.unwrap(), 2);
    assert_eq!(s.execute(1, &[Value::Int(11)]).await.unwrap(), 0);

    let conn = Connection::open(&path).unwrap();
    let row: (i64, String, String, String, f64, String) = conn
        .query_row("SELECT flag, typeof(flag), at, note, x, typeof(n) FROM kinds WHERE id = 10", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap();
    assert_eq!(
        row,
        (1, "integer".into(), "2024-06-01 12:34:56.789012".into(), "ten".into(), 2.5, "null".into())
    );
}

#[tokio::test]
async fn writes_return_the_rows_they_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path());
    let target = open(&path).await;
    let update = spec("UPDATE kinds SET n = ? WHERE id <= ?", 2);
    let delete = spec("DELETE FROM kinds WHERE id = ?", 1);
    let mut s = session(&target, &[update, delete]).await;
    assert_eq!(s.execute(0, &[Value::Int(5), Value::Int(2)]).await.unwrap(), 2);
    assert_eq!(s.execute(0, &[Value::Int(5), Value::Int(0)]).await.unwrap(), 0);
    assert_eq!(s.execute(1, &[Value::Int(3)]).await.unwrap(), 1);
    assert_eq!(s.execute(1, &[Value::Int(3)]).await.unwrap(), 0);
}

#[tokio::test]
async fn errors_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let target = open(&create_db(dir.path())).await;
    let cases = [
        ("SELEC * FROM kinds", 0, ErrorKind::Syntax),
        ("SELECT * FROM nowhere", 0, ErrorKind::NotFound),
        ("SELECT missing_column FROM kinds", 0, ErrorKind::NotFound),
        ("SELECT * FROM kinds WHERE id = ?", 2, ErrorKind::InvalidInput),
    ];
    for (sql, params, kind) in cases {
        let mut s = target.pool.connect().await.unwrap();
        let e = s.prepare(&[spec(sql, params)]).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{sql}: {e}");
    }
    let mut s = session(&target, &[spec("INSERT INTO kinds (id) VALUES (?)", 1)]).await;
    let e = s.execute(0, &[Value::Int(1)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Constraint, "{e}");
    assert_eq!(e.code(), Some("1555"), "SQLite's extended code (SQLITE_CONSTRAINT_PRIMARYKEY) is kept: {e}");
    let driver = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<rusqlite::Error>())
        .expect("the rusqlite error as source");
    assert_eq!(driver.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation), "{driver:?}");
    let e = s.execute(0, &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "wrong parameter count: {e}");
    let e = s.execute(1, &[Value::Int(1)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "unprepared statement: {e}");
    // Still usable after every error.
    assert_eq!(s.execute(0, &[Value::Int(4)]).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_a_conflict_after_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path());
    let target = open(&path).await;
    let mut s = session(&target, &[spec("UPDATE kinds SET n = ? WHERE id = 1", 1)]).await;
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE; UPDATE kinds SET n = 0 WHERE id = 2;").unwrap();
    let started = Instant::now();
    let e = s.execute(0, &[Value::Int(9)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(started.elapsed() >= Duration::from_secs(4), "gave up after {:?}", started.elapsed());
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.execute(0, &[Value::Int(9)]).await.unwrap(), 1, "works once the lock is gone");
}

#[tokio::test]
async fn sampled_values_keep_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let target = open(&create_db(dir.path())).await;
    let table = TableRef::parse("kinds").unwrap();
    let profile = target.manager.profile(&table).await.unwrap();
    let mut notes = target.manager.sample_values(&profile, "NOTE", 10).await.unwrap();
    notes.sort_by_key(|v| v.to_string());
    assert_eq!(notes, vec![Value::text("one"), Value::text("three"), Value::text("two")]);
    // Only non-null values are sampled.
    assert!(target.manager.sample_values(&profile, "x", 10).await.unwrap().is_empty());
    let e = target.manager.sample_values(&profile, "nope", 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let types: Vec<ColumnType> = profile.columns.iter().map(|c| c.column_type.clone()).collect();
    assert_eq!(
        types,
        vec![
            ColumnType::Integer,
            ColumnType::Boolean,
            ColumnType::Timestamp,
            ColumnType::Text,
            ColumnType::Float,
            ColumnType::Integer
        ]
    );
}

#[tokio::test]
async fn a_read_only_file_refuses_writes_with_a_permission_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path());
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("running with privileges that ignore file permissions: nothing to check");
        return;
    }
    let target = open(&path).await;
    let mut s = session(&target, &[spec("UPDATE kinds SET n = ? WHERE id = 1", 1)]).await;
    let e = s.execute(0, &[Value::Int(1)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
}
