//! The templates API: stored, versioned benchmark templates.
//!
//! - `GET /api/templates`: the current version of every template (id, name, table, version,
//!   updated), most recently updated first;
//! - `GET /api/templates/{id}`: its current version with the template;
//!   `GET /api/templates/{id}/versions`: every version, oldest first;
//! - `POST /api/templates`: `{"template": {...}}`, or the template as TOML with
//!   `content-type: application/toml`; 201 with `{"id", "version"}`. The id comes from the name,
//!   as for templates `bench` saves, so a name already taken is a 409 (update it with `PUT`);
//! - `PUT /api/templates/{id}`: the same bodies; a changed template becomes the next version, an
//!   unchanged one keeps its version;
//! - `DELETE /api/templates/{id}`: 204, with every version;
//! - `POST /api/templates/{id}/duplicate`: 201, a new template named `<name> (copy)`;
//! - `GET /api/templates/{id}/export?format=toml|json`: the template as a file;
//!   `POST /api/templates/import`: such a file (TOML or JSON), stored as by `POST`;
//! - `GET /api/templates/{id}/preview`, `POST /api/templates/preview` (a template, as for
//!   create; nothing is stored): the SQL each query kind of the mix would run on the table,
//!   rendered by the target's table manager, with its parameters and the table's profile (see
//!   [`preview`]). A table that is not there is a 404 naming it, a database that cannot be
//!   reached a 503.
//!
//! Every template is validated before anything is stored (a target URL holding a password is
//! refused there, as templates are shown in the UI and kept in the results store); bad input is a
//! 4xx with `{"error": {"kind", "message"}}` naming the field or problem.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use unistore_core::runner::template_id;
use unistore_core::{StoredTemplate, Template};

use crate::error::{ApiError, ApiErrorKind, ErrorBody as ApiErrorBody};
use crate::AppState;

pub(crate) mod preview;

/// Copies tried for a free name before giving up (`(copy)`, `(copy 2)`, ...).
const MAX_COPIES: u32 = 100;

/// A template in JSON (or send the template as TOML with `content-type: application/toml`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateBody {
    /// The template, as in a template file in JSON: `name`, `target` (no password; or
    /// `connection:ID`), `table`, `table_type`, `mix`, `custom_sql`, `values`, `load`,
    /// `scaling`, `phases` (durations as text, e.g. `"30s"`), `slo`, `allow_writes`, `seed`,
    /// `sample_rate`, `timeouts`, `guardrails`, `stages`, `gate`.
    #[schema(value_type = Object)]
    template: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// A stored template's current version, as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TemplateListEntry {
    /// The template's id (from its name).
    id: String,
    /// Its name.
    name: String,
    /// The table it benchmarks.
    table: String,
    /// Its current version, from 1.
    version: u32,
    /// When that version was stored.
    updated: DateTime<Utc>,
}

/// A version of a stored template.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TemplateVersion {
    /// The template's id.
    id: String,
    /// The version, from 1.
    version: u32,
    /// When it was stored.
    updated: DateTime<Utc>,
    /// The template, as in a template file in JSON (durations as text, e.g. `"30s"`).
    #[schema(value_type = Object)]
    template: Template,
}

/// A stored template's id and version after a save.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Saved {
    /// The template's id (`/api/templates/{id}`).
    id: String,
    /// Its name.
    name: String,
    /// The version stored (unchanged when the template was).
    version: u32,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ApiErrorKind::BadRequest, message)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ApiErrorKind::NotFound, format!("no stored template `{id}`"))
}

fn is_toml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/toml" || v == "text/toml")
}

fn utf8(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| bad_request(format!("the body is not UTF-8 text: {e}")))
}

/// A template from a create or update body: TOML when the content type says so, else
/// `{"template": {...}}`. Validated.
fn template_from_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Template, ApiError> {
    if is_toml(headers) {
        return Template::from_toml(utf8(bytes)?)
            .map_err(|e| bad_request(format!("the template is not valid: {e}")));
    }
    let body: TemplateBody = serde_json::from_slice(bytes).map_err(|e| {
        bad_request(format!(
            "the body is not valid JSON of the form {{\"template\": {{...}}}} \
             (or send TOML with content-type: application/toml): {e}"
        ))
    })?;
    let template: Template = serde_json::from_value(body.template)
        .map_err(|e| bad_request(format!("the template is not valid: {e}")))?;
    template.validate().map_err(|e| bad_request(format!("the template is not valid: {e}")))?;
    Ok(template)
}

