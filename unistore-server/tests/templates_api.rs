//! The templates API through `Router::oneshot` (no sockets): the router of
//! `unistore_server::router`, with the embedded SQLite results store in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use unistore_server::{router, AppState};

#[path = "common/reply.rs"]
mod reply;
use reply::Reply;

struct Server {
    app: Router,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/results.db", dir.path().display());
        let results = unistore_adapters::open_results(&url).await.expect("results store opens");
        let state = AppState {
            results,
            results_kind: "sqlite".into(),
            orchestrator: None,
            live: Default::default(),
            connections: Default::default(),
        };
        Server { app: router(state), _dir: dir }
    }

    /// `method path`, with `body` of `content_type` if there is one.
    async fn call(&self, method: Method, path: &str, body: Option<(&str, &str)>) -> Reply {
        reply::call(&self.app, method, path, body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    /// A POST without a body.
    async fn post(&self, path: &str) -> Reply {
        self.call(Method::POST, path, None).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_text(path, "application/json", &body.to_string()).await
    }

    async fn post_text(&self, path: &str, content_type: &str, body: &str) -> Reply {
        self.call(Method::POST, path, Some((content_type, body))).await
    }

    async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(("application/json", &body.to_string()))).await
    }
}

fn json_of(response: Reply, status: StatusCode) -> Value {
    let got = response.status();
    let text = response.text();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a JSON error of `kind` whose message holds every one of `words`.
fn error_of(response: Reply, status: StatusCode, kind: &str, words: &[&str]) {
    let body = json_of(response, status);
    assert_eq!(body["error"]["kind"], kind, "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    for word in words {
        assert!(message.contains(word), "`{word}` not in: {message}");
    }
}

fn orders_template() -> Value {
    json!({
        "name": "orders read",
        "table": "main.orders",
        "mix": {"POINT_LOOKUP": 80, "RANGE_SCAN": 20},
        "seed": 7
    })
}

const ACCOUNTS_TOML: &str = r#"
name = "accounts lookups"
table = "accounts"
sample_rate = 0.5

[mix]
point_lookup = 100
"#;

#[tokio::test]
async fn templates_are_created_listed_versioned_duplicated_exported_and_deleted() {
    let server = Server::start().await;
    assert_eq!(json_of(server.get("/api/templates").await, StatusCode::OK), json!([]));

    // Create from JSON.
    let response = server.post_json("/api/templates", &json!({"template": orders_template()})).await;
    assert_eq!(response.headers()[LOCATION], "/api/templates/orders_read");
    let created = json_of(response, StatusCode::CREATED);
    assert_eq!(created, json!({"id": "orders_read", "name": "orders read", "version": 1}));

    // Create from TOML.
    let response = server.post_text("/api/templates", "application/toml", ACCOUNTS_TOML).await;
    let created = json_of(response, StatusCode::CREATED);
    assert_eq!(created, json!({"id": "accounts_lookups", "name": "accounts lookups", "version": 1}));

    // The same name again is a conflict, not a silent new version.
    let again = server.post_json("/api/templates", &json!({"template": orders_template()})).await;
    error_of(again, StatusCode::CONFLICT, "conflict", &["orders_read", "PUT"]);

    // List (the order between two templates saved in the same instant is the store's).
    let list = json_of(server.get("/api/templates").await, StatusCode::OK);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id} in {list}"));
    assert_eq!(row("accounts_lookups")["table"], "accounts");
    assert_eq!(row("accounts_lookups")["name"], "accounts lookups");
    assert_eq!(row("orders_read")["name"], "orders read");
    assert_eq!(row("orders_read")["table"], "main.orders");
    assert_eq!(row("orders_read")["version"], 1);
    assert!(row("orders_read")["updated"].as_str().is_some_and(|u| u.contains('T')), "{list}");

    // Get.
    let got = json_of(server.get("/api/templates/orders_read").await, StatusCode::OK);
    assert_eq!(got["id"], "orders_read");
    assert_eq!(got["version"], 1);
    assert_eq!(got["template"]["mix"], json!({"POINT_LOOKUP": 80, "RANGE_SCAN": 20}));
    assert_eq!(got["template"]["seed"], 7);
    let toml_one = json_of(server.get("/api/templates/accounts_lookups").await, StatusCode::OK);
    assert_eq!(toml_one["template"]["mix"], json!({"POINT_LOOKUP": 100}));
    assert_eq!(toml_one["template"]["sample_rate"], 0.5);

    // Update: a new version; the same content again keeps it.
    let mut changed = orders_template();
    changed["mix"] = json!({"POINT_LOOKUP": 50, "RANGE_SCAN": 50});
    let updated = json_of(
        server.put_json("/api/templates/orders_read", &json!({"template": changed})).await,
        StatusCode::OK,
    );
    assert_eq!(updated["version"], 2);
    let same = json_of(
        server.put_json("/api/templates/orders_read", &json!({"template": changed})).await,
        StatusCode::OK,
    );
    assert_eq!(same["version"], 2);
    let got = json_of(server.get("/api/templates/orders_read").await, StatusCode::OK);
    assert_eq!(got["version"], 2);
    assert_eq!(got["template"]["mix"]["RANGE_SCAN"], 50);

    // Versions, oldest first, each with its own content.
    let versions = json_of(server.get("/api/templates/orders_read/versions").await, StatusCode::OK);
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["template"]["mix"]["POINT_LOOKUP"], 80);
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["template"]["mix"]["POINT_LOOKUP"], 50);

    // Duplicate: a new id and name, the same content; a second copy gets its own name.
    let copy = json_of(server.post("/api/templates/orders_read/duplicate").await, StatusCode::CREATED);
    assert_eq!(copy, json!({"id": "orders_read__copy_", "name": "orders read (copy)", "version": 1}));
    let copied = json_of(server.get("/api/templates/orders_read__copy_").await, StatusCode::OK);
    assert_eq!(copied["template"]["mix"], got["template"]["mix"]);
    assert_eq!(copied["template"]["table"], "main.orders");
    let copy2 = json_of(server.post("/api/templates/orders_read/duplicate").await, StatusCode::CREATED);
    assert_eq!(copy2["name"], "orders read (copy 2)");

    // Export as TOML, delete, import it back: the same template.
    let exported = server.get("/api/templates/orders_read/export?format=toml").await;
    assert_eq!(exported.status(), StatusCode::OK);
    assert!(exported.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("application/toml"));
    let toml_text = exported.text();
    assert!(toml_text.contains("name = \"orders read\""), "{toml_text}");
    let as_json = server.get("/api/templates/orders_read/export?format=json").await;
    assert_eq!(as_json.headers()[CONTENT_TYPE], "application/json");
    let as_json: Value = serde_json::from_str(&as_json.text()).unwrap();
    assert_eq!(as_json, got["template"]);

    let deleted = server.delete("/api/templates/orders_read").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    error_of(
        server.get("/api/templates/orders_read").await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["orders_read"],
    );
    error_of(
        server.get("/api/templates/orders_read/versions").await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["orders_read"],
    );

    let imported = json_of(
        server.post_text("/api/templates/import", "application/toml", &toml_text).await,
        StatusCode::CREATED,
    );
    assert_eq!(imported, json!({"id": "orders_read", "name": "orders read", "version": 1}));
    let back = json_of(server.get("/api/templates/orders_read").await, StatusCode::OK);
    assert_eq!(back["template"], got["template"]);

    // Import of a JSON file, sniffed without a content type.
    let mut other = as_json.clone();
    other["name"] = json!("orders from json");
    let imported = json_of(
        server.post_text("/api/templates/import", "text/plain", &other.to_string()).await,
        StatusCode::CREATED,
    );
    assert_eq!(imported["id"], "orders_from_json");
}

