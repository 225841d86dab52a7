//! The stored-results API (JSON): finished and running runs as the results store holds them,
//! for the history, run-detail and compare pages. Everything goes through `ResultsReader`, so
//! it answers the same on every results store, and the figures are those of the CLI's `runs`,
//! `show`, `export` and `compare`.
//!
//! - `GET /api/results?template=&table=&status=&table_type=&from=&to=&limit=&offset=`: the
//!   runs' own rows (not their workers'), newest first, filtered (dates in RFC 3339, both
//!   inclusive) and paged by the store (`limit` 1 to 500, default 50), with the `total` count;
//! - `GET /api/results/{id}`: the summary, the workers' summaries and the run's configuration;
//! - `GET /api/results/{id}/series`: one point a second over every phase;
//! - `GET /api/results/{id}/kinds`: the per-kind table of the summary;
//! - `GET /api/results/{id}/executions?limit=`: sampled executions, in time order;
//! - `GET /api/results/{id}/errors`: errors by kind and the first message of each kind;
//! - `GET /api/results/{id}/server`: the server's own figures;
//! - `GET /api/results/{id}/export?format=csv|json`: a download, as the CLI's `export`;
//! - `GET /api/results/compare?runs=A,B[,C...]&confidence=`: the core's comparison.
//!
//! - `DELETE /api/results/{id}`: removes a finished run (409 while it is still going).
//!
//! An unknown run is a 404, a malformed id or filter a 400 naming the parameter at fault.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use unistore_core::analysis::{all_seconds, compare, snapshots_csv, CompareOptions, RunData};
use unistore_core::metrics::{KindStats, MetricSnapshot, RunSummary};
use unistore_core::{RunFilter, RunId, RunStatus, TableType};

use crate::error::{ApiError, ApiErrorKind, ErrorBody as ApiErrorBody};
use crate::AppState;

/// Runs per page unless `limit` says otherwise, and the most a page may hold.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// Sampled executions per answer unless `limit` says otherwise, and the most.
const DEFAULT_EXECUTIONS: usize = 100;
const MAX_EXECUTIONS: usize = 10_000;
/// A comparison resamples every run's seconds: more runs than a compare page shows would
/// only make one request expensive.
const MAX_COMPARED: usize = 8;

type Params = Query<HashMap<String, String>>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, message)
}

fn not_found(run_id: RunId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ApiErrorKind::NotFound,
        format!("run {run_id} is not in the results store"),
    )
}

fn parse_run_id(text: &str) -> Result<RunId, ApiError> {
    text.trim()
        .parse::<RunId>()
        .map_err(|_| bad_request(format!("`{text}` is not a run id (a UUID such as 5f0c2a9e-...)")))
}

/// Rejects parameters the route does not know, so that a misspelt filter (`stauts=`) is an
/// error instead of a silently unfiltered answer.
pub(crate) fn only_known(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = params.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
    unknown.sort_unstable();
    match unknown.first() {
        None => Ok(()),
        Some(k) if known.is_empty() => {
            Err(bad_request(format!("unknown parameter `{k}`: this route takes none")))
        }
        Some(k) => Err(bad_request(format!("unknown parameter `{k}`: use {}", known.join(", ")))),
    }
}

/// A non-empty parameter (an empty one counts as absent, as an empty form field sends it).
pub(crate) fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn count_param(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ApiError> {
    let Some(text) = param(params, name) else { return Ok(default) };
    match text.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(bad_request(format!(
            "`{name}` must be a whole number from {} to {}, not `{text}`",
            range.start(),
            range.end()
        ))),
    }
}

fn date_param(params: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    param(params, name)
        .map(|text| {
            DateTime::parse_from_rfc3339(text).map(|d| d.with_timezone(&Utc)).map_err(|e| {
                bad_request(format!(
                    "`{name}` must be an RFC 3339 time such as 2025-01-31T08:00:00Z, not `{text}`: {e}"
                ))
            })
        })
        .transpose()
}

