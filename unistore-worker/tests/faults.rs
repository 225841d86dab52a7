//! Issue 8: signals, no success on failure, durable results, abandoned runs, limits, secrets.
//! Each test reproduces a failure a user saw, end to end with the real binary.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A scratch table in the test server whose every lookup sleeps `seconds` on the server.
fn sleepy_table(tag: &str) -> String {
    let table = format!("ut_sig_{tag}_{}", std::process::id());
    psql(&pg_url(), &format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY); INSERT INTO {table} SELECT generate_series(1, 100)"));
    table
}

fn active_statements(table: &str) -> i64 {
    psql(
        &pg_url(),
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() \
             AND query LIKE '%pg_sleep(20) FROM {table}%'"
        ),
    )
    .parse()
    .unwrap()
}

fn sleepy_template(dir: &std::path::Path, table: &str) -> std::path::PathBuf {
    template(
        dir,
        "sleepy.toml",
        &format!(
            "table = \"{table}\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\nsql = \"SELECT pg_sleep(20) FROM {table} WHERE id = ?\"\n\
             params = [{{ kind = \"key\" }}]\n[load]\nconnections = 4\n[phases]\nwarmup = \"0s\"\nmeasurement = \"60s\"\n"
        ),
    )
}

/// Waits until `n` statements of `table` are running on the server.
fn wait_for_active(table: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while active_statements(table) < n {
        assert!(Instant::now() < deadline, "the load never started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_stops_like_ctrl_c_cancels_statements_and_stores_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let table = sleepy_table("term");
    let t = sleepy_template(dir.path(), &table);
    let json_path = dir.path().join("term.json");
    let child = spawn_bench(
        dir.path(),
        &["--target", &pg_url(), "--template", t.to_str().unwrap(), "--json", json_path.to_str().unwrap()],
    );
    wait_for_active(&table, 4);
    kill(child.id(), "-TERM");
    let killed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = killed.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    // The 5 s deadline for in-flight operations, then cancel requests: not the 20 s sleep.
    assert!(took < Duration::from_secs(12), "stopping took {took:?}");
    assert_eq!(active_statements(&table), 0, "statements still running after the worker exited");
    let v = json(&json_path);
    assert_eq!(v["status"], "CANCELLED");
    assert_eq!(v["verdict"], "CANCELLED");
    assert_eq!(v["reason"], "interrupted by SIGTERM");
    let run = v["run_id"].as_str().unwrap();
    let db = dir.path().join("results.db");
    let stored =
        sqlite_text(&db, &format!("SELECT STATUS || ' ' || REASON FROM TEST_RESULTS WHERE RUN_ID = '{run}'"));
    assert_eq!(stored.as_deref(), Some("CANCELLED interrupted by SIGTERM"));
    psql(&pg_url(), &format!("DROP TABLE {table}"));
}

#[test]
fn a_second_signal_stops_at_once_and_still_cancels_the_statements() {
    let dir = tempfile::tempdir().unwrap();
    let table = sleepy_table("twice");
    let t = sleepy_template(dir.path(), &table);
    let json_path = dir.path().join("twice.json");
    let child = spawn_bench(
        dir.path(),
        &["--target", &pg_url(), "--template", t.to_str().unwrap(), "--json", json_path.to_str().unwrap()],
    );
    wait_for_active(&table, 4);
    kill(child.id(), "-INT");
    std::thread::sleep(Duration::from_millis(300));
    kill(child.id(), "-TERM");
    let second = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = second.elapsed();
    assert_eq!(out.status.code(), Some(130), "the first signal decides the code: {}", text(&out.stderr));
    assert!(took < Duration::from_secs(4), "a second signal must not wait for the deadline: {took:?}");
    assert_eq!(active_statements(&table), 0, "statements still running after a forced stop");
    let v = json(&json_path);
    assert_eq!(v["status"], "CANCELLED");
    assert_eq!(v["reason"], "interrupted by Ctrl-C (SIGINT)");
    psql(&pg_url(), &format!("DROP TABLE {table}"));
}

#[test]
fn every_write_survives_a_results_store_outage_mid_run_and_at_the_end() {
    let cluster = Cluster::start();
    let store = format!("{}?schema=res", cluster.url);
    let dir = tempfile::tempdir().unwrap();
    let setup = worker(dir.path()).args(["setup", "--results", &store]).output().unwrap();
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    // Create the demo database first, so the run starts at once.
    assert!(bench(dir.path(), &["--duration", "1s", "--warmup", "0s", "--no-results"]).status.success());
    let json_path = dir.path().join("outage.json");
    // Long enough that the store is down again well before the end, however slow a busy
    // machine makes the restart in between.
    let child = spawn_bench(
        dir.path(),
        &[
            "--duration",
            "10s",
            "--warmup",
            "0s",
            "-c",
            "2",
            "--results",
            &store,
            "--json",
            json_path.to_str().unwrap(),
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    cluster.stop();
    std::thread::sleep(Duration::from_millis(2000));
    cluster.restart();
    std::thread::sleep(Duration::from_millis(2500));
    cluster.stop(); // down at the end of the run: the summary cannot be written
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "results not stored must say so in the exit code: {stderr}");
    assert!(stderr.contains("results: NOT all stored"), "{stderr}");
    assert!(stderr.contains("unistore-worker flush"), "{stderr}");
    let v = json(&json_path);
    assert_eq!(v["status"], "COMPLETED");

    cluster.restart();
    let flushed = worker(dir.path()).args(["flush", "--results", &store]).output().unwrap();
    assert!(flushed.status.success(), "{}{}", text(&flushed.stdout), text(&flushed.stderr));
    assert!(text(&flushed.stderr).contains("earlier run had spooled"), "{}", text(&flushed.stderr));
    let run = v["run_id"].as_str().unwrap();
    let row = psql(
        &cluster.url,
        &format!(
            "SELECT status || ' ' || ops || ' ' || verdict FROM res.test_results WHERE run_id = '{run}'"
        ),
    );
    assert_eq!(row, format!("COMPLETED {} PASSED", v["total"]["ops"]));
    // Every snapshot, none twice: sequence numbers 1..=n, and they account for every operation.
    let snaps = psql(
        &cluster.url,
        &format!("SELECT count(*) || ' ' || max(seq) || ' ' || sum(ops + errors) FROM res.worker_metrics_snapshots WHERE run_id = '{run}'"),
    );
    let parts: Vec<u64> = snaps.split(' ').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts[0], parts[1], "snapshots missing or doubled: {snaps}");
    assert!(parts[0] >= 7, "{snaps}");
    assert_eq!(parts[2], v["completed_ops_all_phases"].as_u64().unwrap(), "{snaps}");
    // Nothing left: a second flush has nothing to do.
    let again = worker(dir.path()).args(["flush", "--results", &store]).output().unwrap();
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("nothing waiting"), "{}", text(&again.stdout));
}

#[test]
fn a_killed_run_leaves_its_row_which_the_next_command_marks_failed() {
    let dir = tempfile::tempdir().unwrap();
    assert!(bench(dir.path(), &["--duration", "1s", "--warmup", "0s", "--no-results"]).status.success());
    let json_path = dir.path().join("k.json");
    let mut child = spawn_bench(
        dir.path(),
        &["--duration", "7s", "--warmup", "0s", "-c", "1", "--json", json_path.to_str().unwrap()],
    );
    std::thread::sleep(Duration::from_millis(6200)); // after the first batch of snapshots
    kill(child.id(), "-KILL");
    let _ = child.wait();
    let db = dir.path().join("results.db");
    let running = sqlite_text(&db, "SELECT STATUS FROM TEST_RESULTS");
    assert_eq!(running.as_deref(), Some("RUNNING"), "the run's row is written before the load");
    let template = sqlite_text(&db, "SELECT TEMPLATE_JSON FROM TEST_RESULTS").unwrap();
    assert!(template.contains("demo_orders"), "{template}");
    let snapshots = sqlite_count(&db, "SELECT count(*) FROM WORKER_METRICS_SNAPSHOTS");
    assert!(snapshots >= 5, "snapshots written before the kill: {snapshots}");
    // Past the planned end (and a grace of 1 s), the next command marks it.
    std::thread::sleep(Duration::from_millis(2500));
    let out = worker(dir.path()).env("UNISTORE_STALE_RUN_GRACE", "1s").args(["flush"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("marked 1 abandoned run(s) as FAILED"), "{}", text(&out.stderr));
    let row =
        sqlite_text(&db, "SELECT STATUS || ' / ' || VERDICT || ' / ' || REASON FROM TEST_RESULTS").unwrap();
    assert!(row.starts_with("FAILED / FAILED / worker stopped without finishing"), "{row}");
    assert_eq!(
        sqlite_count(&db, "SELECT count(*) FROM WORKER_METRICS_SNAPSHOTS"),
        snapshots,
        "snapshots kept"
    );
}

#[test]
fn a_run_of_only_errors_fails_with_exit_1_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Every call fails at run time: random text is not JSON.
    let t = template(
        dir.path(),
        "errors.toml",
        "table = \"demo_orders\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\nsql = \"SELECT json(?)\"\n\
         params = [{ kind = \"text\", len = 8 }]\n[phases]\nwarmup = \"0s\"\nmeasurement = \"1s\"\n",
    );
    let json_path = dir.path().join("e.json");
    let out = bench(dir.path(), &["--template", t.to_str().unwrap(), "--json", json_path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("verdict: PASSED"), "{stdout}");
    assert!(stdout.contains("verdict: FAILED: every measured operation failed"), "{stdout}");
    let v = json(&json_path);
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["verdict"], "FAILED");
    assert!(v["reason"].as_str().unwrap().contains("malformed JSON"), "{v}");
    let run = v["run_id"].as_str().unwrap();
    let stored = sqlite_text(
        &dir.path().join("results.db"),
        &format!("SELECT VERDICT FROM TEST_RESULTS WHERE RUN_ID = '{run}'"),
    );
    assert_eq!(stored.as_deref(), Some("FAILED"));
}

#[test]
fn an_error_rate_above_the_guardrail_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let body = "table = \"demo_orders\"\n[mix]\nCUSTOM_SQL = 70\nPOINT_LOOKUP = 30\n[custom_sql]\nsql = \"SELECT json(?)\"\n\
         params = [{ kind = \"text\", len = 8 }]\n[phases]\nwarmup = \"0s\"\nmeasurement = \"1s\"\n";
    let t = template(dir.path(), "rate.toml", body);
    let json_path = dir.path().join("r.json");
    let out = bench(dir.path(), &["--template", t.to_str().unwrap(), "--json", json_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let v = json(&json_path);
    assert_eq!(v["status"], "FAILED");
    assert!(v["reason"].as_str().unwrap().contains("above the guardrail of 50.0%"), "{v}");
    // Raising the guardrail makes the same run a pass.
    let t = template(dir.path(), "rate2.toml", &format!("{body}[guardrails]\nmax_error_rate = 0.9\n"));
    let out = bench(dir.path(), &["--template", t.to_str().unwrap(), "--json", json_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(json(&json_path)["verdict"], "PASSED");
}

#[test]
fn absurd_sizes_counts_and_durations_are_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let custom = |params: &str| {
        format!("table = \"demo_orders\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\nsql = \"SELECT ?\"\nparams = [{params}]\n")
    };
    let huge_name =
        format!("name = \"{}\"\ntable = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n", "n".repeat(300));
    let big_file = format!("# {}\ntable = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n", "x".repeat(5 << 20));
    let files: Vec<(&str, String, &str)> = vec![
        ("text.toml", custom("{ kind = \"text\", len = 100000000000 }"), "limit of 1048576"),
        ("float.toml", custom("{ kind = \"float\", min = -1e308, max = 1e308 }"), "wider than a float can hold"),
        ("inf.toml", custom("{ kind = \"float\", min = -inf, max = inf }"), "must be finite"),
        ("empty.toml", "table = \"demo_orders\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\nsql = \"\"\n".into(), "custom_sql.sql is empty"),
        ("multi.toml", "table = \"demo_orders\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\nsql = \"SELECT 1; DROP TABLE y\"\n".into(), "2 statements"),
        (
            "search.toml",
            "table = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nmode = \"FIND_MAX_CONCURRENCY\"\nstart_connections = 1\n\
             step_connections = 1\nstep_duration = \"100000000000s\"\nmax_connections = 4000000000\n".into(),
            "limit of 100000",
        ),
        (
            "step.toml",
            "table = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nstart_connections = 1\nstep_connections = 1\n\
             step_duration = \"100000000000s\"\nmax_connections = 8\n".into(),
            "limit of 30 days",
        ),
        ("name.toml", huge_name, "limit of 200"),
        ("big.toml", big_file, "more than the limit"),
        ("nul.json", "{\"name\": \"a\\u0000b\", \"table\": \"demo_orders\", \"mix\": {\"POINT_LOOKUP\": 100}}".into(), "control character"),
        ("conns.toml", "table = \"demo_orders\"\n[mix]\nPOINT_LOOKUP = 100\n[load]\nconnections = 5000\n".into(), "limit of 4096"),
    ];
    let mut cases: Vec<(Vec<String>, &str)> = files
        .into_iter()
        .map(|(name, body, expected)| {
            let path = template(dir.path(), name, &body);
            (vec!["--template".to_string(), path.display().to_string()], expected)
        })
        .collect();
    for (flags, expected) in [
        (vec!["--threads", "100000"], "--threads 100000 is outside"),
        (vec!["--duration", "500000000y"], "limit of 30 days"),
        (vec!["--connections", "4000000000"], "limit of 100000"),
        (vec!["--connections", "300"], "more than its limit of 256"),
        (vec!["--qps", "1e12"], "above the limit"),
        (vec!["--statement-timeout", "3d"], "at most one day"),
    ] {
        cases.push((flags.into_iter().map(str::to_string).collect(), expected));
    }
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bench(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(errors[0].contains(expected), "{args:?}: expected `{expected}` in {stderr}");
        assert!(!stderr.contains("progress:"), "{args:?} must not run");
    }
    let results = dir.path().join("results.db");
    if results.exists() {
        assert_eq!(sqlite_count(&results, "SELECT count(*) FROM TEST_RESULTS"), 0, "nothing stored");
    }
}

#[test]
fn help_never_shows_an_environment_value() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["bench", "--help"], vec!["setup", "--help"], vec!["flush", "--help"]] {
        let out = worker(dir.path())
            .env("UNISTORE_TARGET", "postgres://u:secretpw@db/app")
            .env("UNISTORE_RESULTS", "postgres://u:secretpw@db/results")
            .args(&args)
            .output()
            .unwrap();
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {all}");
        assert!(all.contains("UNISTORE_RESULTS"), "{args:?} names the variable: {all}");
        assert!(!all.contains("secretpw") && !all.contains("u:"), "{args:?} printed a secret: {all}");
    }
}

#[test]
fn an_unwritable_json_path_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench(dir.path(), &["--duration", "1s", "--json", "/nonexistent-dir/out.json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--json /nonexistent-dir/out.json cannot be written"), "{stderr}");
    assert!(!stderr.contains("progress:"), "{stderr}");
}