#[tokio::test]
async fn bad_templates_and_unknown_ids_are_refused_with_the_reason() {
    let server = Server::start().await;

    error_of(
        server.post_text("/api/templates", "application/json", "{\"template\": ").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["not valid JSON"],
    );
    error_of(
        server.post_json("/api/templates", &orders_template()).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["unknown field", "expected `template`"],
    );

    let mut bad_mix = orders_template();
    bad_mix["mix"] = json!({"POINT_LOOKUP": 80, "RANGE_SCAN": 30});
    error_of(
        server.post_json("/api/templates", &json!({"template": bad_mix})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["mix sums to 110%"],
    );

    let mut missing_table = orders_template();
    missing_table.as_object_mut().unwrap().remove("table");
    error_of(
        server.post_json("/api/templates", &json!({"template": missing_table})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["missing field `table`"],
    );

    let mut with_password = orders_template();
    with_password["target"] = json!("postgres://bench:hunter2@db.example:5432/shop");
    let response = server.post_json("/api/templates", &json!({"template": with_password})).await;
    let body = json_of(response, StatusCode::BAD_REQUEST);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("contains a password"), "{message}");
    assert!(!message.contains("hunter2"), "the password is echoed: {message}");

    error_of(
        server.post_text("/api/templates", "application/toml", "name = \"x\"\ntable = \n").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["line 2"],
    );
    error_of(
        server.post_text("/api/templates/import", "application/toml", "name = \"x\"\ntable = \"t\"\n").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["mix"],
    );

    // Nothing half-stored.
    assert_eq!(json_of(server.get("/api/templates").await, StatusCode::OK), json!([]));

    // Unknown ids.
    error_of(server.get("/api/templates/nope").await, StatusCode::NOT_FOUND, "not_found", &["nope"]);
    error_of(
        server.put_json("/api/templates/nope", &json!({"template": orders_template()})).await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["nope"],
    );
    let deleted = server.delete("/api/templates/nope").await;
    error_of(deleted, StatusCode::NOT_FOUND, "not_found", &["nope"]);
    let duplicated = server.post("/api/templates/nope/duplicate").await;
    error_of(duplicated, StatusCode::NOT_FOUND, "not_found", &["nope"]);
    error_of(server.get("/api/templates/nope/export").await, StatusCode::NOT_FOUND, "not_found", &["nope"]);
    assert_eq!(json_of(server.get("/api/templates").await, StatusCode::OK), json!([]));

    // A bad update leaves the stored version as it was; a bad export format is named.
    server.post_json("/api/templates", &json!({"template": orders_template()})).await;
    let mut bad_mix = orders_template();
    bad_mix["mix"] = json!({"POINT_LOOKUP": 10});
    error_of(
        server.put_json("/api/templates/orders_read", &json!({"template": bad_mix})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["mix sums to 10%"],
    );
    let got = json_of(server.get("/api/templates/orders_read").await, StatusCode::OK);
    assert_eq!(got["version"], 1);
    assert_eq!(got["template"]["mix"]["POINT_LOOKUP"], 80);
    error_of(
        server.get("/api/templates/orders_read/export?format=yaml").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["yaml", "toml or json"],
    );
}

/// The demo database in `dir` (created by the adapter, as the server does).
async fn demo_in(dir: &std::path::Path) -> String {
    let path = dir.join("demo.db");
    let demo =
        tokio::task::spawn_blocking(move || unistore_adapters::sqlite::demo::ensure_demo_database(&path))
            .await
            .unwrap()
            .expect("the demo database is created");
    demo.url()
}

#[tokio::test]
async fn the_preview_renders_each_kind_on_the_real_table_with_its_parameters_and_profile() {
    let server = Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let demo = demo_in(data.path()).await;
    let template = json!({
        "name": "demo mixed",
        "target": demo,
        "table": "demo_orders",
        "mix": {"POINT_LOOKUP": 50, "RANGE_SCAN": 20, "UPDATE": 10, "CUSTOM_SQL": 20},
        "allow_writes": true,
        "custom_sql": {"sql": "SELECT count(*) FROM demo_orders WHERE customer_id = ? AND status = ?",
                       "params": [{"kind": "int", "min": 1, "max": 500}, {"kind": "choice", "values": ["paid", "new"]}]},
        "values": {"range_scan_width": 25}
    });
    let p = json_of(
        server.post_json("/api/templates/preview", &json!({"template": template})).await,
        StatusCode::OK,
    );
    assert_eq!(p["table"], "demo_orders", "{p}");
    assert_eq!(p["table_type"], "SQLITE");
    assert_eq!(p["row_estimate"], 100_000);
    assert_eq!(p["key_column"], "id");
    assert_eq!(p["primary_key"], json!(["id"]));
    let columns: Vec<&str> =
        p["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["id", "customer_id", "status", "amount", "created_at"]);
    assert!(!p["target"].as_str().unwrap().is_empty());

    let statements = p["statements"].as_array().unwrap();
    let kinds: Vec<&str> = statements.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["POINT_LOOKUP", "RANGE_SCAN", "UPDATE", "CUSTOM_SQL"], "{p}");
    let percents: Vec<f64> = statements.iter().map(|s| s["percent"].as_f64().unwrap()).collect();
    assert_eq!(percents, [50.0, 20.0, 10.0, 20.0]);
    let lookup = &statements[0];
    let sql = lookup["sql"].as_str().unwrap();
    assert!(sql.starts_with("SELECT") && sql.contains("\"demo_orders\"") && sql.contains("\"id\""), "{sql}");
    assert_eq!(lookup["params"].as_array().unwrap().len(), 1);
    assert_eq!(lookup["params"][0]["column"], "id");
    assert_eq!(lookup["params"][0]["column_type"], "integer");
    assert!(lookup["params"][0]["value"].as_str().unwrap().contains("a key of `id`"), "{lookup}");
    let scan = &statements[1];
    assert_eq!(scan["params"].as_array().unwrap().len(), 2, "{scan}");
    assert!(scan["params"][1]["value"].as_str().unwrap().contains("plus 25"), "{scan}");
    let update = &statements[2];
    assert!(update["sql"].as_str().unwrap().starts_with("UPDATE"), "{update}");
    let custom = &statements[3];
    assert_eq!(
        custom["sql"], "SELECT count(*) FROM demo_orders WHERE customer_id = ? AND status = ?",
        "{custom}"
    );
    assert_eq!(custom["params"][0]["value"], "a random integer in 1..=500");
    assert_eq!(custom["params"][1]["value"], "one of paid, new");

    // A stored template previews the same way; previewing stores nothing.
    assert_eq!(json_of(server.get("/api/templates").await, StatusCode::OK), json!([]));
    let created = json_of(
        server.post_json("/api/templates", &json!({"template": template})).await,
        StatusCode::CREATED,
    );
    let stored = json_of(
        server.get(&format!("/api/templates/{}/preview", created["id"].as_str().unwrap())).await,
        StatusCode::OK,
    );
    assert_eq!(stored["statements"], p["statements"]);
}

#[tokio::test]
async fn the_preview_names_what_is_wrong_with_the_table_the_template_or_the_database() {
    let server = Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let demo = demo_in(data.path()).await;
    let base = json!({"name": "p", "target": demo, "table": "demo_orders", "mix": {"POINT_LOOKUP": 100}});

    let mut vanished = base.clone();
    vanished["table"] = json!("orders_gone");
    error_of(
        server.post_json("/api/templates/preview", &json!({"template": vanished})).await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["orders_gone"],
    );

    let mut bad_mix = base.clone();
    bad_mix["mix"] = json!({"POINT_LOOKUP": 90});
    error_of(
        server.post_json("/api/templates/preview", &json!({"template": bad_mix})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        &["sums to 90%"],
    );

    let mut stored_connection = base.clone();
    stored_connection["target"] = json!("connection:warehouse");
    error_of(
        server.post_json("/api/templates/preview", &json!({"template": stored_connection})).await,
        StatusCode::NOT_FOUND,
        "not_found",
        &["warehouse"],
    );

    // Nothing listens on port 1: connection refused, classified, without the URL's user.
    let mut unreachable = base.clone();
    unreachable["target"] = json!("postgres://bench_user@127.0.0.1:1/app");
    unreachable["table"] = json!("public.orders");
    unreachable["timeouts"] = json!({"connect": "2s"});
    let response = server.post_json("/api/templates/preview", &json!({"template": unreachable})).await;
    let status = response.status();
    let body = response.text();
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY,
        "{status} {body}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"]["kind"] == "unavailable" || body["error"]["kind"] == "timeout", "{body}");

    error_of(server.get("/api/templates/nope/preview").await, StatusCode::NOT_FOUND, "not_found", &["nope"]);
}
