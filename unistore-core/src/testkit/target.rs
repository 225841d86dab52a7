//! Conformance checks for [`TableManager`] and [`TargetPool`], and an exact accounting check of
//! the engine against a real backend.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{fixture_row, FIXTURE_ROWS};
use crate::engine::{Engine, EngineConfig, EngineReport};
use crate::error::{ErrorKind, Result};
use crate::model::{QueryKind, RunId, TableRef, WorkerIdentity};
use crate::table::{RenderRequest, TableManager, TableProfile};
use crate::target::{ParamRole, ParamSpec, StatementSpec, TargetCapabilities, TargetPool, TargetSession};
use crate::template::{CustomSql, ParamGenerator, Template, ValueGeneration};
use crate::value::{ColumnType, Value};
use crate::workload::WorkloadPlan;

async fn profile_of(manager: &dyn TableManager, table: &TableRef) -> TableProfile {
    manager.profile(table).await.unwrap_or_else(|e| panic!("profiling {table} failed ({}): {e}", e.kind()))
}

/// Checks verification, profiling, sampling and rendering on the fixture: `table` is
/// [`super::FIXTURE_TABLE`], `nopk` is [`super::FIXTURE_NOPK_TABLE`], `missing` names a table
/// that does not exist.
pub async fn check_table_manager(
    manager: &dyn TableManager,
    table: &TableRef,
    nopk: &TableRef,
    missing: &TableRef,
) {
    let profile = profile_of(manager, table).await;
    assert_eq!(profile.table_type, manager.table_type(), "profile of {table} has the wrong table type");
    assert!(
        profile.table.name.eq_ignore_ascii_case(&table.name),
        "profile names table {} instead of {table}",
        profile.table
    );
    let expected = [
        ("id", ColumnType::Integer),
        ("name", ColumnType::Text),
        ("amount", ColumnType::Float),
        ("created_at", ColumnType::Timestamp),
    ];
    let names: Vec<&str> = profile.column_names();
    assert_eq!(profile.columns.len(), expected.len(), "columns of {table}: {names:?}");
    for (column, (name, column_type)) in profile.columns.iter().zip(expected.iter()) {
        assert!(column.name.eq_ignore_ascii_case(name), "expected column {name}, got {names:?}");
        assert_eq!(
            &column.column_type, column_type,
            "column {name} (native type {}) maps to the wrong type",
            column.native_type
        );
    }
    let by_name = |n: &str| profile.column(n).unwrap_or_else(|| panic!("column {n} missing"));
    assert!(!by_name("id").nullable, "the primary key column id is reported nullable");
    assert!(!by_name("name").nullable, "name is NOT NULL but reported nullable");
    if let Some(len) = by_name("name").max_length {
        assert_eq!(len, 64, "name is VARCHAR(64) but its max_length is {len}");
    }
    let pk: Vec<String> = profile.primary_key.iter().map(|c| c.to_ascii_lowercase()).collect();
    assert_eq!(pk, vec!["id".to_string()], "primary key of {table}");
    assert!(
        (500..=2000).contains(&profile.row_estimate),
        "row estimate {} of {table} is not near {FIXTURE_ROWS}",
        profile.row_estimate
    );
    assert_eq!(profile.key_range, Some((1, FIXTURE_ROWS)), "key range of {table}");
    assert!(
        profile.time_column.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("created_at")),
        "time column of {table} is {:?}, expected created_at",
        profile.time_column
    );

    let key = profile.key_column(None).expect("the fixture has a key column").name.clone();
    let sample = manager
        .sample_values(&profile, &key, 50)
        .await
        .unwrap_or_else(|e| panic!("sampling {key} of {table} failed: {e}"));
    assert_eq!(sample.len(), 50, "asked for 50 sampled keys, got {}", sample.len());
    let mut seen = HashSet::new();
    for v in &sample {
        let Value::Int(k) = v else { panic!("sampled key {v:?} is not an integer") };
        assert!((1..=FIXTURE_ROWS).contains(k), "sampled key {k} is not in 1..={FIXTURE_ROWS}");
        assert!(seen.insert(*k), "sampled key {k} appears twice: samples must be distinct");
    }

    let nopk_profile = profile_of(manager, nopk).await;
    assert!(
        nopk_profile.primary_key.is_empty(),
        "{nopk} has no primary key, but the profile reports {:?}",
        nopk_profile.primary_key
    );
    let values = ValueGeneration::default();
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &values, custom_sql: None };
    match manager.render(&nopk_profile, &request) {
        Ok(spec) => panic!("rendering a point lookup on {nopk} (no key) succeeded: {}", spec.sql),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "wrong error kind for a missing key: {e}");
            assert!(e.to_string().contains("primary key"), "the error does not mention the primary key: {e}");
        }
    }

    match manager.profile(missing).await {
        Ok(p) => panic!("profiling the missing table {missing} succeeded: {p:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "missing table {missing}: {e}"),
    }
}

