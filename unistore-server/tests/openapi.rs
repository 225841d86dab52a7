//! `GET /api/openapi.json`: the document is OpenAPI 3.x JSON and documents exactly the API
//! routes the router serves (listed here by hand, and checked against both the router and the
//! `.route(...)` calls in the sources, so a route added without an annotation fails), each with
//! a success response and JSON error responses of the error schema, and every `$ref` resolves.
//! The router is called with `oneshot` (no sockets).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;
use unistore_server::connections::ConnectionStore;
use unistore_server::{protect, router, Access, AppState};

/// Every API route of the controller: (method, path as the router spells it). The HTML pages,
/// `/assets/` and `/login` are not API routes and are not documented.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/runs"),
    ("POST", "/api/runs"),
    ("GET", "/api/runs/{id}"),
    ("POST", "/api/runs/{id}/start"),
    ("POST", "/api/runs/{id}/stop"),
    ("POST", "/api/runs/{id}/metrics/live"),
    ("GET", "/api/results"),
    ("GET", "/api/results/compare"),
    ("GET", "/api/results/{id}"),
    ("DELETE", "/api/results/{id}"),
    ("GET", "/api/results/{id}/series"),
    ("GET", "/api/results/{id}/kinds"),
    ("GET", "/api/results/{id}/executions"),
    ("GET", "/api/results/{id}/errors"),
    ("GET", "/api/results/{id}/server"),
    ("GET", "/api/results/{id}/export"),
    ("GET", "/api/templates"),
    ("POST", "/api/templates"),
    ("POST", "/api/templates/import"),
    ("POST", "/api/templates/preview"),
    ("GET", "/api/templates/{id}"),
    ("PUT", "/api/templates/{id}"),
    ("DELETE", "/api/templates/{id}"),
    ("GET", "/api/templates/{id}/versions"),
    ("POST", "/api/templates/{id}/duplicate"),
    ("GET", "/api/templates/{id}/export"),
    ("GET", "/api/templates/{id}/preview"),
    ("GET", "/api/connections"),
    ("POST", "/api/connections"),
    ("GET", "/api/connections/{id}"),
    ("DELETE", "/api/connections/{id}"),
    ("POST", "/api/connections/{id}/test"),
    ("GET", "/api/connections/{id}/databases"),
    ("GET", "/api/connections/{id}/schemas"),
    ("GET", "/api/connections/{id}/tables"),
    ("GET", "/ws/test/{test_id}"),
];

/// Error responses that are not the JSON error body, because axum's extractors answer them
/// before the handler runs: (method, path, status).
const PLAIN_TEXT_ERRORS: &[(&str, &str, &str)] = &[
    ("GET", "/api/runs", "400"),
    ("GET", "/ws/test/{test_id}", "400"),
    ("GET", "/ws/test/{test_id}", "426"),
];

const ERROR_SCHEMA: &str = "#/components/schemas/ApiError";

async fn app(dir: &Path) -> Router {
    let url = format!("sqlite://{}/results.db", dir.display());
    let results = unistore_adapters::open_results(&url).await.unwrap();
    // The stored connections of a temporary directory, not the user's data directory: the
    // probes below reach the connections routes.
    let connections = ConnectionStore::open_with_env(dir, &|_| None).unwrap();
    router(AppState {
        results,
        results_kind: "sqlite".into(),
        orchestrator: None,
        live: Default::default(),
        connections: Arc::new(connections),
    })
}

async fn call(app: &Router, method: &str, path: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

async fn document(app: &Router) -> Value {
    let (status, content_type, body) = call(app, "GET", "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    serde_json::from_str(&body).expect("the document is JSON")
}

fn expected() -> BTreeSet<(String, String)> {
    let set: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(set.len(), ROUTES.len(), "a route is listed twice");
    set
}

/// The (method, path) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
                .contains(&method.as_str())
            {
                found.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// A `$ref` inside this document (`#/components/...`), resolved.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    reference.strip_prefix('#').and_then(|pointer| doc.pointer(pointer))
}

#[tokio::test]
async fn the_document_is_openapi_3_and_documents_exactly_the_api_routes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let doc = document(&app).await;

    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "OpenAPI {version}");
    assert_eq!(doc["info"]["title"], "Unistore Bench controller");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let documented = documented(&doc);
    let expected = expected();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "routes without an annotation (add #[utoipa::path] and list them in openapi.rs): {missing:?}"
    );
    assert!(extra.is_empty(), "documented operations that are not in ROUTES: {extra:?}");

    // The bearer token applies to every operation.
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    let security = doc["security"].as_array().expect("global security");
    assert!(security.iter().any(|s| s.get("bearer").is_some()), "{security:?}");
    for requirement in security {
        for name in requirement.as_object().unwrap().keys() {
            assert!(doc["components"]["securitySchemes"][name].is_object(), "no security scheme {name}");
        }
    }
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    for (method, path) in ROUTES {
        // Ids nobody stored: each handler answers its own error (or a 2xx), never the router's
        // empty 404 for an unknown path or its 405 for an unknown method.
        let uri = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{test_id}", "00000000-0000-0000-0000-000000000000");
        let (status, content_type, body) = call(&app, method, &uri).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not routed");
        if status == StatusCode::NOT_FOUND {
            assert_eq!(content_type.as_deref(), Some("application/json"), "{method} {path}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"]["kind"], "not_found", "{method} {path}: {body}");
        }
    }
}

