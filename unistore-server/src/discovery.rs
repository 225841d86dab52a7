//! Discovery: what a stored connection holds, for the templates form's table picker.
//!
//! - `GET /api/connections/{id}/databases`: database names (empty for SQLite, whose file is
//!   one database);
//! - `GET /api/connections/{id}/schemas?database=`: schema names;
//! - `GET /api/connections/{id}/tables?database=&schema=`: tables, each with its type
//!   (standard / hybrid / interactive / postgres / sqlite), row estimate and key columns.
//!
//! The names a user types are checked and bound or quoted by the adapters' catalogs, never
//! pasted into SQL. An unknown database or schema is a 404 naming it; a connection that cannot
//! be reached a 503 with the adapter's message (which never holds the secret).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use unistore_core::{Catalog, CatalogTable};

use crate::error::{ApiError, ApiErrorKind, ErrorBody as ApiErrorBody};
use crate::results_api::{only_known, param};
use crate::AppState;

/// Longest a listing may take (connecting included): a database that accepts connections but
/// never answers must not hold the form.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

type Params = Query<HashMap<String, String>>;

/// Opens the connection's catalog and runs `list` on it, within [`DISCOVERY_TIMEOUT`].
async fn with_catalog<T, F, Fut>(state: &AppState, id: &str, list: F) -> Result<T, ApiError>
where
    F: FnOnce(Arc<dyn Catalog>) -> Fut,
    Fut: std::future::Future<Output = unistore_core::Result<T>>,
{
    let url = crate::connections::connection_url(state, id)?;
    if let Some(path) = url.strip_prefix("sqlite://").filter(|_| id == "demo") {
        // The built-in connection's file is made on first use, as for a run or a preview.
        crate::demo::ensure_demo_at(path.into()).await?;
    }
    let work = async move {
        let catalog = unistore_adapters::open_catalog(&url).await?;
        list(catalog).await
    };
    match tokio::time::timeout(DISCOVERY_TIMEOUT, work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Unavailable,
            format!(
                "connection `{id}` did not answer the listing within {} s: test it on the Connections page",
                DISCOVERY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Databases of a stored connection.
#[utoipa::path(
    get,
    path = "/api/connections/{id}/databases",
    operation_id = "list_databases",
    tag = "discovery",
    params(("id" = String, Path, description = "The stored connection's id (`demo` for the built-in demo database)")),
    responses(
        (status = 200, description = "Database names, sorted (empty for SQLite, whose file is one database)", body = Vec<String>),
        (status = 400, description = "A query parameter was given (this route takes none)", body = ApiErrorBody),
        (status = 404, description = "No stored connection with this id", body = ApiErrorBody),
        (status = 503, description = "The connection cannot be reached or does not answer within 30 s (the adapter's message, never the secret)", body = ApiErrorBody),
    )
)]
pub(crate) async fn databases(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<Vec<String>>, ApiError> {
    only_known(&params, &[])?;
    Ok(Json(with_catalog(&state, &id, |c| async move { c.databases().await }).await?))
}

/// Schemas of a database of a stored connection.
#[utoipa::path(
    get,
    path = "/api/connections/{id}/schemas",
    operation_id = "list_schemas",
    tag = "discovery",
    params(
        ("id" = String, Path, description = "The stored connection's id (`demo` for the built-in demo database)"),
        ("database" = Option<String>, Query, description = "The database (default: the connection's)"),
    ),
    responses(
        (status = 200, description = "Schema names, sorted, system schemas left out", body = Vec<String>),
        (status = 400, description = "An unknown parameter, or a database name that is not valid", body = ApiErrorBody),
        (status = 404, description = "No stored connection with this id, or no such database (the message names it)", body = ApiErrorBody),
        (status = 503, description = "The connection cannot be reached or does not answer within 30 s (the adapter's message, never the secret)", body = ApiErrorBody),
    )
)]
pub(crate) async fn schemas(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<Vec<String>>, ApiError> {
    only_known(&params, &["database"])?;
    let database = param(&params, "database").map(str::to_string);
    Ok(Json(with_catalog(&state, &id, |c| async move { c.schemas(database.as_deref()).await }).await?))
}

/// Tables of a stored connection.
#[utoipa::path(
    get,
    path = "/api/connections/{id}/tables",
    operation_id = "list_tables",
    tag = "discovery",
    params(
        ("id" = String, Path, description = "The stored connection's id (`demo` for the built-in demo database)"),
        ("database" = Option<String>, Query, description = "The database (default: the connection's)"),
        ("schema" = Option<String>, Query, description = "The schema (default: every non-system schema of the database)"),
    ),
    responses(
        (status = 200, description = "Tables sorted by schema then name, each with its type, row estimate and key columns", body = Vec<CatalogTable>),
        (status = 400, description = "An unknown parameter, or a database or schema name that is not valid", body = ApiErrorBody),
        (status = 404, description = "No stored connection with this id, or no such database or schema (the message names it)", body = ApiErrorBody),
        (status = 503, description = "The connection cannot be reached or does not answer within 30 s (the adapter's message, never the secret)", body = ApiErrorBody),
    )
)]
pub(crate) async fn tables(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Json<Vec<CatalogTable>>, ApiError> {
    only_known(&params, &["database", "schema"])?;
    let database = param(&params, "database").map(str::to_string);
    let schema = param(&params, "schema").map(str::to_string);
    Ok(Json(
        with_catalog(&state, &id, |c| async move { c.tables(database.as_deref(), schema.as_deref()).await })
            .await?,
    ))
}

/// The discovery routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/connections/{id}/databases", get(databases))
        .route("/api/connections/{id}/schemas", get(schemas))
        .route("/api/connections/{id}/tables", get(tables))
}
