//! Nothing hangs: a server that accepts connections but never answers, a TLS handshake that
//! stalls, a table locked by another session while statements are prepared or the table is
//! profiled, and statements that outlive the load's statement timeout. Each fails within its
//! bound with `ErrorKind::Timeout` and a message that names the host and what stalled.
#![cfg(feature = "postgres")]

mod postgres_support;

use std::time::{Duration, Instant};

use postgres_support::{connect, pg_url, waiting_on_a_lock, TestSchema};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use unistore_adapters::postgres::{PostgresConfig, PostgresTableManager, PostgresTargetPool};
use unistore_adapters::TargetOptions;
use unistore_core::target::{ParamRole, ParamSpec};
use unistore_core::{
    ColumnType, ErrorKind, QueryKind, RunId, StatementSpec, TableManager, TableRef, TargetPool,
};

/// A TCP server that accepts every connection and then says nothing (`answer_tls`: answers
/// `S` to a TLS request first, then nothing). Sockets stay open until the test ends.
async fn silent_server(answer_tls: bool) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if answer_tls {
                let mut request = [0u8; 8];
                if socket.read_exact(&mut request).await.is_ok() {
                    let _ = socket.write_all(b"S").await;
                }
            }
            held.push(socket);
        }
    });
    port
}

/// Runs `f`, failing the test if it takes longer than `limit` (the defect was a hang).
async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(v) => (v, started.elapsed()),
        Err(_) => panic!("still waiting after {limit:?}: it hangs"),
    }
}

fn options(connect_timeout: Duration) -> TargetOptions {
    let mut options =
        TargetOptions::new(RunId::new(), TableRef::parse("public.t").expect("table name"), None);
    options.connect_timeout = connect_timeout;
    options
}

