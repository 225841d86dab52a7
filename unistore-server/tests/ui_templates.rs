//! The templates pages in headless Chromium, against the real server binary: from the empty
//! list to a template for the demo table made through the form (with the mix error beside the
//! mix and nothing stored), its SQL preview, save, duplicate, delete, and a run started from the
//! list. Screenshots: `templates`, `template-edit`, `template-preview` and their 400 px variants.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::time::Duration;

use common::browser::{self, Browser};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

async fn api_get(addr: &str, path: &str) -> (u16, Value) {
    let (status, body) = common::http_get(addr, path).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn api_post(addr: &str, path: &str, body: &str) -> (u16, String) {
    common::http_request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

async fn stored_names(addr: &str) -> Vec<String> {
    let (status, list) = api_get(addr, "/api/templates").await;
    assert_eq!(status, 200, "{list}");
    let mut names: Vec<String> =
        list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

/// Sets a form field's value as a person typing would (input and change events).
async fn fill(b: &Browser, id: &str, value: &str) {
    let js = format!(
        "const e = document.getElementById({id}); e.value = {value}; \
         e.dispatchEvent(new Event('input', {{bubbles: true}})); e.dispatchEvent(new Event('change', {{bubbles: true}}))",
        id = serde_json::to_string(id).unwrap(),
        value = serde_json::to_string(value).unwrap()
    );
    b.run(&js).await;
}

async fn click(b: &Browser, selector: &str) {
    b.run(&format!("document.querySelector({}).click()", serde_json::to_string(selector).unwrap())).await;
}

/// Clicks something that loads another page, and waits for `path` to be shown.
async fn click_and_land(b: &Browser, selector: &str, condition: &str, what: &str) {
    click(b, selector).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.wait_until(&format!("document.readyState === 'complete' && ({condition})"), WAIT, what).await;
}

async fn narrow_screenshot(b: &Browser, name: &str) {
    b.set_width(400).await;
    b.screenshot(name).await;
    assert!(!b.overflows().await, "{name}: the page is wider than a 400 px window");
    b.set_width(1200).await;
}

fn text_of(selector: &str) -> String {
    format!(
        "(document.querySelector({}) || {{textContent: ''}}).textContent",
        serde_json::to_string(selector).unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_made_previewed_saved_duplicated_deleted_and_run_from_the_pages() {
    let Some(chromium) = browser::chromium() else { return };
    let data = tempfile::tempdir().unwrap();
    // The demo database lives in the data directory the server (and its workers) inherit.
    std::env::set_var("UNISTORE_DATA_DIR", data.path());
    let server = common::start_server(&["--no-demo"], None).await;
    let addr = server.addr.clone();
    let origin = format!("http://{addr}");
    let b = Browser::launch(&chromium).await;

    // The empty list tells a newcomer what to do.
    b.goto(&format!("{origin}/templates")).await;
    b.wait_until("document.getElementById('templates-empty')", WAIT, "the empty state").await;
    let empty: String = b.eval(&text_of("#templates-empty")).await;
    assert!(empty.contains("No templates yet") && empty.contains("demo_orders"), "{empty}");
    b.screenshot("templates-empty").await;

    // The form, filled for the demo table with a mix of 90 %.
    click_and_land(&b, "#new-template", "location.pathname === '/templates/new'", "the new-template form")
        .await;
    let table: String = b.eval("document.getElementById('f-table').value").await;
    assert_eq!(table, "demo_orders", "the form starts on the demo table");
    let target: String = b.eval("document.getElementById('f-target').value").await;
    assert_eq!(target, "connection:demo", "the form starts on the built-in demo connection");
    fill(&b, "f-name", "demo reads").await;
    fill(&b, "mix-POINT_LOOKUP", "70").await;
    fill(&b, "mix-RANGE_SCAN", "20").await;
    fill(&b, "f-connections", "2").await;
    fill(&b, "f-warmup", "1s").await;
    fill(&b, "f-measurement", "30s").await;
    fill(&b, "f-seed", "42").await;
    let mix_error: String = b.eval(&text_of("#err-mix")).await;
    assert!(mix_error.contains("90%"), "the live sum complains beside the mix: {mix_error:?}");
    let sum: String = b.eval(&text_of("#mix-sum")).await;
    assert_eq!(sum, "90%");
    click(&b, "#save-button").await;
    b.wait_until("!document.getElementById('form-notice').hidden", WAIT, "the form's notice").await;
    let invalid: bool = b.eval("document.getElementById('mix-field').classList.contains('invalid')").await;
    assert!(invalid, "the mix is marked");
    b.screenshot("template-edit-mix-error").await;
    assert!(stored_names(&addr).await.is_empty(), "a bad template is not stored");

    fill(&b, "mix-RANGE_SCAN", "30").await;
    let mix_error: String = b.eval(&text_of("#err-mix")).await;
    assert_eq!(mix_error, "", "the mix error clears once the sum is 100");
    b.screenshot("template-edit").await;

    // The SQL preview: the statements the run would execute on the demo table.
    click(&b, "#preview-button").await;
    b.wait_until(
        "document.querySelectorAll('#preview-body pre.sql').length === 2",
        WAIT,
        "the rendered statements",
    )
    .await;
    let sql: Vec<String> =
        b.eval("[...document.querySelectorAll('#preview-body pre.sql')].map(p => p.textContent)").await;
    assert!(sql[0].starts_with("SELECT") && sql[0].contains("\"demo_orders\""), "{sql:?}");
    assert!(sql[1].contains(">=") && sql[1].contains("LIMIT"), "a range scan: {sql:?}");
    let facts: String = b.eval(&text_of("#preview-body .preview-facts")).await;
    assert!(facts.contains("100,000") && facts.contains("sqlite"), "{facts}");
    b.screenshot("template-preview").await;
    narrow_screenshot(&b, "template-preview-narrow").await;

    // Save: back on the list, which shows it.
    click_and_land(&b, "#save-button", "location.pathname === '/templates'", "the list after saving").await;
    b.wait_until("document.querySelectorAll('#templates-table tbody tr').length === 1", WAIT, "one row")
        .await;
    assert_eq!(stored_names(&addr).await, ["demo reads"]);
    let row: String = b.eval(&text_of("#templates-table tbody tr")).await;
    assert!(row.contains("70% point lookup, 30% range scan") && row.contains("2 connections"), "{row}");
    let (_, stored) = api_get(&addr, "/api/templates/demo_reads").await;
    assert_eq!(stored["template"]["seed"], 42, "{stored}");
    assert_eq!(stored["template"]["phases"]["measurement"], "30s", "{stored}");

    // Duplicate, then delete the copy (two clicks: the first asks).
    click_and_land(
        &b,
        "tr[data-id='demo_reads'] button[data-action='duplicate']",
        "document.querySelectorAll('#templates-table tbody tr').length === 2",
        "the copy",
    )
    .await;
    assert_eq!(stored_names(&addr).await, ["demo reads", "demo reads (copy)"]);
    b.screenshot("templates").await;
    narrow_screenshot(&b, "templates-narrow").await;
    click(&b, "tr[data-id='demo_reads__copy_'] button[data-action='delete']").await;
    let asking: String =
        b.eval(&text_of("tr[data-id='demo_reads__copy_'] button[data-action='delete']")).await;
    assert_eq!(asking, "Really delete?");
    assert_eq!(stored_names(&addr).await.len(), 2, "one click deletes nothing");
    click_and_land(
        &b,
        "tr[data-id='demo_reads__copy_'] button[data-action='delete']",
        "document.querySelectorAll('#templates-table tbody tr').length === 1",
        "the copy gone",
    )
    .await;
    assert_eq!(stored_names(&addr).await, ["demo reads"]);

    // The edit form shows what is stored.
    b.goto(&format!("{origin}/templates/demo_reads/edit")).await;
    b.wait_until("document.getElementById('f-name').value === 'demo reads'", WAIT, "the edit form").await;
    let pl: String = b.eval("document.getElementById('mix-POINT_LOOKUP').value").await;
    assert_eq!(pl, "70");
    narrow_screenshot(&b, "template-edit-narrow").await;
    b.assert_clean(&origin);

    // Run from the list: a run is created and started, and the browser lands on its page.
    b.goto(&format!("{origin}/templates")).await;
    click(&b, "tr[data-id='demo_reads'] button[data-action='run']").await;
    // The live page of the run opens and receives the run's figures.
    let run_page = format!("{origin}/runs/");
    b.wait_until(&format!("location.href.startsWith('{run_page}')"), WAIT, "the run's page").await;
    let href: String = b.eval("location.href").await;
    let path = href[origin.len()..].to_string();
    b.wait_until("Number(document.body.dataset.updates || 0) >= 1", WAIT, "a live update on the run's page")
        .await;
    let run_id = path.trim_start_matches("/runs/").to_string();
    let (status, run) = api_get(&addr, &format!("/api/runs/{run_id}")).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["template_name"], "demo reads", "{run}");
    let state = run["status"].as_str().unwrap().to_string();
    assert!(["STARTING", "RUNNING"].contains(&state.as_str()), "the run was started: {run}");
    let (status, body) = api_post(&addr, &format!("/api/runs/{run_id}/stop"), "{}").await;
    assert_eq!(status, 200, "{body}");
    b.assert_clean(&origin);
    b.close().await;

    // A mistake only the server knows (more connections than the limit) is shown beside its
    // field, and the stored template is unchanged. A second browser: its failed save is the
    // one problem it reports.
    let b = Browser::launch(&chromium).await;
    b.goto(&format!("{origin}/templates/demo_reads/edit")).await;
    b.wait_until("document.getElementById('f-name').value === 'demo reads'", WAIT, "the edit form").await;
    fill(&b, "f-connections", "99999999").await;
    click(&b, "#save-button").await;
    b.wait_until(
        &format!("{}.includes('limit')", text_of("#err-connections")),
        WAIT,
        "the server's error beside connections",
    )
    .await;
    let invalid: bool = b
        .eval("document.querySelector('.field[data-field=connections]').classList.contains('invalid')")
        .await;
    assert!(invalid);
    let (_, stored) = api_get(&addr, "/api/templates/demo_reads").await;
    assert_eq!(stored["version"], 1, "nothing stored: {stored}");
    assert_eq!(stored["template"]["load"]["connections"], 2, "{stored}");
    let problems = b.seen().problems;
    assert!(problems.len() <= 2 && problems.iter().any(|p| p.contains("400")), "{problems:#?}");
    b.close().await;
}
