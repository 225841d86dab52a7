//! Reading results back with real runs and real stores: `runs`, `show`, `export` and
//! `compare` on the SQLite and the PostgreSQL results stores (the same runs give the same
//! output), and the regression gate of `bench` (a run made slower on purpose fails it; a rerun
//! of the baseline's workload passes).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Output;

use support::{bench, psql, results_url, runtime, text, worker, Cluster};
use unistore_core::RunId;

/// The two tests measure and compare runs: run at the same time, each would slow the other's
/// runs and blur what the gate must see. They take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `unistore-worker ARGS` with the data directory `data`.
fn cli(data: &Path, args: &[&str]) -> Output {
    worker(data).args(args).output().unwrap()
}

/// Copies a run (its rows, snapshots and summary) from one results store to another through
/// the stores' own interfaces.
fn copy_run(from: &str, to: &str, run_id: RunId) {
    runtime().block_on(async {
        let src = unistore_adapters::open_results(from).await.unwrap();
        let dst = unistore_adapters::open_results(to).await.unwrap();
        if let Some(record) = src.reader.run_record(run_id, None).await.unwrap() {
            dst.sink.begin_run(&record).await.unwrap();
        }
        let snapshots = src.reader.snapshots(run_id).await.unwrap();
        dst.sink.write_snapshots(&snapshots).await.unwrap();
        let summary = src.reader.summary(run_id, None).await.unwrap().unwrap();
        dst.sink.write_summary(&summary).await.unwrap();
    });
}

/// The run id in `bench`'s summary line (`run ID STATUS: ...`).
fn run_in(stdout: &str) -> RunId {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ").and_then(|r| r.split_whitespace().next()))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
}

