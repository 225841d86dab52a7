//! `unistore-worker report --html` end to end: two real runs on the embedded demo database, a
//! report of one and of both, each opened in the distribution's headless Chromium, which must
//! show it with no console error, no exception and no request but the file itself, and draw
//! every chart. Screenshots are saved under `target/` to be looked at.
//!
//! Without Chromium the test is skipped, unless `UNISTORE_REQUIRE_BROWSER` is set (as
//! `scripts/test` does), so that CI never passes it silently.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use parking_lot::Mutex;
use support::{bench, results_url, run_id_of, summaries, text, worker};

/// The distribution's Chromium, if installed.
fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("UNISTORE_CHROMIUM").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Where screenshots go: the workspace's `target/`.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf()
}

fn report(data: &Path, html: &Path, runs: &[&str]) -> std::process::Output {
    worker(data).arg("report").args(runs).arg("--html").arg(html).output().unwrap()
}

/// What the browser saw of one page.
#[derive(Debug, Default)]
struct PageLog {
    problems: Vec<String>,
    requests: Vec<String>,
}

/// What the page shows, read by a script in it.
#[derive(Debug, serde::Deserialize)]
struct Shown {
    charts: usize,
    uplots: usize,
    canvases: usize,
    /// Canvases with at least this many drawn pixels (lines, not only an empty frame).
    drawn: usize,
    total_ops: Vec<String>,
    overflow: bool,
}

const INSPECT: &str = r#"(() => {
  const canvases = [...document.querySelectorAll('.uplot canvas')];
  const drawn = canvases.filter(c => {
    // Read from a copy made for reading, so that the check itself draws no console warning.
    const copy = document.createElement('canvas');
    copy.width = c.width;
    copy.height = c.height;
    const ctx = copy.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(c, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0 && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) coloured++;
    }
    return coloured > 200;
  }).length;
  return {
    charts: Number(document.body.dataset.charts || 0),
    uplots: document.querySelectorAll('.uplot').length,
    canvases: canvases.length,
    drawn,
    total_ops: [...document.querySelectorAll('table.kinds tr.total td:nth-child(2)')].map(td => td.textContent.trim()),
    overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
  };
})()"#;

/// Opens `html` in the browser, checks what it logged and requested, and saves screenshots at
/// a desktop width and at a phone's.
async fn open(browser: &Browser, html: &Path, screenshot: &str) -> (Shown, Shown, PageLog) {
    let url = format!("file://{}", html.display());
    let page = browser.new_page("about:blank").await.unwrap();
    let log = Arc::new(Mutex::new(PageLog::default()));
    let mut console = page.event_listener::<EventConsoleApiCalled>().await.unwrap();
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut entries = page.event_listener::<EventEntryAdded>().await.unwrap();
    let mut requests = page.event_listener::<EventRequestWillBeSent>().await.unwrap();
    let l = log.clone();
    let listening = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(e) = console.next() => {
                    if matches!(e.r#type, ConsoleApiCalledType::Error | ConsoleApiCalledType::Warning | ConsoleApiCalledType::Assert) {
                        let args: Vec<String> = e.args.iter().map(|a| format!("{:?}", a.value)).collect();
                        l.lock().problems.push(format!("console {:?}: {}", e.r#type, args.join(" ")));
                    }
                }
                Some(e) = exceptions.next() => {
                    l.lock().problems.push(format!("exception: {:?}", e.exception_details));
                }
                Some(e) = entries.next() => {
                    if matches!(e.entry.level, LogEntryLevel::Warning | LogEntryLevel::Error) {
                        l.lock().problems.push(format!("log {:?}: {} {:?}", e.entry.level, e.entry.text, e.entry.url));
                    }
                }
                Some(e) = requests.next() => l.lock().requests.push(e.request.url.clone()),
                else => break,
            }
        }
    });
    page.goto(url.as_str()).await.unwrap();
    let wide: Shown = page.evaluate(INSPECT).await.unwrap().into_value().unwrap();
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        target_dir().join(format!("{screenshot}.png")),
    )
    .await
    .unwrap();
    page.execute(SetDeviceMetricsOverrideParams::new(400, 800, 1.0, true)).await.unwrap();
    // The charts follow the window's width after a short debounce.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let narrow: Shown = page.evaluate(INSPECT).await.unwrap().into_value().unwrap();
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        target_dir().join(format!("{screenshot}-narrow.png")),
    )
    .await
    .unwrap();
    // Late events (a failed request is logged after the load) have time to arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    page.close().await.unwrap();
    listening.abort();
    let log = std::mem::take(&mut *log.lock());
    (wide, narrow, log)
}

