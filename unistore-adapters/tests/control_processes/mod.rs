//! Several processes appending control events to one run at once, as workers and a controller
//! on other hosts do: the sequence numbers come from the database, so together they must issue
//! every number once. The test binary runs itself again as the appending processes
//! ([`run_as_child`] at the top of the test), told by environment variables which store and run
//! to use; they all open the store first and start appending at one shared instant, so that
//! their appends really overlap.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use unistore_adapters::open_control;
use unistore_core::model::{ControlEventKind, EventScope, RunStatusRecord};
use unistore_core::RunId;

/// Appending processes.
pub const PROCESSES: u64 = 3;
/// Events each appends.
pub const EVENTS_PER_PROCESS: u64 = 40;

const ENV_URL: &str = "UNISTORE_TEST_CONTROL_CHILD_URL";
const ENV_RUN: &str = "UNISTORE_TEST_CONTROL_CHILD_RUN";
const ENV_INDEX: &str = "UNISTORE_TEST_CONTROL_CHILD_INDEX";
const ENV_DIR: &str = "UNISTORE_TEST_CONTROL_CHILD_DIR";

/// How long the processes may take to start and open the store (a Snowflake login included).
const START_TIMEOUT: Duration = Duration::from_secs(120);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set for the appending process"))
}

fn unix_micros(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).expect("after 1970").as_micros()).expect("in range")
}

/// The event a process appends as its `k`-th: addressed to the process, numbered so that the
/// order of one process's events can be checked.
fn event(process: u64, k: u64) -> (EventScope, ControlEventKind) {
    let connections = u32::try_from(process * 1000 + k).expect("small");
    (
        EventScope::Worker(format!("process-{process}")),
        ControlEventKind::SetWorkerTarget { connections, target_qps: None },
    )
}

/// In an appending process (the environment says so): opens the store, says it is ready, waits
/// for the shared start instant, appends its events and returns `true`. In the test itself:
/// returns `false` at once.
pub async fn run_as_child() -> bool {
    let Ok(url) = std::env::var(ENV_URL) else {
        return false;
    };
    let run: RunId = env(ENV_RUN).parse().expect("a run id");
    let index: u64 = env(ENV_INDEX).parse().expect("a process index");
    let dir = PathBuf::from(env(ENV_DIR));
    let store =
        open_control(&url).await.unwrap_or_else(|e| panic!("process {index}: opening the store: {e}"));
    std::fs::write(dir.join(format!("ready-{index}")), b"").expect("ready file");
    let go = dir.join("go");
    let deadline = Instant::now() + START_TIMEOUT;
    let start_at = loop {
        if let Ok(text) = std::fs::read_to_string(&go) {
            if let Ok(at) = text.trim().parse::<u64>() {
                break at;
            }
        }
        assert!(Instant::now() < deadline, "process {index}: no start instant within {START_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let now = unix_micros(SystemTime::now());
    tokio::time::sleep(Duration::from_micros(start_at.saturating_sub(now))).await;
    let mut last = 0;
    for k in 0..EVENTS_PER_PROCESS {
        let (scope, kind) = event(index, k);
        let appended = store
            .append_event(run, scope, kind)
            .await
            .unwrap_or_else(|e| panic!("process {index}: appending event {k}: {e}"));
        assert!(
            appended.seq > last,
            "process {index}: sequence numbers went back: {} after {last}",
            appended.seq
        );
        last = appended.seq;
    }
    true
}

fn wait_for_ready(dir: &Path, children: &mut [std::process::Child]) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if (0..PROCESSES).all(|i| dir.join(format!("ready-{i}")).exists()) {
            return;
        }
        for (i, child) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("appending process {i} exited before it was ready ({status})");
            }
        }
        assert!(Instant::now() < deadline, "the appending processes were not ready within {START_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Creates a run in the store at `url`, has [`PROCESSES`] copies of this test binary (running
/// `test_name`) append [`EVENTS_PER_PROCESS`] events each to it at once, and checks that the
/// run's events are exactly 1..=total, each process's in its own order, and that the run's row
/// agrees.
pub async fn check_processes_share_one_sequence(url: &str, test_name: &str) {
    let store = open_control(url).await.unwrap_or_else(|e| panic!("opening the control store: {e}"));
    let record = RunStatusRecord::prepared(RunId::new(), "multi-process", 3);
    let run = record.run_id;
    store.create_run(&record).await.expect("creating the run");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let exe = std::env::current_exe().expect("the test binary");
    let mut children: Vec<std::process::Child> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
                .env(ENV_URL, url)
                .env(ENV_RUN, run.to_string())
                .env(ENV_INDEX, i.to_string())
                .env(ENV_DIR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting appending process {i}: {e}"))
        })
        .collect();
    let ready = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            wait_for_ready(&dir, &mut children);
            children
        }
    });
    let children = ready.await.expect("waiting for the processes");
    let start_at = unix_micros(SystemTime::now() + Duration::from_millis(300));
    let go = dir.path().join("go");
    std::fs::write(dir.path().join("go.tmp"), start_at.to_string()).expect("start file");
    std::fs::rename(dir.path().join("go.tmp"), &go).expect("start file");
    for (i, child) in children.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("waiting for a process")
            .expect("the process's output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "appending process {i} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let total = PROCESSES * EVENTS_PER_PROCESS;
    let events = store.events_since(run, 0).await.expect("reading the events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<u64>>(), "every sequence number exactly once, no gap");
    let mut by_process: BTreeMap<String, Vec<(u64, u32)>> = BTreeMap::new();
    for e in &events {
        let (EventScope::Worker(process), ControlEventKind::SetWorkerTarget { connections, .. }) =
            (&e.scope, &e.kind)
        else {
            panic!("an event no process appended: {e:?}");
        };
        by_process.entry(process.clone()).or_default().push((e.seq, *connections));
    }
    assert_eq!(by_process.len() as u64, PROCESSES, "events of every process: {:?}", by_process.keys());
    for (i, (process, appended)) in by_process.iter().enumerate() {
        let expected: Vec<u32> =
            (0..EVENTS_PER_PROCESS).map(|k| u32::try_from(i as u64 * 1000 + k).expect("small")).collect();
        let got: Vec<u32> = appended.iter().map(|(_, c)| *c).collect();
        assert_eq!(got, expected, "{process}'s events, in sequence order, are its appends in order");
    }
    // The processes really ran at once: their numbers interleave instead of forming one block
    // per process.
    let blocks = events.windows(2).filter(|w| w[0].scope != w[1].scope).count();
    assert!(blocks >= PROCESSES as usize, "the processes did not overlap: {blocks} changes of appender");
    let row = store.run(run).await.expect("reading the run").expect("the run exists");
    assert_eq!(row.last_event_seq, total, "last_event_seq");
    assert_eq!(row.version, total, "one compare-and-set per append");
}