/// Stored runs, filtered and paged.
///
/// The runs' own rows (not their workers'), newest first, each as the CLI's `runs` lists it.
#[utoipa::path(
    get,
    path = "/api/results",
    operation_id = "list_results",
    tag = "results",
    params(
        ("template" = Option<String>, Query, description = "Only runs of the template with this name"),
        ("table" = Option<String>, Query, description = "Only runs on this table"),
        ("status" = Option<String>, Query, description = "Only runs with this status: COMPLETED, FAILED, CANCELLED, RUNNING or PREPARED"),
        ("table_type" = Option<String>, Query, description = "Only runs on tables of this type: standard, hybrid, interactive, postgres or sqlite"),
        ("from" = Option<String>, Query, description = "Only runs started at or after this time (RFC 3339, e.g. 2025-01-31T08:00:00Z)"),
        ("to" = Option<String>, Query, description = "Only runs started at or before this time (RFC 3339)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 500, description = "Runs per page, 1 to 500 (default 50)"),
        ("offset" = Option<usize>, Query, maximum = 1000000, description = "Runs to skip (default 0)"),
    ),
    responses(
        (status = 200, description = "A page of runs: `{\"runs\": [listing, ...], \"total\", \"limit\", \"offset\", \"has_more\"}`, each listing with `run_id`, `started_at`, `template`, `table`, `table_type`, `mode`, `connections`, `target_qps`, `status`, `verdict`, `workers`, `ops`, `errors`, `qps` and latency percentiles", body = Object),
        (status = 400, description = "A parameter is unknown or malformed, or `from` is after `to` (the message names it)", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    only_known(&params, &["template", "table", "status", "table_type", "from", "to", "limit", "offset"])?;
    let limit = count_param(&params, "limit", DEFAULT_PAGE, 1..=MAX_PAGE)?;
    let offset = count_param(&params, "offset", 0, 0..=1_000_000)?;
    let status = param(&params, "status")
        .map(|s| {
            s.parse::<RunStatus>().map_err(|_| {
                bad_request(format!(
                    "`status` `{s}` is not a run status: use COMPLETED, FAILED, CANCELLED, RUNNING or PREPARED"
                ))
            })
        })
        .transpose()?;
    let table_type = param(&params, "table_type")
        .map(|t| {
            t.parse::<TableType>().map_err(|_| {
                bad_request(format!(
                    "`table_type` `{t}` is not a table type: use standard, hybrid, interactive, postgres or sqlite"
                ))
            })
        })
        .transpose()?;
    let from = date_param(&params, "from")?;
    let to = date_param(&params, "to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(bad_request(format!("`from` ({f}) is after `to` ({t})")));
        }
    }
    let template = param(&params, "template");
    let table = param(&params, "table");

    // Filtered and paged by the store (in SQL); each row's listing comes from its summary, so
    // the page shows the same figures as the CLI's `runs`.
    let filter = RunFilter {
        template_name: template.map(str::to_string),
        table: table.map(str::to_string),
        table_type,
        status: status.map(|s| vec![s]),
        since: from,
        until: to,
        limit,
        offset,
    };
    let found = state.results.reader.runs_page(&filter).await?;
    let mut page = Vec::with_capacity(found.runs.len());
    for row in &found.runs {
        if let Some(s) = state.results.reader.summary(row.run_id, None).await? {
            page.push(unistore_core::analysis::run_listing(&s));
        }
    }
    let more = (offset as u64).saturating_add(found.runs.len() as u64) < found.total;
    Ok(Json(
        json!({ "runs": page, "total": found.total, "limit": limit, "offset": offset, "has_more": more }),
    ))
}

/// `DELETE /api/results/{id}`: removes a finished run's rows (its summary, its workers',
/// snapshots, sampled executions). A run still going is refused: stop it first.
#[utoipa::path(
    delete,
    path = "/api/results/{id}",
    operation_id = "delete_result",
    tag = "results",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 204, description = "The run's rows are removed"),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 409, description = "The run is still going: stop it first", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let run_id = parse_run_id(&id)?;
    let summary = state.results.reader.summary(run_id, None).await?.ok_or_else(|| not_found(run_id))?;
    if !summary.status.is_terminal() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ApiErrorKind::Conflict,
            format!("run {run_id} is still {}: stop it before deleting it", summary.status),
        ));
    }
    if state.results.reader.delete_run(run_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(run_id))
    }
}