fn custom(sql: &str, params: &[ColumnType]) -> StatementSpec {
    StatementSpec {
        kind: QueryKind::CustomSql,
        sql: sql.to_string(),
        params: params
            .iter()
            .enumerate()
            .map(|(i, t)| ParamSpec {
                column: String::new(),
                column_type: t.clone(),
                role: ParamRole::Custom(i),
            })
            .collect(),
        returning: None,
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_host_and_phase() {
    let port = silent_server(false).await;
    let url = format!("postgres://bob:hunter2@127.0.0.1:{port}/db");
    let config = PostgresConfig::from_url(&url)
        .expect("valid URL")
        .with_default_connect_timeout(Duration::from_secs(1));
    let pool = PostgresTargetPool::new(config, RunId::new());
    let (result, took) = within(Duration::from_secs(8), pool.connect()).await;
    let e = result.err().expect("a silent server");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "connecting to 127.0.0.1:{port} timed out after 1 s: the server accepted the TCP connection but did not answer"
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2") && !format!("{e:?}").contains("hunter2"), "{text}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn opening_a_target_or_a_store_on_a_silent_server_does_not_hang() {
    let port = silent_server(false).await;
    // The options' connect timeout (what the bench command passes) bounds profiling's connection.
    let url = format!("postgres://bob:hunter2@127.0.0.1:{port}/db");
    let (result, took) = within(
        Duration::from_secs(8),
        unistore_adapters::open_target(&url, &options(Duration::from_secs(1))),
    )
    .await;
    let e = result.expect_err("a silent server");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // connect_timeout in the URL wins over the options' value.
    let url = format!("postgres://bob@127.0.0.1:{port}/db?connect_timeout=1");
    let (result, took) = within(
        Duration::from_secs(8),
        unistore_adapters::open_target(&url, &options(Duration::from_secs(30))),
    )
    .await;
    let e = result.expect_err("a silent server");
    assert!(e.to_string().contains("timed out after 1 s"), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");

    let (result, _) = within(Duration::from_secs(8), unistore_adapters::open_results(&url)).await;
    assert_eq!(result.expect_err("a silent results store").kind(), ErrorKind::Timeout);
    let (result, _) = within(Duration::from_secs(8), unistore_adapters::open_control(&url)).await;
    assert_eq!(result.expect_err("a silent control store").kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_named() {
    let port = silent_server(true).await;
    let url = format!("postgres://bob@127.0.0.1:{port}/db?sslmode=require&connect_timeout=1");
    let config = PostgresConfig::from_url(&url).expect("valid URL");
    let (result, _) = within(Duration::from_secs(8), config.connect("unistore-test")).await;
    let e = result.expect_err("a stalled handshake");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("the TLS handshake did not complete"), "{e}");
}

#[tokio::test]
async fn the_statement_timeout_is_the_servers_and_counts_as_timeout() {
    let config = PostgresConfig::from_url(&pg_url()).expect("valid URL");
    let pool = PostgresTargetPool::new(config, RunId::new())
        .with_statement_timeout(Some(Duration::from_millis(300)));
    let mut session = pool.connect().await.expect("session");
    session
        .prepare(&[
            custom("SELECT 1 WHERE current_setting('statement_timeout') = '300ms'", &[]),
            custom("SELECT pg_sleep(5)", &[]),
        ])
        .await
        .expect("prepare");
    assert_eq!(
        session.execute(0, &[]).await.expect("setting"),
        1,
        "the session's statement_timeout is 300ms"
    );
    let (result, took) = within(Duration::from_secs(4), session.execute(1, &[])).await;
    let e = result.expect_err("the server cancels pg_sleep(5)");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("statement timeout (300 ms)"), "{e}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The session stays usable after a statement timeout.
    assert_eq!(session.execute(0, &[]).await.expect("next statement"), 1);
}

#[tokio::test]
async fn a_cancel_the_run_asked_for_is_not_a_timeout() {
    let config = PostgresConfig::from_url(&pg_url()).expect("valid URL");
    let pool =
        PostgresTargetPool::new(config, RunId::new()).with_statement_timeout(Some(Duration::from_secs(30)));
    let mut session = pool.connect().await.expect("session");
    session.prepare(&[custom("SELECT pg_sleep(10)", &[])]).await.expect("prepare");
    let running = tokio::spawn(async move { session.execute(0, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool.cancel_in_flight().await.expect("cancel"), 1);
    let (result, _) = within(Duration::from_secs(5), running).await;
    let e = result.expect("task").expect_err("cancelled");
    assert_eq!(e.kind(), ErrorKind::Other, "{e}");
    assert!(e.to_string().contains("cancelled: the run stopped"), "{e}");
}

/// An ACCESS EXCLUSIVE lock on a table (as a migration would take), held by a connection on
/// a thread and runtime of its own until dropped. Its own runtime: the test schema's guard
/// blocks the test's runtime while it drops the schema, which needs this lock released.
struct TableLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TableLock {
    fn take(url: &str, table: &str) -> TableLock {
        let (url, sql) = (url.to_string(), format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"));
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let locker = connect(&url).await;
                locker.batch_execute(&sql).await.expect("lock");
                let _ = locked_tx.send(());
                let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
                let _ = locker.batch_execute("ROLLBACK").await;
            });
        });
        locked_rx.recv().expect("the lock was taken");
        TableLock { release: Some(release_tx), thread: Some(thread) }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn preparing_on_a_locked_table_times_out_and_is_cancelled_on_the_server() {
    let schema = TestSchema::create(&pg_url()).await;
    let table = format!("{}.locked", schema.name);
    connect(&schema.url)
        .await
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
        .await
        .expect("DDL");
    let _lock = TableLock::take(&schema.url, &table);
    let config = PostgresConfig::from_url(&schema.url)
        .expect("valid URL")
        .with_default_connect_timeout(Duration::from_secs(1));
    let pool = PostgresTargetPool::new(config, RunId::new());
    let application_name = pool.application_name().to_string();
    let mut session = pool.connect().await.expect("session");
    let lookup = custom(&format!("SELECT id FROM {table} WHERE id = $1"), &[ColumnType::Integer]);
    let (result, took) = within(Duration::from_secs(8), session.prepare(&[lookup])).await;
    let e = result.expect_err("the table is locked");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("pg_locks") && e.to_string().contains("1 s"), "{e}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // The server no longer waits on the lock for us.
    let waiting = waiting_on_a_lock(&application_name).await;
    assert_eq!(waiting, 0, "the stalled prepare was cancelled on the server");
}

#[tokio::test]
async fn profiling_and_sampling_a_locked_table_time_out() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let table = schema.table(unistore_core::testkit::FIXTURE_TABLE);
    let config = PostgresConfig::from_url(&schema.url).expect("valid URL");
    let manager =
        PostgresTableManager::connect_with_catalog_timeout(&config, None, Duration::from_millis(700))
            .await
            .expect("table manager");
    let profile = manager.profile(&table).await.expect("profile before the lock");
    let _lock = TableLock::take(&schema.url, &table.to_string());

    let (result, took) = within(Duration::from_secs(10), manager.profile(&table)).await;
    let e = result.expect_err("locked table");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("pg_locks") && e.to_string().contains("700 ms"), "{e}");
    assert!(took < Duration::from_secs(4), "took {took:?}");

    let (result, _) = within(Duration::from_secs(10), manager.sample_values(&profile, "id", 50)).await;
    let e = result.expect_err("locked table");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
}
