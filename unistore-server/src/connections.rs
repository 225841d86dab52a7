//! Stored connections: databases a person adds once (name, URL, password) and then picks in
//! templates as `connection:ID`.
//!
//! - `GET /api/connections`: every connection, the built-in `demo` (the embedded SQLite demo
//!   database) first; `POST /api/connections` `{"name", "url", "secret"?}`: 201 with the new one;
//! - `GET /api/connections/{id}`, `DELETE /api/connections/{id}` (204; the demo cannot go);
//! - `POST /api/connections/{id}/test`: connects, runs a trivial query and answers
//!   `{"ok", "message", "latency_ms", "server_version"}`.
//!
//! A password inside the URL (`postgres://user:pw@host/db`, Snowflake's URL password or its
//! `password=` parameter) is moved out of it: the stored and shown URL never carries one. The
//! password is sealed with the controller's key ([`crate::secrets`]) and kept, with the rest,
//! in `connections.json` in the data directory, written whole (temporary file, then rename) with
//! mode 0600. No response, page, log line or `Debug` output holds a password; a run gets it
//! through its workers' environment (`PGPASSWORD`, `SNOWFLAKE_PASSWORD`).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use unistore_core::orchestrator::Secret;

use crate::error::{ApiError, ApiErrorKind, ErrorBody as ApiErrorBody};
use crate::secrets::{SecretError, SecretKey};
use crate::AppState;

mod url_parts;

use url_parts::{split_secret, unique_id, validate_with_backend};

/// The id of the built-in connection to the demo database.
pub const DEMO_ID: &str = "demo";
/// The file of stored connections in the data directory.
pub const CONNECTIONS_FILE: &str = "connections.json";
const FILE_FORMAT: u32 = 1;
const MAX_NAME: usize = 100;
const MAX_URL: usize = 2048;
/// Longest a connection test may take, all of it.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);
const URL_EXAMPLES: &str = "postgres://user@host:5432/database, \
     snowflake://user@account/database/schema?warehouse=WH or sqlite:///path/file.db";

/// Why the stored connections cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionStoreError {
    /// The key.
    #[error(transparent)]
    Key(#[from] SecretError),
    /// The file cannot be read.
    #[error("cannot read the stored connections {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not what this controller writes.
    #[error("the stored connections {path} cannot be read: {message} (restore the file or move it away)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A connection as stored. The secret is sealed; `Debug` shows only whether there is one.
#[derive(Clone, Serialize, Deserialize)]
struct StoredConnection {
    id: String,
    name: String,
    kind: String,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: DateTime<Utc>,
}

impl fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredConnection")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("has_secret", &self.secret.is_some())
            .finish()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ConnectionsFile {
    format: u32,
    connections: Vec<StoredConnection>,
}

/// A connection as the API and the pages show it: never a secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ConnectionView {
    /// Its id (`connection:ID` in a template's target).
    pub id: String,
    /// Its name, unique.
    pub name: String,
    /// `sqlite`, `postgres` or `snowflake`.
    pub kind: String,
    /// The URL without any password.
    pub url: String,
    /// Whether a password is stored with it.
    pub has_secret: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// The built-in demo connection (cannot be removed).
    pub builtin: bool,
}

/// A stored connection resolved for a run: its URL without the secret, and the secret as the
/// worker environment variable the backend reads.
#[derive(Debug, Clone)]
pub(crate) struct RunTarget {
    pub(crate) url: String,
    pub(crate) env: Vec<(String, Secret)>,
}

/// A stored connection resolved for use in this process.
struct Resolved {
    kind: String,
    url: String,
    secret: Option<Secret>,
}

impl Resolved {
    /// The URL with its password put back, for connecting from this process.
    fn full_url(&self) -> String {
        match (&self.secret, self.kind.as_str()) {
            (Some(secret), "postgres" | "snowflake") => match url::Url::parse(&self.url) {
                Ok(mut url) => {
                    // Fails only for URLs that cannot have a user part, which were refused when
                    // the connection was added.
                    let _ = url.set_password(Some(secret.expose()));
                    url.to_string()
                }
                Err(_) => self.url.clone(),
            },
            _ => self.url.clone(),
        }
    }

