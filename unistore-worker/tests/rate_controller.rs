//! The rate controller of a multi-worker open-loop run, with real worker processes on
//! PostgreSQL. In a test binary of its own: it measures a rate, so it does not share the
//! machine's two cores with the other multi-process tests.
#![allow(clippy::unwrap_used)]

mod support;

use support::{bench, psql, results_url, run_id_of, runtime, summaries, text, Cluster};

/// QPS under BOUNDED scaling: the rate controller grows a worker's connections by bounded
/// steps up to its cap, then adds a worker, and the run holds the target. The statement sleeps
/// 20 ms on the server, so one connection carries under 50 ops/s and 150 ops/s need about 3
/// in flight: more than one worker's cap of 2. The target counts the calls itself (a sequence).
#[test]
fn the_rate_controller_adds_a_worker_when_every_worker_is_at_its_cap() {
    let cluster = Cluster::start();
    psql(
        &cluster.url,
        "DROP TABLE IF EXISTS rate_ctl; CREATE TABLE rate_ctl (id integer PRIMARY KEY); \
         INSERT INTO rate_ctl SELECT generate_series(1, 100); \
         DROP SEQUENCE IF EXISTS rate_ctl_calls; CREATE SEQUENCE rate_ctl_calls; \
         CREATE OR REPLACE FUNCTION rate_ctl_op() RETURNS integer LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM nextval('rate_ctl_calls'); PERFORM pg_sleep(0.02); RETURN 1; END $$",
    );
    let data = tempfile::tempdir().unwrap();
    let template = support::template(
        data.path(),
        "rate.toml",
        &format!(
            r#"name = "rate controller"
target = "{}"
table = "public.rate_ctl"
[mix]
CUSTOM_SQL = 100
[custom_sql]
sql = "SELECT rate_ctl_op()"
params = []
[load]
mode = "QPS"
target_qps = 150
connections = 1
[scaling]
mode = "BOUNDED"
min_workers = 1
max_workers = 3
max_connections_per_worker = 2
[phases]
warmup = "12s"
measurement = "5s"
"#,
            cluster.url
        ),
    );
    let out = bench(data.path(), &["--template", template.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    let run_id = run_id_of(&stderr);
    let (parent, mut parts) = summaries(data.path(), run_id, &["worker-0", "worker-1"]);
    eprintln!("warnings: {:?}", parent.warnings);
    assert!(
        parent.warnings.iter().any(|w| w.contains("QPS controller: added worker-1")),
        "the controller added a worker: {:?}",
        parent.warnings
    );
    // Two workers carry 150 ops/s; on a busy machine (slower statements) a third may be added,
    // never a fourth (max_workers = 3: there is no slot for one).
    let (third, fourth) = runtime().block_on(async {
        let store = unistore_adapters::open_results(&results_url(data.path())).await.unwrap();
        (
            store.reader.summary(run_id, Some("worker-2")).await.unwrap(),
            store.reader.summary(run_id, Some("worker-3")).await.unwrap(),
        )
    });
    assert!(fourth.is_none());
    parts.extend(third);
    assert_eq!(parent.target_qps, Some(150.0), "the run's target is the template's");
    assert!(
        (parent.total.qps - 150.0).abs() <= 150.0 * 0.02,
        "the run held 150 ops/s within 2 %: {} ({:?})",
        parent.total.qps,
        parts.iter().map(|p| (p.total.qps, p.target_qps)).collect::<Vec<_>>()
    );
    assert_eq!(parent.status, unistore_core::RunStatus::Completed, "{:?}", parent.reason);
    assert!(parts.iter().all(|p| p.connections <= 2), "within the cap of 2 per worker");
    let calls: u64 = psql(&cluster.url, "SELECT last_value FROM rate_ctl_calls").parse().unwrap();
    let issued: u64 = parts.iter().map(|p| p.completed_ops_all_phases + p.total.errors).sum();
    assert_eq!(calls, issued, "the target counted {calls} calls; the workers {issued}");
    assert_eq!(
        parent.completed_ops_all_phases,
        parts.iter().map(|p| p.completed_ops_all_phases).sum::<u64>()
    );
}
