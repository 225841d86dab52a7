//! Property tests over everything a user can type: template text (TOML and JSON), every field
//! of a template, and the plans and generators built from any template that validates. The
//! property: no panic, and no generated value larger than the documented limits.
//!
//! `scripts/test` runs 1,000 cases per property; set `PROPTEST_CASES` for a longer search. Each property prints how many cases it ran (`--nocapture`).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use unistore_core::sql::SqlDialect;
use unistore_core::table::RenderRequest;
use unistore_core::template::limits::MAX_TEXT_LEN;
use unistore_core::template::{
    CustomSql, Distribution, KeySource, LoadMode, ParamGenerator, Phases, Slo, SloScope, Timeouts,
};
use unistore_core::{QueryKind, RunId, Template, Value, WorkerIdentity, WorkloadPlan};

/// Floats a user can write, including the ones that break naive code.
fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(1e308),
        Just(-1e308),
        Just(0.0),
        Just(0.5),
        -1e6..1e6f64,
        0.0..1.0f64,
        any::<f64>(),
    ]
}

/// Mostly sensible fractions (sample rates, error rates), sometimes anything.
fn any_fraction() -> impl Strategy<Value = f64> {
    prop_oneof![8 => 0.0..=1.0f64, 1 => any_float()]
}

/// Mostly sensible millisecond figures, sometimes anything.
fn any_ms() -> impl Strategy<Value = f64> {
    prop_oneof![8 => 0.001..10_000.0f64, 1 => any_float()]
}

fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 1 => Just(u64::MAX), 1 => Just(1u64 << 40), 6 => 1..100_000u64, 1 => any::<u64>()]
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        1 => Just(Duration::MAX),
        6 => (1..100_000u64).prop_map(Duration::from_millis),
        1 => any::<u64>().prop_map(Duration::from_secs),
    ]
}

fn any_generator() -> impl Strategy<Value = ParamGenerator> {
    prop_oneof![
        Just(ParamGenerator::Key),
        (any::<i64>(), any::<i64>()).prop_map(|(a, b)| ParamGenerator::Int { min: a.min(b), max: a.max(b) }),
        (any::<i64>(), any::<i64>()).prop_map(|(min, max)| ParamGenerator::Int { min, max }),
        (any_float(), any_float()).prop_map(|(min, max)| ParamGenerator::Float { min, max }),
        prop_oneof![6 => 0..64usize, 1 => Just(usize::MAX), 1 => Just(MAX_TEXT_LEN + 1), 1 => any::<usize>()]
            .prop_map(|len| ParamGenerator::Text { len }),
        proptest::collection::vec(".{0,8}", 0..4).prop_map(|values| ParamGenerator::Choice { values }),
        Just(ParamGenerator::Now),
    ]
}

fn any_distribution() -> impl Strategy<Value = Distribution> {
    prop_oneof![
        Just(Distribution::Uniform),
        Just(Distribution::Sequential),
        prop_oneof![4 => 0.01..5.0f64, 1 => any_float()].prop_map(|theta| Distribution::Zipfian { theta }),
        (any_fraction(), any_fraction()).prop_map(|(hot_fraction, hot_probability)| Distribution::Hotspot {
            hot_fraction,
            hot_probability
        }),
    ]
}

fn any_load() -> impl Strategy<Value = LoadMode> {
    let conns = prop_oneof![12 => 1..64u32, 1 => Just(0u32), 1 => Just(u32::MAX), 1 => any::<u32>()];
    prop_oneof![
        conns.clone().prop_map(|connections| LoadMode::Concurrency { connections }),
        (any_ms(), conns.clone())
            .prop_map(|(target_qps, connections)| LoadMode::Qps { target_qps, connections }),
        (conns.clone(), conns.clone(), any_duration(), conns, any_ms(), any_ms(), any_fraction()).prop_map(
            |(start, step, d, max, drop, growth, err)| LoadMode::FindMaxConcurrency {
                start_connections: start,
                step_connections: step,
                step_duration: d,
                max_connections: max,
                qps_drop_pct: drop,
                p95_growth_pct: growth,
                max_error_rate: err,
            }
        ),
    ]
}