/// A parameter value for the fixture row `key`: the same values the fixture holds, so an
/// update writes what is already there and inserted rows look like fixture rows.
fn fixture_value(param: &ParamSpec, key: i64) -> Value {
    let (_, name, amount, created_at) = fixture_row(key);
    match &param.role {
        ParamRole::Key | ParamRole::NewKey | ParamRole::Custom(_) => Value::Int(key),
        ParamRole::KeyUpperBound { width } => Value::Int(key + i64::from(*width)),
        ParamRole::ColumnValue => match param.column.to_ascii_lowercase().as_str() {
            "name" => Value::text(name),
            "amount" => Value::Float(amount),
            "created_at" => Value::Timestamp(created_at.timestamp_micros()),
            _ => match &param.column_type {
                ColumnType::Integer => Value::Int(key),
                ColumnType::Float | ColumnType::Decimal => Value::Float(amount),
                ColumnType::Boolean => Value::Bool(true),
                ColumnType::Timestamp | ColumnType::Date => Value::Timestamp(created_at.timestamp_micros()),
                _ => Value::text(name),
            },
        },
    }
}

fn params_for(spec: &StatementSpec, key: i64) -> Vec<Value> {
    spec.params.iter().map(|p| fixture_value(p, key)).collect()
}

async fn exec(session: &mut dyn TargetSession, index: usize, spec: &StatementSpec, key: i64) -> Result<u64> {
    session.execute(index, &params_for(spec, key)).await
}

async fn expect_rows(
    session: &mut dyn TargetSession,
    index: usize,
    spec: &StatementSpec,
    key: i64,
    rows: u64,
) {
    match exec(session, index, spec, key).await {
        Ok(n) => assert_eq!(n, rows, "{} with key {key} (`{}`)", spec.kind, spec.sql),
        Err(e) => panic!("{} with key {key} (`{}`) failed: {e}", spec.kind, spec.sql),
    }
}

