//! The history, run-detail and compare pages in headless Chromium, on runs made by the real
//! `bench` (the server's own `unistore-server worker bench`) into the server's own results
//! store: the rows show the stored figures, the filters filter, the tray picks two runs, the compare page shows the API's
//! numbers and draws its charts, the run page draws its charts; screenshots at a desktop and a
//! phone width.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::browser::{chromium, Browser};
use serde_json::Value;

/// One short run of the demo table into `results`, with `connections` connections.
async fn bench(results: &str, data_dir: &std::path::Path, connections: u32) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .arg("worker")
        .env("UNISTORE_DATA_DIR", data_dir)
        .env_remove("UNISTORE_TARGET")
        .env_remove("UNISTORE_RESULTS")
        .args(["bench", "--results", results, "--duration", "3s", "--warmup", "1s", "--connections"])
        .arg(connections.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn get_json(origin: &str, path: &str) -> Value {
    let res = reqwest::get(format!("{origin}{path}")).await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

/// A figure as the pages print it ("1,234.5" or "12.3 ms"), as a number.
fn figure(text: &str) -> f64 {
    text.trim().trim_end_matches("ms").trim().replace(',', "").parse().unwrap_or_else(|_| panic!("`{text}`"))
}

/// Canvases with drawn lines (coloured pixels, not only an empty frame), read from copies so
/// that the check itself logs no warning.
const DRAWN: &str = r#"(() => [...document.querySelectorAll('.uplot canvas')].filter(c => {
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(c, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let coloured = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) coloured++;
  }
  return coloured > 200;
}).length)()"#;

/// The legend labels of every chart on the page.
const LEGENDS: &str = r#"[...document.querySelectorAll('.uplot')].map(u =>
  [...u.querySelectorAll('.u-legend .u-series th .u-label')].map(l => l.textContent)
    .filter(t => !t.startsWith('seconds since')))"#;