/// A run's own summary, or 404.
async fn summary_of(state: &AppState, id: &str) -> Result<RunSummary, ApiError> {
    let run_id = parse_run_id(id)?;
    state.results.reader.summary(run_id, None).await?.ok_or_else(|| not_found(run_id))
}

/// The summaries of a run's workers, in worker order (empty for a one-process run), found
/// through the workers that sent snapshots (as the CLI's `show`). The run page shows them too.
pub(crate) async fn workers_of(
    reader: &dyn unistore_core::ResultsReader,
    run_id: RunId,
    snapshots: &[MetricSnapshot],
) -> Result<Vec<RunSummary>, ApiError> {
    let ids: BTreeSet<&str> = snapshots.iter().map(|s| s.worker_id.as_str()).collect();
    let mut parts = Vec::new();
    for id in ids {
        if let Some(s) = reader.summary(run_id, Some(id)).await? {
            parts.push(s);
        }
    }
    Ok(parts)
}

/// A stored run.
#[utoipa::path(
    get,
    path = "/api/results/{id}",
    operation_id = "show_result",
    tag = "results",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "`{\"summary\", \"workers\", \"record\"}`: the run's summary (as the CLI's `show`), its workers' summaries in worker order (empty for a one-process run), and its row with the effective template (`null` when the store has none)", body = Object),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let summary = summary_of(&state, &id).await?;
    let run_id = summary.run_id;
    let record = state.results.reader.run_record(run_id, None).await?;
    let snapshots = state.results.reader.snapshots(run_id).await?;
    let workers = workers_of(state.results.reader.as_ref(), run_id, &snapshots).await?;
    Ok(Json(json!({ "summary": summary, "workers": workers, "record": record })))
}

/// A stored run's seconds.
#[utoipa::path(
    get,
    path = "/api/results/{id}/series",
    operation_id = "result_series",
    tag = "results",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "`{\"run_id\", \"seconds\": [...]}`: one point a second over every phase, each with `elapsed_s`, `phase`, `qps`, `ops`, `errors`, `p50_ms`, `p95_ms`, `p99_ms`, `active_connections` and `target_connections`", body = Object),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn series(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let summary = summary_of(&state, &id).await?;
    let run_id = summary.run_id;
    let snapshots = state.results.reader.snapshots(run_id).await?;
    let run = RunData { summary, record: None, snapshots };
    let points: Vec<Value> = all_seconds(&run)?
        .into_iter()
        .map(|p| {
            json!({
                "elapsed_s": p.second,
                "phase": p.phase,
                "qps": p.stats.qps,
                "ops": p.stats.ops,
                "errors": p.stats.errors,
                "p50_ms": p.stats.latency_ms.p50,
                "p95_ms": p.stats.latency_ms.p95,
                "p99_ms": p.stats.latency_ms.p99,
                "active_connections": p.active_connections,
                "target_connections": p.target_connections,
            })
        })
        .collect();
    Ok(Json(json!({ "run_id": run_id, "seconds": points })))
}

fn kind_row(kind: &str, k: &KindStats) -> Value {
    let l = &k.latency_ms;
    json!({
        "kind": kind,
        "ops": k.ops,
        "errors": k.errors,
        "error_rate": k.error_rate(),
        "rows": k.rows,
        "qps": k.qps,
        "mean_ms": l.mean,
        "p50_ms": l.p50,
        "p95_ms": l.p95,
        "p99_ms": l.p99,
        "p999_ms": l.p999,
        "max_ms": l.max,
    })
}

/// A stored run's figures per query kind.
#[utoipa::path(
    get,
    path = "/api/results/{id}/kinds",
    operation_id = "result_kinds",
    tag = "results",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "`{\"run_id\", \"total\", \"kinds\": [...], \"statements\": [...]}`: rows of `kind`, `ops`, `errors`, `error_rate`, `rows`, `qps`, `mean_ms`, `p50_ms`, `p95_ms`, `p99_ms`, `p999_ms`, `max_ms`, for all kinds (`TOTAL`), each kind and each named custom statement", body = Object),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn kinds(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = summary_of(&state, &id).await?;
    let kinds: Vec<Value> = s.by_kind.iter().map(|(k, v)| kind_row(k.as_str(), v)).collect();
    let statements: Vec<Value> = s.by_statement.iter().map(|(name, v)| kind_row(name, v)).collect();
    Ok(Json(json!({
        "run_id": s.run_id,
        "total": kind_row("TOTAL", &s.total),
        "kinds": kinds,
        "statements": statements,
    })))
}