    /// The backend's error message with the secret blotted out, should a driver ever echo it.
    fn scrub(&self, message: String) -> String {
        match &self.secret {
            Some(s) if !s.is_empty() && message.contains(s.expose()) => message.replace(s.expose(), "***"),
            _ => message,
        }
    }
}

struct Loaded {
    dir: PathBuf,
    key: SecretKey,
    file: ConnectionsFile,
    opened_at: DateTime<Utc>,
}

impl Loaded {
    fn open(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, ConnectionStoreError> {
        let key = SecretKey::load(dir, env)?;
        let path = dir.join(CONNECTIONS_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: ConnectionsFile = serde_json::from_slice(&bytes).map_err(|e| {
                    ConnectionStoreError::Parse { path: path.clone(), message: e.to_string() }
                })?;
                if file.format != FILE_FORMAT {
                    return Err(ConnectionStoreError::Parse {
                        path,
                        message: format!(
                            "format {} is not {FILE_FORMAT}, the one this version writes",
                            file.format
                        ),
                    });
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ConnectionsFile { format: FILE_FORMAT, connections: Vec::new() }
            }
            Err(source) => return Err(ConnectionStoreError::Read { path, source }),
        };
        for c in &file.connections {
            if let Some(sealed) = &c.secret {
                if let Err(e) = key.open(&c.id, sealed) {
                    tracing::warn!("{e}");
                }
            }
        }
        Ok(Loaded { dir: dir.to_path_buf(), key, file, opened_at: Utc::now() })
    }

    fn demo(&self) -> ConnectionView {
        ConnectionView {
            id: DEMO_ID.to_string(),
            name: "Demo database (SQLite)".to_string(),
            kind: "sqlite".to_string(),
            url: demo_url(&self.dir),
            has_secret: false,
            created_at: self.opened_at,
            builtin: true,
        }
    }

    /// Writes `file` whole: a temporary file (mode 0600) renamed over the old one, so a crash
    /// leaves either the old or the new list, never half of one.
    fn write(&self, file: &ConnectionsFile) -> Result<(), ApiError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(CONNECTIONS_FILE);
        let tmp = self.dir.join(format!("{CONNECTIONS_FILE}.tmp-{}", std::process::id()));
        let failed = |what: &str, e: std::io::Error| {
            let _ = std::fs::remove_file(&tmp);
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiErrorKind::Internal,
                format!("cannot {what} the stored connections {}: {e}; nothing was changed", path.display()),
            )
        };
        let json = serde_json::to_vec_pretty(file).map_err(|e| failed("encode", std::io::Error::other(e)))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| failed("create the directory of", e))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| failed("write", e))?;
        out.write_all(&json).and_then(|()| out.sync_all()).map_err(|e| failed("write", e))?;
        drop(out);
        std::fs::rename(&tmp, &path).map_err(|e| failed("replace", e))
    }
}

fn view(c: &StoredConnection) -> ConnectionView {
    ConnectionView {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: c.kind.clone(),
        url: c.url.clone(),
        has_secret: c.secret.is_some(),
        created_at: c.created_at,
        builtin: false,
    }
}

fn demo_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("demo.db").display())
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, message)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ApiErrorKind::NotFound,
        format!("no stored connection `{id}`: GET /api/connections lists them"),
    )
}

fn key_error(e: SecretError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ApiErrorKind::Unavailable, e.to_string())
}

/// The stored connections of this controller. [`Default`] finds the data directory
/// (`UNISTORE_DATA_DIR`, ...) at first use; [`ConnectionStore::open`] opens it at once, so a bad
/// key or file stops the controller at start.
#[derive(Default)]
pub struct ConnectionStore {
    dir: Option<PathBuf>,
    loaded: Mutex<Option<Loaded>>,
}

impl fmt::Debug for ConnectionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl ConnectionStore {
    /// Opens the connections stored in `data_dir` (the key from `UNISTORE_SECRET_KEY`, else
    /// the key file there, created when missing).
    pub fn open(data_dir: &Path) -> Result<ConnectionStore, ConnectionStoreError> {
        Self::open_with_env(data_dir, &|name| std::env::var(name).ok())
    }