/// A template from an exported file's text: JSON when the content type says so or the text is
/// a JSON object, else TOML. Validated.
fn template_from_file(headers: &HeaderMap, bytes: &[u8]) -> Result<Template, ApiError> {
    let text = utf8(bytes)?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let parsed = if !is_toml(headers) && (json_type || text.trim_start().starts_with('{')) {
        Template::from_json(text)
    } else {
        Template::from_toml(text)
    };
    parsed.map_err(|e| bad_request(format!("the template is not valid: {e}")))
}

async fn current(state: &AppState, id: &str) -> Result<StoredTemplate, ApiError> {
    state.results.reader.template(id).await?.ok_or_else(|| not_found(id))
}

async fn save(state: &AppState, id: String, template: Template) -> Result<Saved, ApiError> {
    let name = template.name.clone();
    let stored = StoredTemplate { template_id: id.clone(), template, version: 0, updated_at: Utc::now() };
    let version = state.results.sink.save_template_version(&stored).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Unavailable,
            "the template was accepted but the results store has not stored it yet",
        )
    })?;
    Ok(Saved { id, name, version })
}

/// Stores a new template under the id its name gives; a taken id is a conflict, so creating
/// never silently adds a version to another template.
async fn save_new(state: &AppState, template: Template) -> Result<Response, ApiError> {
    let id = template_id(&template);
    if state.results.reader.template(&id).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ApiErrorKind::Conflict,
            format!(
                "a template with the id `{id}` (from the name `{}`) exists: rename this one, or update \
                 that one with PUT /api/templates/{id}",
                template.name
            ),
        ));
    }
    created(save(state, id, template).await?)
}

fn created(saved: Saved) -> Result<Response, ApiError> {
    let location = format!("/api/templates/{}", saved.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(saved)).into_response())
}

