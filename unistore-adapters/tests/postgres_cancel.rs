//! Stopping a run whose statements outlive the stop deadline cancels them on the server: no
//! query of the run is left running, and the cancelled operations are counted, not lost.
#![cfg(feature = "postgres")]

mod postgres_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres_support::{pg_url, sessions_still};
use unistore_adapters::postgres::{PostgresConfig, PostgresTargetPool};
use unistore_core::table::TableProfile;
use unistore_core::template::CustomSql;
use unistore_core::{
    Engine, EngineConfig, ErrorKind, QueryKind, RunId, StatementSpec, TableRef, TableType, Template,
    WorkerIdentity, WorkloadPlan,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_running_at_the_stop_deadline_are_cancelled_server_side() {
    let url = pg_url();
    let run_id = RunId::new();
    let pool = Arc::new(PostgresTargetPool::new(PostgresConfig::from_url(&url).expect("url"), run_id));
    let application_name = pool.application_name().to_string();

    let mut mix = BTreeMap::new();
    mix.insert(QueryKind::CustomSql, 100);
    let mut template = Template::new("none", mix);
    template.custom_sql = vec![CustomSql::new("SELECT pg_sleep(60)", vec![])];
    let profile = TableProfile {
        table: TableRef::parse("none").expect("name"),
        table_type: TableType::Postgres,
        columns: vec![],
        primary_key: vec![],
        row_estimate: 0,
        key_range: None,
        time_column: None,
        indexes: vec![],
        triggers: Vec::new(),
        foreign_keys: Vec::new(),
    };
    let statements = vec![StatementSpec {
        kind: QueryKind::CustomSql,
        sql: "SELECT pg_sleep(60)".into(),
        params: vec![],
        returning: None,
    }];
    let plan = WorkloadPlan::build(&template, &profile, statements, None, run_id, &WorkerIdentity::solo())
        .expect("plan");
    let mut config = EngineConfig::new(run_id, 2, Duration::from_millis(300));
    config.stop_deadline = Duration::from_millis(300);

    let t0 = Instant::now();
    let report = Engine::start(pool, Arc::new(plan), config).await.expect("start").wait().await.expect("run");
    assert!(t0.elapsed() < Duration::from_secs(10), "the stop did not wait for pg_sleep(60)");
    assert_eq!(report.abandoned_in_flight, 0, "cancelled statements return and are counted");
    assert_eq!(report.completed_ops, 2);
    // SQLSTATE 57014 either way; a cancel the run asked for is not a statement timeout.
    let cancelled = report.error_examples.get(&ErrorKind::Other).map(String::as_str).unwrap_or_default();
    assert!(cancelled.contains("cancelled: the run stopped"), "{:?}", report.error_examples);
    assert!(!report.error_examples.contains_key(&ErrorKind::Timeout), "{:?}", report.error_examples);
    let active = sessions_still(&application_name, "state = 'active'").await;
    assert_eq!(active, 0, "no statement of the run is still running on the server");
}