/// Waits until a navigation the page started itself has reached `path` and loaded (an
/// evaluation during the navigation fails with a lost context: that is retried).
async fn arrive(browser: &Browser, path: &str) {
    let condition = format!("location.pathname === '{path}' && document.readyState === 'complete'");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(v) = browser.page.evaluate(condition.as_str()).await {
            if v.into_value::<bool>().unwrap_or(false) {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the page did not reach {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_compare_and_run_pages_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let data_dir = tempfile::tempdir().unwrap();
    let server = common::start_server(&[], None).await;
    let origin = format!("http://{}", server.addr);
    let results = format!("sqlite://{}/results.db", server._dir.path().display());

    bench(&results, data_dir.path(), 2).await;
    bench(&results, data_dir.path(), 4).await;
    let listed = get_json(&origin, "/api/results").await;
    let stored = listed["runs"].as_array().unwrap().clone();
    assert_eq!(stored.len(), 2, "{listed}");
    // Newest first: the 4-connection run, then the 2-connection one.
    let ids: Vec<String> = stored.iter().map(|r| r["run_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(stored[0]["connections"], 4);
    assert_eq!(stored[1]["connections"], 2);

    let browser = Browser::launch(&chromium).await;
    browser.goto(&format!("{origin}/history")).await;
    browser
        .wait_until(
            "document.querySelectorAll('#history-table tbody tr').length === 2",
            Duration::from_secs(10),
            "two rows",
        )
        .await;
    for run in &stored {
        let id = run["run_id"].as_str().unwrap();
        let ops: String = browser
            .eval(&format!("document.querySelector('tr[data-run=\"{id}\"] td.ops').textContent"))
            .await;
        assert_eq!(figure(&ops), run["ops"].as_f64().unwrap(), "ops of {id} on the page and in the store");
        let href: String = browser
            .eval(&format!("document.querySelector('tr[data-run=\"{id}\"] a.open').getAttribute('href')"))
            .await;
        assert_eq!(href, format!("/results/{id}"));
    }
    let count: String = browser.eval("document.querySelector('.pager .count').textContent").await;
    assert_eq!(count, "Runs 1–2 of 2");

    // Filters are a GET form: a status no run has lists nothing, COMPLETED lists both. (The
    // test opens the URL the form makes: a navigation started inside an evaluation would
    // destroy the context the evaluation runs in.)
    let (b, o) = (&browser, &origin);
    let submit = |status: &'static str| async move {
        let query: String = b
            .eval(&format!(
                "(() => {{ const f = document.getElementById('history-filters'); f.querySelector('#f-status').value = '{status}'; \
                 return new URLSearchParams(new FormData(f)).toString(); }})()"
            ))
            .await;
        b.goto(&format!("{o}/history?{query}")).await;
    };
    submit("FAILED").await;
    let empty: String = browser.eval("document.querySelector('.panel .empty').textContent").await;
    assert!(empty.contains("No runs match these filters"), "{empty}");
    submit("COMPLETED").await;
    let rows: usize = browser.eval("document.querySelectorAll('#history-table tbody tr').length").await;
    assert_eq!(rows, 2);
    let selected: String = browser.eval("document.getElementById('f-status').value").await;
    assert_eq!(selected, "COMPLETED", "the form shows the filter in use");

    // The tray: one run is not enough, two are; the older run (2 connections) is the baseline.
    let compare_disabled = || browser.eval::<bool>("document.getElementById('tray-compare').disabled");
    assert!(compare_disabled().await, "Compare is disabled with no run picked");
    browser
        .run(&format!("document.querySelector('tr[data-run=\"{}\"] input[type=checkbox]').click()", ids[1]))
        .await;
    assert!(compare_disabled().await, "Compare is disabled with one run");
    let hint: String = browser.eval("document.getElementById('tray-hint').textContent").await;
    assert!(hint.contains("pick at least 2"), "{hint}");
    browser
        .run(&format!("document.querySelector('tr[data-run=\"{}\"] input[type=checkbox]').click()", ids[0]))
        .await;
    assert!(!compare_disabled().await, "Compare is enabled with two runs");
    let chips: usize = browser.eval("document.querySelectorAll('#tray-runs li').length").await;
    assert_eq!(chips, 2);
    browser.screenshot("history").await;
    browser.set_width(400).await;
    assert!(!browser.overflows().await, "history overflows at 400 px");
    browser.screenshot("history-narrow").await;
    browser.set_width(1200).await;

    browser.run("document.getElementById('tray-compare').click()").await;
    arrive(&browser, "/compare").await;
    let search: String = browser.eval("location.search").await;
    assert_eq!(search, format!("?runs={},{}", ids[1], ids[0]));
    browser.wait_until(&format!("{DRAWN} >= 5"), Duration::from_secs(30), "five drawn charts").await;
    let api = get_json(&origin, &format!("/api/results/compare?runs={},{}", ids[1], ids[0])).await;
    let shown: Vec<String> = browser
        .eval("[...document.querySelectorAll('#compare-runs td.qps')].map(td => td.textContent)")
        .await;
    let api_qps: Vec<f64> =
        api["runs"].as_array().unwrap().iter().map(|r| r["qps"].as_f64().unwrap()).collect();
    assert_eq!(shown.len(), 2);
    for (text, qps) in shown.iter().zip(&api_qps) {
        assert!((figure(text) - qps).abs() < 0.051, "throughput {text} on the page, {qps} from the API");
    }
    // The statistics' TOTAL throughput row carries the comparison's values.
    let row = api["comparison"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"].is_null() && r["metric"] == "throughput")
        .unwrap()
        .clone();
    let cells: Vec<String> = browser
        .eval("[...document.querySelectorAll('#compare-statistics tr[data-kind=TOTAL][data-metric=\"ops/s\"] td.num')].map(td => td.textContent)")
        .await;
    assert!((figure(&cells[0]) - row["values"][0].as_f64().unwrap()).abs() < 0.051, "{cells:?} {row}");
    assert!((figure(&cells[1]) - row["values"][1].as_f64().unwrap()).abs() < 0.051, "{cells:?} {row}");
    let method: String = browser.eval("document.querySelector('p.method').textContent").await;
    assert_eq!(method, api["comparison"]["method"].as_str().unwrap());
    // Short runs: the comparison warns, and the page shows its warnings.
    for w in api["comparison"]["warnings"].as_array().unwrap() {
        let on_page: bool = browser
            .eval(&format!("document.getElementById('compare-warnings').textContent.includes({w})"))
            .await;
        assert!(on_page, "warning {w} is on the page");
    }
    let legends: Vec<Vec<String>> = browser.eval(LEGENDS).await;
    assert_eq!(legends.len(), 5);
    for l in &legends {
        assert_eq!(l.len(), 2, "{legends:?}");
        assert!(l[0].starts_with(&format!("baseline {}", &ids[1][..8])), "{l:?}");
        assert!(l[1].starts_with(&format!("run {}", &ids[0][..8])), "{l:?}");
    }
    browser.screenshot("compare").await;
    browser.set_width(400).await;
    assert!(!browser.overflows().await, "compare overflows at 400 px");
    browser.screenshot("compare-narrow").await;
    browser.set_width(1200).await;

    // One run's page: its figures and its charts.
    browser.goto(&format!("{origin}/results/{}", ids[0])).await;
    browser.wait_until(&format!("{DRAWN} >= 3"), Duration::from_secs(30), "three drawn charts").await;
    let ops: String = browser.eval("document.getElementById('card-ops').textContent").await;
    assert_eq!(figure(&ops), stored[0]["ops"].as_f64().unwrap());
    let qps: String = browser.eval("document.getElementById('card-qps').textContent").await;
    assert!((figure(&qps) - stored[0]["qps"].as_f64().unwrap()).abs() < 0.051);
    let total_ops: String =
        browser.eval("document.querySelector('table.kinds tr.total td:nth-child(2)').textContent").await;
    assert_eq!(figure(&total_ops), stored[0]["ops"].as_f64().unwrap());
    let legends: Vec<Vec<String>> = browser.eval(LEGENDS).await;
    assert_eq!(
        legends,
        vec![vec!["ok ops/s", "errors/s"], vec!["p50", "p95", "p99"], vec!["open", "asked for"]]
    );
    browser.screenshot("run-detail").await;
    browser.set_width(400).await;
    assert!(!browser.overflows().await, "run detail overflows at 400 px");
    browser.screenshot("run-detail-narrow").await;
    browser.set_width(1200).await;

    // Bad input: a clear message and the right status.
    // (Over plain HTTP: Chromium logs a console error for any 4xx page.)
    let (status, body) = common::http_get(&server.addr, &format!("/compare?runs={}", ids[0])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Pick 2 to 4 runs to compare; 1 was named."), "{body}");
    let unknown = unistore_core::RunId::new();
    let (status, body) = common::http_get(&server.addr, &format!("/compare?runs={},{unknown}", ids[0])).await;
    assert_eq!(status, 404);
    assert!(body.contains(&format!("Run {unknown} is not in the results store.")), "{body}");
    let (status, _) = common::http_get(&server.addr, "/compare").await;
    assert_eq!(status, 200, "without runs, the page explains how to pick them");
    let (status, body) = common::http_get(&server.addr, &format!("/results/{unknown}")).await;
    assert_eq!(status, 404);
    assert!(body.contains("href=\"/history\""), "the 404 page leads back to the history");
    let (status, body) = common::http_get(&server.addr, "/history?status=DONE").await;
    assert_eq!(status, 400);
    assert!(body.contains("`DONE` is not a run status"), "{body}");

    // Deleting a run from its page: the first click asks, the second removes it, and the
    // history no longer lists it (the other run stays).
    browser.goto(&format!("{origin}/results/{}", ids[0])).await;
    browser.run("document.getElementById('delete-run').click()").await;
    let asked: String = browser.eval("document.getElementById('delete-run').textContent").await;
    assert_eq!(asked, "Confirm delete");
    browser.run("document.getElementById('delete-run').click()").await;
    browser
        .wait_until("location.pathname === '/history'", Duration::from_secs(15), "the history after deleting")
        .await;
    let (status, _) = common::http_get(&server.addr, &format!("/api/results/{}", ids[0])).await;
    assert_eq!(status, 404, "the deleted run is gone");
    let (status, _) = common::http_get(&server.addr, &format!("/api/results/{}", ids[1])).await;
    assert_eq!(status, 200, "the other run stays");
    let listed: Vec<String> =
        browser.eval("[...document.querySelectorAll('tr[data-run]')].map(r => r.dataset.run)").await;
    assert_eq!(listed, vec![ids[1].clone()], "the history lists the other run only");
    let tray: usize = browser.eval("document.querySelectorAll('#tray-runs li').length").await;
    assert_eq!(tray, 1, "the deleted run left the compare tray");

    browser.assert_clean(&origin);
    browser.close().await;
}