fn lookup_run(data: &Path, cluster: &Cluster, connections: &str) -> RunId {
    let out = bench(
        data,
        &[
            "--target",
            &cluster.url,
            "--table",
            "public.hist_accounts",
            "-c",
            connections,
            "--duration",
            "11s",
            "--warmup",
            "1s",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    run_in(&stdout)
}

/// Two runs with 4 and 16 connections on PostgreSQL, compared from the SQLite and from the
/// PostgreSQL results store: the same output. Plus `runs`, `show`, `export` and bad input.
#[test]
fn compare_reads_the_same_from_sqlite_and_postgres_stores() {
    let _turn = one_at_a_time();
    let cluster = Cluster::start();
    psql(
        &cluster.url,
        "DROP TABLE IF EXISTS hist_accounts; \
         CREATE TABLE hist_accounts (id integer PRIMARY KEY, balance integer NOT NULL); \
         INSERT INTO hist_accounts SELECT g, g % 1000 FROM generate_series(1, 20000) g; ANALYZE hist_accounts",
    );
    let data = tempfile::tempdir().unwrap();
    let a = lookup_run(data.path(), &cluster, "4");
    let b = lookup_run(data.path(), &cluster, "16");
    let sqlite = results_url(data.path());
    let pg = format!("{}?schema=hist_results", cluster.url);
    let setup = cli(data.path(), &["setup", "--results", &pg]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    copy_run(&sqlite, &pg, a);
    copy_run(&sqlite, &pg, b);

    let (a_text, b_text) = (a.to_string(), b.to_string());
    let compare = |store: &str, json: bool| {
        let mut args = vec!["compare", a_text.as_str(), b_text.as_str(), "--results", store];
        if json {
            args.push("--json");
        }
        let out = cli(data.path(), &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let from_sqlite = compare(&sqlite, false);
    let from_pg = compare(&pg, false);
    eprintln!("{from_sqlite}");
    assert_eq!(from_sqlite, from_pg, "the same runs compare the same from either store");
    assert_eq!(compare(&sqlite, true), compare(&pg, true));
    let json: serde_json::Value = serde_json::from_str(&compare(&sqlite, true)).unwrap();
    assert_eq!(json["runs"][0], a_text.as_str(), "the first run is the baseline");
    let rows = json["rows"].as_array().unwrap();
    let throughput = rows.iter().find(|r| r["kind"].is_null() && r["metric"] == "throughput").unwrap();
    let summary_of = |id: RunId| {
        runtime().block_on(async {
            let store = unistore_adapters::open_results(&sqlite).await.unwrap();
            store.reader.summary(id, None).await.unwrap().unwrap()
        })
    };
    let (sa, sb) = (summary_of(a), summary_of(b));
    assert_eq!(throughput["values"][0].as_f64(), Some(sa.total.qps), "the summary's own figure");
    assert_eq!(throughput["values"][1].as_f64(), Some(sb.total.qps));
    let sig = throughput["differences"][0]["significance"].as_str().unwrap();
    assert!(["SIGNIFICANT", "NOT_SIGNIFICANT"].contains(&sig), "{throughput}");
    assert!(from_sqlite.contains("method:"), "the method is printed: {from_sqlite}");
    assert!(
        from_sqlite.contains("warning:") && from_sqlite.contains("connections"),
        "different connections are a warning: {from_sqlite}"
    );

    // History, newest first, and one run.
    let runs = cli(data.path(), &["runs", "--results", &pg, "--json"]);
    assert!(runs.status.success(), "{}", text(&runs.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![b_text.as_str(), a_text.as_str()]);
    let filtered =
        cli(data.path(), &["runs", "--results", &sqlite, "--table", "hist_accounts", "--status", "failed"]);
    assert!(text(&filtered.stdout).contains("no runs match"), "{}", text(&filtered.stdout));
    let show = cli(data.path(), &["show", &a_text, "--results", &pg]);
    let shown = text(&show.stdout);
    assert!(show.status.success() && shown.contains(&sa.total.ops.to_string()), "{shown}");
    assert!(shown.contains("server counted"), "the server's figures beside the client's: {shown}");

    // Export: one CSV row per snapshot and kind, as stored.
    let csv_path = data.path().join("a.csv");
    let export = cli(data.path(), &["export", &a_text, "--format", "csv", "-o", csv_path.to_str().unwrap()]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let snapshots = runtime().block_on(async {
        let store = unistore_adapters::open_results(&sqlite).await.unwrap();
        store.reader.snapshots(a).await.unwrap()
    });
    let totals: Vec<&str> = csv.lines().filter(|l| l.contains(",TOTAL,")).collect();
    assert_eq!(totals.len(), snapshots.len());
    // Every phase's snapshots add up to the run's operations (a snapshot is labelled with the
    // phase of most of its second, so the measured ones alone may differ by the few operations
    // of the seconds that straddle a boundary).
    let all_ops: u64 = csv
        .lines()
        .filter(|l| l.contains(",TOTAL,"))
        .map(|l| l.split(',').nth(8).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        all_ops,
        sa.warmup_ops + sa.total.ops + sa.cooldown_ops,
        "the snapshots add up to the summary"
    );

    // Bad input: one line, exit 2.
    for args in [
        vec!["compare", a_text.as_str(), "5f0c2a9e-0000-4000-8000-000000000000"],
        vec!["compare", a_text.as_str(), a_text.as_str()],
        vec!["show", "not-a-run"],
        vec!["export", a_text.as_str(), "--format", "csv", "-o", "/no/such/dir/x.csv"],
    ] {
        let out = cli(data.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.trim().lines().count() == 1 && err.starts_with("error: "), "{args:?}: {err}");
    }
    assert!(!Path::new("/no/such/dir/x.csv").exists());
}

fn gate_template(data: &Path, cluster: &Cluster, name: &str, sleep_ms: u32) -> String {
    let path = support::template(
        data,
        name,
        &format!(
            r#"name = "gate"
target = "{}"
table = "public.gate_t"
[mix]
CUSTOM_SQL = 100
[custom_sql]
sql = "SELECT pg_sleep({})"
params = []
[load]
connections = 16
[phases]
warmup = "1s"
measurement = "11s"
"#,
            cluster.url,
            f64::from(sleep_ms) / 1000.0
        ),
    );
    path.to_str().unwrap().to_string()
}

/// The regression gate: a run made slower on purpose fails it (exit 1, verdict REGRESSED, the
/// reason printed and stored with the run); a rerun of the baseline's workload passes.
///
/// The statements sleep 100 ms (200 ms in the slower run), over 16 connections, so that the
/// machine's own jitter is small beside them: on this 2-core host, load that starts between the
/// baseline and the rerun (a build) adds a few milliseconds to p99, +120 % of a 2 ms sleep and
/// +17 % of a 20 ms one, either of which fails the rerun at the 10 % allowance.
#[test]
fn the_regression_gate_fails_a_slower_run_and_passes_a_rerun() {
    let _turn = one_at_a_time();
    let cluster = Cluster::start();
    psql(&cluster.url, "DROP TABLE IF EXISTS gate_t; CREATE TABLE gate_t (id integer PRIMARY KEY)");
    let data = tempfile::tempdir().unwrap();
    let fast = gate_template(data.path(), &cluster, "fast.toml", 100);
    let slow = gate_template(data.path(), &cluster, "slow.toml", 200);
    let base = bench(data.path(), &["--template", &fast]);
    assert!(base.status.success(), "{}", text(&base.stderr));
    let baseline = run_in(&text(&base.stdout)).to_string();

    // A baseline that does not exist: refused before any load, nothing stored.
    let before = cli(data.path(), &["runs", "--json"]);
    let missing =
        bench(data.path(), &["--template", &fast, "--baseline", "5f0c2a9e-0000-4000-8000-000000000000"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("not in the results store"), "{}", text(&missing.stderr));
    assert_eq!(cli(data.path(), &["runs", "--json"]).stdout, before.stdout, "nothing was run");

    let slower =
        bench(data.path(), &["--template", &slow, "--baseline", &baseline, "--max-regression", "10%"]);
    let out = text(&slower.stdout);
    assert_eq!(slower.status.code(), Some(1), "{out}\n{}", text(&slower.stderr));
    assert!(out.contains("regression gate against") && out.contains("FAILED"), "{out}");
    assert!(out.contains("REGRESSED ops/s"), "throughput halved: {out}");
    assert!(out.contains("verdict: REGRESSED"), "{out}");
    let slower_id = run_in(&out);
    let stored = runtime().block_on(async {
        let store = unistore_adapters::open_results(&results_url(data.path())).await.unwrap();
        store.reader.summary(slower_id, None).await.unwrap().unwrap()
    });
    let gate = stored.gate.as_ref().expect("the gate's judgement is stored with the run");
    assert!(!gate.passed && gate.lines.iter().any(|l| l.starts_with("REGRESSED")), "{gate:?}");
    assert_eq!(stored.verdict, Some(unistore_core::Verdict::Regressed));

    let rerun =
        bench(data.path(), &["--template", &fast, "--baseline", &baseline, "--max-regression", "40%"]);
    let out = text(&rerun.stdout);
    assert_eq!(rerun.status.code(), Some(0), "the same workload passes: {out}\n{}", text(&rerun.stderr));
    assert!(out.contains("regression gate against") && out.contains("passed"), "{out}");
}
