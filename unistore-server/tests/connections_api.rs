//! The stored-connections API: every route through `Router::oneshot` (no sockets), against the
//! real PostgreSQL of the test setup (`UNISTORE_TEST_PG_URL`, trust auth, `pgbench_accounts`
//! in the database `postgres`); and a run through a stored connection end to end with the real
//! server binary and its worker processes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;
use unistore_server::connections::ConnectionStore;
use unistore_server::{router, AppState};

const SECRET: &str = "pw-Zq81-never-shown";

/// The test server's database `postgres` (where the pgbench tables are).
fn pg_url() -> String {
    let base = std::env::var("UNISTORE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let mut url = url::Url::parse(&base).expect("UNISTORE_TEST_PG_URL is a URL");
    url.set_path("/postgres");
    url.set_query(None);
    url.to_string()
}

/// `pg_url()` with `password` in it.
fn with_password(url: &str, password: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_password(Some(password)).unwrap();
    url.to_string()
}

async fn app(dir: &Path, key: Option<&str>) -> Router {
    let results = unistore_adapters::open_results(&format!("sqlite://{}/results.db", dir.display()))
        .await
        .expect("results store opens");
    let key = key.map(str::to_string);
    let env = move |name: &str| if name == "UNISTORE_SECRET_KEY" { key.clone() } else { None };
    let connections = ConnectionStore::open_with_env(dir, &env).expect("the connections open");
    router(AppState {
        results,
        results_kind: "sqlite".into(),
        orchestrator: None,
        live: Default::default(),
        connections: Arc::new(connections),
    })
}

/// Every response body seen, to search for the secret at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn call(
        &mut self,
        app: &Router,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).to_string();
        self.0.push(text.clone());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn raw(&mut self, app: &Router, path: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        self.0.push(String::from_utf8_lossy(&bytes).to_string());
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, kind: &str, words: &[&str]) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["kind"], kind, "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    for w in words {
        assert!(message.contains(w), "`{w}` missing in: {message}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_good_and_bad_input_and_no_secret_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), None).await;
    let mut seen = Seen::default();

    // The demo is always there, first, and cannot go.
    let (status, list) = seen.call(&app, Method::GET, "/api/connections", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "demo");
    assert_eq!(list[0]["builtin"], true);
    assert_eq!(list[0]["kind"], "sqlite");
    assert_eq!(list[0]["url"], format!("sqlite://{}", dir.path().join("demo.db").display()));
    let (status, body) = seen.call(&app, Method::DELETE, "/api/connections/demo", None).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", &["demo", "built in"]);

    // A password in the URL leaves it and is stored sealed.
    let pg = pg_url();
    let (status, created) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "Test PG", "url": with_password(&pg, SECRET)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "test-pg");
    assert_eq!(created["kind"], "postgres");
    assert_eq!(created["url"], pg.as_str());
    assert_eq!(created["has_secret"], true);
    assert_eq!(created["builtin"], false);
    assert!(created["created_at"].as_str().unwrap().contains('T'));
    let (status, one) = seen.call(&app, Method::GET, "/api/connections/test-pg", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, created);
    let (_, list) = seen.call(&app, Method::GET, "/api/connections", None).await;
    assert_eq!(
        list.as_array().unwrap().iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
        vec!["demo", "test-pg"]
    );

    // The test really connects: PostgreSQL answers with its version.
    let (status, result) = seen.call(&app, Method::POST, "/api/connections/test-pg/test", None).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["ok"], true, "{result}");
    assert!(result["server_version"].as_str().unwrap().starts_with("PostgreSQL "), "{result}");
    let latency = result["latency_ms"].as_f64().unwrap();
    assert!(latency > 0.0 && latency < 20_000.0, "{result}");

    // The demo database is created on first test and answers.
    let (_, demo) = seen.call(&app, Method::POST, "/api/connections/demo/test", None).await;
    assert_eq!(demo["ok"], true, "{demo}");
    assert!(demo["server_version"].as_str().unwrap().starts_with("SQLite 3."), "{demo}");

    // The password in its own field, and connections that cannot log in.
    let mut ghost = url::Url::parse(&pg).unwrap();
    ghost.set_username("no_such_role_ut").unwrap();
    let (status, c) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "ghost", "url": ghost.as_str(), "secret": SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["has_secret"], true);
    let (status, result) = seen.call(&app, Method::POST, "/api/connections/ghost/test", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["ok"], false, "{result}");
    assert!(result["message"].as_str().unwrap().contains("no_such_role_ut"), "{result}");
    assert!(result["latency_ms"].is_null() && result["server_version"].is_null(), "{result}");
    let (status, c) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "closed port", "url": "postgres://postgres@127.0.0.1:1/postgres", "secret": SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let (_, result) = seen.call(&app, Method::POST, "/api/connections/closed-port/test", None).await;
    assert_eq!(result["ok"], false, "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.1:1") || message.contains("refused"), "{message}");

    // Bad input: a clear 4xx, nothing stored.
    let (status, body) = seen
        .call(&app, Method::POST, "/api/connections", Some(json!({"name": "test pg", "url": pg.as_str()})))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict", &["name", "test pg", "exists"]);
    let (status, body) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "m", "url": format!("mysql://u:{SECRET}@h/db")})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["mysql://", "postgres://user@host:5432/database"],
    );
    let (status, body) = seen
        .call(&app, Method::POST, "/api/connections", Some(json!({"name": "x", "url": "no url here"})))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["url", "not a URL", "snowflake://"],
    );
    let (status, body) = seen
        .call(&app, Method::POST, "/api/connections", Some(json!({"name": "  ", "url": pg.as_str()})))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["name"]);
    let (status, body) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "p", "url": format!("{pg}?sslmode=sometimes")})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["sslmode"]);
    let (status, body) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "s", "url": "snowflake://u@acct/db/sch"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["secret", "password"]);
    let (status, body) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "two", "url": with_password(&pg, SECRET), "secret": "another"})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["password"]);
    let (status, body) =
        seen.raw(&app, "/api/connections", &format!(r#"{{"name":"j","url":"{pg}","pasword":"x"}}"#)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["pasword"]);
    let (status, body) =
        seen.raw(&app, "/api/connections", &format!(r#"{{"name":"j","secret":"{SECRET}""#)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["JSON"]);

    // A Snowflake URL's password parameter leaves it too.
    let (status, snow) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "snow", "url": format!("snowflake://bench@myorg-acct/DB/PUBLIC?warehouse=WH&password={SECRET}")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{snow}");
    assert_eq!(snow["url"], "snowflake://bench@myorg-acct/DB/PUBLIC?warehouse=WH");
    assert_eq!(snow["has_secret"], true);

    // Unknown ids.
    for (method, path) in [
        (Method::GET, "/api/connections/nope"),
        (Method::DELETE, "/api/connections/nope"),
        (Method::POST, "/api/connections/nope/test"),
    ] {
        let (status, body) = seen.call(&app, method, path, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &["nope"]);
    }

    // At rest: sealed, mode 0600, and the key file too.
    let file = dir.path().join("connections.json");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(!stored.contains(SECRET), "the secret is in clear in {stored}");
    assert_eq!(stored.matches("\"secret\": \"v1.").count(), 4, "{stored}");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir.path().join("secret.key")), 0o600);

    // Removing one rewrites the file without it.
    let (status, body) = seen.call(&app, Method::DELETE, "/api/connections/ghost", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = seen.call(&app, Method::GET, "/api/connections/ghost", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("\"ghost\""));

    // A controller restarted with the same key file reads them back.
    let again = app_reopened(dir.path(), None).await;
    let (_, list) = seen.call(&again, Method::GET, "/api/connections", None).await;
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    let (_, result) = seen.call(&again, Method::POST, "/api/connections/test-pg/test", None).await;
    assert_eq!(result["ok"], true, "{result}");

    // Another key cannot open the stored password: a clear message naming the key's source.
    let wrong = app_reopened(dir.path(), Some(&"ab".repeat(32))).await;
    let (status, result) = seen.call(&wrong, Method::POST, "/api/connections/test-pg/test", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["ok"], false, "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(message.contains("UNISTORE_SECRET_KEY") && message.contains("cannot be decrypted"), "{message}");

    // A malformed key is an error at start, without the value.
    let env = |name: &str| (name == "UNISTORE_SECRET_KEY").then(|| "letmein".to_string());
    let err = ConnectionStore::open_with_env(dir.path(), &env).expect_err("a bad key");
    let text = err.to_string();
    assert!(text.contains("UNISTORE_SECRET_KEY") && text.contains("64 hex digits"), "{text}");
    assert!(!text.contains("letmein"));

    // Outside the server (the worker CLI), `connection:ID` is refused with what to do instead.
    let err = unistore_adapters::ping("connection:test-pg").await.expect_err("not a URL");
    assert!(err.to_string().contains("unistore-server") && err.to_string().contains("--target"), "{err}");

    for body in &seen.0 {
        assert!(!body.contains(SECRET), "the secret is in a response: {body}");
    }
}

async fn app_reopened(dir: &Path, key: Option<&str>) -> Router {
    app(dir, key).await
}

/// A template on `pgbench_accounts` through `connection:ID`, run by the real server and its
/// workers: it completes with operations, and the password is nowhere in what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_a_stored_postgres_connection_completes() {
    let data = tempfile::tempdir().unwrap();
    // The server (and its workers) keep the key, the connections and the logs here.
    std::env::set_var("UNISTORE_DATA_DIR", data.path());
    let server = common::start_server(&[], None).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let mut req = http.request(method, url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert!(!text.contains(SECRET), "the secret is in a response: {text}");
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        }
    };
    let pg = pg_url();
    let (status, conn) = call(
        reqwest::Method::POST,
        "/api/connections".into(),
        Some(json!({"name": "bench pg", "url": pg.as_str(), "secret": SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{conn}");
    let template = |target: &str| {
        json!({
            "name": "via-connection",
            "target": target,
            "table": "pgbench_accounts",
            "mix": {"POINT_LOOKUP": 100},
            "load": {"mode": "CONCURRENCY", "connections": 2},
            "scaling": {"mode": "FIXED", "workers": 1},
            "phases": {"warmup": "0s", "measurement": "2s"},
        })
    };
    let (status, body) = call(
        reqwest::Method::POST,
        "/api/runs".into(),
        Some(json!({"template": template("connection:nope")})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("connection:nope"), "{body}");

    let (status, created) = call(
        reqwest::Method::POST,
        "/api/runs".into(),
        Some(json!({"template": template(&format!("connection:{}", conn["id"].as_str().unwrap()))})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let stored: Value = serde_json::from_str(created["template_json"].as_str().unwrap()).unwrap();
    assert_eq!(stored["target"], pg.as_str(), "the run's template holds the URL without the password");
    let id = created["run_id"].as_str().unwrap().to_string();
    let (status, started) = call(reqwest::Method::POST, format!("/api/runs/{id}/start"), None).await;
    assert_eq!(status, 200, "{started}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = loop {
        let (_, v) = call(reqwest::Method::GET, format!("/api/runs/{id}"), None).await;
        if ["COMPLETED", "FAILED", "CANCELLED"].contains(&v["status"].as_str().unwrap_or("")) {
            break v;
        }
        assert!(Instant::now() < deadline, "the run did not end: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let worker_log = std::fs::read_dir(data.path().join("worker-logs").join(&id))
        .map(|d| {
            d.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect::<String>()
        })
        .unwrap_or_default();
    assert_eq!(
        done["status"],
        "COMPLETED",
        "{done}\nworker log:\n{worker_log}\nserver log:\n{}",
        server.log()
    );
    let (status, result) = call(reqwest::Method::GET, format!("/api/results/{id}"), None).await;
    assert_eq!(status, 200, "{result}");
    let ops = result["summary"]["total"]["ops"].as_u64().or_else(|| result["total"]["ops"].as_u64());
    assert!(ops.is_some_and(|n| n > 0), "no operations measured: {result}");
    assert!(!worker_log.contains(SECRET), "the password is in a worker log");
    assert!(!server.log().contains(SECRET), "the password is in the server log");
    let stored = std::fs::read_to_string(data.path().join("connections.json")).unwrap();
    assert!(!stored.contains(SECRET));
    // The results and control store (with its WAL), byte by byte.
    for entry in std::fs::read_dir(server._dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "the password is in {}",
            entry.path().display()
        );
    }
}

/// Discovery through a stored connection: the PostgreSQL server's databases, schemas and
/// tables (pgbench_accounts with its key and estimate, read through the sealed password), the
/// demo's SQLite table, and the errors of a bad name, parameter or connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_what_a_stored_connection_holds() {
    let dir = tempfile::tempdir().unwrap();
    unistore_adapters::sqlite::demo::ensure_demo_database(&dir.path().join("demo.db")).unwrap();
    let app = app(dir.path(), None).await;
    let mut seen = Seen::default();
    let (status, created) = seen
        .call(
            &app,
            Method::POST,
            "/api/connections",
            Some(json!({"name": "Discovery PG", "url": pg_url(), "secret": SECRET})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let (status, dbs) = seen.call(&app, Method::GET, &format!("/api/connections/{id}/databases"), None).await;
    assert_eq!(status, StatusCode::OK, "{dbs}");
    let dbs: Vec<&str> = dbs.as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert!(dbs.contains(&"postgres") && dbs.contains(&"test"), "{dbs:?}");
    let (status, schemas) =
        seen.call(&app, Method::GET, &format!("/api/connections/{id}/schemas?database=postgres"), None).await;
    assert_eq!(status, StatusCode::OK, "{schemas}");
    assert!(schemas.as_array().unwrap().iter().any(|s| s == "public"), "{schemas}");
    assert!(!schemas.as_array().unwrap().iter().any(|s| s == "pg_catalog"), "system schemas are left out");
    let (status, tables) =
        seen.call(&app, Method::GET, &format!("/api/connections/{id}/tables?schema=public"), None).await;
    assert_eq!(status, StatusCode::OK, "{tables}");
    let accounts = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "pgbench_accounts")
        .unwrap_or_else(|| panic!("pgbench_accounts listed: {tables}"));
    assert_eq!(accounts["schema"], "public");
    assert_eq!(accounts["table_type"], "POSTGRES");
    assert_eq!(accounts["key_columns"], json!(["aid"]));
    let estimate = accounts["row_estimate"].as_u64().unwrap_or(0);
    assert!((900_000..=1_100_000).contains(&estimate), "scale 10 holds 1,000,000 rows: {accounts}");

    // The demo connection: the SQLite file's table.
    let (status, demo) = seen.call(&app, Method::GET, "/api/connections/demo/tables", None).await;
    assert_eq!(status, StatusCode::OK, "{demo}");
    let demo_orders =
        demo.as_array().unwrap().iter().find(|t| t["name"] == "demo_orders").expect("demo_orders");
    assert_eq!(demo_orders["table_type"], "SQLITE");
    assert!(!demo_orders["key_columns"].as_array().unwrap().is_empty(), "{demo_orders}");

    // Bad input: an unknown schema, parameter or connection.
    let (status, body) = seen
        .call(&app, Method::GET, &format!("/api/connections/{id}/tables?schema=no_such_schema"), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", &["no_such_schema"]);
    let (status, body) =
        seen.call(&app, Method::GET, &format!("/api/connections/{id}/tables?shema=public"), None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request", &["shema"]);
    let (status, body) = seen.call(&app, Method::GET, "/api/connections/nope/tables", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(seen.0.iter().all(|b| !b.contains(SECRET)), "the password appears in an answer");
}
