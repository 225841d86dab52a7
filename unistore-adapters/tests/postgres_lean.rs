//! A session over TCP runs its plain executes on its own hot path (the `lean` module), over TLS
//! and in plain; one kept on the driver's path (as over a Unix socket) runs them through the
//! driver: the same statements must count the same rows and fail with the same error (kind,
//! SQLSTATE, message) on all three.
#![cfg(feature = "postgres")]

mod postgres_support;

use std::time::{Duration, Instant};

use postgres_support::{connect, pg_url, waiting_on_a_lock, with_param, TestSchema};
use unistore_adapters::postgres::{PostgresConfig, PostgresTargetPool};
use unistore_core::{ErrorKind, QueryKind, RunId, StatementSpec, TargetPool, TargetSession};

/// Which way a session's plain executes go.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// Its own hot path, over TLS.
    TlsLean,
    /// Its own hot path, over plain TCP.
    PlainLean,
    /// The driver's (plain TCP).
    Driver,
}

const PATHS: [Path; 3] = [Path::TlsLean, Path::PlainLean, Path::Driver];

/// `case` on each path in turn, in the order of [`PATHS`].
async fn on_every_path<T, F: std::future::Future<Output = T>>(case: impl Fn(Path) -> F) -> [T; 3] {
    [case(Path::TlsLean).await, case(Path::PlainLean).await, case(Path::Driver).await]
}

fn pool_at(url: &str, path: Path, statement_timeout: Option<Duration>) -> PostgresTargetPool {
    let sslmode = match path {
        Path::TlsLean => "require",
        Path::PlainLean | Path::Driver => "disable",
    };
    let url = with_param(url, "sslmode", sslmode);
    PostgresTargetPool::new(PostgresConfig::from_url(&url).expect("valid URL"), RunId::new())
        .with_statement_timeout(statement_timeout)
        .with_own_hot_path(!matches!(path, Path::Driver))
}

fn pool(path: Path, statement_timeout: Option<Duration>) -> PostgresTargetPool {
    pool_at(&pg_url(), path, statement_timeout)
}

fn sql(text: &str) -> StatementSpec {
    StatementSpec { kind: QueryKind::CustomSql, sql: text.to_string(), params: Vec::new(), returning: None }
}

/// How an execute ended: the row count, or the error's kind, code and message.
fn outcome(result: unistore_core::Result<u64>) -> String {
    match result {
        Ok(rows) => format!("ok {rows}"),
        Err(e) => format!("{:?} {:?} {e}", e.kind(), e.code()),
    }
}

/// Statements prepared on the session's own path (named by it), seen from inside the session.
const LEAN_STATEMENTS: &str = "SELECT name FROM pg_prepared_statements WHERE name LIKE 'unistore_lean_%'";

async fn session(pool: &PostgresTargetPool, statements: &[StatementSpec]) -> Box<dyn TargetSession> {
    let mut session = pool.connect().await.expect("session");
    session.prepare(statements).await.expect("prepare");
    session
}

/// Runs the errors and counts of one path in a schema of its own (same table names on both).
async fn errors_and_counts(path: Path) -> Vec<String> {
    let schema = TestSchema::create(&pg_url()).await;
    let s = &schema.name;
    connect(&schema.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE {s}.lean_t (id int PRIMARY KEY);
             CREATE FUNCTION {s}.noisy(i int) RETURNS int LANGUAGE plpgsql AS
               $$ BEGIN RAISE NOTICE 'row %', i; RETURN i; END $$;"
        ))
        .await
        .expect("set-up SQL");
    let statements = [
        sql(LEAN_STATEMENTS),
        sql(&format!("INSERT INTO {s}.lean_t VALUES (1)")),
        sql("SELECT 1 / (g - 1) FROM generate_series(1, 1) g"),
        // Rows counted from the tag, then (leading comment) one by one, with a notice per row.
        sql(&format!("SELECT {s}.noisy(g) FROM generate_series(1, 3) g")),
        sql(&format!("/* rows */ SELECT {s}.noisy(g) FROM generate_series(1, 4) g")),
        sql("SELECT 1 WHERE false"),
    ];
    let pool = pool(path, None);
    let mut session = session(&pool, &statements).await;
    let mut seen = vec![format!("lean statements: {}", outcome(session.execute(0, &[]).await))];
    for (name, statement) in
        [("insert", 1), ("duplicate", 1), ("division", 2), ("tag", 3), ("rows", 4), ("none", 5)]
    {
        seen.push(format!("{name}: {}", outcome(session.execute(statement, &[]).await)));
    }
    // The session is still usable after the errors.
    seen.push(format!("after: {}", outcome(session.execute(3, &[]).await)));
    seen
}