    /// Like [`open`](Self::open), with the environment given.
    pub fn open_with_env(
        data_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnectionStore, ConnectionStoreError> {
        let loaded = Loaded::open(data_dir, env)?;
        Ok(ConnectionStore { dir: Some(data_dir.to_path_buf()), loaded: Mutex::new(Some(loaded)) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Loaded) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut guard = self.loaded.lock();
        if guard.is_none() {
            let dir = self.dir.clone().unwrap_or_else(unistore_adapters::sqlite::demo::default_data_dir);
            let loaded = Loaded::open(&dir, &|name| std::env::var(name).ok()).map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ApiErrorKind::Unavailable, e.to_string())
            })?;
            *guard = Some(loaded);
        }
        match guard.as_mut() {
            Some(loaded) => f(loaded),
            None => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiErrorKind::Internal,
                "the stored connections are not loaded",
            )),
        }
    }

    /// Every connection, the demo first.
    pub fn list(&self) -> Result<Vec<ConnectionView>, ApiError> {
        self.with(|l| Ok(std::iter::once(l.demo()).chain(l.file.connections.iter().map(view)).collect()))
    }

    /// One connection.
    pub fn get(&self, id: &str) -> Result<ConnectionView, ApiError> {
        self.with(|l| {
            if id == DEMO_ID {
                return Ok(l.demo());
            }
            l.file.connections.iter().find(|c| c.id == id).map(view).ok_or_else(|| not_found(id))
        })
    }

    /// Adds a connection: validated, the password moved out of the URL and sealed, the file
    /// rewritten; on any error nothing is stored.
    pub fn create(&self, name: &str, url: &str, secret: Option<&str>) -> Result<ConnectionView, ApiError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(bad_request("name: give the connection a name, e.g. `staging postgres`"));
        }
        if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(bad_request(format!(
                "name: at most {MAX_NAME} characters, without control characters"
            )));
        }
        let parsed = split_secret(url)?;
        let secret = match (parsed.secret, secret.filter(|s| !s.is_empty())) {
            (Some(in_url), Some(given)) if in_url.expose() != given => {
                return Err(bad_request(
                    "secret: the URL holds a password and the password field another one; give it once",
                ))
            }
            (Some(in_url), _) => Some(in_url),
            (None, given) => given.map(Secret::new),
        };
        if secret.is_some() && parsed.kind == "sqlite" {
            return Err(bad_request("secret: an SQLite connection takes no password; leave the field empty"));
        }
        if parsed.kind == "snowflake" && secret.is_none() && !parsed.url.contains("private_key_path=") {
            return Err(bad_request(
                "secret: a Snowflake connection needs its password (the password field), or key-pair \
                 authentication with ?private_key_path=/path/rsa_key.p8 in the URL",
            ));
        }
        validate_with_backend(&parsed.kind, &parsed.url, secret.as_ref())?;
        self.with(|l| {
            let taken = |n: &str| {
                n.eq_ignore_ascii_case(&l.demo().name)
                    || l.file.connections.iter().any(|c| c.name.eq_ignore_ascii_case(n))
            };
            if taken(name) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ApiErrorKind::Conflict,
                    format!("name: a connection named `{name}` exists already; pick another name"),
                ));
            }
            let id = unique_id(name, |id| id == DEMO_ID || l.file.connections.iter().any(|c| c.id == id));
            let stored = StoredConnection {
                secret: secret.as_ref().map(|s| l.key.seal(&id, s)),
                id,
                name: name.to_string(),
                kind: parsed.kind.clone(),
                url: parsed.url.clone(),
                created_at: Utc::now(),
            };
            let mut file = l.file.clone();
            file.connections.push(stored.clone());
            l.write(&file)?;
            l.file = file;
            tracing::info!("stored connection `{}` ({}, {}) added", stored.id, stored.kind, stored.url);
            Ok(view(&stored))
        })
    }

    /// Removes a connection. The demo cannot be removed (409).
    pub fn delete(&self, id: &str) -> Result<(), ApiError> {
        if id == DEMO_ID {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ApiErrorKind::Conflict,
                "the demo connection is built in and cannot be removed",
            ));
        }
        self.with(|l| {
            let mut file = l.file.clone();
            let before = file.connections.len();
            file.connections.retain(|c| c.id != id);
            if file.connections.len() == before {
                return Err(not_found(id));
            }
            l.write(&file)?;
            l.file = file;
            tracing::info!("stored connection `{id}` removed");
            Ok(())
        })
    }

    fn resolve(&self, id: &str) -> Result<Resolved, ApiError> {
        self.with(|l| {
            if id == DEMO_ID {
                return Ok(Resolved { kind: "sqlite".into(), url: demo_url(&l.dir), secret: None });
            }
            let c = l.file.connections.iter().find(|c| c.id == id).ok_or_else(|| not_found(id))?;
            let secret = c.secret.as_deref().map(|s| l.key.open(&c.id, s)).transpose().map_err(key_error)?;
            Ok(Resolved { kind: c.kind.clone(), url: c.url.clone(), secret })
        })
    }

    /// The demo database exists (created on first use, as `bench` does).
    async fn ensure_demo(&self) -> Result<(), ApiError> {
        let dir = self.with(|l| Ok(l.dir.clone()))?;
        tokio::task::spawn_blocking(move || {
            unistore_adapters::sqlite::demo::ensure_demo_database(&dir.join("demo.db")).map(|_| ())
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiErrorKind::Internal,
                format!("demo database: {e}"),
            )
        })?
        .map_err(ApiError::from)
    }

    /// A stored connection for a run (`connection:ID` in a template's target): the URL
    /// without its password, and the password as the worker environment the backend reads.
    /// An unknown id is a 400 naming it.
    pub(crate) async fn run_target(&self, id: &str) -> Result<RunTarget, ApiError> {
        let resolved = self.resolve(id).map_err(|e| {
            if e.kind == ApiErrorKind::NotFound {
                bad_request(format!(
                    "the template's target `connection:{id}` names no stored connection: \
                     GET /api/connections lists them"
                ))
            } else {
                e
            }
        })?;
        if id == DEMO_ID {
            self.ensure_demo().await?;
        }
        let variable = match resolved.kind.as_str() {
            "postgres" => Some("PGPASSWORD"),
            "snowflake" => Some(unistore_adapters::snowflake::config::PASSWORD_ENV),
            _ => None,
        };
        let env = match (variable, resolved.secret) {
            (Some(name), Some(secret)) => vec![(name.to_string(), secret)],
            _ => Vec::new(),
        };
        Ok(RunTarget { url: resolved.url, env })
    }
}