/// Mixes that sum to 100, and a few that do not.
fn any_mix() -> BoxedStrategy<BTreeMap<QueryKind, u32>> {
    use QueryKind::*;
    prop_oneof![
        3 => Just(BTreeMap::from([(PointLookup, 100)])),
        2 => Just(BTreeMap::from([(PointLookup, 60), (RangeScan, 40)])),
        3 => Just(BTreeMap::from([(PointLookup, 50), (CustomSql, 50)])),
        3 => Just(BTreeMap::from([(CustomSql, 100)])),
        1 => Just(BTreeMap::from([(CustomSql, u32::MAX), (PointLookup, 2)])),
    ]
    .boxed()
}

fn any_custom() -> BoxedStrategy<CustomSql> {
    let sql = prop_oneof![
        4 => Just("SELECT ?".to_string()),
        2 => Just("SELECT ?, ? -- ;".to_string()),
        1 => Just("SELECT 1; SELECT ?".to_string()),
        1 => ".{0,24}",
    ];
    (sql, proptest::collection::vec(any_generator(), 3), proptest::bool::weighted(0.1))
        .prop_map(|(sql, mut params, keep_all)| {
            // Mostly one generator per placeholder, so the plan is built and sampled.
            if !keep_all {
                params.truncate(unistore_core::template::count_placeholders(&sql));
            }
            CustomSql::new(sql, params)
        })
        .boxed()
}

fn any_template() -> BoxedStrategy<Template> {
    let values = (
        any_distribution(),
        prop_oneof![Just(KeySource::Range), Just(KeySource::Pool)],
        prop_oneof![8 => 1..100_000u64, 1 => any_u64()],
        prop_oneof![8 => 1..1_000u32, 1 => any::<u32>()],
    );
    let sensible = || prop_oneof![8 => (1..3_000u64).prop_map(Duration::from_millis), 1 => any_duration()];
    let phases = (sensible(), sensible(), sensible());
    let knobs = (any_ms(), any_fraction(), any_duration(), "[a-z ]{0,12}");
    (any_mix(), any_custom(), values.boxed(), any_load().boxed(), phases.boxed(), knobs.boxed())
        .prop_map(
            |(
                mix,
                custom,
                (distribution, source, pool, width),
                load,
                (w, m, c),
                (p95, rate, timeout, name),
            )| {
                let mut t = Template::new("toy", mix);
                t.name = name;
                t.custom_sql = vec![custom];
                t.values.distribution = distribution;
                t.values.source = source;
                t.values.pool_size = usize::try_from(pool).unwrap_or(usize::MAX);
                t.values.range_scan_width = width;
                t.load = load;
                t.phases = Phases { warmup: w, measurement: m, cooldown: c };
                t.timeouts = Timeouts { connect: timeout, statement: Some(timeout) };
                t.sample_rate = rate;
                t.slo = BTreeMap::from([(
                    SloScope::Total,
                    Slo { min_qps: Some(p95), p95_ms: Some(p95), p99_ms: None, max_error_rate: Some(rate) },
                )]);
                t
            },
        )
        .boxed()
}

/// Runs a property on a thread with a large stack (proptest's composed strategies take deep
/// frames in debug builds) and returns how many cases ran.
fn check<S, M, F>(make: M, test: F) -> u32
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    M: FnOnce() -> S + Send + 'static,
    F: Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
{
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let strategy = make();
            // 1,000 cases unless PROPTEST_CASES says otherwise: a few seconds in scripts/test.
            let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1_000);
            let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
            let cases = config.cases;
            let mut runner = proptest::test_runner::TestRunner::new(config);
            if let Err(e) = runner.run(&strategy, test) {
                panic!("{e}");
            }
            cases
        })
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[test]
fn any_text_parses_or_is_refused_without_a_panic() {
    let n = check(
        || ".{0,200}",
        |text: String| {
            let _ = Template::from_toml(&text);
            let _ = Template::from_json(&text);
            Ok(())
        },
    );
    eprintln!("fuzz: {n} texts parsed as TOML and JSON");
}

