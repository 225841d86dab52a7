//! The Connections page in headless Chromium against the real server: add a connection to the
//! test PostgreSQL through the form and test it (ok, with the server's version), add one on a
//! closed port and see its error, a form error beside its field, remove one; screenshots wide
//! and narrow; nothing leaves the server's origin and the console stays clean.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::time::Duration;

use common::browser::{self, Browser};

const SECRET: &str = "ui-pw-K7-never-shown";

fn pg_url() -> String {
    let base = std::env::var("UNISTORE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let mut url = url::Url::parse(&base).expect("UNISTORE_TEST_PG_URL is a URL");
    url.set_path("/postgres");
    url.set_query(None);
    url.to_string()
}

/// Fills the add form and submits it.
async fn add(b: &Browser, name: &str, url: &str, secret: &str) {
    let js = format!(
        "(() => {{ const f = document.getElementById('add-connection');
            f.elements.name.value = {name:?}; f.elements.url.value = {url:?}; f.elements.secret.value = {secret:?};
            f.requestSubmit(); }})()"
    );
    b.run(&js).await;
}

fn row(id: &str) -> String {
    format!("document.querySelector('#connections tr[data-id=\"{id}\"]')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_test_and_remove_connections_in_the_browser() {
    let Some(chromium) = browser::chromium() else { return };
    let data = tempfile::tempdir().unwrap();
    std::env::set_var("UNISTORE_DATA_DIR", data.path());
    let server = common::start_server(&[], None).await;
    let origin = format!("http://{}", server.addr);
    let b = Browser::launch(&chromium).await;
    b.goto(&format!("{origin}/connections")).await;

    // Rendered on the server: the demo row, the form with a password field.
    let title: String = b.eval("document.title").await;
    assert!(title.starts_with("Connections"), "{title}");
    let rows: u32 = b.eval("document.querySelectorAll('#connections tbody tr').length").await;
    assert_eq!(rows, 1);
    let demo_remove: bool = b.eval(&format!("!!{}.querySelector('button.remove')", row("demo"))).await;
    assert!(!demo_remove, "the demo cannot be removed");
    let kind: String = b.eval("document.getElementById('conn-secret').type").await;
    assert_eq!(kind, "password");

    // A form error beside its field, before any request.
    add(&b, "", "", "").await;
    let name_error: String = b.eval("document.getElementById('error-name').textContent").await;
    assert!(name_error.contains("name"), "{name_error}");
    let invalid: bool = b.eval("document.getElementById('field-url').classList.contains('invalid')").await;
    assert!(invalid);

    // The test PostgreSQL, password in its field: added, listed, tested.
    add(&b, "Local PG", &pg_url(), SECRET).await;
    b.wait_until(&row("local-pg"), Duration::from_secs(10), "the new row").await;
    let cleared: String = b.eval("document.getElementById('conn-secret').value").await;
    assert_eq!(cleared, "", "the password field is cleared after adding");
    let shown: String = b.eval(&format!("{}.querySelector('td.url').textContent", row("local-pg"))).await;
    assert_eq!(shown, pg_url());
    let secret_badge: String =
        b.eval(&format!("{}.querySelector('td.secret').textContent", row("local-pg"))).await;
    assert_eq!(secret_badge, "stored, encrypted");
    b.run(&format!("{}.querySelector('button.test').click()", row("local-pg"))).await;
    b.wait_until(
        &format!("{}.querySelector('.test-result .version')", row("local-pg")),
        Duration::from_secs(20),
        "the test result",
    )
    .await;
    let version: String =
        b.eval(&format!("{}.querySelector('.test-result .version').textContent", row("local-pg"))).await;
    assert!(version.starts_with("PostgreSQL "), "{version}");
    let latency: String =
        b.eval(&format!("{}.querySelector('.test-result .latency').textContent", row("local-pg"))).await;
    assert!(latency.ends_with(" ms") || latency.ends_with(" s"), "{latency}");

    // A closed port: added, and its test fails with the backend's message beside the row.
    add(&b, "Closed port", "postgres://postgres@127.0.0.1:1/postgres", "").await;
    b.wait_until(&row("closed-port"), Duration::from_secs(10), "the second row").await;
    b.run(&format!("{}.querySelector('button.test').click()", row("closed-port"))).await;
    b.wait_until(
        &format!("{}.querySelector('.test-result .message')", row("closed-port")),
        Duration::from_secs(20),
        "the failed test",
    )
    .await;
    let message: String =
        b.eval(&format!("{}.querySelector('.test-result .message').textContent", row("closed-port"))).await;
    assert!(message.contains("127.0.0.1:1") || message.contains("refused"), "{message}");
    let verdict: String =
        b.eval(&format!("{}.querySelector('.test-result .badge').textContent", row("closed-port"))).await;
    assert_eq!(verdict, "failed");

    // A third one to remove (two clicks: the first asks for confirmation).
    add(&b, "Scratch", "sqlite:///tmp/unistore-ui-scratch.db", "").await;
    b.wait_until(&row("scratch"), Duration::from_secs(10), "the third row").await;
    b.screenshot("connections").await;
    b.run(&format!("{}.querySelector('button.remove').click()", row("scratch"))).await;
    let asking: String =
        b.eval(&format!("{}.querySelector('button.remove').textContent", row("scratch"))).await;
    assert_eq!(asking, "Confirm remove");
    b.run(&format!("{}.querySelector('button.remove').click()", row("scratch"))).await;
    b.wait_until(&format!("!{}", row("scratch")), Duration::from_secs(10), "the row to go").await;

    // The page as rendered after a reload: what the API stores, no password anywhere.
    b.goto(&format!("{origin}/connections")).await;
    let ids: Vec<String> =
        b.eval("[...document.querySelectorAll('#connections tbody tr')].map(r => r.dataset.id)").await;
    assert_eq!(ids, ["demo", "local-pg", "closed-port"]);
    let html: String = b.eval("document.documentElement.outerHTML").await;
    assert!(!html.contains(SECRET), "the password is in the page");

    b.set_width(400).await;
    b.run(&format!("{}.querySelector('button.test').click()", row("closed-port"))).await;
    b.wait_until(
        &format!("{}.querySelector('.test-result .message')", row("closed-port")),
        Duration::from_secs(20),
        "the failed test, narrow",
    )
    .await;
    assert!(!b.overflows().await, "the page is wider than a 400 px window");
    b.screenshot("connections-narrow").await;
    b.assert_clean(&origin);
    b.close().await;
    assert!(!server.log().contains(SECRET), "the password is in the server log");
}
