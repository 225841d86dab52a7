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

use crate::error::{ApiError, ApiErrorKind, ErrorBody as ApiErrorBody};
use crate::AppState;

/// A run to prepare: a stored template (`template_id`) or the template itself (`template`),
/// exactly one of the two.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRun {
    /// The id of a stored template (`GET /api/templates` lists them).
    #[serde(default)]
    template_id: Option<String>,
    /// The template itself, as in a template file in JSON (`name`, `target`, `table`, `mix`,
    /// `load`, `phases`, ...). A `target` of `connection:ID` names a stored connection.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    template: Option<serde_json::Value>,
    /// What happens when a worker stops responding (default: the controller's setting).
    #[serde(default)]
    on_worker_loss: Option<LossPolicy>,
}

/// Why a run is stopped (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StopRun {
    /// Recorded with the run as the reason it was cancelled.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// The most recent runs to list, 1 to 1,000 (clamped; default 50).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000, default = 50)]
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

/// Prepare a run.
///
/// The run's workers are planned and its row written (`PREPARED`); nothing runs until
/// `POST /api/runs/{id}/start`.
#[utoipa::path(
    post,
    path = "/api/runs",
    operation_id = "create_run",
    tag = "runs",
    request_body(content = CreateRun, content_type = "application/json"),
    responses(
        (status = 201, description = "The run is prepared: its row", body = RunStatusRecord),
        (status = 400, description = "The body is not valid JSON, gives both or neither of `template_id` and `template`, the template is not valid, or its `connection:ID` names no stored connection", body = ApiErrorBody),
        (status = 404, description = "No stored template `template_id`", body = ApiErrorBody),
        (status = 409, description = "The control store refused the run (a conflict)", body = ApiErrorBody),
        (status = 503, description = "The controller runs without a control store (`--control URL`), or the control store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn create(
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

/// Start a prepared run.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/start",
    operation_id = "start_run",
    tag = "runs",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "The run is starting: its row", body = RunStatusRecord),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 409, description = "The run is not `PREPARED` (started already, or ended)", body = ApiErrorBody),
        (status = 503, description = "The controller runs without a control store (`--control URL`), or the control store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn start(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<RunStatusRecord>, ApiError> {
    let o = orchestrator(&state)?;
    let run = run_id(&id)?;
    let record = o.start(run).await?;
    // Followed from its start, so that a page opened later charts the whole run.
    state.live.follow(&state, run);
    Ok(Json(record))
}

/// Stop a run.
///
/// The body is optional: `{"reason": "..."}`.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/stop",
    operation_id = "stop_run",
    tag = "runs",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    request_body(content = Option<StopRun>, content_type = "application/json"),
    responses(
        (status = 200, description = "The run is stopping: its row", body = RunStatusRecord),
        (status = 400, description = "The id is not a run id, or the body is not a stop request", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 409, description = "The run has ended already", body = ApiErrorBody),
        (status = 503, description = "The controller runs without a control store (`--control URL`), or the control store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn stop(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<RunStatusRecord>, ApiError> {
    let o = orchestrator(&state)?;
    let req: StopRun = if bytes.is_empty() { StopRun::default() } else { body(&bytes, "the stop request")? };
    Ok(Json(o.stop(run_id(&id)?, req.reason).await?))
}

/// A run's status.
///
/// Status, phase, elapsed time, the workers with their last heartbeat, and the merged live
/// figures of the workers' latest one-second snapshots.
#[utoipa::path(
    get,
    path = "/api/runs/{id}",
    operation_id = "show_run",
    tag = "runs",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "No such run", body = ApiErrorBody),
        (status = 503, description = "The controller runs without a control store (`--control URL`), or the control store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let o = orchestrator(&state)?;
    Ok(Json(o.view(run_id(&id)?).await?))
}

/// The most recent runs.
#[utoipa::path(
    get,
    path = "/api/runs",
    operation_id = "list_runs",
    tag = "runs",
    params(ListQuery),
    responses(
        (status = 200, description = "The runs' rows, most recent first", body = Vec<RunStatusRecord>),
        (status = 400, description = "`limit` is not a whole number (answered by the query extractor, in plain text)", content_type = "text/plain", body = String),
        (status = 503, description = "The controller runs without a control store (`--control URL`), or the control store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RunStatusRecord>>, ApiError> {
    let o = orchestrator(&state)?;
    Ok(Json(o.list(q.limit.clamp(1, 1_000)).await?))
}

/// A worker's one-second snapshot.
///
/// Workers push their snapshots here; the run's live figures merge the latest of each worker.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/metrics/live",
    operation_id = "push_live_snapshot",
    tag = "runs",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "A metric snapshot as workers send it: `run_id`, `worker_id`, `seq`, `taken_at`, `phase`, `interval_s`, the `total` and `by_kind` figures (with their serialized histograms) and the connections"
    ),
    responses(
        (status = 204, description = "Taken"),
        (status = 400, description = "The id is not a run id, the body is not a snapshot, or the snapshot is of another run", body = ApiErrorBody),
        (status = 404, description = "The controller does not drive this run", body = ApiErrorBody),
        (status = 503, description = "The controller runs without a control store (`--control URL`), or the control store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn live(
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