#[tokio::test]
async fn errors_and_counts_are_the_same_on_every_path() {
    let [lean, plain, driver] = on_every_path(errors_and_counts).await;
    assert_eq!(lean[0], "lean statements: ok 6", "the TLS session prepared its own statements");
    assert_eq!(plain[0], "lean statements: ok 6", "the plain TCP session prepared its own statements");
    assert_eq!(driver[0], "lean statements: ok 0", "the driver's session stays on the driver");
    assert_eq!(lean[1..], plain[1..]);
    assert_eq!(lean[1..], driver[1..]);
    assert_eq!(lean[1], "insert: ok 1");
    assert!(
        lean[2].starts_with(
            "duplicate: Constraint Some(\"23505\") executing: duplicate key value violates unique constraint \"lean_t_pkey\" (SQLSTATE 23505); Key (id)=(1) already exists."
        ),
        "{}",
        lean[2]
    );
    assert_eq!(
        lean[3],
        "division: InvalidInput Some(\"22012\") executing: division by zero (SQLSTATE 22012)"
    );
    assert_eq!(lean[4..], ["tag: ok 3", "rows: ok 4", "none: ok 0", "after: ok 3"]);
}

/// A statement timeout, and a cancel the run asked for: 57014 both, told apart.
async fn timeout_and_cancel(path: Path) -> Vec<String> {
    let pool = pool(path, Some(Duration::from_millis(200)));
    let mut session = session(&pool, &[sql("SELECT pg_sleep(2)"), sql("SELECT pg_sleep(30)")]).await;
    let timed_out = outcome(session.execute(0, &[]).await);
    let canceller = pool.clone();
    let cancel = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        canceller.cancel_in_flight().await
    });
    // The timeout is the session's: a cancel at 50 ms comes first only if it is sent.
    let cancelled = outcome(session.execute(1, &[]).await);
    assert_eq!(cancel.await.expect("cancel task").expect("cancel sent"), 1);
    vec![timed_out, cancelled]
}

#[tokio::test]
async fn timeouts_and_cancels_are_told_apart_on_every_path() {
    let [lean, plain, driver] = on_every_path(timeout_and_cancel).await;
    assert_eq!(lean, plain);
    assert_eq!(lean, driver);
    assert_eq!(
        lean[0],
        "Timeout Some(\"57014\") the statement ran longer than the statement timeout (200 ms) and the \
         server cancelled it: canceling statement due to statement timeout (SQLSTATE 57014)"
    );
    assert_eq!(
        lean[1],
        "Other Some(\"57014\") cancelled: the run stopped while the statement was still running \
         (canceling statement due to user request (SQLSTATE 57014))"
    );
}

/// Terminates the backends of `application_name`; how many there were.
async fn terminate(application_name: String) -> u64 {
    connect(&pg_url())
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .expect("terminate")
}

/// The server ends the session (`pg_terminate_backend`) while it is idle, and while a
/// statement runs.
async fn terminated(path: Path) -> Vec<String> {
    let pool = pool(path, None);
    let mut seen = Vec::new();

    let mut idle = session(&pool, &[sql("SELECT 1")]).await;
    seen.push(outcome(idle.execute(0, &[]).await));
    assert_eq!(terminate(pool.application_name().to_string()).await, 1);
    // The backend says goodbye and hangs up; give its message time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    seen.push(outcome(idle.execute(0, &[]).await));
    seen.push(outcome(idle.execute(0, &[]).await));
    drop(idle);

    let mut busy = session(&pool, &[sql("SELECT pg_sleep(30)")]).await;
    let name = pool.application_name().to_string();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        terminate(name).await
    });
    seen.push(outcome(busy.execute(0, &[]).await));
    assert_eq!(killer.await.expect("terminate task"), 1);
    seen.push(outcome(busy.execute(0, &[]).await));
    seen
}

#[tokio::test]
async fn a_terminated_backend_is_a_lost_connection_on_every_path() {
    let [lean, plain, driver] = on_every_path(terminated).await;
    assert_eq!(lean, plain);
    assert_eq!(lean, driver);
    let lost = "Connect None executing: connection lost (connection closed)";
    assert_eq!(lean[..3], ["ok 1", lost, lost]);
    assert_eq!(
        lean[3],
        "Connect Some(\"57P01\") executing: terminating connection due to administrator command (SQLSTATE 57P01)"
    );
    assert_eq!(lean[4], lost);
}