#[test]
fn every_api_route_in_the_sources_is_listed() {
    let mut found = BTreeSet::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for file in rust_files(&src) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (method, path) in routes_in(&text) {
            if path.starts_with("/api/") || path.starts_with("/ws/") || path == "/healthz" {
                found.insert((method, path));
            }
        }
    }
    assert!(found.len() > 30, "the route parser found only {found:?}");
    let expected = expected();
    let unlisted: Vec<_> = found.difference(&expected).collect();
    let gone: Vec<_> = expected.difference(&found).collect();
    assert!(
        unlisted.is_empty(),
        "routes in the sources missing from ROUTES (and so maybe from the document): {unlisted:?}"
    );
    assert!(gone.is_empty(), "ROUTES lists routes the sources no longer have: {gone:?}");
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The (method, path) pairs of the `.route("path", get(a).post(b))` calls in `text`: the
/// methods are the calls at the top level of the `.route(...)` arguments.
fn routes_in(text: &str) -> Vec<(String, String)> {
    const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(path) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else {
            continue;
        };
        let mut depth = 1usize;
        let mut word = String::new();
        for ch in rest.chars() {
            match ch {
                '(' => {
                    if depth == 1 && METHODS.contains(&word.as_str()) {
                        out.push((word.to_ascii_uppercase(), path.to_string()));
                    }
                    depth += 1;
                }
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            if ch.is_ascii_alphanumeric() || ch == '_' {
                word.push(ch);
            } else {
                word.clear();
            }
        }
    }
    out
}

#[tokio::test]
async fn every_operation_has_an_id_a_success_and_json_error_responses() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_ascii_lowercase()];
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}"));
        let id =
            operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} of {method} {path} is used twice");
        let success =
            responses.keys().any(|s| s.starts_with('2') || (s == "101" && path.starts_with("/ws/")));
        assert!(success, "{method} {path} documents no success: {:?}", responses.keys());
        for status in ["401", "403", "500"] {
            assert!(responses.contains_key(status), "{method} {path} lacks the common {status}");
        }
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = match response["$ref"].as_str() {
                Some(r) => resolve(&doc, r).unwrap_or_else(|| panic!("{method} {path} {status}: {r}")),
                None => response,
            };
            let content = response["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status}: no body"));
            if PLAIN_TEXT_ERRORS.contains(&(method.as_str(), path.as_str(), status.as_str())) {
                assert!(content.contains_key("text/plain"), "{method} {path} {status}: {content:?}");
                continue;
            }
            let schema = &content
                .get("application/json")
                .unwrap_or_else(|| panic!("{method} {path} {status} is not JSON: {content:?}"))["schema"];
            assert_eq!(schema["$ref"], ERROR_SCHEMA, "{method} {path} {status}");
        }
    }
    // The error schema is `{"error": {"kind", "message", "code"?}}` with the kinds as an enum.
    let error = resolve(&doc, ERROR_SCHEMA).expect("the error schema");
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let detail = match error["properties"]["error"]["$ref"].as_str() {
        Some(r) => resolve(&doc, r).expect("the error detail"),
        None => &error["properties"]["error"],
    };
    let mut required: Vec<&str> =
        detail["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    required.sort_unstable();
    assert_eq!(required, ["kind", "message"], "{detail}");
    assert!(detail["properties"]["code"].is_object(), "{detail}");
    let kind = resolve(&doc, detail["properties"]["kind"]["$ref"].as_str().expect("kind is a $ref")).unwrap();
    let kinds: Vec<&str> = kind["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for k in ["bad_request", "not_found", "conflict", "unavailable", "internal", "unauthorized", "forbidden"]
    {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn every_reference_resolves() {
    fn walk<'a>(v: &'a Value, refs: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r);
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let doc = document(&app).await;
    let mut refs = Vec::new();
    walk(&doc, &mut refs);
    assert!(refs.len() > 50, "only {} references", refs.len());
    for r in refs {
        assert!(r.starts_with("#/components/"), "{r} points outside the document's components");
        assert!(resolve(&doc, r).is_some(), "{r} does not resolve");
    }
}

#[tokio::test]
async fn the_document_is_protected_like_the_rest_of_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let token = "s3cret-token-0123456789";
    let app = protect(app(dir.path()).await, Access::with_token(token).unwrap());
    assert_eq!(call(&app, "GET", "/api/openapi.json").await.0, StatusCode::UNAUTHORIZED);
    let request = Request::builder()
        .uri("/api/openapi.json")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.oneshot(request).await.unwrap().status(), StatusCode::OK);
}