/// The full URL of a stored connection, password included, for connecting from this process
/// (discovery). Never put it in a response, a log or an error.
#[allow(dead_code)] // the discovery routes use it
pub(crate) fn connection_url(state: &AppState, id: &str) -> Result<String, ApiError> {
    Ok(state.connections.resolve(id)?.full_url())
}

/// A connection to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConnection {
    /// Its name, unique (case-insensitive), at most 100 characters.
    #[serde(default)]
    name: String,
    /// The database URL: `postgres://user@host:5432/database`,
    /// `snowflake://user@account/database/schema?warehouse=WH` or `sqlite:///path/file.db`. A
    /// password in it is moved out and stored sealed.
    #[serde(default)]
    url: String,
    /// The password, when not in the URL (never shown again).
    #[serde(default)]
    #[schema(write_only)]
    secret: Option<String>,
}

/// The answer of a connection test.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    /// Connected and queried.
    pub ok: bool,
    /// What happened, for a person (the backend's classified error when not ok).
    pub message: String,
    /// Connect plus query, in milliseconds (when ok).
    pub latency_ms: Option<f64>,
    /// The server's version (when ok).
    pub server_version: Option<String>,
}

/// Stored connections.
#[utoipa::path(
    get,
    path = "/api/connections",
    operation_id = "list_connections",
    tag = "connections",
    responses(
        (status = 200, description = "Every connection, the built-in `demo` first", body = Vec<ConnectionView>),
        (status = 503, description = "The stored connections or the controller's key cannot be opened", body = ApiErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    Ok(Json(state.connections.list()?))
}

/// A stored connection.
#[utoipa::path(
    get,
    path = "/api/connections/{id}",
    operation_id = "show_connection",
    tag = "connections",
    params(("id" = String, Path, description = "The connection id (`demo` for the built-in demo database)")),
    responses(
        (status = 200, description = "The connection (never its password)", body = ConnectionView),
        (status = 404, description = "No stored connection with this id", body = ApiErrorBody),
        (status = 503, description = "The stored connections or the controller's key cannot be opened", body = ApiErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(state.connections.get(&id)?))
}

/// Add a connection.
///
/// The URL is checked by the backend's own parser; a password in it is moved out of it and
/// sealed with the controller's key.
#[utoipa::path(
    post,
    path = "/api/connections",
    operation_id = "create_connection",
    tag = "connections",
    request_body(content = CreateConnection, content_type = "application/json"),
    responses(
        (status = 201, description = "The new connection (never its password)", body = ConnectionView),
        (status = 400, description = "The body is not valid JSON, or the name, URL or secret is not valid (the message names the field)", body = ApiErrorBody),
        (status = 409, description = "A connection with this name exists", body = ApiErrorBody),
        (status = 500, description = "The stored connections file cannot be written; nothing was changed", body = ApiErrorBody),
        (status = 503, description = "The stored connections or the controller's key cannot be opened", body = ApiErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    // The body may hold a password: serde's message quotes no values, only positions and names.
    let req: CreateConnection = serde_json::from_slice(&bytes)
        .map_err(|e| bad_request(format!("the connection is not valid JSON: {e}")))?;
    let created = state.connections.create(&req.name, &req.url, req.secret.as_deref())?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Remove a stored connection.
#[utoipa::path(
    delete,
    path = "/api/connections/{id}",
    operation_id = "delete_connection",
    tag = "connections",
    params(("id" = String, Path, description = "The connection id (`demo` for the built-in demo database)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No stored connection with this id", body = ApiErrorBody),
        (status = 409, description = "The demo connection is built in and cannot be removed", body = ApiErrorBody),
        (status = 500, description = "The stored connections file cannot be written; nothing was changed", body = ApiErrorBody),
        (status = 503, description = "The stored connections or the controller's key cannot be opened", body = ApiErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    state.connections.delete(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects and runs a trivial query. Unknown ids are 404; a connection that does not answer
/// or refuses the login is `ok: false` with the backend's message.
pub(crate) async fn test_connection(store: &ConnectionStore, id: &str) -> Result<TestResult, ApiError> {
    let failed = |message: String| TestResult { ok: false, message, latency_ms: None, server_version: None };
    let resolved = match store.resolve(id) {
        Ok(r) => r,
        Err(e) if e.kind == ApiErrorKind::NotFound => return Err(e),
        Err(e) => return Ok(failed(e.message)),
    };
    if id == DEMO_ID {
        if let Err(e) = store.ensure_demo().await {
            return Ok(failed(e.message));
        }
    }
    let started = Instant::now();
    let outcome = tokio::time::timeout(TEST_TIMEOUT, unistore_adapters::ping(&resolved.full_url())).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(match outcome {
        Ok(Ok(version)) => TestResult {
            ok: true,
            message: format!("connected in {latency_ms:.1} ms"),
            latency_ms: Some(latency_ms),
            server_version: Some(version),
        },
        Ok(Err(e)) => failed(resolved.scrub(e.to_string())),
        Err(_) => failed(format!(
            "no answer within {} s: check the host, port and firewall",
            TEST_TIMEOUT.as_secs()
        )),
    })
}

/// Test a stored connection.
///
/// Connects and runs a trivial query, within 20 s. A connection that does not answer or refuses
/// the login is a 200 with `ok: false` and the backend's message.
#[utoipa::path(
    post,
    path = "/api/connections/{id}/test",
    operation_id = "test_connection",
    tag = "connections",
    params(("id" = String, Path, description = "The connection id (`demo` for the built-in demo database)")),
    responses(
        (status = 200, description = "The outcome (`ok` says whether it connected)", body = TestResult),
        (status = 404, description = "No stored connection with this id", body = ApiErrorBody),
    )
)]
pub(crate) async fn test(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<TestResult>, ApiError> {
    Ok(Json(test_connection(&state.connections, &id).await?))
}

/// The connections routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/connections", get(list).post(create))
        .route("/api/connections/{id}", get(show).delete(remove))
        .route("/api/connections/{id}/test", post(test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_url_carries_the_password_and_errors_do_not() {
        let r = Resolved {
            kind: "postgres".into(),
            url: "postgres://bob@db/app".into(),
            secret: Some(Secret::new("p@ss word")),
        };
        assert_eq!(r.full_url(), "postgres://bob:p%40ss%20word@db/app");
        assert_eq!(r.scrub("login p@ss word failed".into()), "login *** failed");
    }
}