#[test]
fn any_template_shaped_text_parses_or_is_refused() {
    let strategy = || {
        let key = prop_oneof![Just("table"), Just("name"), Just("sample_rate"), Just("seed")];
        let value = prop_oneof![
            Just("1e400".to_string()),
            Just("-1".to_string()),
            Just("inf".to_string()),
            Just("\"\\u0000\"".to_string()),
            "[0-9]{1,25}",
            "\"[a-z.]{0,20}\""
        ];
        let section = prop_oneof![
        Just("[load]\nconnections = 99999999999"),
        Just("[phases]\nmeasurement = \"500000000y\""),
        Just("[load]\nstep_duration = \"100000000000s\"\nstart_connections = 1\nstep_connections = 1\nmax_connections = 4000000000"),
        Just("[custom_sql]\nsql = \"SELECT ?\"\nparams = [{ kind = \"float\", min = -1e308, max = 1e308 }]"),
        Just(""),
    ];
        (key, value, section)
    };
    let n = check(strategy, |(key, value, section)| {
        let text = format!("table = \"t\"\n{key} = {value}\n[mix]\nPOINT_LOOKUP = 100\n{section}\n");
        let _ = Template::from_toml(&text);
        Ok(())
    });
    eprintln!("fuzz: {n} template-shaped texts");
}

#[test]
fn any_valid_template_builds_a_plan_whose_values_stay_in_bounds() {
    static VALID: AtomicU64 = AtomicU64::new(0);
    static SAMPLED: AtomicU64 = AtomicU64::new(0);
    let n = check(
        || (any_template(), any::<u64>()),
        |(t, seed)| {
            if let Err(e) = t.validate() {
                if std::env::var("FUZZ_DEBUG").is_ok() {
                    eprintln!("invalid: {e}");
                }
                return Ok(());
            }
            VALID.fetch_add(1, Ordering::Relaxed);
            // Whatever validates round-trips through JSON and TOML.
            let back = Template::from_json(&serde_json::to_string(&t).unwrap());
            prop_assert!(back.is_ok(), "a valid template must round-trip through JSON: {back:?}");
            let profile = common::profile();
            let kinds: Vec<QueryKind> = t.mix.iter().filter(|(_, p)| **p > 0).map(|(k, _)| *k).collect();
            let statements: Vec<_> = kinds
                .iter()
                .filter_map(|kind| {
                    let request =
                        RenderRequest { kind: *kind, values: &t.values, custom_sql: t.custom_sql.first() };
                    SqlDialect::SQLITE.render(&profile, &request).ok()
                })
                .collect();
            if statements.len() != kinds.len() {
                return Ok(());
            }
            let pool = (t.values.source == KeySource::Pool).then(|| (1..=100).map(Value::Int).collect());
            let Ok(plan) =
                WorkloadPlan::build(&t, &profile, statements, pool, RunId::new(), &WorkerIdentity::solo())
            else {
                return Ok(());
            };
            SAMPLED.fetch_add(1, Ordering::Relaxed);
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut out = Vec::new();
            for _ in 0..50 {
                let i = plan.pick(&mut rng);
                plan.generate(i, &mut rng, &mut out);
                for v in &out {
                    if let Value::Text(s) = v {
                        prop_assert!(s.len() <= MAX_TEXT_LEN, "generated text of {} bytes", s.len());
                    }
                    if let Value::Float(f) = v {
                        prop_assert!(f.is_finite(), "generated a non-finite float");
                    }
                }
            }
            Ok(())
        },
    );
    let (valid, sampled) = (VALID.load(Ordering::Relaxed), SAMPLED.load(Ordering::Relaxed));
    eprintln!("fuzz: {n} templates, {valid} valid, {sampled} plans built and sampled 50 times each");
    assert!(sampled > 0, "the generator must reach the plan: {valid} valid templates, none planned");
}
