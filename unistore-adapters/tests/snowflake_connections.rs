//! How the Snowflake target uses the network, checked on the wire through a small counting TCP
//! proxy in front of the emulator: kept-alive connections (one per benchmark session, not one
//! per query), a counted retry when the server closes a kept-alive connection, and timeouts
//! against a server that accepts connections but never answers.

#![cfg(feature = "snowflake")]

mod snowflake_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snowflake_support::proxy::{upstream_of, with_host, CountingProxy, SilentServer};
use snowflake_support::{emulator_url, fresh_schema, standard_fixture, url_with_schema};
use unistore_adapters::snowflake::{execute_statements, query_text, SnowflakeConfig, SnowflakeTargetPool};
use unistore_adapters::{open_target, OpenedTarget, TargetOptions};
use unistore_core::table::RenderRequest;
use unistore_core::testkit::FIXTURE_TABLE;
use unistore_core::{
    Engine, EngineConfig, EngineReport, ErrorKind, QueryKind, RunId, StatementSpec, TableManager, TableRef,
    TargetPool, Template, Value, WorkerIdentity, WorkloadPlan,
};

/// The emulator is one process: the tests of this file take turns.
static EMULATOR_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn table(name: &str) -> TableRef {
    TableRef::parse(name).expect("valid table name")
}

fn options(name: &str) -> TargetOptions {
    TargetOptions::new(RunId::new(), table(name), None)
}

fn with_param(url: &str, param: &str) -> String {
    format!("{url}{}{param}", if url.contains('?') { "&" } else { "?" })
}

/// The connection figures the target stores with the run (`server_stats.client`).
async fn client_figures(pool: &dyn TargetPool) -> serde_json::Value {
    let stats = pool
        .finish_server_stats(chrono::Utc::now() - chrono::Duration::minutes(1))
        .await
        .expect("server-side figures")
        .expect("the Snowflake target reports figures");
    stats.get("client").cloned().unwrap_or_else(|| panic!("no client figures in {stats}"))
}

fn figure(figures: &serde_json::Value, name: &str) -> u64 {
    figures.get(name).and_then(serde_json::Value::as_u64).unwrap_or_else(|| panic!("no {name} in {figures}"))
}

/// Closed-loop point lookups on the fixture table for `duration`.
async fn point_lookup_run(opened: &OpenedTarget, connections: u32, duration: Duration) -> EngineReport {
    let manager = opened.manager.clone();
    let profile = manager.profile(&table(FIXTURE_TABLE)).await.expect("profiling");
    let template = Template::new(FIXTURE_TABLE, BTreeMap::from([(QueryKind::PointLookup, 100)]));
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &template.values, custom_sql: None };
    let statement = manager.render(&profile, &request).expect("rendering a point lookup");
    let key = profile.key_column(None).expect("a key column").name.clone();
    let keys = manager.sample_values(&profile, &key, 100).await.expect("sampling keys");
    let run_id = RunId::new();
    let plan = WorkloadPlan::build(
        &template,
        &profile,
        vec![statement],
        Some(keys),
        run_id,
        &WorkerIdentity::solo(),
    )
    .expect("building the plan");
    let config = EngineConfig::new(run_id, connections, duration);
    Engine::start(opened.pool.clone(), Arc::new(plan), config)
        .await
        .expect("start")
        .wait()
        .await
        .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_lookup_run_opens_one_connection_per_session_not_one_per_query() {
    let _turn = EMULATOR_TURN.lock().await;
    const CONNECTIONS: u32 = 4;
    let url = standard_fixture("keepalive").await;
    let proxy = CountingProxy::start(upstream_of(&url)).await;
    let opened = open_target(&with_host(&url, &proxy.base_url()), &options(FIXTURE_TABLE))
        .await
        .expect("opening the target through the proxy");
    let report = point_lookup_run(&opened, CONNECTIONS, Duration::from_secs(2)).await;
    let opened_connections = proxy.accepted();
    let ops = report.completed_ops;
    eprintln!("{ops} point lookups over {CONNECTIONS} sessions opened {opened_connections} TCP connections");
    assert!(report.error_examples.is_empty(), "errors: {:?}", report.error_examples);
    assert!(ops >= 40, "too few operations to tell connection reuse from none: {ops}");
    // Each benchmark session logs in and queries over kept-alive connections; the table
    // manager's catalog sessions (detection, profiling, sampling) need one or two more. A
    // request that finds no idle connection (its session's previous answer is still being
    // wound up on the connection's own task, or the logins start together) opens one while it
    // waits, and keeps the other as a spare: at most one spare per session, never one per query.
    let allowed = 2 * u64::from(CONNECTIONS) + 2;
    assert!(
        opened_connections <= allowed,
        "{opened_connections} TCP connections (at most {allowed} expected) for {ops} point lookups over \
         {CONNECTIONS} sessions: connections are not reused"
    );

    // The figures stored with the run count the same connections as the proxy did.
    let figures = client_figures(opened.pool.as_ref()).await;
    assert_eq!(figure(&figures, "connections_opened"), opened_connections, "{figures}");
    assert_eq!(figure(&figures, "reconnect_retries"), 0, "{figures}");
    assert!(figure(&figures, "requests") > ops, "logins and lookups are requests: {figures}");
}

