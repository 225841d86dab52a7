//! `unistore-worker bench` end to end, against the embedded demo database in a throwaway data
//! directory.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn bench(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unistore-worker"))
        .arg("bench")
        .args(args)
        .env("UNISTORE_DATA_DIR", data_dir)
        .env_remove("UNISTORE_TARGET")
        .env_remove("UNISTORE_RESULTS")
        .output()
        .expect("the worker runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sqlite_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

#[test]
fn bench_against_the_demo_table_writes_the_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = bench(
        dir.path(),
        &[
            "--duration",
            "3s",
            "--warmup",
            "1s",
            "--connections",
            "2",
            "--seed",
            "9",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.contains("created the demo database"), "{stderr}");
    assert!(stderr.contains("only table this tool ever creates"), "{stderr}");
    let progress = stderr.lines().filter(|l| l.starts_with("progress:")).count();
    assert!(progress >= 4, "a progress line per second over 4 s: {stderr}");
    assert!(
        stdout.contains("POINT_LOOKUP") && stdout.contains("TOTAL") && stdout.contains("SLO: passed"),
        "{stdout}"
    );

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "run_id",
        "template",
        "target_kind",
        "table",
        "mode",
        "connections",
        "duration_s",
        "total",
        "by_kind",
        "slo",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["target_kind"], "sqlite");
    assert_eq!(v["table"], "demo_orders");
    assert_eq!(v["mode"], "CONCURRENCY");
    assert_eq!(v["connections"], 2);
    assert_eq!(v["duration_s"], 3.0);
    assert_eq!(v["seed"], 9);
    assert_eq!(v["slo"]["passed"], true);
    let ops = v["total"]["ops"].as_u64().unwrap();
    assert!(ops > 100, "ops {ops}");
    assert_eq!(v["total"]["errors"], 0);
    assert!((v["total"]["qps"].as_f64().unwrap() - ops as f64 / 3.0).abs() < 1e-6);
    assert_eq!(v["by_kind"]["POINT_LOOKUP"]["ops"].as_u64().unwrap(), ops);
    let lat = &v["total"]["latency_ms"];
    for key in ["p50", "p90", "p95", "p99", "p999", "max", "mean"] {
        assert!(lat[key].as_f64().unwrap() > 0.0, "latency {key} in {lat}");
    }
    assert!(lat["p50"].as_f64() <= lat["p99"].as_f64() && lat["p99"].as_f64() <= lat["max"].as_f64());
    let all = v["completed_ops_all_phases"].as_u64().unwrap();
    assert_eq!(all, ops + v["warmup_ops"].as_u64().unwrap() + v["cooldown_ops"].as_u64().unwrap());

    // The results store holds the run, and its snapshots account for every operation.
    let results = dir.path().join("results.db");
    let run_id = v["run_id"].as_str().unwrap();
    let stored =
        sqlite_count(&results, &format!("SELECT count(*) FROM TEST_RESULTS WHERE RUN_ID = '{run_id}'"));
    assert_eq!(stored, 1);
    let snapshot_ops = sqlite_count(
        &results,
        &format!("SELECT sum(OPS + ERRORS) FROM WORKER_METRICS_SNAPSHOTS WHERE RUN_ID = '{run_id}'"),
    );
    assert_eq!(snapshot_ops as u64, all);
}