/// A session that logged in on a TCP stream of its own has a cancel token that cannot open a
/// connection by itself: its cancels (the run's stop, a prepare that stalls on a lock) must
/// still reach the server.
#[tokio::test]
async fn cancels_reach_the_server_on_every_path() {
    for path in PATHS {
        let schema = TestSchema::create(&pg_url()).await;
        let table = format!("{}.locked", schema.name);
        let admin = connect(&schema.url).await;
        admin.batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY)")).await.expect("DDL");

        // A statement in flight, cancelled by the run.
        let pool = pool_at(&schema.url, path, None);
        let mut session = session(&pool, &[sql(LEAN_STATEMENTS), sql("SELECT pg_sleep(30)")]).await;
        let own = outcome(session.execute(0, &[]).await);
        assert_eq!(own == "ok 0", matches!(path, Path::Driver), "{path:?}: {own}");
        let canceller = pool.clone();
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            canceller.cancel_in_flight().await
        });
        let started = Instant::now();
        let cancelled = outcome(session.execute(1, &[]).await);
        assert_eq!(cancel.await.expect("cancel task").expect("cancel sent"), 1, "{path:?}");
        assert!(cancelled.starts_with("Other Some(\"57014\") cancelled"), "{path:?}: {cancelled}");
        assert!(started.elapsed() < Duration::from_secs(10), "{path:?}");
        drop(session);

        // A prepare stalled on a lock: the session gives up after the connect timeout and
        // cancels the server's wait too.
        let locker = connect(&schema.url).await;
        locker
            .batch_execute(&format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .await
            .expect("lock");
        let pool = pool_at(&with_param(&schema.url, "connect_timeout", "1"), path, None);
        let mut session = pool.connect().await.expect("session");
        let e = session
            .prepare(&[sql(&format!("SELECT id FROM {table} WHERE id = 1"))])
            .await
            .expect_err("the table is locked");
        assert_eq!(e.kind(), ErrorKind::Timeout, "{path:?}: {e}");
        assert_eq!(
            waiting_on_a_lock(pool.application_name()).await,
            0,
            "{path:?}: the stalled prepare was cancelled"
        );
        locker.batch_execute("ROLLBACK").await.expect("unlock");
    }
}

/// A proxy to the test server that answers `N` to every SSLRequest (as a server without TLS
/// does) and passes everything else on; the test server's URL pointed at it.
async fn proxy_declining_tls() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut url = url::Url::parse(&pg_url()).expect("test URL");
    let target = format!("{}:{}", url.host_str().expect("a TCP host"), url.port().unwrap_or(5432));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&target).await?;
                let mut first = [0u8; 8];
                client.read_exact(&mut first).await?;
                if first == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
                    client.write_all(b"N").await?;
                } else {
                    server.write_all(&first).await?;
                }
                tokio::io::copy_bidirectional(&mut client, &mut server).await.map(drop) as std::io::Result<()>
            });
        }
    });
    url.set_host(Some("127.0.0.1")).expect("host");
    url.set_port(Some(port)).expect("port");
    url.to_string()
}

/// `sslmode=prefer` where the server declines TLS: the session goes on in plain on the stream
/// it opened itself, and takes its own hot path there; its cancels reach the server.
#[tokio::test]
async fn prefer_declined_goes_on_in_plain_on_the_own_path() {
    let url = with_param(&proxy_declining_tls().await, "sslmode", "prefer");
    let pool = PostgresTargetPool::new(PostgresConfig::from_url(&url).expect("valid URL"), RunId::new());
    let encrypted = "SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl";
    let mut plain = session(&pool, &[sql(LEAN_STATEMENTS), sql(encrypted), sql("SELECT pg_sleep(30)")]).await;
    assert_eq!(outcome(plain.execute(0, &[]).await), "ok 3", "the session prepared its own statements");
    assert_eq!(outcome(plain.execute(1, &[]).await), "ok 0", "the server declined TLS: plain");
    let canceller = pool.clone();
    let cancel = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        canceller.cancel_in_flight().await
    });
    let cancelled = outcome(plain.execute(2, &[]).await);
    drop(plain);
    assert_eq!(cancel.await.expect("cancel task").expect("cancel sent"), 1);
    assert!(cancelled.starts_with("Other Some(\"57014\") cancelled"), "{cancelled}");

    // Where the server takes TLS, prefer takes the own path over TLS.
    let pool = PostgresTargetPool::new(
        PostgresConfig::from_url(&with_param(&pg_url(), "sslmode", "prefer")).expect("valid URL"),
        RunId::new(),
    );
    let mut tls = session(&pool, &[sql(LEAN_STATEMENTS), sql(encrypted)]).await;
    assert_eq!(outcome(tls.execute(0, &[]).await), "ok 2");
    assert_eq!(outcome(tls.execute(1, &[]).await), "ok 1", "the test server offers TLS");
}