fn select_one() -> StatementSpec {
    StatementSpec::new(QueryKind::CustomSql, "SELECT 1", Vec::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_the_server_closed_is_retried_once_and_counted() {
    let _turn = EMULATOR_TURN.lock().await;
    let url = emulator_url();
    let proxy = CountingProxy::start(upstream_of(&url)).await;
    let config = SnowflakeConfig::from_url(&with_host(&url, &proxy.base_url())).expect("config");
    let pool = SnowflakeTargetPool::new(config, RunId::new());
    let mut session = pool.connect().await.expect("logging in");
    session.prepare(&[select_one()]).await.expect("preparing");
    for _ in 0..3 {
        assert_eq!(session.execute(0, &[]).await.expect("SELECT 1"), 1);
    }
    // One connection, or two when a request raced a connect against its previous answer.
    let kept = proxy.accepted();
    assert!(kept <= 2, "the login and three queries opened {kept} connections");

    // The server closes the kept-alive connection just as the next request goes out on it: the
    // request is sent again once, on another connection, and the retry is counted.
    proxy.close_on_next_request();
    assert_eq!(session.execute(0, &[]).await.expect("the query is sent again on another connection"), 1);
    for _ in 0..5 {
        assert_eq!(session.execute(0, &[]).await.expect("SELECT 1 after the retry"), 1);
    }
    let opened = proxy.accepted();
    assert!(opened <= kept + 2, "{opened} connections after the retry and five more queries");

    let figures = client_figures(&pool).await;
    assert_eq!(figure(&figures, "reconnect_retries"), 1, "{figures}");
    assert_eq!(
        figure(&figures, "connections_opened"),
        opened,
        "the client counts what the proxy saw: {figures}"
    );
    assert_eq!(
        figure(&figures, "requests"),
        10,
        "a login and nine queries, the retry not counted: {figures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_to_a_server_that_never_answers_times_out_naming_the_host_and_the_phase() {
    let silent = SilentServer::start().await;
    let url = with_host(&emulator_url(), &silent.base_url());
    let mut opts = options("anything");
    opts.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = match open_target(&url, &opts).await {
        Ok(o) => panic!("a server that never answers was opened: {o:?}"),
        Err(e) => e,
    };
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{message}");
    assert!(elapsed < Duration::from_secs(4), "the connect timeout of 1 s took {elapsed:?}");
    assert!(message.contains("logging in"), "the message does not name the phase: {message}");
    assert!(message.contains(&silent.host_port()), "the message does not name the host: {message}");
    assert!(message.contains("after 1 s"), "the message does not say how long it waited: {message}");
    assert!(!message.contains(":emulator@"), "the message leaks the URL's password: {message}");

    // The benchmark sessions and the tool's own statements are bounded the same way, with the
    // timeout from the URL.
    let url = with_param(&url, "connect_timeout_s=1");
    let pool = SnowflakeTargetPool::new(SnowflakeConfig::from_url(&url).expect("config"), RunId::new());
    let started = Instant::now();
    let err = pool.connect().await.map(|_| ()).expect_err("a benchmark session on a silent server");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("logging in"), "{err}");
    let err = query_text(&url, "SELECT 1").await.expect_err("a query on a silent server");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(6), "two timeouts of 1 s took {:?}", started.elapsed());
}

/// A fresh schema with a ten-row table `T`; returns its URL.
async fn tiny_table(tag: &str) -> String {
    let schema = fresh_schema(tag);
    let url = url_with_schema(&schema);
    let rows: Vec<String> = (1..=10).map(|i| format!("({i}, 'v-{i}')")).collect();
    execute_statements(
        &url,
        &[
            format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
            format!("USE SCHEMA UNISTORE_TEST.{schema}"),
            "CREATE TABLE T (id BIGINT PRIMARY KEY, v VARCHAR(16) NOT NULL)".into(),
            format!("INSERT INTO T VALUES {}", rows.join(", ")),
        ],
    )
    .await
    .expect("creating the table");
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_and_profiling_time_out_when_the_server_stops_answering() {
    let _turn = EMULATOR_TURN.lock().await;
    let url = tiny_table("stall").await;
    let proxy = CountingProxy::start(upstream_of(&url)).await;
    let via_proxy = with_param(&with_host(&url, &proxy.base_url()), "query_timeout_s=2");
    let mut opts = options("T");
    opts.statement_timeout = Some(Duration::from_secs(1));
    let opened = open_target(&via_proxy, &opts).await.expect("opening the target");
    let profile = opened.manager.profile(&table("T")).await.expect("profiling");
    let values = Default::default();
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &values, custom_sql: None };
    let spec = opened.manager.render(&profile, &request).expect("a point lookup");
    let mut session = opened.pool.connect().await.expect("logging in");
    session.prepare(&[spec]).await.expect("preparing");
    assert_eq!(session.execute(0, &[Value::Int(3)]).await.expect("a lookup"), 1);

    proxy.blackhole();
    let started = Instant::now();
    let err = session.execute(0, &[Value::Int(4)]).await.expect_err("a lookup the server never answers");
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(elapsed < Duration::from_secs(4), "a statement timeout of 1 s took {elapsed:?}");
    assert!(err.to_string().contains("timed out after"), "{err}");

    let started = Instant::now();
    let err =
        opened.manager.profile(&table("T")).await.expect_err("profiling on a server that never answers");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "query_timeout_s=2 took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_cancels_a_statement_that_outlives_the_statement_timeout() {
    let _turn = EMULATOR_TURN.lock().await;
    let url = tiny_table("stmt").await;
    let mut opts = options("T");
    opts.statement_timeout = Some(Duration::from_secs(1));
    let opened = open_target(&url, &opts).await.expect("opening the target");
    let mut session = opened.pool.connect().await.expect("logging in");
    let custom = |sql: &str| StatementSpec::new(QueryKind::CustomSql, sql, Vec::new());
    session.prepare(&[custom("SELECT SYSTEM$WAIT(5)"), select_one()]).await.expect("preparing");
    let started = Instant::now();
    let err = session.execute(0, &[]).await.expect_err("a statement longer than the statement timeout");
    let elapsed = started.elapsed();
    // The session carries STATEMENT_TIMEOUT_IN_SECONDS = 1: the server cancels the statement
    // (error 000630) before the client's own deadline.
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("000630"), "not the server's statement timeout: {err}");
    assert!(elapsed < Duration::from_secs(3), "a statement timeout of 1 s took {elapsed:?}");
    assert_eq!(session.execute(1, &[]).await.expect("the session still works"), 1);

    // The table manager's own sessions have no statement timeout.
    let (standard, _, _) = unistore_adapters::snowflake::table_managers(&url).expect("managers");
    let profile = standard.profile(&table("T")).await.expect("profiling");
    assert_eq!(profile.primary_key, vec!["ID".to_string()]);
}
