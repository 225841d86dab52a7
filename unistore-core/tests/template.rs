//! Templates: the documented format parses, and bad input gets a message naming the fix.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use unistore_core::template::{parse_mix, Distribution, KeySource, LoadMode, ParamGenerator, SloScope};
use unistore_core::{ErrorKind, QueryKind, Template};

const FULL: &str = r#"
name = "orders-mixed"
table = "public.orders"
allow_writes = true
seed = 42

[mix]
POINT_LOOKUP = 70
RANGE_SCAN = 10
UPDATE = 10
CUSTOM_SQL = 10

[custom_sql]
sql = "SELECT count(*) FROM orders WHERE customer_id = ? AND status = ? AND note = 'what?'"
params = [{ kind = "int", min = 1, max = 5000 }, { kind = "choice", values = ["open", "paid"] }]

[values]
source = "range"
distribution = { type = "zipfian", theta = 0.9 }
pool_size = 500
range_scan_width = 50

[load]
mode = "QPS"
target_qps = 250.0
connections = 4

[phases]
warmup = "2s"
measurement = "1m"

[slo.POINT_LOOKUP]
p95_ms = 5.0
max_error_rate = 0.001
"#;

#[test]
fn the_documented_template_parses_and_round_trips() {
    let t = Template::from_toml(FULL).unwrap();
    assert_eq!(t.name, "orders-mixed");
    assert_eq!(t.table_ref().unwrap().schema.as_deref(), Some("public"));
    assert_eq!(t.mix[&QueryKind::PointLookup], 70);
    assert_eq!(t.values.source, KeySource::Range);
    assert_eq!(t.values.distribution, Distribution::Zipfian { theta: 0.9 });
    assert_eq!(t.load, LoadMode::Qps { target_qps: 250.0, connections: 4 });
    assert_eq!(t.phases.measurement, Duration::from_secs(60));
    assert_eq!(t.phases.cooldown, Duration::ZERO);
    assert_eq!(t.slo[&SloScope::Kind(QueryKind::PointLookup)].p95_ms, Some(5.0));
    let custom = &t.custom_sql[0];
    assert_eq!(custom.params[1], ParamGenerator::Choice { values: vec!["open".into(), "paid".into()] });
    // TOML and JSON exports parse back to the same template.
    assert_eq!(Template::from_toml(&t.to_toml().unwrap()).unwrap(), t);
    assert_eq!(Template::from_json(&serde_json::to_string(&t).unwrap()).unwrap(), t);
}

fn err(toml: &str) -> String {
    let e = Template::from_toml(toml).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    e.to_string()
}