/// Stored templates.
#[utoipa::path(
    get,
    path = "/api/templates",
    operation_id = "list_templates",
    tag = "templates",
    responses(
        (status = 200, description = "The current version of every template, most recently updated first", body = Vec<TemplateListEntry>),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<TemplateListEntry>>, ApiError> {
    let templates = state.results.reader.templates().await?;
    Ok(Json(
        templates
            .into_iter()
            .map(|t| TemplateListEntry {
                id: t.template_id,
                name: t.template.name,
                table: t.template.table,
                version: t.version,
                updated: t.updated_at,
            })
            .collect(),
    ))
}

/// A stored template.
#[utoipa::path(
    get,
    path = "/api/templates/{id}",
    operation_id = "show_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)")),
    responses(
        (status = 200, description = "Its current version with the template", body = TemplateVersion),
        (status = 404, description = "No stored template with this id", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<TemplateVersion>, ApiError> {
    let t = current(&state, &id).await?;
    Ok(Json(TemplateVersion {
        id: t.template_id,
        version: t.version,
        updated: t.updated_at,
        template: t.template,
    }))
}

/// Every version of a stored template.
#[utoipa::path(
    get,
    path = "/api/templates/{id}/versions",
    operation_id = "template_versions",
    tag = "templates",
    params(("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)")),
    responses(
        (status = 200, description = "Every version, oldest first", body = Vec<TemplateVersion>),
        (status = 404, description = "No stored template with this id", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn versions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<TemplateVersion>>, ApiError> {
    let all = state.results.reader.template_versions(&id).await?;
    if all.is_empty() {
        return Err(not_found(&id));
    }
    Ok(Json(
        all.into_iter()
            .map(|t| TemplateVersion {
                id: t.template_id,
                version: t.version,
                updated: t.updated_at,
                template: t.template,
            })
            .collect(),
    ))
}

/// Store a new template.
///
/// The id comes from the name, as for templates `bench` saves.
#[utoipa::path(
    post,
    path = "/api/templates",
    operation_id = "create_template",
    tag = "templates",
    request_body(
        description = "The template: JSON `{\"template\": {...}}`, or the template file itself as TOML with `content-type: application/toml`",
        content(
            (TemplateBody = "application/json"),
            (String = "application/toml"),
        )
    ),
    responses(
        (status = 201, description = "Stored as version 1", body = Saved, headers(("Location" = String, description = "`/api/templates/{id}`"))),
        (status = 400, description = "The body is not JSON of the form `{\"template\": {...}}` nor TOML, or the template is not valid (the message names the field)", body = ApiErrorBody),
        (status = 409, description = "A template with the id its name gives exists: rename this one, or update that one with `PUT`", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let template = template_from_body(&headers, &bytes)?;
    save_new(&state, template).await
}

/// Import a template file.
///
/// A file as `GET /api/templates/{id}/export` gives it (TOML or JSON: JSON when the content
/// type says so or the text is a JSON object), stored as by `POST /api/templates`.
#[utoipa::path(
    post,
    path = "/api/templates/import",
    operation_id = "import_template",
    tag = "templates",
    request_body(
        description = "The template file: TOML, or the template as a JSON object",
        content(
            (String = "application/toml"),
            (Object = "application/json"),
        )
    ),
    responses(
        (status = 201, description = "Stored as version 1", body = Saved, headers(("Location" = String, description = "`/api/templates/{id}`"))),
        (status = 400, description = "The file is not UTF-8 text, or not a valid template (the message names the field)", body = ApiErrorBody),
        (status = 409, description = "A template with the id its name gives exists", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn import(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let template = template_from_file(&headers, &bytes)?;
    save_new(&state, template).await
}

/// Update a stored template.
///
/// A changed template becomes the next version; an unchanged one keeps its version.
#[utoipa::path(
    put,
    path = "/api/templates/{id}",
    operation_id = "update_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)")),
    request_body(
        description = "The template: JSON `{\"template\": {...}}`, or the template file itself as TOML with `content-type: application/toml`",
        content(
            (TemplateBody = "application/json"),
            (String = "application/toml"),
        )
    ),
    responses(
        (status = 200, description = "Stored", body = Saved),
        (status = 400, description = "The body is not JSON of the form `{\"template\": {...}}` nor TOML, or the template is not valid (the message names the field)", body = ApiErrorBody),
        (status = 404, description = "No stored template with this id", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<Saved>, ApiError> {
    current(&state, &id).await?;
    let template = template_from_body(&headers, &bytes)?;
    Ok(Json(save(&state, id, template).await?))
}

/// Delete a stored template, with every version.
#[utoipa::path(
    delete,
    path = "/api/templates/{id}",
    operation_id = "delete_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No stored template with this id", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.results.reader.delete_template(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// Duplicate a stored template.
///
/// The copy is named `<name> (copy)` (or `(copy 2)`, ... when that is taken).
#[utoipa::path(
    post,
    path = "/api/templates/{id}/duplicate",
    operation_id = "duplicate_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)")),
    responses(
        (status = 201, description = "The copy, stored as version 1", body = Saved, headers(("Location" = String, description = "`/api/templates/{id}`"))),
        (status = 400, description = "The longer name makes the copy invalid", body = ApiErrorBody),
        (status = 404, description = "No stored template with this id", body = ApiErrorBody),
        (status = 409, description = "The template has 100 copies already", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn duplicate(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let original = current(&state, &id).await?.template;
    for n in 1..=MAX_COPIES {
        let suffix = if n == 1 { " (copy)".to_string() } else { format!(" (copy {n})") };
        let mut copy = original.clone();
        copy.name = format!("{}{suffix}", original.name);
        let copy_id = template_id(&copy);
        if state.results.reader.template(&copy_id).await?.is_some() {
            continue;
        }
        // The longer name may break a limit the original kept to.
        copy.validate().map_err(|e| bad_request(format!("the copy is not a valid template: {e}")))?;
        return created(save(&state, copy_id, copy).await?);
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        ApiErrorKind::Conflict,
        format!("`{id}` has {MAX_COPIES} copies already: rename or delete some"),
    ))
}

/// A stored template as a file.
#[utoipa::path(
    get,
    path = "/api/templates/{id}/export",
    operation_id = "export_template",
    tag = "templates",
    params(
        ("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)"),
        ("format" = Option<String>, Query, description = "`toml` (default) or `json`"),
    ),
    responses(
        (status = 200, description = "The template file, as an attachment",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"ID.FORMAT\"")),
            content(
                (String = "application/toml"),
                (Object = "application/json"),
            )
        ),
        (status = 400, description = "Unknown format", body = ApiErrorBody),
        (status = 404, description = "No stored template with this id", body = ApiErrorBody),
        (status = 503, description = "The results store does not answer", body = ApiErrorBody),
    )
)]
pub(crate) async fn export(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let t = current(&state, &id).await?;
    let (text, content_type, extension) = match q.format.as_deref().unwrap_or("toml") {
        "toml" => (t.template.to_toml()?, "application/toml; charset=utf-8", "toml"),
        "json" => (
            serde_json::to_string_pretty(&t.template).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiErrorKind::Internal,
                    format!("cannot write JSON: {e}"),
                )
            })?,
            "application/json",
            "json",
        ),
        other => return Err(bad_request(format!("unknown export format `{other}`: use toml or json"))),
    };
    // The id is made of ASCII letters, digits, `-` and `_` by `template_id`, but an id stored
    // by other means might not be: keep the header value plain.
    let file: String = t
        .template_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let disposition = format!("attachment; filename=\"{file}.{extension}\"");
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], text)
        .into_response())
}