#[test]
fn writes_change_the_table_by_exactly_what_was_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Create the demo database with a first short read-only run.
    let out = bench(dir.path(), &["--duration", "1s", "--warmup", "0s", "--no-results"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = dir.path().join("demo.db");
    let before = sqlite_count(&db, "SELECT count(*) FROM demo_orders");
    let template = dir.path().join("writes.toml");
    std::fs::write(
        &template,
        "name = \"writes\"\ntable = \"demo_orders\"\nallow_writes = true\nsample_rate = 1.0\n\
         [mix]\nINSERT = 50\nUPDATE = 50\n[load]\nmode = \"QPS\"\ntarget_qps = 100.0\nconnections = 2\n\
         [phases]\nwarmup = \"0s\"\nmeasurement = \"2s\"\n\
         [guardrails]\nexpect_shortfall = true\n",
    )
    .unwrap();
    let json = dir.path().join("w.json");
    let out =
        bench(dir.path(), &["--template", template.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["mode"], "QPS");
    assert_eq!(v["samples_dropped"], 0);
    let run_id = v["run_id"].as_str().unwrap();
    let results = dir.path().join("results.db");
    // Second computation: every operation was sampled (sample_rate 1.0), so the successful
    // INSERT samples must equal the rows the table gained.
    let inserted = sqlite_count(
        &results,
        &format!(
            "SELECT count(*) FROM QUERY_EXECUTIONS WHERE RUN_ID = '{run_id}' AND KIND = 'INSERT' AND OK = 1"
        ),
    );
    let after = sqlite_count(&db, "SELECT count(*) FROM demo_orders");
    assert!(inserted > 30, "inserted {inserted}");
    assert_eq!(after - before, inserted);
    let sampled =
        sqlite_count(&results, &format!("SELECT count(*) FROM QUERY_EXECUTIONS WHERE RUN_ID = '{run_id}'"));
    assert_eq!(sampled as u64, v["completed_ops_all_phases"].as_u64().unwrap());
    // The key (an INTEGER PRIMARY KEY, SQLite's rowid) was left to SQLite: the table's own
    // next insert still works.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO demo_orders (customer_id, status, amount, created_at) VALUES (1, 'open', 1.0, '2024-01-01')",
        [],
    )
    .unwrap();
    assert_eq!(sqlite_count(&db, "SELECT count(DISTINCT id) - count(*) FROM demo_orders"), 0);
}

#[test]
fn bad_input_exits_2_with_one_clear_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad_template = dir.path().join("bad.toml");
    std::fs::write(&bad_template, "table = \"demo_orders\"\n[mix\nPOINT_LOOKUP = 100\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--mix", "point_lookup=80,range_scan=10"], "sums to 90%"),
        (vec!["--mix", "point_lookup=50,full_scan=50"], "unknown query kind"),
        (vec!["--duration", "0s"], "zero"),
        (vec!["--table", "no_such_table"], "no_such_table"),
        (vec!["--mix", "point_lookup=50,update=50"], "--allow-writes"),
        (vec!["--template", bad_template.to_str().unwrap()], "malformed"),
        (vec!["--target", "sqlite:///nonexistent/dir/x.db", "--table", "t"], "/nonexistent/dir/x.db"),
        (vec!["--target", "mysql://localhost/x", "--table", "t"], "mysql"),
        (vec!["--table-type", "hybrid"], "hybrid"),
    ];
    for (args, expected) in cases {
        let out = bench(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{args:?}: {stderr}");
        assert!(error_lines[0].contains(expected), "{args:?}: expected `{expected}` in {stderr}");
        assert!(!stderr.contains("progress:"), "{args:?} must not run: {stderr}");
    }
    let results = dir.path().join("results.db");
    if results.exists() {
        assert_eq!(sqlite_count(&results, "SELECT count(*) FROM TEST_RESULTS"), 0);
        assert_eq!(sqlite_count(&results, "SELECT count(*) FROM WORKER_METRICS_SNAPSHOTS"), 0);
    }
}

#[test]
fn a_failed_slo_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("slo.toml");
    std::fs::write(
        &template,
        "table = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n[phases]\nwarmup = \"0s\"\nmeasurement = \"1s\"\n\
         [slo.POINT_LOOKUP]\np99_ms = 0.000001\n",
    )
    .unwrap();
    let json = dir.path().join("slo.json");
    let out =
        bench(dir.path(), &["--template", template.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["slo"]["passed"], false);
    assert!(v["slo"]["violations"][0].as_str().unwrap().contains("POINT_LOOKUP: p99"), "{v}");
    assert!(text(&out.stdout).contains("SLO: FAILED"));
}

