//! Who may talk to the controller: the token (header or cookie, `/login`), same-origin checks
//! on changes and WebSockets, the loopback `Host` rule, and the binary's refusal to listen
//! beyond loopback without a token. The router is called with `oneshot` (no sockets), except for
//! the binary's start-up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;
use unistore_server::{protect, router, Access, AppState};

const TOKEN: &str = "s3cret-token-0123456789";

async fn app(access: Access) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/results.db", dir.path().display());
    let results = unistore_adapters::open_results(&url).await.unwrap();
    let state = AppState {
        results,
        results_kind: "sqlite".into(),
        orchestrator: None,
        live: Default::default(),
        connections: Default::default(),
    };
    (protect(router(state), access), dir)
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::builder().uri(path).header(header::HOST, "127.0.0.1:8080")
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn error_kind(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON error body: {body}"));
    v["error"]["kind"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn with_a_token_every_api_call_page_and_socket_needs_it() {
    let (app, _dir) = app(Access::with_token(TOKEN).unwrap()).await;

    // API without a token, with a wrong one, with the right one (header, cookie).
    let (status, headers, body) = call(&app, get("/api/templates").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_kind(&body), "unauthorized");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = get("/api/templates").header(header::AUTHORIZATION, "Bearer s3cret-token-0123456780");
    let (status, _, body) = call(&app, wrong.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("the token is wrong") && !body.contains(TOKEN), "{body}");
    let right = get("/api/templates").header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    let (status, _, body) = call(&app, right.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "[]");
    let cookie = get("/healthz").header(header::COOKIE, format!("theme=dark; unistore_token={TOKEN}"));
    assert_eq!(call(&app, cookie.body(Body::empty()).unwrap()).await.0, StatusCode::OK);

    // The WebSocket and the health check are not open either.
    let ws = get("/ws/test/00000000-0000-0000-0000-000000000000")
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(call(&app, ws.body(Body::empty()).unwrap()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, get("/healthz").body(Body::empty()).unwrap()).await.0, StatusCode::UNAUTHORIZED);

    // A browser asking for a page is sent to the login form; the assets stay reachable.
    let page = get("/templates").header(header::ACCEPT, "text/html,application/xhtml+xml");
    let (status, headers, _) = call(&app, page.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    let (status, _, form) = call(&app, get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"name="token""#), "{form}");
    assert_eq!(call(&app, get("/assets/app.css").body(Body::empty()).unwrap()).await.0, StatusCode::OK);

    // Logging in: a wrong token says so on the form; the right one sets a strict cookie.
    let login = |token: &str| {
        get("/login")
            .method("POST")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let (status, headers, page) = call(&app, login("nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("not the controller&#39;s token") || page.contains("not the controller's token"),
        "{page}"
    );
    assert!(headers.get(header::SET_COOKIE).is_none());
    let (status, headers, _) = call(&app, login(TOKEN)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with(&format!("unistore_token={TOKEN};")), "{set}");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
}

#[tokio::test]
async fn changes_and_sockets_from_another_origin_are_refused() {
    let (app, _dir) = app(Access::loopback()).await;
    let post = |origin: Option<&str>| {
        let mut b = get("/api/templates").method("POST").header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Body::from(r#"{"id": "t1", "template": {"table": "t", "mix": {"POINT_LOOKUP": 100}}}"#))
            .unwrap()
    };
    let (status, _, body) = call(&app, post(Some("http://evil.example"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_kind(&body), "forbidden");
    assert!(body.contains("http://evil.example"), "{body}");
    // Nothing was stored by the refused request.
    let (_, _, list) = call(&app, get("/api/templates").body(Body::empty()).unwrap()).await;
    assert_eq!(list, "[]");
    // The same origin, and a client that sends no Origin (curl, a worker), pass the check.
    let (status, _, body) = call(&app, post(Some("http://127.0.0.1:8080"))).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = call(&app, post(None)).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{body}");
    // A cross-site WebSocket is refused even though it is a GET.
    let ws = get("/ws/test/00000000-0000-0000-0000-000000000000")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::UPGRADE, "websocket");
    assert_eq!(call(&app, ws.body(Body::empty()).unwrap()).await.0, StatusCode::FORBIDDEN);
    // A plain GET from another origin's page (a link, an image) reads nothing that changes
    // anything and is not refused.
    let link = get("/api/templates").header(header::ORIGIN, "http://evil.example");
    assert_eq!(call(&app, link.body(Body::empty()).unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn without_a_token_only_loopback_host_names_are_served() {
    let (app, _dir) = app(Access::loopback()).await;
    for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
        let r = Request::builder().uri("/healthz").header(header::HOST, host).body(Body::empty()).unwrap();
        assert_eq!(call(&app, r).await.0, StatusCode::OK, "{host}");
    }
    // A name rebound to 127.0.0.1 by another site's DNS.
    let r = Request::builder()
        .uri("/healthz")
        .header(header::HOST, "rebind.evil.example:8080")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&app, r).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("rebind.evil.example"), "{body}");
}

#[test]
fn the_binary_refuses_to_listen_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .args(["--listen", "0.0.0.0:0"])
        .env("UNISTORE_DATA_DIR", dir.path())
        .env_remove("UNISTORE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set UNISTORE_TOKEN"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was served: {}", String::from_utf8_lossy(&out.stdout));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unistore-server"))
        .args(["--listen", "0.0.0.0:0"])
        .env("UNISTORE_DATA_DIR", dir.path())
        .env("UNISTORE_TOKEN", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16"));
}
