//! Issue 9, defect 4: flag-built runs of one table share a template id (`bench-<table>`), and
//! the store used to overwrite its template on every run. Each run now names the version of the
//! template it ran, and every version stays in the store.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::Path;

use support::{bench, json, sqlite_count, sqlite_text, text};

/// A short flag-built run; returns its run id.
fn run(dir: &Path, connections: &str) -> String {
    let out_json = dir.join(format!("run-{connections}.json"));
    let out = bench(
        dir,
        &[
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            connections,
            "--json",
            out_json.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "exit {:?}\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    json(&out_json)["run_id"].as_str().unwrap().to_string()
}

#[test]
fn each_flag_built_run_names_its_own_template_version() {
    let dir = tempfile::tempdir().unwrap();
    let two = run(dir.path(), "2");
    let three = run(dir.path(), "3");
    let three_again = run(dir.path(), "3");
    let two_again = run(dir.path(), "2");
    let results = dir.path().join("results.db");
    let version_of = |run: &str| {
        sqlite_count(&results, &format!("SELECT TEMPLATE_VERSION FROM TEST_RESULTS WHERE RUN_ID = '{run}'"))
    };
    assert_eq!(
        [&two, &three, &three_again, &two_again].map(|r| version_of(r)),
        [1, 2, 2, 3],
        "same flags keep the version, other flags make the next one"
    );
    assert_eq!(
        sqlite_count(
            &results,
            "SELECT count(*) FROM TEST_TEMPLATE_VERSIONS WHERE TEMPLATE_ID = 'bench-demo_orders'"
        ),
        3
    );
    assert_eq!(
        sqlite_count(&results, "SELECT VERSION FROM TEST_TEMPLATES WHERE TEMPLATE_ID = 'bench-demo_orders'"),
        3,
        "the last run's template is current"
    );
    // The versions hold what each run ran, identical to the copy in the run's row.
    for (run, connections) in [(&two, 2), (&three, 3), (&three_again, 3), (&two_again, 2)] {
        let ran = sqlite_text(
            &results,
            &format!(
                "SELECT v.TEMPLATE_JSON FROM TEST_TEMPLATE_VERSIONS v JOIN TEST_RESULTS r ON \
                 r.TEMPLATE_ID = v.TEMPLATE_ID AND r.TEMPLATE_VERSION = v.VERSION WHERE r.RUN_ID = '{run}'"
            ),
        )
        .unwrap();
        let ran: serde_json::Value = serde_json::from_str(&ran).unwrap();
        assert_eq!(ran["load"]["connections"], connections, "run {run} ran {ran}");
        let row =
            sqlite_text(&results, &format!("SELECT TEMPLATE_JSON FROM TEST_RESULTS WHERE RUN_ID = '{run}'"));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&row.unwrap()).unwrap(), ran);
    }
}