#[test]
fn ctrl_c_stops_cleanly_and_still_writes_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    // Create the demo database first, so the interrupted run starts at once.
    assert!(bench(dir.path(), &["--duration", "1s", "--warmup", "0s", "--no-results"]).status.success());
    let json = dir.path().join("int.json");
    let child = Command::new(env!("CARGO_BIN_EXE_unistore-worker"))
        .args(["bench", "--duration", "60s", "--warmup", "0s", "--json", json.to_str().unwrap()])
        .env("UNISTORE_DATA_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["status"], "CANCELLED");
    assert_eq!(v["reason"], "interrupted by Ctrl-C (SIGINT)");
    let d = v["duration_s"].as_f64().unwrap();
    assert!(d > 1.0 && d < 10.0, "measured window {d}");
    assert!(v["total"]["ops"].as_u64().unwrap() > 0);
    let run_id = v["run_id"].as_str().unwrap();
    let stored = sqlite_count(
        &dir.path().join("results.db"),
        &format!("SELECT count(*) FROM TEST_RESULTS WHERE RUN_ID = '{run_id}' AND STATUS = 'CANCELLED'"),
    );
    assert_eq!(stored, 1);
}

#[test]
fn find_max_concurrency_reports_its_steps_and_the_best_one() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("max.toml");
    std::fs::write(
        &template,
        "table = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n[phases]\nwarmup = \"0s\"\n\
         [load]\nmode = \"FIND_MAX_CONCURRENCY\"\nstart_connections = 1\nstep_connections = 1\n\
         step_duration = \"1s\"\nmax_connections = 3\nqps_drop_pct = 90.0\np95_growth_pct = 10000.0\n",
    )
    .unwrap();
    let json = dir.path().join("max.json");
    let out =
        bench(dir.path(), &["--template", template.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["mode"], "FIND_MAX_CONCURRENCY");
    assert_eq!(v["status"], "COMPLETED");
    let steps: Vec<u64> =
        v["steps"].as_array().unwrap().iter().map(|s| s["connections"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![1, 2, 3], "every step up to max_connections ran: {v}");
    let best = v["best_step"]["connections"].as_u64().unwrap();
    assert_eq!(v["connections"].as_u64().unwrap(), best);
    let best_qps = v["best_step"]["qps"].as_f64().unwrap();
    let max_qps =
        v["steps"].as_array().unwrap().iter().map(|s| s["qps"].as_f64().unwrap()).fold(0.0, f64::max);
    assert_eq!(best_qps, max_qps, "with loose bounds the best step is the fastest");
    assert!(stdout.contains("best sustainable concurrency"), "{stdout}");
}

/// `setup` then `bench --results postgres://...`: the run lands in a Postgres results store.
#[test]
fn results_go_to_a_postgres_store_after_setup() {
    let base = std::env::var("UNISTORE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("ut_worker_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = format!("{base}{sep}schema={schema}");
    let dir = tempfile::tempdir().unwrap();
    let drop_schema = || {
        let _ = Command::new("psql")
            .args([base.as_str(), "-X", "-q", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .output();
    };
    let setup = Command::new(env!("CARGO_BIN_EXE_unistore-worker"))
        .args(["setup", "--results", &store])
        .output()
        .unwrap();
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    // Idempotent.
    let again = Command::new(env!("CARGO_BIN_EXE_unistore-worker"))
        .args(["setup", "--results", &store])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let json = dir.path().join("pg.json");
    let out = bench(
        dir.path(),
        &["--duration", "1s", "--warmup", "0s", "--results", &store, "--json", json.to_str().unwrap()],
    );
    let stored = Command::new("psql")
        .args([base.as_str(), "-X", "-q", "-t", "-A", "-c"])
        .arg(format!("SELECT ops FROM {schema}.test_results"))
        .output()
        .unwrap();
    drop_schema();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(text(&stored.stdout).trim(), v["total"]["ops"].to_string(), "{}", text(&stored.stderr));
}
