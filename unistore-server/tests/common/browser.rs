//! The UI's browser tests: the distribution's headless Chromium driven over CDP
//! (`chromiumoxide`). A [`Browser`] opens pages of a running server, records every console
//! problem and every request, waits for conditions evaluated in the page, and saves screenshots
//! under `target/ui-screenshots/`.
//!
//! Without Chromium a test calling [`chromium`] is skipped, unless `UNISTORE_REQUIRE_BROWSER`
//! is set (as `scripts/test` does), so that CI never passes it silently.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::browser::BrowserConfig;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures::StreamExt;
use parking_lot::Mutex;

/// The distribution's Chromium, or `None` (the caller skips) when it is missing and not required.
pub fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("UNISTORE_CHROMIUM").map(PathBuf::from);
    let found = from_env
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("UNISTORE_REQUIRE_BROWSER").is_none(),
            "UNISTORE_REQUIRE_BROWSER is set but Chromium is not installed (apt-get install -y chromium)"
        );
        eprintln!(
            "skipped: no Chromium (/usr/bin/chromium); set UNISTORE_REQUIRE_BROWSER to make this a failure"
        );
    }
    found
}

/// Where screenshots go: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the browser saw: console errors and warnings, exceptions, failed loads, and every URL
/// requested (HTTP and WebSocket).
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub problems: Vec<String>,
    pub requests: Vec<String>,
}

/// A headless Chromium and the one tab the test drives.
pub struct Browser {
    browser: chromiumoxide::Browser,
    handling: tokio::task::JoinHandle<()>,
    listening: tokio::task::JoinHandle<()>,
    pub page: Page,
    seen: Arc<Mutex<Seen>>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Launches Chromium (1200×900) with a fresh profile and opens a blank tab.
    pub async fn launch(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(chromium)
            .no_sandbox()
            .user_data_dir(profile.path())
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
        let (browser, mut handler) = chromiumoxide::Browser::launch(config).await.unwrap();
        let handling = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut console = page.event_listener::<EventConsoleApiCalled>().await.unwrap();
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut entries = page.event_listener::<EventEntryAdded>().await.unwrap();
        let mut requests = page.event_listener::<EventRequestWillBeSent>().await.unwrap();
        let s = seen.clone();
        let listening = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(e) = console.next() => {
                        if matches!(e.r#type, ConsoleApiCalledType::Error | ConsoleApiCalledType::Warning | ConsoleApiCalledType::Assert) {
                            let args: Vec<String> = e.args.iter().map(|a| format!("{:?}", a.value)).collect();
                            s.lock().problems.push(format!("console {:?}: {}", e.r#type, args.join(" ")));
                        }
                    }
                    Some(e) = exceptions.next() => s.lock().problems.push(format!("exception: {:?}", e.exception_details)),
                    Some(e) = entries.next() => {
                        if matches!(e.entry.level, LogEntryLevel::Warning | LogEntryLevel::Error) {
                            s.lock().problems.push(format!("log {:?}: {} {:?}", e.entry.level, e.entry.text, e.entry.url));
                        }
                    }
                    Some(e) = requests.next() => s.lock().requests.push(e.request.url.clone()),
                    else => break,
                }
            }
        });
        Browser { browser, handling, listening, page, seen, _profile: profile }
    }

    /// Navigates and waits for the load.
    pub async fn goto(&self, url: &str) {
        self.page.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.page.wait_for_navigation().await.unwrap();
    }

    /// Evaluates an expression (wrap statements in an IIFE) and deserializes its value.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, js: &str) -> T {
        self.page
            .evaluate(js)
            .await
            .unwrap_or_else(|e| panic!("evaluate {js}: {e}"))
            .into_value()
            .unwrap_or_else(|e| panic!("value of {js}: {e}"))
    }

    /// Runs a statement for its effect (a click, filling a field).
    pub async fn run(&self, js: &str) {
        self.page
            .evaluate(format!("(() => {{ {js}; return true; }})()"))
            .await
            .unwrap_or_else(|e| panic!("run {js}: {e}"));
    }

    /// Waits until `condition` (a JS expression) is truthy; panics with `what` and the page's
    /// text after `timeout`.
    pub async fn wait_until(&self, condition: &str, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            let ok: bool = self.eval(&format!("Boolean({condition})")).await;
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let text: String = self.eval("document.body ? document.body.innerText : ''").await;
                panic!("timed out waiting for {what} ({condition}); the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a full-page screenshot as `target/ui-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path).await.unwrap();
        path
    }

    /// Emulates a window `width` pixels wide (e.g. 400 for a phone), then lets the page lay out.
    pub async fn set_width(&self, width: i64) {
        self.page.execute(SetDeviceMetricsOverrideParams::new(width, 900, 1.0, false)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    /// Whether the page is wider than the window (a horizontal scroll bar).
    pub async fn overflows(&self) -> bool {
        self.eval("document.documentElement.scrollWidth > window.innerWidth + 1").await
    }

    /// What the browser saw so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().clone()
    }

    /// Asserts that no console problem was seen and that every request stayed on `origin`
    /// (`http://127.0.0.1:PORT`; the WebSocket's `ws://` on the same host and port counts).
    pub fn assert_clean(&self, origin: &str) {
        let seen = self.seen();
        assert!(seen.problems.is_empty(), "the browser reported {:#?}", seen.problems);
        let ws = origin.replacen("http://", "ws://", 1);
        let foreign: Vec<&String> = seen
            .requests
            .iter()
            .filter(|r| {
                !(r.starts_with(&format!("{origin}/"))
                    || r.starts_with(&format!("{ws}/"))
                    || r.starts_with("data:"))
            })
            .collect();
        assert!(foreign.is_empty(), "requests that left the server's origin: {foreign:#?}");
    }

    /// Closes the browser.
    pub async fn close(mut self) {
        self.browser.close().await.unwrap();
        let _ = self.browser.wait().await;
        self.listening.abort();
        self.handling.abort();
    }
}