/// Checks rendering, preparing and executing each query kind on one session, with exact row
/// counts. The row it inserts is deleted again, and the update writes the values the row
/// already has, so the fixture is unchanged afterwards.
pub async fn check_target_pool(pool: Arc<dyn TargetPool>, manager: &dyn TableManager, table: &TableRef) {
    let profile = profile_of(manager, table).await;
    let values = ValueGeneration { range_scan_width: 10, ..ValueGeneration::default() };
    let supported = manager.supported_kinds();
    let key = profile.key_column(None).expect("the fixture has a key column").name.clone();
    let delete =
        CustomSql::new(format!("DELETE FROM {} WHERE {key} = ?", profile.table), vec![ParamGenerator::Key]);
    let mut specs: BTreeMap<QueryKind, (usize, StatementSpec)> = BTreeMap::new();
    for kind in QueryKind::ALL {
        if !supported.contains(&kind) {
            eprintln!("{kind} is not supported by {} tables: not checked", manager.table_type());
            continue;
        }
        let custom_sql = (kind == QueryKind::CustomSql).then_some(&delete);
        let spec = manager
            .render(&profile, &RenderRequest { kind, values: &values, custom_sql })
            .unwrap_or_else(|e| panic!("rendering {kind} for {table} failed: {e}"));
        assert_eq!(spec.kind, kind, "rendered statement has the wrong kind");
        let index = specs.len();
        specs.insert(kind, (index, spec));
    }
    let mut ordered: Vec<StatementSpec> = vec![];
    let mut by_index: Vec<(usize, &StatementSpec)> = specs.values().map(|(i, s)| (*i, s)).collect();
    by_index.sort_by_key(|(i, _)| *i);
    ordered.extend(by_index.iter().map(|(_, s)| (*s).clone()));

    let mut session = pool.connect().await.unwrap_or_else(|e| panic!("connecting to the target failed: {e}"));
    session.prepare(&ordered).await.unwrap_or_else(|e| {
        panic!("preparing {:?} failed: {e}", ordered.iter().map(|s| &s.sql).collect::<Vec<_>>())
    });
    let session = session.as_mut();

    let (point, point_spec) =
        specs.get(&QueryKind::PointLookup).cloned().expect("point lookups are always supported");
    expect_rows(session, point, &point_spec, 7, 1).await;
    expect_rows(session, point, &point_spec, 999_999, 0).await;

    if let Some((range, spec)) = specs.get(&QueryKind::RangeScan).cloned() {
        assert_eq!(
            spec.params.len(),
            2,
            "an integer-key range scan binds a lower and an upper bound: {}",
            spec.sql
        );
        expect_rows(session, range, &spec, 10, 10).await;
    }

    if let Some((insert, spec)) = specs.get(&QueryKind::Insert).cloned() {
        let fresh = 1_000_000 + i64::from(rand::random::<u32>());
        expect_rows(session, insert, &spec, fresh, 1).await;
        expect_rows(session, point, &point_spec, fresh, 1).await;
        match exec(session, insert, &spec, fresh).await {
            Ok(n) => {
                panic!("inserting key {fresh} twice succeeded ({n} rows): the primary key was not enforced")
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Constraint, "duplicate key {fresh}: {e}"),
        }
        if let Some((delete, spec)) = specs.get(&QueryKind::CustomSql).cloned() {
            expect_rows(session, delete, &spec, fresh, 1).await;
            expect_rows(session, point, &point_spec, fresh, 0).await;
        }
    }

    if let Some((update, spec)) = specs.get(&QueryKind::Update).cloned() {
        expect_rows(session, update, &spec, 3, 1).await;
        expect_rows(session, point, &point_spec, 3, 1).await;
    }

    let out_of_range = ordered.len() + 10;
    if let Ok(n) = session.execute(out_of_range, &[]).await {
        panic!("executing statement {out_of_range}, which was never prepared, returned {n} rows");
    }
    // The session is still usable after the errors above.
    expect_rows(session, point, &point_spec, 8, 1).await;
}

/// Counts completed executes per session, to check the engine's accounting from the outside.
struct CountingPool {
    inner: Arc<dyn TargetPool>,
    sessions: Mutex<Vec<Arc<AtomicU64>>>,
}

impl CountingPool {
    fn counts(&self) -> Vec<u64> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.iter().map(|c| c.load(Ordering::SeqCst)).collect()
    }
}

struct CountingSession {
    inner: Box<dyn TargetSession>,
    executes: Arc<AtomicU64>,
}

#[async_trait]
impl TargetPool for CountingPool {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> TargetCapabilities {
        self.inner.capabilities()
    }

    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        let inner = self.inner.connect().await?;
        let executes = Arc::new(AtomicU64::new(0));
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(executes.clone());
        Ok(Box::new(CountingSession { inner, executes }))
    }
}

#[async_trait]
impl TargetSession for CountingSession {
    async fn prepare(&mut self, statements: &[StatementSpec]) -> Result<()> {
        self.inner.prepare(statements).await
    }