/// Preview the SQL of a stored template.
///
/// The SQL each query kind of the mix would run on the table, rendered by the target's table
/// manager, with its parameters and the table's profile. Nothing runs against the table but the
/// catalog reads of its profile.
#[utoipa::path(
    get,
    path = "/api/templates/{id}/preview",
    operation_id = "preview_stored_template",
    tag = "templates",
    params(("id" = String, Path, description = "The template id (from its name, e.g. `orders-lookups`)")),
    responses(
        (status = 200, description = "The statements and the table's profile", body = preview::Preview),
        (status = 400, description = "The mix does not fit the table (e.g. a kind its type does not support, no key for lookups)", body = ApiErrorBody),
        (status = 404, description = "No stored template with this id, its `connection:ID` names no stored connection, or the table is not there (the message names it)", body = ApiErrorBody),
        (status = 502, description = "The target database refused access to the table (permission denied)", body = ApiErrorBody),
        (status = 503, description = "The target database, or the results store, cannot be reached or does not answer within 30 s", body = ApiErrorBody),
    )
)]
pub(crate) async fn preview_stored(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<preview::Preview>, ApiError> {
    let template = current(&state, &id).await?.template;
    Ok(Json(preview::preview(&state, &template).await?))
}

/// Preview the SQL of a template.
///
/// As `GET /api/templates/{id}/preview`, for a template given in the body; nothing is stored.
#[utoipa::path(
    post,
    path = "/api/templates/preview",
    operation_id = "preview_template",
    tag = "templates",
    request_body(
        description = "The template: JSON `{\"template\": {...}}`, or the template file itself as TOML with `content-type: application/toml`",
        content(
            (TemplateBody = "application/json"),
            (String = "application/toml"),
        )
    ),
    responses(
        (status = 200, description = "The statements and the table's profile", body = preview::Preview),
        (status = 400, description = "The body is not a valid template, or the mix does not fit the table", body = ApiErrorBody),
        (status = 404, description = "The template's `connection:ID` names no stored connection, or the table is not there (the message names it)", body = ApiErrorBody),
        (status = 502, description = "The target database refused access to the table (permission denied)", body = ApiErrorBody),
        (status = 503, description = "The target database, or the results store, cannot be reached or does not answer within 30 s", body = ApiErrorBody),
    )
)]
pub(crate) async fn preview_body(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<preview::Preview>, ApiError> {
    let template = template_from_body(&headers, &bytes)?;
    Ok(Json(preview::preview(&state, &template).await?))
}

/// The templates routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/templates", get(list).post(create))
        .route("/api/templates/import", post(import))
        .route("/api/templates/preview", post(preview_body))
        .route("/api/templates/{id}", get(show).put(update).delete(delete))
        .route("/api/templates/{id}/versions", get(versions))
        .route("/api/templates/{id}/duplicate", post(duplicate))
        .route("/api/templates/{id}/export", get(export))
        .route("/api/templates/{id}/preview", get(preview_stored))
}