/// A stored run's sampled executions.
#[utoipa::path(
    get,
    path = "/api/results/{id}/executions",
    operation_id = "result_executions",
    tag = "results",
    params(
        ("id" = String, Path, description = "The run id (a UUID)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 10000, description = "Executions to answer, 1 to 10,000 (default 100)"),
    ),
    responses(
        (status = 200, description = "`{\"run_id\", \"samples_dropped\", \"executions\": [...]}`: sampled executions in time order, each with `worker_id`, `connection`, `kind`, `phase`, `started_at`, `response_us`, `service_us`, `rows`, `ok` and `error_kind`", body = Object),
        (status = 400, description = "The id is not a run id, or a parameter is unknown or malformed (the message names it)", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn executions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    only_known(&params, &["limit"])?;
    let limit = count_param(&params, "limit", DEFAULT_EXECUTIONS, 1..=MAX_EXECUTIONS)?;
    let s = summary_of(&state, &id).await?;
    let rows = state.results.reader.query_executions(s.run_id, limit).await?;
    Ok(Json(json!({ "run_id": s.run_id, "samples_dropped": s.samples_dropped, "executions": rows })))
}

/// A stored run's errors.
#[utoipa::path(
    get,
    path = "/api/results/{id}/errors",
    operation_id = "result_errors",
    tag = "results",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "`{\"run_id\", \"errors\", \"error_rate\", \"by_error_kind\", \"by_query_kind\", \"examples\", \"reason\"}`: errors by error kind, by query kind, the first message of each kind, and why the run failed or was cancelled", body = Object),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn errors(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = summary_of(&state, &id).await?;
    let by_query_kind: serde_json::Map<String, Value> = s
        .by_kind
        .iter()
        .filter(|(_, k)| k.errors > 0)
        .map(|(kind, k)| {
            (kind.as_str().to_string(), json!({ "errors": k.errors, "by_error_kind": k.errors_by_kind }))
        })
        .collect();
    Ok(Json(json!({
        "run_id": s.run_id,
        "errors": s.total.errors,
        "error_rate": s.total.error_rate(),
        "by_error_kind": s.total.errors_by_kind,
        "by_query_kind": by_query_kind,
        "examples": s.error_examples,
        "reason": s.reason,
    })))
}

/// A stored run's server-side figures.
#[utoipa::path(
    get,
    path = "/api/results/{id}/server",
    operation_id = "result_server",
    tag = "results",
    params(("id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 200, description = "`{\"run_id\", \"table\", \"server_stats\"}`: the figures the database itself reported for the table over the run (`null` where the backend reports none)", body = Object),
        (status = 400, description = "The id is not a run id", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn server(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = summary_of(&state, &id).await?;
    Ok(Json(json!({ "run_id": s.run_id, "table": s.table, "server_stats": s.server_stats })))
}

/// A stored run as a file.
///
/// The same files as the CLI's `export`.
#[utoipa::path(
    get,
    path = "/api/results/{id}/export",
    operation_id = "export_result",
    tag = "results",
    params(
        ("id" = String, Path, description = "The run id (a UUID)"),
        ("format" = Option<String>, Query, description = "`csv` (the one-second snapshots) or `json` (summary, workers' summaries and snapshots); default `json`"),
    ),
    responses(
        (status = 200, description = "The file, as an attachment",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"unistore-run-ID.FORMAT\"")),
            content(
                (Object = "application/json"),
                (String = "text/csv"),
            )
        ),
        (status = 400, description = "The id is not a run id, or a parameter is unknown or malformed (the message names it)", body = ApiErrorBody),
        (status = 404, description = "The run is not in the results store", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    only_known(&params, &["format"])?;
    let format = param(&params, "format").unwrap_or("json").to_ascii_lowercase();
    if format != "csv" && format != "json" {
        return Err(bad_request(format!("`format` must be csv or json, not `{format}`")));
    }
    let summary = summary_of(&state, &id).await?;
    let run_id = summary.run_id;
    let snapshots = state.results.reader.snapshots(run_id).await?;
    let (content_type, body) = if format == "csv" {
        ("text/csv; charset=utf-8", snapshots_csv(&snapshots))
    } else {
        let workers = workers_of(state.results.reader.as_ref(), run_id, &snapshots).await?;
        let doc = json!({ "summary": summary, "workers": workers, "snapshots": snapshots });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiErrorKind::Internal,
                format!("cannot write JSON: {e}"),
            )
        })? + "\n";
        ("application/json", text)
    };
    let disposition = format!("attachment; filename=\"unistore-run-{run_id}.{format}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// Compare stored runs.
///
/// The core's comparison (as the CLI's `compare`): each run against the first, the baseline,
/// with bootstrap confidence intervals.
#[utoipa::path(
    get,
    path = "/api/results/compare",
    operation_id = "compare_results",
    tag = "results",
    params(
        ("runs" = String, Query, description = "2 to 8 finished run ids separated by commas, the first the baseline"),
        ("confidence" = Option<f64>, Query, minimum = 0.5, maximum = 0.999, description = "Confidence of the intervals, 0.5 to 0.999 (default 0.95)"),
    ),
    responses(
        (status = 200, description = "`{\"runs\": [listing, ...], \"comparison\"}`: the runs as `GET /api/results` lists them, and the `comparison`: `runs`, `confidence`, `method`, `warnings` and `rows`, one per query kind and figure with each run's value and its difference from the baseline (with its interval)", body = Object),
        (status = 400, description = "`runs` names fewer than 2 or more than 8 runs, a run twice, a run that is not in the store or still running, or a parameter is malformed", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn compare_runs(
    State(state): State<Arc<AppState>>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    only_known(&params, &["runs", "confidence"])?;
    let ids: Vec<&str> =
        param(&params, "runs").unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if ids.len() < 2 || ids.len() > MAX_COMPARED {
        return Err(bad_request(format!(
            "`runs` must name 2 to {MAX_COMPARED} runs separated by commas, the first the baseline; got {}",
            ids.len()
        )));
    }
    let confidence = match param(&params, "confidence") {
        None => 0.95,
        Some(text) => match text.parse::<f64>() {
            Ok(c) if (0.5..=0.999).contains(&c) => c,
            _ => return Err(bad_request(format!("`confidence` must be from 0.5 to 0.999, not `{text}`"))),
        },
    };
    let mut seen = BTreeSet::new();
    let mut runs = Vec::with_capacity(ids.len());
    for text in ids {
        let run_id = parse_run_id(text)?;
        if !seen.insert(run_id) {
            return Err(bad_request(format!("run {run_id} is named twice: name each run once")));
        }
        // A comparison names its runs in the query: one that is missing or still running makes
        // the request wrong (400), not the resource absent.
        let run = unistore_core::sink::read_finished_run(state.results.reader.as_ref(), run_id)
            .await?
            .ok_or_else(|| bad_request(format!("run {run_id} is not in the results store")))?;
        runs.push(run);
    }
    // The bootstrap takes CPU for a while: off the async workers, which serve other requests.
    let options = CompareOptions { confidence, ..Default::default() };
    let (comparison, runs) =
        tokio::task::spawn_blocking(move || (compare(&runs, &options), runs)).await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiErrorKind::Internal,
                format!("comparison failed: {e}"),
            )
        })?;
    let listed: Vec<Value> = runs.iter().map(|r| unistore_core::analysis::run_listing(&r.summary)).collect();
    Ok(Json(json!({ "runs": listed, "comparison": comparison? })))
}

/// The stored-results routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/results", get(list))
        .route("/api/results/compare", get(compare_runs))
        .route("/api/results/{id}", get(show).delete(delete))
        .route("/api/results/{id}/series", get(series))
        .route("/api/results/{id}/kinds", get(kinds))
        .route("/api/results/{id}/executions", get(executions))
        .route("/api/results/{id}/errors", get(errors))
        .route("/api/results/{id}/server", get(server))
        .route("/api/results/{id}/export", get(export))
}