#[test]
fn bad_templates_name_the_problem_and_the_fix() {
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 80\nRANGE_SCAN = 10\n");
    assert!(m.contains("sums to 90%") && m.contains("adjust"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 50\nUPDATE = 50\n");
    assert!(m.contains("--allow-writes"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[phases]\nmeasurement = \"0s\"\n");
    assert!(m.contains("measurement duration is zero"), "{m}");
    let m = err("table = \"t\"\n[mix]\nSCAN_ALL = 100\n");
    assert!(m.contains("SCAN_ALL"), "{m}");
    let m = err("table = \"t\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\nsql = \"select ?\"\n");
    assert!(m.contains("1 `?` placeholders but 0 params"), "{m}");
    let m = err("table = \"a.b.c.d\"\n[mix]\nPOINT_LOOKUP = 100\n");
    assert!(m.contains("too many parts"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nmode = \"QPS\"\ntarget_qps = -1.0\nconnections = 2\n");
    assert!(m.contains("not a positive number"), "{m}");
    let m = err("table = \"t\"\ncolour = \"red\"\n[mix]\nPOINT_LOOKUP = 100\n");
    assert!(m.contains("colour"), "{m}");
}

#[test]
fn mixes_parse_from_the_command_line_form() {
    let mix = parse_mix("point_lookup=80, range-scan=10,UPDATE=10").unwrap();
    assert_eq!(mix.len(), 3);
    assert_eq!(mix[&QueryKind::RangeScan], 10);
    assert!(parse_mix("point_lookup=80,point_lookup=20").unwrap_err().to_string().contains("twice"));
    assert!(parse_mix("point_lookup").unwrap_err().to_string().contains("KIND=PERCENT"));
    assert!(parse_mix("lookup=100").unwrap_err().to_string().contains("unknown query kind"));
    assert!(parse_mix("point_lookup=x").unwrap_err().to_string().contains("not a whole number"));
}

#[test]
fn a_template_may_not_carry_a_secret() {
    let m = err("table = \"t\"\ntarget = \"postgres://bob:hunter2@db/app\"\n[mix]\nPOINT_LOOKUP = 100\n");
    assert!(m.contains("password") && !m.contains("hunter2"), "{m}");
    let m = err(
        "table = \"t\"\ntarget = \"snowflake://bob@acct/db/s?private_key=abc\"\n[mix]\nPOINT_LOOKUP = 100\n",
    );
    assert!(m.contains("environment"), "{m}");
    // A user name, or a path to a key file, is not a secret.
    let ok = "table = \"t\"\ntarget = \"snowflake://bob@acct/db/s?private_key_path=/k.p8&warehouse=wh\"\n[mix]\nPOINT_LOOKUP = 100\n";
    assert!(Template::from_toml(ok).is_ok());
    assert!(!unistore_core::template::url_carries_secret("postgres://bob@db:5432/app?sslmode=require"));
    assert!(unistore_core::template::url_carries_secret("postgres://db/app?password=x"));
}

#[test]
fn kinds_and_modes_are_accepted_in_any_case_and_mode_may_be_left_out() {
    let t = Template::from_toml("table = \"t\"\n[mix]\npoint_lookup = 60\nRange_Scan = 40\n").unwrap();
    assert_eq!(t.mix[&QueryKind::PointLookup], 60);
    assert_eq!(t.mix[&QueryKind::RangeScan], 40);
    let t =
        Template::from_toml("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nconnections = 4\n").unwrap();
    assert_eq!(t.load, LoadMode::Concurrency { connections: 4 });
    let t =
        Template::from_toml("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\ntarget_qps = 50.0\n").unwrap();
    assert_eq!(t.load, LoadMode::Qps { target_qps: 50.0, connections: 8 });
    let t = Template::from_toml(
        "table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nmode = \"qps\"\ntarget_qps = 5.0\n",
    )
    .unwrap();
    assert_eq!(t.load.name(), "QPS");
    // JSON, lower case too.
    let t =
        Template::from_json(r#"{"table": "t", "mix": {"point_lookup": 100}, "load": {"connections": 2}}"#)
            .unwrap();
    assert_eq!(t.load, LoadMode::Concurrency { connections: 2 });
}

#[test]
fn load_sections_that_do_not_add_up_name_the_missing_field() {
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nmode = \"QPS\"\n");
    assert!(m.contains("needs target_qps"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nstart_connections = 2\nstep_connections = 2\nmax_connections = 8\n");
    assert!(m.contains("needs step_duration"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nmode = \"FIND_MAX_CONCURRENCY\"\nconnections = 4\n");
    assert!(m.contains("searches for the connection count itself"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nconnections = 4\nmax_connections = 9\n");
    assert!(m.contains("max_connections does not apply to mode CONCURRENCY"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nmode = \"FAST\"\n");
    assert!(m.contains("unknown load mode `FAST`"), "{m}");
}

#[test]
fn syntax_errors_give_the_line_and_column() {
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = = 100\n");
    assert!(m.starts_with("line 3, column "), "{m}");
    let e =
        Template::from_json("{\n  \"table\": \"t\",\n  \"mix\": {\"POINT_LOOKUP\": 100,}\n}").unwrap_err();
    assert!(e.to_string().starts_with("line 3, column "), "{e}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[phases]\nwarmup = \"soon\"\n");
    assert!(m.contains("line 5"), "{m}");
}

#[test]
fn an_slo_on_a_kind_outside_the_mix_is_refused_before_the_run() {
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[slo.UPDATE]\np95_ms = 5.0\n");
    assert!(m.contains("SLO for UPDATE, which is not in the mix"), "{m}");
}

#[test]
fn flags_cannot_turn_a_search_into_a_fixed_run() {
    use unistore_core::template::Overrides;
    let t = Template::from_toml(
        "table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nstart_connections = 1\nstep_connections = 1\nstep_duration = \"1s\"\nmax_connections = 4\n",
    )
    .unwrap();
    let o = Overrides { connections: Some(8), ..Default::default() };
    let m = o.apply(t.clone()).unwrap_err().to_string();
    assert!(m.contains("FIND_MAX_CONCURRENCY") && m.contains("--connections"), "{m}");
    let o = Overrides { duration: Some(Duration::from_secs(2)), ..Default::default() };
    let t = o.apply(t).unwrap();
    assert_eq!(t.name, "bench-t", "a template without a name is named after its table");
    assert_eq!(t.load.name(), "FIND_MAX_CONCURRENCY");
}

#[test]
fn slos_apply_to_kinds_and_to_the_whole_run_with_a_throughput_floor() {
    let t = Template::from_toml(
        "table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[slo.total]\nmin_qps = 1000.0\np99_ms = 5.0\n[slo.POINT_LOOKUP]\nmin_qps = 900.0\n",
    )
    .unwrap();
    assert_eq!(t.slo[&SloScope::Total].min_qps, Some(1000.0));
    assert_eq!(t.slo[&SloScope::Kind(QueryKind::PointLookup)].min_qps, Some(900.0));
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[slo.TOTAL]\nmin_qps = -1.0\n");
    assert!(m.contains("slo.TOTAL.min_qps"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[slo.EVERYTHING]\np99_ms = 1.0\n");
    assert!(m.contains("unknown SLO scope `EVERYTHING`"), "{m}");
    // Evaluation: the TOTAL row and a throughput floor.
    use unistore_core::metrics::KindRecorder;
    use unistore_core::summary::evaluate_slo;
    let mut r = KindRecorder::default();
    for i in 0..1000u64 {
        r.response.record_ns(1_000_000 + i * 1_000);
    }
    let total = r.stats(10.0, false).unwrap(); // 100 ops/s, p99 about 2 ms
    let by_kind = std::collections::BTreeMap::from([(QueryKind::PointLookup, total.clone())]);
    let report = evaluate_slo(&t.slo, &by_kind, &total);
    assert!(!report.passed);
    assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
    assert!(report.violations[0].starts_with("TOTAL: 100.0 ops/s < 1000 ops/s"), "{:?}", report.violations);
    assert!(
        report.violations[1].starts_with("POINT_LOOKUP: 100.0 ops/s < 900 ops/s"),
        "{:?}",
        report.violations
    );
}

#[test]
fn stages_are_checked_against_the_load_mode() {
    let t = Template::from_toml(
        "table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[[stages]]\nduration = \"10s\"\nconnections = 4\n[[stages]]\nduration = \"20s\"\nconnections = 8\n",
    )
    .unwrap();
    assert_eq!(t.measurement(), Duration::from_secs(30), "the measurement is the stages together");
    let m =
        err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[[stages]]\nduration = \"10s\"\ntarget_qps = 5.0\n");
    assert!(m.contains("stages[0] sets target_qps, but the load is closed loop"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\ntarget_qps = 5.0\n[[stages]]\nduration = \"10s\"\nconnections = 2\n");
    assert!(m.contains("stages[0] needs target_qps"), "{m}");
    let m = err("table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[[stages]]\nduration = \"0s\"\nconnections = 2\n");
    assert!(m.contains("stages[0].duration is zero"), "{m}");
    let m = err(
        "table = \"t\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nstart_connections = 1\nstep_connections = 1\nstep_duration = \"1s\"\nmax_connections = 2\n[[stages]]\nduration = \"1s\"\nconnections = 2\n",
    );
    assert!(m.contains("stages and FIND_MAX_CONCURRENCY"), "{m}");
}
