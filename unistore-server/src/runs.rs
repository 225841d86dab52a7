//! The runs API (JSON): prepare, start, stop and watch multi-worker runs, and the endpoint
//! workers push their one-second snapshots to.
//!
//! - `POST /api/runs` with `{"template_id": "..."}` (a stored template) or `{"template": {...}}`
//!   (inline; a `target` of `connection:ID` names a stored connection), optionally `"on_worker_loss": {"policy": "replace", "max_replacements": 2}`:
//!   201 with the run's row (`PREPARED`);
//! - `POST /api/runs/{id}/start`, `POST /api/runs/{id}/stop` (optional `{"reason": "..."}`);
//! - `GET /api/runs/{id}`: status, phase, elapsed, workers with their last heartbeat, and the
//!   merged live figures; `GET /api/runs?limit=N`: the most recent runs;
//! - `POST /api/runs/{id}/metrics/live`: a worker's snapshot.
//!
//! Bad input is a 4xx with `{"error": {"kind", "message"}}`; nothing is half-created.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use unistore_core::metrics::MetricSnapshot;
use unistore_core::model::RunStatusRecord;
use unistore_core::orchestrator::{LossPolicy, RunOptions, RunView};
use unistore_core::{RunId, Template};

use crate::error::{ApiError, ApiErrorKind};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRun {
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    template: Option<serde_json::Value>,
    #[serde(default)]
    on_worker_loss: Option<LossPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopRun {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, message)
}

fn orchestrator(state: &AppState) -> Result<&Arc<unistore_core::orchestrator::Orchestrator>, ApiError> {
    state.orchestrator.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Unavailable,
            "this server runs without a control store: start it with --control URL to run benchmarks",
        )
    })
}

fn run_id(id: &str) -> Result<RunId, ApiError> {
    id.parse().map_err(|e: unistore_core::Error| bad_request(e.to_string()))
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| bad_request(format!("{what}: {e}")))
}

async fn create(
    State(state): State<Arc<AppState>>,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<RunStatusRecord>), ApiError> {
    let o = orchestrator(&state)?;
    let req: CreateRun = body(&bytes, "the run request is not valid JSON")?;
    let mut template: Template = match (req.template_id, req.template) {
        (Some(_), Some(_)) => return Err(bad_request("give either template_id or template, not both")),
        (None, None) => {
            return Err(bad_request("give template_id (a stored template) or template (the template itself)"))
        }
        (Some(id), None) => {
            state
                .results
                .reader
                .template(&id)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        ApiErrorKind::NotFound,
                        format!("no stored template `{id}`"),
                    )
                })?
                .template
        }
        (None, Some(value)) => serde_json::from_value(value)
            .map_err(|e| bad_request(format!("the template is not valid: {e}")))?,
    };
    let mut options = RunOptions { on_worker_loss: req.on_worker_loss, ..RunOptions::default() };
    // A stored connection: the run's template gets its URL without the password, and the
    // password reaches the workers through their environment only.
    if let Some(id) = template.target.as_deref().and_then(|t| t.strip_prefix("connection:")) {
        let target = state.connections.run_target(id.trim()).await?;
        template.target = Some(target.url);
        options.worker_env = target.env;
    }
    let record = o.prepare(template, options).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

async fn start(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<RunStatusRecord>, ApiError> {
    let o = orchestrator(&state)?;
    Ok(Json(o.start(run_id(&id)?).await?))
}

async fn stop(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<RunStatusRecord>, ApiError> {
    let o = orchestrator(&state)?;
    let req: StopRun = if bytes.is_empty() { StopRun::default() } else { body(&bytes, "the stop request")? };
    Ok(Json(o.stop(run_id(&id)?, req.reason).await?))
}

async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<RunView>, ApiError> {
    let o = orchestrator(&state)?;
    Ok(Json(o.view(run_id(&id)?).await?))
}

async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RunStatusRecord>>, ApiError> {
    let o = orchestrator(&state)?;
    Ok(Json(o.list(q.limit.clamp(1, 1_000)).await?))
}

async fn live(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let o = orchestrator(&state)?;
    let run = run_id(&id)?;
    let snapshot: MetricSnapshot = body(&bytes, "the snapshot")?;
    if snapshot.run_id != run {
        return Err(bad_request(format!("the snapshot is of run {}, not of run {run}", snapshot.run_id)));
    }
    o.observe_live(snapshot)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The runs routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/runs", get(list).post(create))
        .route("/api/runs/{id}", get(show))
        .route("/api/runs/{id}/start", post(start))
        .route("/api/runs/{id}/stop", post(stop))
        .route("/api/runs/{id}/metrics/live", post(live))
}