fn check_page(what: &str, html: &Path, shown: &Shown, log: &PageLog, charts: usize) {
    let url = format!("file://{}", html.display());
    assert!(log.problems.is_empty(), "{what}: the browser reported {:#?}", log.problems);
    assert!(
        log.requests.iter().all(|r| *r == url),
        "{what}: requests other than the file itself: {:#?}",
        log.requests
    );
    assert_eq!(shown.charts, charts, "{what}: charts drawn by the script: {shown:?}");
    assert_eq!(shown.uplots, charts, "{what}: uPlot roots: {shown:?}");
    assert!(shown.canvases >= charts, "{what}: a canvas per chart: {shown:?}");
    assert_eq!(shown.drawn, charts, "{what}: every chart has lines on it: {shown:?}");
    assert!(!shown.overflow, "{what}: the page is wider than the window: {shown:?}");
}

#[test]
fn report_opens_in_a_headless_browser_with_charts_and_no_network() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("UNISTORE_REQUIRE_BROWSER").is_none(),
            "UNISTORE_REQUIRE_BROWSER is set but Chromium is not installed (apt-get install -y chromium)"
        );
        eprintln!(
            "skipped: no Chromium (/usr/bin/chromium); set UNISTORE_REQUIRE_BROWSER to make this a failure"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut ids = Vec::new();
    for connections in ["2", "4"] {
        let out =
            bench(data, &["--duration", "3s", "--warmup", "1s", "--connections", connections, "--seed", "7"]);
        assert!(out.status.success(), "bench: {}{}", text(&out.stdout), text(&out.stderr));
        ids.push(run_id_of(&text(&out.stderr)));
    }
    let (first, _) = summaries(data, ids[0], &[]);
    let (second, _) = summaries(data, ids[1], &[]);
    let (a, b) = (ids[0].to_string(), ids[1].to_string());

    // Bad input: one line, exit 2, nothing written.
    let missing = dir.path().join("nothing.html");
    let unknown = unistore_core::RunId::new().to_string();
    let out = report(data, &missing, &[&unknown]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "error: run {unknown} is not in the results store {}: list runs with `unistore-worker runs` (or pass \
             --results for another store)",
            results_url(data)
        )
    );
    assert!(!missing.exists());
    let out = report(data, &dir.path().join("no/such/dir/r.html"), &[&a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: cannot write "), "{}", text(&out.stderr));
    // A run still going: its row as `bench` writes it before the load.
    let running = support::runtime().block_on(async {
        let store = unistore_adapters::open_results(&results_url(data)).await.unwrap();
        let mut record = store.reader.run_record(ids[0], None).await.unwrap().unwrap();
        record.run_id = unistore_core::RunId::new();
        record.started_at = chrono::Utc::now();
        record.planned_end_at = record.started_at + chrono::Duration::hours(1);
        store.sink.begin_run(&record).await.unwrap();
        record.run_id.to_string()
    });
    let out = report(data, &missing, &[&a, &running]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("error: run {running} is still RUNNING: wait until it has finished (or stop it)")
    );
    assert!(!missing.exists());

    let one = dir.path().join("one.html");
    let out = report(data, &one, &[&a]);
    assert!(out.status.success(), "report: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), one.display().to_string());
    let both = dir.path().join("both.html");
    let out = report(data, &both, &[&a, &b]);
    assert!(out.status.success(), "report: {}", text(&out.stderr));
    for html in [&one, &both] {
        let page = std::fs::read_to_string(html).unwrap();
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "{}: names an address",
            html.display()
        );
        assert!(!page.contains("src=") && !page.contains("<link"), "{}: loads a resource", html.display());
    }

    let browser_dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let ((one_wide, one_narrow, one_log), (both_wide, both_narrow, both_log)) = runtime.block_on(async {
        let config = BrowserConfig::builder()
            .chrome_executable(&chromium)
            .no_sandbox()
            .user_data_dir(browser_dir.path())
            .viewport(Viewport {
                width: 1200,
                height: 900,
                device_scale_factor: Some(1.0),
                ..Viewport::default()
            })
            .window_size(1200, 900)
            // The flags of TESTING.md: no background traffic into the closed network.
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ])
            .build()
            .unwrap();
        let (mut browser, mut handler) = Browser::launch(config).await.unwrap();
        let handling = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let one = open(&browser, &one, "report-screenshot").await;
        let both = open(&browser, &both, "report-screenshot-two-runs").await;
        browser.close().await.unwrap();
        let _ = browser.wait().await;
        handling.abort();
        (one, both)
    });

    // One run: throughput, latency and connections.
    check_page("one run", &one, &one_wide, &one_log, 3);
    check_page("one run, narrow", &one, &one_narrow, &PageLog::default(), 3);
    assert_eq!(one_wide.total_ops, vec![first.total.ops.to_string()]);
    // Two runs: each run's three, and six overlaid (throughput, errors, p50, p95, p99,
    // connections).
    check_page("two runs", &both, &both_wide, &both_log, 12);
    check_page("two runs, narrow", &both, &both_narrow, &PageLog::default(), 12);
    assert_eq!(both_wide.total_ops, vec![first.total.ops.to_string(), second.total.ops.to_string()]);
}
