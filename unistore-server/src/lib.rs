//! # unistore-server
//!
//! The Unistore Bench controller. [`router`] holds every route: the web UI (server-rendered
//! pages with embedded assets: templates, a run's live page, history, run detail, compare,
//! connections), the JSON API under `/api` (runs, templates with the SQL preview, stored results,
//! stored connections with discovery), a run's live figures over WebSocket (`GET /ws/test/{id}`,
//! one message a second), `GET /healthz`, and the OpenAPI document of every API route, generated
//! from the handlers, at `GET /api/openapi.json`. [`protect`] adds the access rules (token beyond
//! loopback, same-origin changes), and [`serve`] runs the router within [`ServerLimits`]
//! (header-read timeout, request timeout, write timeout, body and header size limits, a bound on
//! open connections) and shuts down gracefully.
//!
//! ```no_run
//! use std::time::Duration;
//! use unistore_server::{bind_listener, router, serve, AppState, ServerLimits};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let results = unistore_adapters::open_results("sqlite:///tmp/results.db").await?;
//! let state = AppState {
//!     results,
//!     results_kind: "sqlite".into(),
//!     orchestrator: None,
//!     live: Default::default(),
//!     connections: Default::default(),
//! };
//! let limits = ServerLimits { header_timeout: Duration::from_secs(5), ..ServerLimits::default() };
//! let listener = bind_listener("127.0.0.1:0", &limits).await?;
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! let report = serve(listener, router(state), limits, shutdown).await?;
//! println!("{} connections served", report.connections_accepted);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use unistore_adapters::ResultsStore;

mod auth;
mod connection;
pub mod connections;
mod demo;
mod discovery;
mod error;
mod eviction;
mod limits;
mod live;
mod openapi;
mod results_api;
mod runs;
pub mod secrets;
mod serve;
mod templates;
mod ui;

pub use auth::{protect, Access, MIN_TOKEN_LEN, TOKEN_COOKIE};
pub use demo::{demo_template, seed_demo, DEMO_TEMPLATE_ID};
pub use error::{ApiError, ApiErrorKind, ServerError};
pub use limits::{parse_byte_size, parse_duration, ServerLimits, RESERVED_DESCRIPTORS};
pub use live::LiveHub;
pub use serve::{apply_limits, bind_listener, serve, ShutdownReport};

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The results store.
    pub results: ResultsStore,
    /// Backend name of the results store (`sqlite`, `postgres`, `snowflake`).
    pub results_kind: String,
    /// Runs multi-worker runs (`None`: the runs API answers 503).
    pub orchestrator: Option<Arc<unistore_core::orchestrator::Orchestrator>>,
    /// The runs watched over WebSocket (`/ws/test/{id}`), one ticker each.
    pub live: Arc<LiveHub>,
    /// The stored connections (`Default`: those of the data directory, opened at first use).
    pub connections: Arc<connections::ConnectionStore>,
}

/// The answer of the health check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The controller's version.
    version: &'static str,
    /// The results store's backend (`sqlite`, `postgres`, `snowflake`).
    results: String,
    /// Runs in the results store, counted up to 1,000.
    runs_stored: usize,
}

/// Health check.
///
/// Reads the results store, so a 200 means the store answers, not only the process.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    responses(
        (status = 200, description = "The controller and its results store answer", body = Health),
        (status = 503, description = "The results store does not answer", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn healthz(State(state): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    // A health check that reads the store proves the store answers, not only the process.
    let runs = state.results.reader.runs(1_000).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Unavailable,
            format!("results store unavailable: {e}"),
        )
    })?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        results: state.results_kind.clone(),
        runs_stored: runs.len(),
    }))
}

/// The controller's routes. [`serve`] adds the limits.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi::document))
        .merge(runs::routes())
        .merge(results_api::routes())
        .merge(live::routes())
        .merge(templates::routes())
        .merge(discovery::routes())
        .merge(connections::routes())
        .merge(ui::routes())
        .with_state(Arc::new(state))
}