    async fn execute(&mut self, statement: usize, params: &[Value]) -> Result<u64> {
        let result = self.inner.execute(statement, params).await;
        // Counted once the call returned, successful or not: that is a completed operation.
        self.executes.fetch_add(1, Ordering::SeqCst);
        result
    }

    async fn cancel(&mut self) -> Result<()> {
        self.inner.cancel().await
    }
}

async fn run_point_lookups(
    pool: Arc<dyn TargetPool>,
    manager: &dyn TableManager,
    table: &TableRef,
    duration: Duration,
) -> EngineReport {
    let profile = profile_of(manager, table).await;
    let template = Template::new(table.to_string(), BTreeMap::from([(QueryKind::PointLookup, 100)]));
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &template.values, custom_sql: None };
    let statement =
        manager.render(&profile, &request).unwrap_or_else(|e| panic!("rendering a point lookup failed: {e}"));
    let key = profile.key_column(None).expect("the fixture has a key column").name.clone();
    let keys = manager
        .sample_values(&profile, &key, 200)
        .await
        .unwrap_or_else(|e| panic!("sampling keys of {table} failed: {e}"));
    let run_id = RunId::new();
    let plan = WorkloadPlan::build(
        &template,
        &profile,
        vec![statement],
        Some(keys),
        run_id,
        &WorkerIdentity::solo(),
    )
    .unwrap_or_else(|e| panic!("building the workload plan failed: {e}"));
    let config = EngineConfig::new(run_id, 2, duration);
    let handle = Engine::start(pool, Arc::new(plan), config)
        .await
        .unwrap_or_else(|e| panic!("starting the engine failed: {e}"));
    handle.wait().await.unwrap_or_else(|e| panic!("the engine run failed: {e}"))
}

/// Runs the engine (closed loop, 2 connections, point lookups from sampled keys) for
/// `duration` and checks its accounting: no errors, every point lookup read exactly one row,
/// and the phases add up to the completed operations. A second short run goes through a
/// wrapper that counts the executes each session completed; their sum must equal the engine's
/// count exactly. Returns the first run's report.
pub async fn check_engine_counts(
    pool: Arc<dyn TargetPool>,
    manager: &dyn TableManager,
    table: &TableRef,
    duration: Duration,
) -> EngineReport {
    let report = run_point_lookups(pool.clone(), manager, table, duration).await;
    let measured_ops: u64 = report.measured.values().map(|r| r.ops()).sum();
    let measured_errors: u64 = report.measured.values().map(|r| r.error_count()).sum();
    let measured_rows: u64 = report.measured.values().map(|r| r.rows).sum();
    assert_eq!(measured_errors, 0, "the run had errors: {:?}", report.error_examples);
    assert!(measured_ops > 0, "no operation was measured in {duration:?}");
    assert_eq!(
        measured_ops + report.warmup_ops + report.cooldown_ops,
        report.completed_ops,
        "measured {measured_ops} + warmup {} + cooldown {} != completed {}",
        report.warmup_ops,
        report.cooldown_ops,
        report.completed_ops
    );
    assert_eq!(
        measured_rows, measured_ops,
        "every point lookup of a sampled key reads exactly one row: {measured_rows} rows for {measured_ops} lookups"
    );
    assert_eq!(report.connections, 2, "connections at the end");

    let counting = Arc::new(CountingPool { inner: pool, sessions: Mutex::new(Vec::new()) });
    let tiny = duration.min(Duration::from_millis(500));
    let second = run_point_lookups(counting.clone(), manager, table, tiny).await;
    let counts = counting.counts();
    assert_eq!(counts.len(), 2, "the engine opened {} sessions for 2 connections", counts.len());
    assert!(counts.iter().all(|c| *c > 0), "a session executed nothing: {counts:?}");
    assert_eq!(second.abandoned_in_flight, 0, "operations were abandoned at the stop deadline");
    let executed: u64 = counts.iter().sum();
    assert_eq!(
        executed, second.completed_ops,
        "the sessions completed {executed} executes ({counts:?}) but the engine counted {}",
        second.completed_ops
    );
    report
}
