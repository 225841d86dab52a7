//! Per-operation overhead of the engine's hot path (pick a kind, generate parameters, execute,
//! record the latency) against a target that does nothing.
//!
//! `cargo bench --bench engine_overhead`
//!
//! - `engine/noop_target_{uniform,zipfian}`: the whole connection loop (80 % point lookups,
//!   20 % range scans, keys from a 10,000-key pool), one connection on a current-thread
//!   runtime, timed over many operations and reported per operation.
//! - `hot_path/pick_generate` (zipfian keys), `hot_path/record`: the pieces on their own.
//! - `hot_path/clock_read`: one read of the OS's monotonic clock as the engine takes it (the
//!   offset from the load start); the engine takes two per operation. Its cost is the host's,
//!   not the engine's (37-41 ns on a 2-vCPU VM where `engine/*` measured 191-273 ns that hour), so
//!   it says how much of `engine/*` a slower or faster host moves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use unistore::core::metrics::KindRecorder;
use unistore::core::table::ColumnInfo;
use unistore::core::target::{ParamRole, ParamSpec, TargetCapabilities};
use unistore::core::template::{Distribution, KeySource};
use unistore::{
    ColumnType, Engine, EngineConfig, QueryKind, Result, RunId, StatementSpec, TableProfile, TableRef,
    TableType, TargetPool, TargetSession, Template, Value, WorkerIdentity, WorkloadPlan,
};

struct NoopTarget;

#[async_trait]
impl TargetPool for NoopTarget {
    fn kind(&self) -> &'static str {
        "noop"
    }
    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities { cancel: false, server_side_prepare: false }
    }
    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        Ok(Box::new(NoopSession))
    }
}

struct NoopSession;

#[async_trait]
impl TargetSession for NoopSession {
    async fn prepare(&mut self, _statements: &[StatementSpec]) -> Result<()> {
        Ok(())
    }
    async fn execute(&mut self, _statement: usize, params: &[Value]) -> Result<u64> {
        Ok(params.len() as u64)
    }
}

fn plan(distribution: Distribution) -> Arc<WorkloadPlan> {
    let column = ColumnInfo {
        name: "id".into(),
        column_type: ColumnType::Integer,
        native_type: "BIGINT".into(),
        nullable: false,
        has_default: false,
        max_length: None,
        generated: None,
        indexed: None,
    };
    let profile = TableProfile {
        table: TableRef::parse("t").expect("valid name"),
        table_type: TableType::Postgres,
        columns: vec![column],
        primary_key: vec!["id".into()],
        row_estimate: 1_000_000,
        key_range: Some((1, 1_000_000)),
        time_column: None,
        indexes: vec![],
        triggers: Vec::new(),
        foreign_keys: Vec::new(),
    };
    let mut mix = BTreeMap::new();
    mix.insert(QueryKind::PointLookup, 80);
    mix.insert(QueryKind::RangeScan, 20);
    let mut template = Template::new("t", mix);
    template.values.source = KeySource::Pool;
    template.values.distribution = distribution;
    let key = |role| ParamSpec { column: "id".into(), column_type: ColumnType::Integer, role };
    let statements = vec![
        StatementSpec {
            kind: QueryKind::PointLookup,
            sql: "pl".into(),
            params: vec![key(ParamRole::Key)],
            returning: None,
        },
        StatementSpec {
            kind: QueryKind::RangeScan,
            sql: "rs".into(),
            params: vec![key(ParamRole::Key), key(ParamRole::KeyUpperBound { width: 100 })],
            returning: None,
        },
    ];
    let pool = (1..=10_000).map(Value::Int).collect();
    Arc::new(
        WorkloadPlan::build(
            &template,
            &profile,
            statements,
            Some(pool),
            RunId::new(),
            &WorkerIdentity::solo(),
        )
        .expect("plan builds"),
    )
}

fn engine(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    for (name, distribution) in [
        ("noop_target_uniform", Distribution::Uniform),
        ("noop_target_zipfian", Distribution::Zipfian { theta: 0.99 }),
    ] {
        let plan = plan(distribution);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // Run the real engine for a fixed time and divide by the operations it completed.
                let config = EngineConfig::new(RunId::new(), 1, Duration::from_millis(300));
                let report = runtime.block_on(async {
                    Engine::start(Arc::new(NoopTarget), plan.clone(), config)
                        .await
                        .expect("start")
                        .wait()
                        .await
                        .expect("run")
                });
                let per_op = report.window.as_secs_f64() / report.completed_ops.max(1) as f64;
                Duration::from_secs_f64(per_op * iters as f64)
            })
        });
    }
    group.finish();
}

fn hot_path(c: &mut Criterion) {
    let plan = plan(Distribution::Zipfian { theta: 0.99 });
    let mut rng = SmallRng::seed_from_u64(1);
    let mut params = Vec::with_capacity(4);
    let mut group = c.benchmark_group("hot_path");
    group.bench_function("pick_generate", |b| {
        b.iter(|| {
            let i = plan.pick(&mut rng);
            plan.generate(i, &mut rng, &mut params);
            criterion::black_box(params.len())
        })
    });
    let mut recorder = KindRecorder::new(false);
    let mut ns = 0u64;
    group.bench_function("record", |b| {
        b.iter(|| {
            ns = (ns + 7_919) % 50_000_000;
            recorder.response.record_ns(criterion::black_box(ns));
        })
    });
    let start = Instant::now();
    group.bench_function("clock_read", |b| {
        b.iter(|| unistore::core::engine::nanos_since(criterion::black_box(start)))
    });
    group.finish();
}

criterion_group!(benches, engine, hot_path);
criterion_main!(benches);
