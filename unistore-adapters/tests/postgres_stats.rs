//! Exact accounting against the server's own count: the engine's completed operations equal
//! the `pg_stat_statements.calls` delta of the benchmark statement, on a throwaway cluster
//! with the extension preloaded (started by `scripts/pg-test-server start-stats`).
#![cfg(feature = "postgres")]

mod postgres_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use postgres_support::{pg_url, StatsServer, TestSchema};
use unistore_adapters::postgres::{
    self, PostgresConfig, PostgresTableManager, PostgresTargetPool, ServerStats,
};
use unistore_core::table::RenderRequest;
use unistore_core::testkit::FIXTURE_TABLE;
use unistore_core::{
    Engine, EngineConfig, QueryKind, RunId, TableManager, TargetPool, Template, WorkerIdentity, WorkloadPlan,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_count_equals_pg_stat_statements_calls_exactly() {
    let server = StatsServer::start();
    let schema = TestSchema::create(&server.url).await;
    schema.load_fixture().await;
    let table = schema.table(FIXTURE_TABLE);

    let config = PostgresConfig::from_url(&server.url).expect("valid URL");
    let run_id = RunId::new();
    let pool = Arc::new(PostgresTargetPool::new(config.clone(), run_id));
    let manager = PostgresTableManager::connect(&config, None).await.expect("table manager");
    let profile = manager.profile(&table).await.expect("profiling the fixture");
    let template = Template::new(table.to_string(), BTreeMap::from([(QueryKind::PointLookup, 100)]));
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &template.values, custom_sql: None };
    let statement = manager.render(&profile, &request).expect("rendering a point lookup");
    let sql = statement.sql.clone();
    let keys = manager.sample_values(&profile, "id", 500).await.expect("sampling keys");
    assert_eq!(keys.len(), 500, "sampled keys");
    let plan = WorkloadPlan::build(
        &template,
        &profile,
        vec![statement],
        Some(keys),
        run_id,
        &WorkerIdentity::solo(),
    )
    .expect("workload plan");

    // The hooks the runner calls around the load (TargetPool::begin/finish_server_stats).
    pool.begin_server_stats().await.expect("first pg_stat_statements snapshot");
    let since = chrono::Utc::now();
    let engine_config = EngineConfig::new(run_id, 4, Duration::from_secs(2));
    let report = Engine::start(pool.clone(), Arc::new(plan), engine_config)
        .await
        .expect("starting the engine")
        .wait()
        .await
        .expect("engine run");
    let stored = pool
        .finish_server_stats(since)
        .await
        .expect("second snapshot")
        .expect("pg_stat_statements is available on the stats cluster");
    let stats: ServerStats = serde_json::from_value(stored).expect("server stats document");
    assert_eq!(stats.source, "pg_stat_statements");

    let errors: u64 = report.measured.values().map(|r| r.error_count()).sum();
    let measured: u64 = report.measured.values().map(|r| r.ops()).sum();
    assert_eq!(errors, 0, "errors: {:?}", report.error_examples);
    assert_eq!(report.abandoned_in_flight, 0);
    assert_eq!(measured + report.warmup_ops + report.cooldown_ops, report.completed_ops);
    let server_calls: u64 = stats.statements.iter().filter(|s| s.query == sql).map(|s| s.calls).sum();
    eprintln!(
        "engine completed {} operations ({} measured); pg_stat_statements counted {} calls of `{sql}`",
        report.completed_ops, measured, server_calls
    );
    assert!(
        report.completed_ops > 500,
        "too few operations to be a meaningful check: {}",
        report.completed_ops
    );
    assert_eq!(
        report.completed_ops, server_calls,
        "client and server disagree on the number of executions; statements seen: {:#?}",
        stats.statements
    );
    let benchmark = stats.statements.iter().find(|s| s.query == sql).expect("the benchmark statement");
    assert_eq!(benchmark.rows, server_calls, "every lookup of a sampled key returns one row");
    assert!(benchmark.mean_exec_time_ms > 0.0);
}

#[tokio::test]
async fn stats_are_absent_without_pg_stat_statements() {
    // The machine's main cluster does not preload the extension.
    let config = PostgresConfig::from_url(&pg_url()).expect("valid URL");
    let client = config.connect("unistore-test").await.expect("connecting");
    let preloaded: String = client
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
        .expect("reading a setting")
        .get(0);
    if preloaded.contains("pg_stat_statements") {
        eprintln!("the main cluster preloads pg_stat_statements: nothing to check");
        return;
    }
    let snapshot = postgres::pg_stat_statements_snapshot(&client).await.expect("no error when absent");
    assert_eq!(snapshot, None);
    let pool = PostgresTargetPool::new(config, RunId::new());
    let before = pool.server_stats_before().await.expect("no error when absent");
    assert!(before.is_none());
    assert_eq!(pool.server_stats_after(before).await.expect("no error"), None);
    pool.begin_server_stats().await.expect("no error when absent");
    assert_eq!(pool.finish_server_stats(chrono::Utc::now()).await.expect("no error"), None);
}
