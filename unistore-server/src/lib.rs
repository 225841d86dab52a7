//! # unistore-server
//!
//! The Unistore Bench controller. For now it opens the results store and serves
//! `GET /healthz`; the HTTP API, live metrics over WebSocket and the UI come next.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use unistore_adapters::ResultsStore;

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The results store.
    pub results: ResultsStore,
    /// Backend name of the results store (`sqlite`, `postgres`, `snowflake`).
    pub results_kind: String,
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    results: String,
    runs_stored: usize,
}

async fn healthz(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Health>, (axum::http::StatusCode, String)> {
    // A health check that reads the store proves the store answers, not only the process.
    let runs = state.results.reader.runs(1_000).await.map_err(|e| {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("results store unavailable: {e}"))
    })?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        results: state.results_kind.clone(),
        runs_stored: runs.len(),
    }))
}

/// The controller's routes.
pub fn router(state: AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(Arc::new(state))
}

/// Serves the router on an already bound listener until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}