#[test]
fn no_results_wins_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = worker(dir.path())
        .env("UNISTORE_RESULTS", format!("sqlite://{}/elsewhere.db", dir.path().display()))
        .args(["bench", "--duration", "1s", "--warmup", "0s", "--no-results"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("results: not stored (--no-results)"));
    assert!(!dir.path().join("elsewhere.db").exists());
}

#[test]
fn a_statement_timeout_interrupts_long_sqlite_statements_as_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(
        dir.path(),
        "slow.toml",
        "table = \"demo_orders\"\n[mix]\nCUSTOM_SQL = 100\n[custom_sql]\n\
         sql = \"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) FROM c\"\n\
         params = [{ kind = \"int\", min = 1000000000, max = 1000000000 }]\n[load]\nconnections = 2\n\
         [phases]\nwarmup = \"0s\"\nmeasurement = \"1s\"\n",
    );
    let json_path = dir.path().join("slow.json");
    let started = Instant::now();
    let out = bench(
        dir.path(),
        &[
            "--template",
            t.to_str().unwrap(),
            "--statement-timeout",
            "100ms",
            "--json",
            json_path.to_str().unwrap(),
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(took < Duration::from_secs(6), "timed-out statements must not hold the run: {took:?}");
    let v = json(&json_path);
    let timeouts = v["total"]["errors_by_kind"]["TIMEOUT"].as_u64().unwrap_or(0);
    assert!(timeouts >= 10, "about 10 per connection per second: {v}");
    assert!(v["error_examples"]["TIMEOUT"].as_str().unwrap().contains("statement timeout of 100 ms"), "{v}");
}

#[test]
fn a_server_that_never_answers_fails_fast_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    // The kernel completes the TCP handshake for a listener that never reads or writes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let target = format!("postgres://bench@127.0.0.1:{port}/app");
    let started = Instant::now();
    let out = bench(
        dir.path(),
        &["--target", &target, "--table", "orders", "--connect-timeout", "1s", "--no-results"],
    );
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("timed out"), "{stderr}");
    drop(silent);
}
